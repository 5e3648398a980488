"""Scores per seed, per trial (configuration) and per task, as the paper and honesty want them.

Three ways to turn a training curve into one number, reported side by side:
- ``last``: the last evaluation (no selection at all).
- ``best``: the best evaluation during training, the paper's online selection. The released
  code runs one seed per process and each run keeps its own best evaluation, so the paper's
  mean ± std is over per-seed maxima (``best``); ``best_of_mean`` is the stricter variant, the
  evaluation whose mean over seeds is highest, with the seeds' spread at that evaluation.
- ``offline``: the BC-loss rule of the released code, done as it was meant: per seed, order the
  evaluations by that seed's bc_loss and take the one at rank ``top_k`` (0 = smallest loss),
  ``top_k`` clipped to the number of evaluations. The released code compared the argsort to
  ``top_k`` instead of indexing it, which picks a different evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.loading import Results
from analysis.references import task_sort_key

METRICS = ("last", "best", "offline")
METRIC_LABELS = {
    "last": "last evaluation",
    "best": "best evaluation (online selection)",
    "best_of_mean": "best evaluation of the seed mean",
    "offline": "BC-loss selection (offline)",
}
TRIAL = ["experiment", "trial_id"]
DEFAULT_TOP_K = 1  # DQLConfig.top_k


@dataclass(frozen=True)
class Selection:
    """How a task's reported configuration is chosen and how its spread is shown."""

    spread: str = "std"  # "std" (sample std over seeds, ddof=1) or "se" (standard error)
    prefer_confirm: bool = True  # confirm rows (fresh seeds) over search rows when present
    top_k: int | None = None  # offline rule rank; None: each trial's own hparam (paper preset)


def scored(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with a finite score (a diverged trial's last row has none)."""
    return rows[np.isfinite(rows["normalized_score"].astype(float))]


def offline_pick(bc_losses: np.ndarray, top_k: int) -> int:
    """Index of the evaluation at rank ``top_k`` of ascending bc_loss (0 = smallest).

    Ties keep evaluation order; non-finite losses rank last; ``top_k`` is clipped to the last
    index, as in the released code.
    """
    losses = np.where(np.isfinite(bc_losses), bc_losses, np.inf)
    order = np.argsort(losses, kind="stable")
    return int(order[min(max(int(top_k), 0), len(order) - 1)])


def seed_scores(rows: pd.DataFrame, top_k: int | None = None) -> pd.DataFrame:
    """One row per (trial, seed): last, best and offline-selected score and their epochs."""
    out = []
    for (experiment, trial_id, seed), group in scored(rows).groupby(
        [*TRIAL, "seed"], sort=False, dropna=False
    ):
        group = group.sort_values("epoch")
        scores = group["normalized_score"].to_numpy(float)
        epochs = group["epoch"].to_numpy()
        k = top_k if top_k is not None else _trial_top_k(group)
        pick = offline_pick(group["bc_loss"].to_numpy(float), k)
        best = int(np.argmax(scores))
        out.append(
            {
                "experiment": experiment,
                "trial_id": trial_id,
                "seed": seed,
                "last": scores[-1],
                "last_epoch": epochs[-1],
                "best": scores[best],
                "best_epoch": epochs[best],
                "offline": scores[pick],
                "offline_epoch": epochs[pick],
                "top_k": k,
            }
        )
    columns = [*TRIAL, "seed", "last", "last_epoch", "best", "best_epoch", "offline"]
    return pd.DataFrame(out) if out else pd.DataFrame(columns=[*columns, "offline_epoch", "top_k"])


def _trial_top_k(group: pd.DataFrame) -> int:
    if "top_k" in group and pd.notna(group["top_k"].iloc[-1]):
        return int(group["top_k"].iloc[-1])
    return DEFAULT_TOP_K


def _spread(values: np.ndarray, kind: str) -> float:
    values = values[np.isfinite(values)]
    if values.size < 2:
        return float("nan")
    std = float(np.std(values, ddof=1))
    return std / np.sqrt(values.size) if kind == "se" else std


def trial_scores(results: Results, selection: Selection | None = None) -> pd.DataFrame:
    """One row per trial: its status, hyperparameters and each metric's mean and spread."""
    selection = selection or Selection()
    trials = results.trials
    per_seed = seed_scores(results.rows, selection.top_k)
    rows = scored(results.rows)
    stats = []
    for key, group in per_seed.groupby(TRIAL, sort=False):
        entry = dict(zip(TRIAL, key, strict=True))
        entry["seeds_scored"] = len(group)
        for metric in METRICS:
            values = group[metric].to_numpy(float)
            entry[f"{metric}_mean"] = float(np.mean(values))
            entry[f"{metric}_spread"] = _spread(values, selection.spread)
        trial_rows = rows[(rows["experiment"] == key[0]) & (rows["trial_id"] == key[1])]
        curve = trial_rows.groupby("epoch")["normalized_score"]
        means = curve.mean()
        best_epoch = means.idxmax()
        entry["best_of_mean_mean"] = float(means.max())
        entry["best_of_mean_spread"] = _spread(
            trial_rows.loc[trial_rows["epoch"] == best_epoch, "normalized_score"].to_numpy(float),
            selection.spread,
        )
        entry["best_of_mean_epoch"] = best_epoch
        stats.append(entry)
    columns = [f"{m}_{s}" for m in (*METRICS, "best_of_mean") for s in ("mean", "spread")]
    frame = pd.DataFrame(stats) if stats else pd.DataFrame(columns=[*TRIAL, *columns])
    return trials.merge(frame, on=TRIAL, how="left")


def _pick_trial(candidates: pd.DataFrame) -> pd.Series | None:
    """The best trial by its last mean score, preferring finished ones (sweeps' own rule)."""
    with_scores = candidates[np.isfinite(candidates["last_mean"].astype(float))]
    finished = with_scores[with_scores["status"] == "finished"]
    pool = finished if not finished.empty else with_scores
    if pool.empty:
        return None
    return pool.loc[pool["last_mean"].astype(float).idxmax()]


def _confirm_of(confirm: pd.DataFrame, searched: pd.Series | None) -> pd.Series | None:
    """The confirm trial of the configuration the search chose. A sweep extended after its
    confirm stage may hold reruns of earlier winners too; picking the best of those by their
    fresh-seed scores would be selection on the reporting seeds again."""
    if searched is not None:
        same = np.ones(len(confirm), dtype=bool)
        for name in ("eta", "T", "actor_lr"):
            if name in confirm and pd.notna(searched.get(name)):
                same &= np.isclose(confirm[name].astype(float), float(searched[name]))
        if same.any():
            return _pick_trial(confirm[same]) if same.sum() > 1 else confirm[same].iloc[0]
    return _pick_trial(confirm)


def tuning_budget(trials: pd.DataFrame) -> pd.DataFrame:
    """Per task, what the search spent choosing the configuration: trials, evaluations
    (one per trial and evaluation epoch) and evaluation episodes (over all its seeds)."""
    search = trials[trials["stage"] != "confirm"]
    episodes = (
        search["evaluations"].fillna(0)
        * search["num_seeds"].fillna(0)
        * search["eval_episodes"].fillna(0)
    )
    frame = pd.DataFrame(
        {"task": search["task"], "evaluations": search["evaluations"], "episodes": episodes}
    )
    budget = frame.groupby("task").agg(
        search_trials=("task", "size"),
        tuning_evaluations=("evaluations", "sum"),
        tuning_episodes=("episodes", "sum"),
    )
    return budget.astype(int)


def compute_cost(trials: pd.DataFrame) -> pd.DataFrame:
    """Per task and stage, the resources the trials held: GPU-hours and CPU-hours
    (cumulative seconds x resources, from each trial's newest row). NaN where no trial
    recorded its cost (results written before rows carried it)."""
    columns = ["task", "stage", "gpu_hours", "cpu_hours"]
    if trials.empty or "cpu_seconds" not in trials:
        return pd.DataFrame(columns=columns)
    frame = trials.assign(
        gpu_hours=trials["gpu_seconds"].astype(float) / 3600,
        cpu_hours=trials["cpu_seconds"].astype(float) / 3600,
    )
    cost = frame.groupby(["task", "stage"], dropna=False)[["gpu_hours", "cpu_hours"]]
    return cost.sum(min_count=1).reset_index()


def cost_text(cost: pd.DataFrame, stage: str | None = None) -> str | None:
    """'1.2 GPU-h' (or CPU-h where no GPU was used) for one stage or all; None if unknown."""
    part = cost if stage is None else cost[cost["stage"] == stage]
    gpu, cpu = part["gpu_hours"].sum(min_count=1), part["cpu_hours"].sum(min_count=1)
    if pd.isna(gpu) and pd.isna(cpu):
        return None
    return f"{gpu:.3g} GPU-h" if gpu and gpu > 0 else f"{cpu:.3g} CPU-h"


def _cost_columns(trials: pd.DataFrame) -> pd.DataFrame:
    """``search_gpu_hours``, ``confirm_cpu_hours``, ... one row per task."""
    cost = compute_cost(trials)
    out = pd.DataFrame({"task": trials["task"].dropna().unique()})
    for stage in ("search", "confirm"):
        part = cost[cost["stage"] == stage].set_index("task")
        for unit in ("gpu_hours", "cpu_hours"):
            out[f"{stage}_{unit}"] = out["task"].map(part[unit]) if not part.empty else np.nan
    return out


def task_table(results: Results, selection: Selection | None = None) -> pd.DataFrame:
    """One row per task: the reported configuration's scores, where they came from, budget.

    The reported configuration is the confirm stage's (fresh seeds) when present, otherwise
    the best search trial, whose scores are optimistic: it was chosen on the same seeds.
    A task with trials but no score yet keeps its row, with NaN scores.
    """
    selection = selection or Selection()
    per_trial = trial_scores(results, selection)
    budget = tuning_budget(per_trial)
    out = []
    for task, group in per_trial.groupby("task", sort=False):
        confirm = group[group["stage"] == "confirm"]
        use_confirm = selection.prefer_confirm and not confirm.empty
        searched = _pick_trial(group[group["stage"] != "confirm"])
        chosen = _confirm_of(confirm, searched) if use_confirm else searched
        source = "confirm" if use_confirm else "search"
        if chosen is not None and chosen.get("stage") == "single":
            source = "single"  # a `python -m dql train` run, chosen by nobody
        entry = {"task": task, "domain": group["domain"].iloc[0], "source": source}
        entry["trials"] = len(group)
        search_last = group.loc[group["stage"] == "search", "last_mean"].dropna()
        # What the search chose among: the worst searched configuration's last mean score.
        entry["worst_search_last"] = search_last.min() if len(search_last) else np.nan
        if chosen is not None:
            entry.update(chosen.drop(labels=["task", "domain"]).to_dict())
        out.append(entry)
    table = pd.DataFrame(out)
    if table.empty:
        return table
    for column in [f"{m}_{s}" for m in (*METRICS, "best_of_mean") for s in ("mean", "spread")]:
        if column not in table:
            table[column] = np.nan
    for column in ("experiment", "trial_id", "status", "num_seeds"):
        if column not in table:
            table[column] = None
    table = table.merge(budget, left_on="task", right_index=True, how="left")
    table = table.merge(_cost_columns(per_trial), on="task", how="left")
    keys = [task_sort_key(t, d) for t, d in zip(table["task"], table["domain"], strict=True)]
    order = sorted(range(len(table)), key=keys.__getitem__)
    return table.iloc[order].reset_index(drop=True)


def domain_averages(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Mean of each column over a domain's tasks; NaN when any of its tasks lacks the value
    (an average over a subset would not be comparable with the paper's)."""
    rows = []
    for domain, group in table.groupby("domain", sort=False):
        values = group[columns].astype(float)
        averaged = values.mean().where(values.notna().all())
        rows.append({"domain": domain, "tasks": len(group), **averaged.to_dict()})
    return pd.DataFrame(rows)


def run_scores(results: Results, metric: str = "last", selection: Selection | None = None):
    """Per task, the reported configuration's per-seed scores (for IQM, profiles, ...)."""
    selection = selection or Selection()
    table = task_table(results, selection)
    per_seed = seed_scores(results.rows, selection.top_k)
    out: dict[str, np.ndarray] = {}
    for _, row in table.dropna(subset=["trial_id"]).iterrows():
        same = per_seed["experiment"] == row["experiment"]
        mine = per_seed[same & (per_seed["trial_id"] == row["trial_id"])]
        if not mine.empty:
            out[row["task"]] = mine[metric].to_numpy(float)
    return out
