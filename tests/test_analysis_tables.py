"""Tables, the CLI and the plots, on sweep folders written with known numbers."""

import shutil
import subprocess
from pathlib import Path

import pytest

from analysis.cli import main
from analysis.loading import load
from analysis.references import paper_results
from analysis.synthetic import FakeTrial, write_sweep
from analysis.tables import (
    hyperparameter_latex,
    hyperparameter_table,
    score_table,
    to_csv,
    to_latex,
    to_markdown,
    write_sweep_table,
)

LOCOMOTION = list(paper_results()["task"][:9])


@pytest.fixture
def locomotion(tmp_path):
    """The paper's 9 locomotion tasks, each a search trial and a 5-seed confirm run, written
    in reverse so that the order of the table comes from the paper, not from the disk."""
    for i, task in enumerate(reversed(LOCOMOTION)):
        write_sweep(tmp_path, task, [FakeTrial([[10.0 + i, 20.0 + i]])])
        write_sweep(tmp_path, task, [FakeTrial([[50.0 + i] * 5])], stage="confirm")
    return tmp_path


def test_nine_locomotion_rows_in_the_paper_order_with_the_domain_average(locomotion):
    table = score_table(load(str(locomotion)), references=["paper", "BC"])
    rows = table.rows
    assert list(rows["task"]) == [*LOCOMOTION, "Average"]
    assert list(rows["kind"]) == ["task"] * 9 + ["average"]
    average = rows.iloc[-1]
    assert average["last_mean"] == pytest.approx(50 + 4)  # 50 + mean(0..8)
    assert average["ref_paper_mean"] == pytest.approx(
        paper_results()["diffusion_ql_mean"][:9].mean()
    )
    latex = to_latex(table)
    assert r"\toprule" in latex and r"\bottomrule" in latex and r"\textit{Average}" in latex
    assert "confirm stage" in table.caption and "5 seeds" in table.caption
    assert "10 episodes" in table.caption and "Hopper-v5" in table.caption
    # hopper-medium-v2: paper 90.5 is the row's best; ours 57.0 (i = 7) is not bold
    assert r"\textbf{90.5$\pm$4.6}" in latex and "57.0" in latex
    markdown = to_markdown(table)
    assert "| Gym locomotion | halfcheetah-medium-v2 |" in markdown
    assert to_csv(table).splitlines()[0].startswith("kind,domain,task,ref_paper_mean")


def test_a_half_finished_sweep_gives_a_table_with_missing_cells_marked(tmp_path):
    write_sweep(
        tmp_path,
        "hopper-medium-v2",
        [FakeTrial([[30, 50]], finished=False), FakeTrial([], error="RuntimeError: boom")],
    )
    write_sweep(tmp_path, "walker2d-medium-v2", [FakeTrial([], error="RuntimeError: boom")])
    table = score_table(load(str(tmp_path)))
    markdown = to_markdown(table)
    walker = next(line for line in markdown.splitlines() if "walker2d-medium-v2" in line)
    assert walker.count("--") == 3  # last, best, offline
    average = next(line for line in markdown.splitlines() if "*Average*" in line)
    assert average.count("--") == 3
    assert "40.0 ± 14.1" in markdown
    assert "Not finished, scores so far: hopper-medium-v2 (running)" in table.caption


def pdflatex(tex: Path) -> str:
    """Compile ``tex`` in its folder; the log (the test fails on a LaTeX error)."""
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed (.ci/run installs texlive-latex-base/-recommended)")
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name],
        cwd=tex.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert tex.with_suffix(".pdf").stat().st_size > 1000
    return tex.with_suffix(".log").read_text(errors="replace")


def test_the_latex_table_compiles_with_pdflatex(locomotion, tmp_path):
    tex = tmp_path / "table.tex"
    tex.write_text(
        to_latex(
            score_table(load(str(locomotion)), references=["paper", "BC", "IQL"]), standalone=True
        )
    )
    pdflatex(tex)


@pytest.mark.parametrize("wide", [False, True])
def test_both_sweep_tables_fit_a_two_column_paper(locomotion, tmp_path, wide):
    # Five result columns and every hyperparameter column: wider than a column unshrunk.
    results = load(str(locomotion))
    body = to_latex(score_table(results, references=["paper", "BC", "IQL"]), wide=wide)
    body += hyperparameter_latex(hyperparameter_table(results), wide=wide)
    assert ("table*" in body) == wide
    tex = tmp_path / "paper.tex"
    tex.write_text(
        "\\documentclass[twocolumn]{article}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n"
        "\\begin{document}\n" + body + "\\end{document}\n"
    )
    log = pdflatex(tex)
    assert "Overfull \\hbox" not in log


def test_write_sweep_table_can_be_wide(locomotion):
    assert "table*" not in Path(write_sweep_table(str(locomotion))).read_text()
    assert r"\begin{table*}" in Path(write_sweep_table(str(locomotion), wide=True)).read_text()


def test_counts_agree_with_their_nouns_and_no_score_is_negative_zero(tmp_path):
    write_sweep(
        tmp_path,
        "hopper-random-v2",
        [FakeTrial([[-0.04], [-0.02]], hparams={"eval_every": 1}, epoch_every=1)],
    )
    results = load(str(tmp_path))
    latex = to_latex(score_table(results))
    assert "over 1 seed per task" in latex and "1 seeds" not in latex
    assert "every epoch." in latex and "every 1 epochs" not in latex
    assert "1 search trial," in latex and "1 evaluation," not in latex
    assert "-0.0" not in latex and r"\textbf{0.0}" in latex
    from analysis.summary import summary_text

    summary = summary_text(results)
    assert summary.startswith("1 trial in 1 experiment folder\n")
    assert "(search: 1 trial, 20 episodes)" in summary and "-0.0" not in summary


def test_write_sweep_table_puts_the_latex_in_the_sweep_folder(locomotion):
    path = write_sweep_table(str(locomotion))
    assert Path(path) == locomotion / "results_table.tex"
    text = Path(path).read_text()
    assert "hopper-medium-v2" in text and r"\label{tab:dql-hparams}" in text


def test_cli_table_summary_and_errors(locomotion, tmp_path, capsys):
    assert (
        main(["table", str(locomotion), "--format", "markdown", "--reference", "paper,TD3+BC"]) == 0
    )
    out = capsys.readouterr().out
    assert "TD3+BC" in out and "*Average*" in out
    target = tmp_path / "t.csv"
    assert main(["table", str(locomotion), "--format", "csv", "--out", str(target)]) == 0
    assert target.read_text().startswith("kind,domain,task")
    assert main(["table", str(locomotion), "--hyperparameters", "--format", "markdown"]) == 0
    assert "| task | source | status | eta |" in capsys.readouterr().out
    assert main(["summary", str(locomotion)]) == 0
    summary = capsys.readouterr().out
    assert "Trials by status: finished 18" in summary and "IQM" in summary
    (tmp_path / "nothing").mkdir()
    assert main(["table", str(tmp_path / "nothing")]) == 2
    assert "no results under" in capsys.readouterr().err
    assert main(["table", str(locomotion), "--reference", "nope"]) == 2
    assert "unknown reference 'nope'" in capsys.readouterr().err


def test_cli_plot_writes_png_and_pdf(locomotion, tmp_path, capsys):
    out = tmp_path / "plots"
    assert main(["plot", str(locomotion), "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    for stem in ("learning_curves", "sweep_diagnostics", "performance_profile"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= names
    # One search trial per task: nothing to rank the parameters by, and it says so.
    assert "parameter_importance.png" not in names
    assert "skipped parameter_importance: no task has 4 or more" in capsys.readouterr().out
