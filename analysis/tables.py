"""Paper-style tables: LaTeX (booktabs), Markdown and CSV of the same cells.

Rows are tasks in the paper's order, grouped by domain, each domain closed by its average;
columns are the chosen reference results, then ours (last, best, offline-selected). The
highest mean of a row is bold; a missing value is "--". The caption says what the numbers
are: seeds, spread, selection rule, evaluation episodes, environments.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.aggregate import METRICS, Selection, domain_averages, task_table
from analysis.loading import Results, load
from analysis.references import (
    DOMAIN_LABELS,
    LOCAL,
    LOCAL_REFERENCES,
    PAPER,
    reference_label,
    reference_scores,
)
from analysis.storage import write_text
from analysis.wording import count, fixed, span

MISSING = "--"
OURS_LABELS = {"last": "Last", "best": "Best", "best_of_mean": "Best of mean", "offline": "Offline"}
SWEEP_TABLE = "results_table.tex"


@dataclass
class ScoreTable:
    """The cells of a results table, ready for any format."""

    rows: pd.DataFrame  # kind (task|average), domain, task, then COL_mean / COL_spread
    columns: list[tuple[str, str]]  # (key, header)
    caption: str


def score_table(
    results: Results,
    metrics: Sequence[str] = METRICS,
    references: Sequence[str] = (PAPER,),
    selection: Selection | None = None,
) -> ScoreTable:
    """Ours (per ``metrics``) next to ``references``, one row per task plus domain averages."""
    selection = selection or Selection()
    tasks = task_table(results, selection)
    columns: list[tuple[str, str]] = []
    body = tasks[["task", "domain"]].copy()
    for name in references:
        ref = reference_scores(name)
        key = f"ref_{name}"
        body[f"{key}_mean"] = body["task"].map(ref["mean"]).astype(float)
        body[f"{key}_spread"] = body["task"].map(ref["std"]).astype(float)
        columns.append((key, reference_label(name)))
    for metric in metrics:
        body[f"{metric}_mean"] = tasks[f"{metric}_mean"].astype(float)
        body[f"{metric}_spread"] = tasks[f"{metric}_spread"].astype(float)
        columns.append((metric, f"Ours ({OURS_LABELS[metric]})"))
    body.insert(0, "kind", "task")
    out = []
    means = [f"{key}_mean" for key, _ in columns]
    averages = domain_averages(body, means)
    for domain, group in body.groupby("domain", sort=False):
        out.append(group)
        average = averages[averages["domain"] == domain].drop(columns="tasks")
        out.append(average.assign(kind="average", task="Average"))
    rows = pd.concat(out, ignore_index=True) if out else body
    return ScoreTable(rows, columns, caption(tasks, metrics, references, selection))


def caption(
    tasks: pd.DataFrame, metrics: Sequence[str], references: Sequence[str], selection: Selection
) -> str:
    """What the numbers are, in one paragraph (plain text; ``±`` marks the spread)."""
    local = "domain" in tasks and (tasks["domain"] == LOCAL).any()
    parts = ["Normalized scores (×100)." if local else "D4RL normalized scores (×100)."]
    sources = tasks["source"].value_counts().to_dict() if "source" in tasks else {}
    if set(sources) == {"single"}:
        parts.append("Ours: single training runs (python -m dql train), no search.")
    elif sources.get("confirm") and not sources.get("search"):
        parts.append("Ours: the chosen configuration rerun with fresh seeds (confirm stage).")
    elif sources.get("confirm"):
        confirmed = ", ".join(tasks.loc[tasks["source"] == "confirm", "task"])
        parts.append(
            f"Ours: confirm-stage reruns with fresh seeds for {confirmed}; for the other tasks "
            "the best search trial, chosen on the seeds it reports (optimistic)."
        )
    else:
        parts.append(
            "Ours: the best search trial by its last mean score (finished trials first), "
            "reported on the seeds it was chosen on (optimistic; no confirm stage found)."
        )
    if "status" in tasks:
        unfinished = tasks[tasks["status"].notna() & (tasks["status"] != "finished")]
        if not unfinished.empty:
            pairs = unfinished[["task", "status"]].itertuples(index=False)
            listed = ", ".join(f"{task} ({status})" for task, status in pairs)
            parts.append(f"Not finished, scores so far: {listed}.")
    seeds = sorted({int(n) for n in tasks.get("seeds_scored", pd.Series()).dropna()})
    spread = "sample standard deviation" if selection.spread == "std" else "standard error"
    parts.append(f"Mean ± {spread} over {span(seeds, 'seed')} per task.")
    named = {
        "last": "Last = last evaluation",
        "best": "Best = best evaluation during training, per seed (online selection, as the "
        "paper reports)",
        "best_of_mean": "Best of mean = evaluation with the highest mean over seeds",
        "offline": "Offline = evaluation at rank top_k of ascending BC loss, per seed "
        "(the released code's offline rule, without its indexing bug)",
    }
    parts.append("; ".join(named[m] for m in metrics) + ".")
    episodes = sorted({int(e) for e in tasks.get("eval_episodes", pd.Series()).dropna()})
    every = sorted({int(e) for e in tasks.get("eval_every", pd.Series()).dropna()})
    if episodes:
        often = ""
        if every:
            often = ", every epoch" if every == [1] else f", every {span(every, 'epoch')}"
        parts.append(f"Each evaluation: {span(episodes, 'episode')} per seed{often}.")
    envs = _environments(tasks)
    if envs:
        parts.append(f"Evaluated on {envs}.")
    if "search_trials" in tasks and tasks["search_trials"].notna().any():
        parts.append(
            f"Tuning budget: {count(int(tasks['search_trials'].sum()), 'search trial')}, "
            f"{count(int(tasks['tuning_evaluations'].sum()), 'evaluation')}, "
            f"{count(int(tasks['tuning_episodes'].sum()), 'episode')}"
            + (f"; compute: {compute}." if (compute := _compute(tasks)) else ".")
        )
    if local:
        parts.append(LOCAL_REFERENCES)
    if references:
        parts.append(
            "Reference columns as published (some recalled; see "
            "analysis/resources/*.csv for sources)."
        )
    parts.append(f"Best mean per row in bold; {MISSING} = no result.")
    return " ".join(parts)


def _compute(tasks: pd.DataFrame) -> str | None:
    """'0.41 GPU-hours for the search, 0.05 for the confirm stage' (CPU-hours without GPUs)."""
    parts = []
    for stage, label in (("search", "for the search"), ("confirm", "for the confirm stage")):
        gpu = tasks.get(f"{stage}_gpu_hours", pd.Series(dtype=float)).astype(float).sum(min_count=1)
        cpu = tasks.get(f"{stage}_cpu_hours", pd.Series(dtype=float)).astype(float).sum(min_count=1)
        if pd.notna(gpu) and gpu > 0:
            parts.append(f"{gpu:.3g} GPU-hours {label}")
        elif pd.notna(cpu):
            parts.append(f"{cpu:.3g} CPU-hours {label}")
    return ", ".join(parts) or None


def _environments(tasks: pd.DataFrame) -> str:
    if "env_id" not in tasks:
        return ""
    pairs = tasks[["env_id", "mujoco_version"]].dropna(subset=["env_id"]).drop_duplicates()
    versions = sorted({str(v) for v in pairs["mujoco_version"].dropna() if v})
    envs = ", ".join(sorted(set(pairs["env_id"])))
    return envs + (f" (MuJoCo {', '.join(versions)})" if versions else "")


# ---------------------------------------------------------------- cells
def _bold_mask(rows: pd.DataFrame, columns: list[tuple[str, str]]) -> pd.DataFrame:
    # Compare what is shown: two cells that print alike are both bold.
    means = rows[[f"{key}_mean" for key, _ in columns]].astype(float).round(1)
    best = means.max(axis=1)
    mask = means.eq(best, axis=0) & means.notna()
    mask.columns = [key for key, _ in columns]
    return mask


def _cell(mean: float, spread: float, pm: str) -> str:
    if mean is None or not math.isfinite(mean):
        return MISSING
    if spread is None or not math.isfinite(spread):
        return fixed(mean)
    return f"{fixed(mean)}{pm}{fixed(spread)}"


def _cells(table: ScoreTable, pm: str, bold: str) -> list[list[str]]:
    """Formatted cells per row: domain label (first row of a block), task, values."""
    mask = _bold_mask(table.rows, table.columns)
    out = []
    previous = None
    for i, row in table.rows.iterrows():
        domain = row["domain"]
        label = DOMAIN_LABELS.get(domain, str(domain)) if domain != previous else ""
        previous = domain
        cells = [label, str(row["task"])]
        for key, _ in table.columns:
            spread = row.get(f"{key}_spread", np.nan)
            text = _cell(row[f"{key}_mean"], spread, pm)
            cells.append(bold.format(text) if mask.loc[i, key] else text)
        out.append(cells)
    return out


def latex_escape(text: str) -> str:
    replacements = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                    "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                    "^": r"\textasciicircum{}"}  # fmt: skip
    escaped = "".join(replacements.get(ch, ch) for ch in text)
    return escaped.replace("±", r"$\pm$").replace("×", r"$\times$")


PREAMBLE = r"\usepackage{booktabs}" "\n" r"\usepackage{graphicx}"


def _float(caption: str, label: str, tabular: list[str], wide: bool) -> list[str]:
    """``tabular`` in a ``table`` shrunk to the column width when it is wider (a two-column
    paper's usual place), or with ``wide`` in a ``table*`` across both columns, shrunk to
    the text width. Never enlarged: a narrow table keeps its font size."""
    env, width = ("table*", r"\textwidth") if wide else ("table", r"\columnwidth")
    return [
        f"% needs {PREAMBLE.replace(chr(10), ' ')}",
        rf"\begin{{{env}}}[t]",
        r"\centering",
        r"\small",
        rf"\caption{{{caption}}}",
        rf"\label{{{label}}}",
        rf"\resizebox{{\ifdim\width>{width}{width}\else\width\fi}}{{!}}{{%",
        *tabular,
        "}",
        rf"\end{{{env}}}",
    ]


def to_latex(
    table: ScoreTable, label: str = "tab:dql-results", standalone: bool = False, wide: bool = False
) -> str:
    """A booktabs table that fits a column (``wide``: a ``table*`` across the page); needs
    ``PREAMBLE``; ``standalone``: a whole two-column document around it."""
    cells = _cells(table, r"$\pm$", r"\textbf{{{}}}")
    lines = [
        r"\begin{tabular}{ll" + "r" * len(table.columns) + "}",
        r"\toprule",
        " & ".join(["Domain", "Task", *(latex_escape(h) for _, h in table.columns)]) + r" \\",
        r"\midrule",
    ]
    kinds = list(table.rows["kind"])
    for i, row in enumerate(cells):
        row = [latex_escape(row[0]), latex_escape(row[1]), *row[2:]]
        if kinds[i] == "average":
            lines.append(r"\cmidrule(l){2-" + str(2 + len(table.columns)) + "}")
            row[1] = r"\textit{Average}"
        lines.append(" & ".join(row) + r" \\")
        if kinds[i] == "average" and i < len(cells) - 1:
            lines.append(r"\midrule")
    lines += [r"\bottomrule", r"\end{tabular}"]
    text = "\n".join(_float(latex_escape(table.caption), label, lines, wide)) + "\n"
    return standalone_document(text) if standalone else text


def standalone_document(body: str) -> str:
    """``body`` (tables) in the two-column article a paper would \\input them into."""
    return (
        "\\documentclass[twocolumn]{article}\n"
        + PREAMBLE
        + "\n\\begin{document}\n"
        + body
        + "\\end{document}\n"
    )


def to_markdown(table: ScoreTable) -> str:
    cells = _cells(table, " ± ", "**{}**")
    header = ["Domain", "Task", *(h for _, h in table.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 2 + "---:|" * len(table.columns)]
    for kind, row in zip(table.rows["kind"], cells, strict=True):
        if kind == "average":
            row[1] = "*Average*"
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + f"\n\n{table.caption}\n"


def frame_markdown(frame: pd.DataFrame) -> str:
    """A plain DataFrame as a Markdown table (pandas' own needs the tabulate package)."""
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_plain(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def to_csv(table: ScoreTable) -> str:
    """The same numbers, unformatted (one mean and one spread column per result column)."""
    columns = ["kind", "domain", "task"]
    columns += [f"{key}_{part}" for key, _ in table.columns for part in ("mean", "spread")]
    buffer = io.StringIO()
    table.rows.reindex(columns=columns).to_csv(buffer, index=False, float_format="%.4g")
    return buffer.getvalue()


def render(table: ScoreTable, fmt: str, standalone: bool = False, wide: bool = False) -> str:
    if fmt == "latex":
        return to_latex(table, standalone=standalone, wide=wide)
    if fmt == "markdown":
        return to_markdown(table)
    if fmt == "csv":
        return to_csv(table)
    raise ValueError(f"unknown format {fmt!r}; choose latex, markdown or csv")


# ---------------------------------------------------------------- hyperparameters
HPARAM_COLUMNS = (
    "eta",
    "T",
    "actor_lr",
    "grad_norm",
    "top_k",
    "num_epochs",
    "eval_every",
    "eval_episodes",
)


def hyperparameter_table(results: Results, selection: Selection | None = None) -> pd.DataFrame:
    """The reported configuration of each task, where it came from and what choosing it cost."""
    tasks = task_table(results, selection)
    keep = ["task", "source", "status", *(c for c in HPARAM_COLUMNS if c in tasks)]
    keep += [c for c in ("search_trials", "tuning_evaluations", "tuning_episodes") if c in tasks]
    return tasks[keep].reset_index(drop=True)


def hyperparameter_latex(
    frame: pd.DataFrame, label: str = "tab:dql-hparams", wide: bool = False
) -> str:
    """The hyperparameter table in LaTeX; fits a column unless ``wide`` (see ``to_latex``)."""
    headers = {"actor_lr": "lr", "search_trials": "trials", "tuning_evaluations": "evals",
               "tuning_episodes": "episodes", "eval_episodes": "eval eps"}  # fmt: skip
    columns = list(frame.columns)
    caption = (
        "Hyperparameters of the reported configuration per task; source: confirm "
        "(fresh-seed rerun), search, or single (one training run); trials, evals and "
        "episodes: the search budget spent choosing it."
    )
    lines = [
        r"\begin{tabular}{" + "l" * 3 + "r" * (len(columns) - 3) + "}",
        r"\toprule",
        " & ".join(latex_escape(headers.get(c, c)) for c in columns) + r" \\",
        r"\midrule",
    ]
    for _, row in frame.iterrows():
        lines.append(" & ".join(latex_escape(_plain(row[c])) for c in columns) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(_float(caption, label, lines, wide)) + "\n"


def _plain(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    if isinstance(value, float):
        return f"{value:.3g}" if not value.is_integer() else str(int(value))
    return str(value)


def write_sweep_table(
    root: str, references: Sequence[str] = (PAPER,), *, wide: bool = False
) -> str:
    """Write ``ROOT/results_table.tex`` (scores, then hyperparameters) for the sweep under
    ``root`` (local or s3://), each fitting a column unless ``wide``; returns the path."""
    results = load(root)
    text = to_latex(score_table(results, references=references), wide=wide)
    text += "\n" + hyperparameter_latex(hyperparameter_table(results), wide=wide)
    return write_text(f"{str(root).rstrip('/')}/{SWEEP_TABLE}", text)
