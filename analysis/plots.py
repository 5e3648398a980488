"""Figures (PNG and PDF, Agg backend): learning curves, sweep diagnostics, parameter
importance, performance profiles. Each function takes loaded results and an output folder and
returns the PNG path it wrote (the PDF sits next to it)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.aggregate import (
    METRIC_LABELS,
    Selection,
    run_scores,
    scored,
    task_table,
    trial_scores,
)
from analysis.loading import Results
from analysis.statistics import mean_ci_halfwidth, performance_profile_band

SEARCHED = ("eta", "T", "actor_lr")
LOG_SCALE = {"eta", "actor_lr"}
STATUS_MARKERS = {"finished": "o", "stopped_early": "v", "diverged": "x", "running": "s"}


def _grid(count: int, width: float = 4.0, height: float = 3.0):
    cols = min(3, max(1, count))
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:count])


def _save(fig, out: Path, name: str, layout: bool = True) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    if layout:
        fig.tight_layout(rect=(0, 0, 1, 0.96))
    png = out / f"{name}.png"
    fig.savefig(png, dpi=120)
    fig.savefig(out / f"{name}.pdf")
    plt.close(fig)
    return png


def learning_curves(results: Results, out: Path, selection: Selection | None = None) -> Path:
    """Per task: the reported configuration's mean score over seeds against gradient steps,
    with a 95% t-interval band over seeds; every search trial's mean curve in grey behind."""
    table = task_table(results, selection)
    rows = scored(results.rows)
    tasks = list(table["task"]) if not table.empty else []
    fig, axes = _grid(max(1, len(tasks)))
    for ax, (_, task) in zip(axes, table.iterrows(), strict=False):
        mine = rows[rows["task"] == task["task"]]
        for _, curve in mine.groupby(["experiment", "trial_id"]):
            means = curve.groupby("gradient_steps")["normalized_score"].mean()
            ax.plot(means.index, means.values, color="0.75", lw=0.8, zorder=1)
        chosen = _of_trial(mine, task)
        if not chosen.empty:
            by_step = chosen.groupby("gradient_steps")["normalized_score"]
            mean = by_step.mean()
            half = by_step.apply(lambda s: mean_ci_halfwidth(s.to_numpy())).fillna(0)
            label = f"{task['source']} ({int(task['seeds_scored'])} seeds)"
            ax.plot(mean.index, mean.values, color="C0", lw=2, label=label, zorder=3)
            ax.fill_between(mean.index, mean - half, mean + half, color="C0", alpha=0.25, zorder=2)
            ax.legend(loc="lower right", fontsize=8)
        ax.set_title(task["task"], fontsize=10)
        ax.set_xlabel("gradient steps")
        ax.set_ylabel("normalized score")
        ax.grid(alpha=0.3)
    if not tasks:
        axes[0].text(0.5, 0.5, "no evaluations yet", ha="center", transform=axes[0].transAxes)
    fig.suptitle("Learning curves: reported configuration (mean, 95% CI over seeds); grey: "
                 "search trials", fontsize=10)  # fmt: skip
    return _save(fig, Path(out), "learning_curves")


def _of_trial(frame: pd.DataFrame, trial: pd.Series) -> pd.DataFrame:
    """The part of ``frame`` that belongs to ``trial`` (experiment and trial id)."""
    same = (frame["experiment"] == trial.get("experiment")) & (
        frame["trial_id"] == trial.get("trial_id")
    )
    return frame[same]


def _trial_points(results: Results, selection: Selection | None) -> pd.DataFrame:
    trials = trial_scores(results, selection)
    return trials[(trials["stage"] != "confirm") & np.isfinite(trials["last_mean"].astype(float))]


def sweep_diagnostics(results: Results, out: Path, selection: Selection | None = None) -> Path:
    """Each search trial's last mean score against each searched hyperparameter; colour =
    task, marker = how the trial ended (o finished, v stopped early, x diverged, s running)."""
    from matplotlib.lines import Line2D

    points = _trial_points(results, selection)
    params = [p for p in SEARCHED if p in points]
    fig, axes = _grid(max(1, len(params)), height=3.6)
    tasks = list(dict.fromkeys(points["task"]))
    for ax, param in zip(axes, params, strict=False):
        for color, task in enumerate(tasks):
            group = points[points["task"] == task]
            for status, part in group.groupby("status"):
                ax.scatter(
                    part[param].astype(float),
                    part["last_mean"].astype(float),
                    color=f"C{color % 10}",
                    marker=STATUS_MARKERS.get(status, "o"),
                    alpha=0.8,
                )
        if param in LOG_SCALE:
            ax.set_xscale("log")
            # 1-2-5 ticks with plain labels: a narrow log range still shows values
            ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.2g}"))
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.tick_params(axis="x", labelrotation=40)
        ax.set_xlabel(param)
        ax.set_ylabel("last score (mean over seeds)")
        ax.grid(alpha=0.3)
    handles = [
        Line2D([], [], ls="", marker="o", color=f"C{i % 10}", label=task)
        for i, task in enumerate(tasks)
    ]
    handles += [
        Line2D([], [], ls="", marker=marker, color="0.3", label=status.replace("_", " "))
        for status, marker in STATUS_MARKERS.items()
        if status in set(points["status"])
    ]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(5, len(handles)), fontsize=8)
    rows = math.ceil(len(handles) / 5) if handles else 0
    fig.suptitle("Sweep diagnostics: search trials", fontsize=10)
    fig.tight_layout(rect=(0, 0.06 * rows, 1, 0.95))
    return _save(fig, Path(out), "sweep_diagnostics", layout=False)


def importance(points: pd.DataFrame, params: list[str]) -> pd.Series:
    """Omega squared of the last score on quantile bins of each hyperparameter: the share of
    the score's variance explained by that hyperparameter alone (a first-order, fANOVA-like
    share), corrected for the share that bins of pure noise would explain; clipped at 0.

    Bins: 2 for fewer than 15 trials, 3 below 20, then 4, so each bin holds several trials.
    """
    score = points["last_mean"].astype(float).to_numpy()
    n = score.size
    total = float(((score - score.mean()) ** 2).sum())
    bins = 2 if n < 15 else 3 if n < 20 else 4
    shares = {}
    for param in params:
        values = points[param].astype(float)
        k = min(bins, values.nunique())
        if total == 0 or k < 2 or n <= k:
            shares[param] = 0.0
            continue
        groups = pd.qcut(values.rank(method="first"), k, labels=False).to_numpy()
        between = sum(
            (groups == g).sum() * (score[groups == g].mean() - score.mean()) ** 2 for g in range(k)
        )
        within = (total - between) / (n - k)
        shares[param] = max(0.0, float((between - (k - 1) * within) / (total + within)))
    return pd.Series(shares)


def parameter_importance(results: Results, out: Path, selection: Selection | None = None) -> Path:
    """Bars of ``importance`` per task (tasks with at least 4 scored search trials)."""
    points = _trial_points(results, selection)
    params = [p for p in SEARCHED if p in points]
    tasks = [t for t, g in points.groupby("task") if len(g) >= 4]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    width = 0.8 / max(1, len(tasks))
    for i, task in enumerate(tasks):
        shares = importance(points[points["task"] == task], params)
        x = np.arange(len(params)) + (i - (len(tasks) - 1) / 2) * width
        ax.bar(x, shares.values, width, label=task, color=f"C{i % 10}")
    ax.set_xticks(np.arange(len(params)), params)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of score variance (omega^2)")
    ax.grid(axis="y", alpha=0.3)
    if tasks:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    else:
        ax.text(0.5, 0.5, "fewer than 4 scored trials per task", ha="center",
                transform=ax.transAxes)  # fmt: skip
    counts = sorted(len(g) for t, g in points.groupby("task") if t in tasks)
    n = f"{counts[0]}-{counts[-1]}" if counts and counts[0] != counts[-1] else str(counts[:1])
    ax.set_title("Parameter importance: share of the last score's variance explained by\n"
                 "quantile bins of each parameter alone (omega^2, noise-corrected; "
                 f"{n.strip('[]')} search trials per task)", fontsize=9)  # fmt: skip
    return _save(fig, Path(out), "parameter_importance")


def performance_profiles(
    results: Results,
    out: Path,
    selection: Selection | None = None,
    metrics: tuple[str, ...] = ("last", "best", "offline"),
) -> Path:
    """Fraction of (task, seed) runs scoring above tau, with 95% stratified-bootstrap bands."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    top = 0.0
    curves = {m: run_scores(results, m, selection) for m in metrics}
    for scores in curves.values():
        for values in scores.values():
            top = max(top, float(np.nanmax(values)) if len(values) else 0.0)
    taus = np.linspace(0, max(100.0, top * 1.05), 201)
    for color, (metric, scores) in enumerate(curves.items()):
        if not scores:
            continue
        profile, low, high = performance_profile_band(scores, taus)
        ax.plot(taus, profile, color=f"C{color}", label=METRIC_LABELS[metric])
        ax.fill_between(taus, low, high, color=f"C{color}", alpha=0.2)
    ax.set_xlabel("normalized score tau")
    ax.set_ylabel("fraction of runs with score > tau")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Performance profiles of the reported configurations", fontsize=10)
    return _save(fig, Path(out), "performance_profile")


def all_plots(results: Results, out: Path, selection: Selection | None = None) -> list[Path]:
    out = Path(out)
    return [
        learning_curves(results, out, selection),
        sweep_diagnostics(results, out, selection),
        parameter_importance(results, out, selection),
        performance_profiles(results, out, selection),
    ]
