"""The tuning-budget view (Unifloral, Jackson et al. 2025): what a task's search trials are
worth when the configuration must be chosen with n online evaluation episodes.

Rows give per-seed scores, each the mean of ``eval_episodes`` episodes, not per-episode
returns; so one episode's noise is approximated from the seeds: a trial's per-seed last
scores minus their mean (times sqrt(k / (k - 1)) for k seeds, the residual-bootstrap
correction), scaled by sqrt(eval_episodes) (a mean of E episodes has 1/sqrt(E) of one
episode's spread), pooled over the task's search trials. The seeds' spread holds training
noise too, so this overstates episode noise: the curve is a pessimistic view of selection.
A task whose trials have one seed each has no spread to use and is drawn noise-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.aggregate import Selection, seed_scores, trial_scores, tuning_budget
from analysis.loading import Results
from analysis.statistics import BudgetCurve, tuning_budget_curve

MAX_SIMULATED = 2000  # UCB pulls simulated at most; a larger sweep budget reads the last one


@dataclass(frozen=True)
class TaskBudget:
    task: str
    curve: BudgetCurve
    trials: int  # scored search trials (the arms)
    best: float  # the best search trial's true score (the ceiling)
    sweep_episodes: int  # what the search spent (tuning_budget's episodes)
    eval_episodes: int  # episodes per seed behind each score
    noisy: bool  # False: no trial had two seeds, drawn noise-free


def budget_views(
    results: Results, selection: Selection | None = None, min_trials: int = 2
) -> list[TaskBudget]:
    """Per task with ``min_trials`` or more scored search trials, its budget curve."""
    selection = selection or Selection()
    trials = trial_scores(results, selection)
    search = trials[~trials["stage"].isin(["confirm", "single"])]
    search = search[np.isfinite(search["last_mean"].astype(float))]
    per_seed = seed_scores(results.rows, selection.top_k)
    spent = tuning_budget(trials)
    out = []
    for task, group in search.groupby("task", sort=False):
        if len(group) < min_trials:
            continue
        episodes = pd.to_numeric(group["eval_episodes"], errors="coerce").max()
        episodes = int(episodes) if np.isfinite(episodes) and episodes >= 1 else 1
        noise = episode_noise(per_seed.merge(group[["experiment", "trial_id"]]), episodes)
        sweep = int(spent.loc[task, "tuning_episodes"]) if task in spent.index else 0
        horizon = min(max(2 * sweep, 10 * len(group), episodes), MAX_SIMULATED)
        curve = tuning_budget_curve(group["last_mean"].astype(float), noise, horizon)
        out.append(
            TaskBudget(
                task,
                curve,
                len(group),
                float(group["last_mean"].max()),
                sweep,
                episodes,
                noise.size > 0,
            )
        )
    return out


def episode_noise(per_seed: pd.DataFrame, eval_episodes: int) -> np.ndarray:
    """Pooled one-episode deviations (see the module docstring)."""
    parts = []
    for _, group in per_seed.groupby(["experiment", "trial_id"]):
        last = group["last"].to_numpy(float)
        last = last[np.isfinite(last)]
        if last.size >= 2:
            residual = (last - last.mean()) * np.sqrt(last.size / (last.size - 1))
            parts.append(residual * np.sqrt(max(eval_episodes, 1)))
    return np.concatenate(parts) if parts else np.array([])
