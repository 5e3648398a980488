"""A plain-text account of one or more sweeps: what ran, how it ended, what won, what it cost.

Printed at the end of every sweep script and by ``python -m analysis summary``; it reads
half-finished sweeps as readily as finished ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.aggregate import (
    Selection,
    compute_cost,
    cost_text,
    run_scores,
    task_table,
    trial_scores,
)
from analysis.loading import STATUSES, Results, load
from analysis.references import LOCAL, LOCAL_REFERENCES
from analysis.statistics import iqm_ci, optimality_gap_ci
from analysis.wording import count, fixed


def summarize(paths: str | Sequence[str], selection: Selection | None = None) -> str:
    """The summary of every experiment found under ``paths`` (local or s3://)."""
    return summary_text(load(paths), selection)


def summary_text(results: Results, selection: Selection | None = None) -> str:
    selection = selection or Selection()
    trials = results.trials
    folders = count(trials["experiment"].nunique(), "experiment folder")
    lines = [f"{count(len(trials), 'trial')} in {folders}"]
    lines += _status_counts(trials)
    lines += _ended_badly(trials)
    lines += _time_spent(trials)
    lines += _cost(trials)
    lines += _best_per_task(results, selection)
    lines += _aggregate(results, selection)
    lines += _budget_view(results, selection)
    return "\n".join(lines)


def _status_counts(trials: pd.DataFrame) -> list[str]:
    counts = trials.groupby(["task", "stage"], dropna=False)["status"].value_counts().unstack()
    counts = counts.reindex(columns=[s for s in STATUSES if s in counts.columns]).fillna(0)
    totals = ", ".join(f"{s} {int(counts[s].sum())}" for s in counts.columns)
    lines = ["", f"Trials by status: {totals}"]
    for (task, stage), row in counts.iterrows():
        parts = ", ".join(f"{s} {int(n)}" for s, n in row.items() if n)
        lines.append(f"  {task} [{stage}]: {parts}")
    return lines


def _ended_badly(trials: pd.DataFrame) -> list[str]:
    lines = []
    stopped = int((trials["status"] == "stopped_early").sum())
    if stopped:
        lines.append(f"Stopped early by the scheduler: {stopped}")
    for status in ("diverged", "failed"):
        bad = trials[trials["status"] == status]
        if not bad.empty:
            lines.append(f"{status.capitalize()}: {len(bad)}")
            for _, trial in bad.iterrows():
                lines.append(f"  {trial['task']} {trial['trial_dir']}: {trial['status_reason']}")
    return ["", *lines] if lines else []


def _time_spent(trials: pd.DataFrame) -> list[str]:
    wall = trials["wall_time_s"].astype(float)
    tune = trials["time_total_s"].astype(float)
    total = np.nansum(np.where(np.isfinite(tune), tune, wall))
    where = "in trials (sum over trials)" if len(trials) > 1 else "in the trial"
    if (trials["stage"] == "single").all():
        where = "training (sum over runs)" if len(trials) > 1 else "training"
    return ["", f"Time spent {where}: {_duration(total)}"]


def _cost(trials: pd.DataFrame) -> list[str]:
    """GPU-hours (CPU-hours without GPUs) per task, search and confirm apart, and in all."""
    cost = compute_cost(trials)
    total = cost_text(cost)
    if total is None:
        return []
    lines = [f"Compute: {total} in all ({_stages(cost)})"]
    for task, group in cost.groupby("task", sort=False):
        lines.append(f"  {task}: {_stages(group)}")
    return lines


def _stages(cost: pd.DataFrame) -> str:
    parts = [f"{stage} {cost_text(cost, stage)}" for stage in ("search", "confirm", "single")]
    return ", ".join(
        p for p in parts if not p.endswith(" None") and (cost["stage"] == p.split()[0]).any()
    )


def _duration(seconds: float) -> str:
    seconds = float(seconds)
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _best_per_task(results: Results, selection: Selection) -> list[str]:
    table = task_table(results, selection)
    if table.empty:
        return []
    lines = ["", "Best configuration per task (reported trial; scores: mean over seeds):"]
    if (table["domain"] == LOCAL).any():
        lines.insert(1, LOCAL_REFERENCES)
    searched = [c for c in ("eta", "T", "actor_lr") if c in table]
    for _, row in table.iterrows():
        if pd.isna(row.get("trial_id")):
            lines.append(f"  {row['task']}: no evaluated trial yet")
            continue
        config = " ".join(f"{c}={_short(row[c])}" for c in searched)
        budget = ""
        if row["source"] != "single":
            searched_trials = _whole(row.get("search_trials"))
            trials = count(searched_trials, "trial")
            episodes = count(_whole(row.get("tuning_episodes")), "episode")
            worst = row.get("worst_search_last")
            several = searched_trials > 1 and not pd.isna(worst)
            lowest = f"; worst searched config: last {fixed(worst)}" if several else ""
            budget = f" (search: {trials}, {episodes}{lowest})"
        lines.append(
            f"  {row['task']}: {config} [{row['source']}, {row['status']}, "
            f"{count(int(row['seeds_scored']), 'seed')}] last {fixed(row['last_mean'])}, "
            f"best {fixed(row['best_mean'])}, offline {fixed(row['offline_mean'])}{budget}"
        )
    return lines


def _whole(value) -> int:
    """A count from the task table: missing (None or NaN, e.g. no search rows) is 0."""
    return 0 if value is None or pd.isna(value) else int(value)


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _aggregate(results: Results, selection: Selection) -> list[str]:
    """IQM and optimality gap over tasks, pooled only among tasks whose normalized scores
    share references: local-reference tasks (``LOCAL``) apart from the published ones, since
    a local 100 is not a D4RL 100."""
    scores = run_scores(results, "last", selection)
    table = task_table(results, selection)
    domains = dict(zip(table["task"], table["domain"], strict=True))
    groups = {
        "published references": {t: v for t, v in scores.items() if domains.get(t) != LOCAL},
        "local references": {t: v for t, v in scores.items() if domains.get(t) == LOCAL},
    }
    lines = []
    for label, group in groups.items():
        runs = sum(len(v) for v in group.values())
        if len(group) < 1 or runs < 2:
            continue
        lines += [
            "",
            f"Across {count(len(group), 'task')} with {label}, {count(runs, 'run')}, last "
            "evaluation (95% stratified bootstrap):",
            f"  IQM {iqm_ci(group)}; optimality gap {optimality_gap_ci(group)}",
        ]
    return lines


def _budget_view(results: Results, selection: Selection) -> list[str]:
    """One line per task: what one evaluation's episodes buy against the sweep's budget."""
    from analysis.budget import budget_views

    lines = []
    for view in budget_views(results, selection):
        n, spent = view.eval_episodes, view.sweep_episodes
        beyond = f", simulated up to {len(view.curve.mean)}" if spent > len(view.curve.mean) else ""
        lines.append(
            f"Tuning budget view ({view.task}, UCB over {count(view.trials, 'search trial')}): "
            f"with {count(n, 'evaluation episode')} per choice the expected score is "
            f"{fixed(view.curve.at(n))} (sweep used {spent}{beyond}: "
            f"{fixed(view.curve.at(spent))})"
        )
    return ["", *lines] if lines else []


def trials_by_status(results: Results) -> pd.DataFrame:
    """Counts per task and stage (a frame, for notebooks)."""
    return trial_scores(results).pivot_table(
        index=["task", "stage"], columns="status", values="trial_id", aggfunc="count", fill_value=0
    )
