"""The figures: axes fitted to the data, legends clear of the curves, honest titles, and
no empty figure; and the plot command on folders it cannot read."""

import json

import pytest

from analysis import plots
from analysis.cli import main
from analysis.loading import load
from analysis.synthetic import FakeTrial, write_sweep


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plot functions save, kept open for the test to measure."""
    figures = {}
    save = plots._save

    def keep(fig, out, name, layout=True):
        fig.canvas.draw()
        figures[name] = fig
        path = save(fig, out, name, layout)
        return path

    monkeypatch.setattr(plots, "_save", keep)
    return figures


def smoke_like_sweep(root, seeds=1):
    """Four search trials of a smoke sweep: scores near 1, a narrow eta and lr range."""
    hparams = [(1.2, 2, 2.1e-4), (1.45, 3, 3.3e-4), (1.7, 5, 4.4e-4), (1.9, 6, 6.2e-4)]
    trials = [
        FakeTrial(
            [[0.5 + 0.3 * i + 0.1 * e + 0.05 * s for s in range(seeds)] for e in range(4)],
            hparams={"eta": eta, "T": T, "actor_lr": lr},
        )
        for i, (eta, T, lr) in enumerate(hparams)
    ]
    write_sweep(root, "hopper-random-v2", trials)
    return load(str(root))


def single_run(root):
    run = root / "run"
    run.mkdir()
    rows = [
        {"task": "hopper-medium-v2", "stage": "single", "seeds": [0], "epoch": e,
         "gradient_steps": 1000 * e, "normalized_scores": [float(e)], "bc_losses": [1.0 / e],
         "status": "finished" if e == 3 else "running", "wall_time_s": 10.0 * e}
        for e in (1, 2, 3)
    ]  # fmt: skip
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return load(str(run))


def visible_labels(axis):
    low, high = sorted(axis.axes.get_xlim())
    return [
        t for t in axis.get_majorticklabels() if t.get_text() and low <= t.get_position()[0] <= high
    ]


def test_performance_profile_axis_fits_scores_near_one(tmp_path, drawn):
    plots.performance_profiles(smoke_like_sweep(tmp_path / "s"), tmp_path / "out")
    low, high = drawn["performance_profile"].axes[0].get_xlim()
    assert low == 0 and 1.4 <= high < 2  # the best score is 1.4 + 0.3, not squashed by 100


def test_learning_curve_legend_covers_no_curve_and_the_title_says_what_is_drawn(tmp_path, drawn):
    plots.learning_curves(smoke_like_sweep(tmp_path / "one"), tmp_path / "out")
    fig = drawn["learning_curves"]
    legend = fig.legends[0].get_window_extent()
    assert not any(legend.overlaps(ax.get_window_extent()) for ax in fig.axes)
    title = fig._suptitle.get_text()
    assert "95%" not in title and "1 seed" in fig.axes[0].get_title()  # one seed: no interval
    plots.learning_curves(smoke_like_sweep(tmp_path / "three", seeds=3), tmp_path / "out")
    assert "95% t-interval" in drawn["learning_curves"]._suptitle.get_text()


def test_sweep_diagnostics_labels_several_log_ticks_that_do_not_overlap(tmp_path, drawn):
    plots.sweep_diagnostics(smoke_like_sweep(tmp_path / "s"), tmp_path / "out")
    axes = {ax.get_xlabel(): ax for ax in drawn["sweep_diagnostics"].axes}
    for name in ("eta", "actor_lr"):
        labels = visible_labels(axes[name].xaxis)
        assert len(labels) >= 3, (name, [t.get_text() for t in labels])
        boxes = [t.get_window_extent() for t in labels]
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :]), name
    assert all(len(t.get_text()) <= 6 for t in visible_labels(axes["actor_lr"].xaxis))


def test_a_single_run_skips_the_figures_it_has_nothing_for(tmp_path, capsys):
    run = single_run(tmp_path)
    with pytest.raises(plots.NothingToShow, match="4 or more scored search trials"):
        plots.parameter_importance(run, tmp_path / "direct")
    out = tmp_path / "plots"
    assert main(["plot", str(tmp_path / "run"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "skipped parameter_importance: no task has 4 or more" in printed
    assert "skipped sweep_diagnostics" in printed
    names = {p.name for p in out.iterdir()}
    assert names == {
        f"{s}.{e}" for s in ("learning_curves", "performance_profile") for e in ("png", "pdf")
    }


def test_plot_help_lists_the_figures(capsys):
    with pytest.raises(SystemExit):
        main(["plot", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in plots.FIGURES:
        assert f"{name}.png" in text


@pytest.mark.parametrize("command", ["table", "summary", "plot"])
def test_a_damaged_result_file_is_one_line_exit_2_and_nothing_written(tmp_path, command, capsys):
    experiment = write_sweep(tmp_path / "sweep", "hopper-medium-v2", [FakeTrial([[1], [2]])] * 4)
    bad = next(experiment.glob("trial_*")) / "result.json"
    bad.write_text(bad.read_text().replace("{", "{{", 1))
    out = tmp_path / "out"
    extra = {"table": ["--out", str(out / "t.tex")], "plot": ["--out", str(out)], "summary": []}
    assert main([command, str(tmp_path / "sweep"), *extra[command]]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and str(bad) in error and "line 1" in error
    assert not out.exists()


def test_abbreviated_or_unknown_flags_show_the_subcommands_usage(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["table", "some/folder", "--form", "csv"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m analysis table") and "--form" in err
