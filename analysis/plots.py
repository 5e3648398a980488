"""Figures (PNG and PDF, Agg backend): learning curves, sweep diagnostics, parameter
importance, performance profiles. Each function takes loaded results and an output folder and
returns the PNG path it wrote (the PDF sits next to it), or raises ``NothingToShow`` (saying
why) instead of drawing an empty figure."""

from __future__ import annotations

import math
import shutil
import tempfile
import textwrap
from collections.abc import Callable
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
from analysis.references import LOCAL
from analysis.statistics import mean_ci_halfwidth, performance_profile_band
from analysis.wording import count, span

SEARCHED = ("eta", "T", "actor_lr")
LOG_SCALE = {"eta", "actor_lr"}
STATUS_MARKERS = {"finished": "o", "stopped_early": "v", "diverged": "x", "running": "s"}
MIN_IMPORTANCE_TRIALS = 4  # scored search trials a task needs for parameter_importance


class NothingToShow(ValueError):
    """A figure that would be empty; the message says why (shown as the figure's skip line)."""


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
    with a 95% t-interval band over seeds when it has two or more; every search trial's mean
    curve in grey behind. The legend sits below the panels, where it covers no curve."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    table = task_table(results, selection)
    rows = scored(results.rows)
    if table.empty or rows.empty:
        raise NothingToShow("no evaluation with a finite score yet")
    fig, axes = _grid(len(table), height=3.6)
    banded = False
    for ax, (_, task) in zip(axes, table.iterrows(), strict=False):
        mine = rows[rows["task"] == task["task"]]
        for _, curve in mine.groupby(["experiment", "trial_id"]):
            means = curve.groupby("gradient_steps")["normalized_score"].mean()
            ax.plot(means.index, means.values, color="0.75", lw=0.8, zorder=1)
        chosen = _of_trial(mine, task)
        title = task["task"]
        if not chosen.empty:
            by_step = chosen.groupby("gradient_steps")["normalized_score"]
            mean = by_step.mean()
            ax.plot(mean.index, mean.values, color="C0", lw=2, zorder=3)
            seeds = int(task["seeds_scored"])
            if seeds >= 2:
                half = by_step.apply(lambda s: mean_ci_halfwidth(s.to_numpy())).fillna(0)
                ax.fill_between(
                    mean.index, mean - half, mean + half, color="C0", alpha=0.25, zorder=2
                )
                banded = True
            title = (
                f"{title}\n{_SOURCES.get(task['source'], task['source'])}, {count(seeds, 'seed')}"
            )
        ax.set_title(title, fontsize=9)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_steps))
        ax.set_xlabel("gradient steps")
        local = task.get("domain") == LOCAL
        ax.set_ylabel("normalized score (local refs.)" if local else "normalized score")
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color="C0", lw=2, label="reported configuration: mean over seeds")]
    if banded:
        handles.append(Patch(color="C0", alpha=0.25, label="95% t-interval over seeds"))
    if len(rows.groupby(["experiment", "trial_id"])) > len(table):
        handles.append(Line2D([], [], color="0.75", lw=0.8, label="search trials (mean)"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8)
    what = "mean over seeds" + (", 95% t-interval band where 2 or more seeds" if banded else "")
    title = f"Learning curves of the reported configuration ({what})"
    fig.suptitle(textwrap.fill(title, 48 * min(3, len(table))), fontsize=10)
    fig.tight_layout(rect=(0, 0.08 / math.ceil(len(table) / 3), 1, 1))
    return _save(fig, Path(out), "learning_curves", layout=False)


def _steps(value: float, _position=None) -> str:
    """Step counts as 250k, 1.5M: a tick label of seven digits collides with its neighbour."""
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


_SOURCES = {
    "confirm": "confirm rerun",
    "search": "best search trial",
    "single": "single run",
}


def _of_trial(frame: pd.DataFrame, trial: pd.Series) -> pd.DataFrame:
    """The part of ``frame`` that belongs to ``trial`` (experiment and trial id)."""
    same = (frame["experiment"] == trial.get("experiment")) & (
        frame["trial_id"] == trial.get("trial_id")
    )
    return frame[same]


def _trial_points(results: Results, selection: Selection | None) -> pd.DataFrame:
    """Scored search trials (neither confirm reruns nor `python -m dql train` runs)."""
    trials = trial_scores(results, selection)
    search = ~trials["stage"].isin(["confirm", "single"])
    return trials[search & np.isfinite(trials["last_mean"].astype(float))]


def _log_ticks(values: np.ndarray, most: int = 5) -> list[float]:
    """Ticks for a log axis over ``values``: the coarsest of 1-10, 1-3-10 and 1-2-5 steps
    that puts 3 to ``most`` ticks inside the data's range, else 4 evenly spaced (in log)
    round numbers, so that a narrow range such as eta 1.2-1.9 still shows several labels."""
    values = values[np.isfinite(values) & (values > 0)]
    low, high = float(values.min()), float(values.max())
    if high / low < 1.05:
        return [float(f"{low:.2g}")]
    for subs in ((1.0,), (1.0, 3.0), (1.0, 2.0, 5.0)):
        steps = matplotlib.ticker.LogLocator(subs=subs).tick_values(low, high)
        inside = [float(t) for t in steps if low / 1.1 <= t <= high * 1.1]
        if 3 <= len(inside) <= most:
            return inside
    return sorted({float(f"{t:.2g}") for t in np.geomspace(low, high, 4)})


def _short_number(value: float, _position=None) -> str:
    """Tick labels that stay short: 0.5, 2, 10, 3e-4 (never 0.0003)."""
    if value == 0 or 1e-2 <= abs(value) < 1e4:
        return f"{value:.2g}"
    exponent = math.floor(math.log10(abs(value)))
    return f"{value / 10**exponent:.2g}e{exponent}"


def sweep_diagnostics(results: Results, out: Path, selection: Selection | None = None) -> Path:
    """Each search trial's last mean score against each searched hyperparameter; colour =
    task, marker = how the trial ended (o finished, v stopped early, x diverged, s running)."""
    from matplotlib.lines import Line2D

    points = _trial_points(results, selection)
    params = [p for p in SEARCHED if p in points]
    if points.empty or not params:
        raise NothingToShow("no scored search trial (a single run or confirm reruns only)")
    fig, axes = _grid(len(params), height=3.6)
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
            values = points[param].astype(float).to_numpy()
            ax.set_xscale("log")
            ticks = _log_ticks(values)
            low, high = min(ticks[0], np.nanmin(values)), max(ticks[-1], np.nanmax(values))
            ax.set_xlim(low / 1.15, high * 1.15)
            ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_short_number))
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.tick_params(axis="x", labelrotation=30)
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
    sizes = points.groupby("task").size() if not points.empty else pd.Series(dtype=int)
    tasks = [t for t, n in sizes.items() if n >= MIN_IMPORTANCE_TRIALS]
    if not tasks or not params:
        found = ", ".join(f"{t} {n}" for t, n in sizes.items()) or "none"
        raise NothingToShow(
            f"no task has {MIN_IMPORTANCE_TRIALS} or more scored search trials (found: {found})"
        )
    fig, ax = plt.subplots(figsize=(7, 4.2))
    width = 0.8 / len(tasks)
    for i, task in enumerate(tasks):
        shares = importance(points[points["task"] == task], params)
        x = np.arange(len(params)) + (i - (len(tasks) - 1) / 2) * width
        ax.bar(x, shares.values, width, label=task, color=f"C{i % 10}")
    ax.set_xticks(np.arange(len(params)), params)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of score variance (omega^2)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    trials = span(sorted(int(sizes[t]) for t in tasks), "search trial")
    ax.set_title("Parameter importance: share of the last score's variance explained by\n"
                 "quantile bins of each parameter alone (omega^2, noise-corrected; "
                 f"{trials} per task)", fontsize=9)  # fmt: skip
    return _save(fig, Path(out), "parameter_importance")


def performance_profiles(
    results: Results,
    out: Path,
    selection: Selection | None = None,
    metrics: tuple[str, ...] = ("last", "best", "offline"),
) -> Path:
    """Fraction of (task, seed) runs scoring above tau, with 95% stratified-bootstrap bands;
    tau spans the scores themselves (a smoke run's scores near 1 are not squashed into the
    left edge of a 0-100 axis)."""
    curves = {m: run_scores(results, m, selection) for m in metrics}
    values = [np.asarray(v, float) for scores in curves.values() for v in scores.values()]
    values = np.concatenate(values) if values else np.array([])
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise NothingToShow("no reported configuration has a finite score yet")
    low, high = min(0.0, float(values.min())), float(values.max())
    margin = 0.05 * (high - low) or 1.0
    taus = np.linspace(low, high + margin, 201)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for color, (metric, scores) in enumerate(curves.items()):
        if not scores:
            continue
        profile, band_low, band_high = performance_profile_band(scores, taus)
        ax.plot(taus, profile, color=f"C{color}", label=METRIC_LABELS[metric])
        ax.fill_between(taus, band_low, band_high, color=f"C{color}", alpha=0.2)
    ax.set_xlim(taus[0], taus[-1])
    ax.set_xlabel("normalized score tau")
    ax.set_ylabel("fraction of runs with score > tau")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")  # profiles fall to the right: below them is empty
    ax.set_title("Performance profiles of the reported configurations", fontsize=10)
    return _save(fig, Path(out), "performance_profile")


def tuning_budget(results: Results, out: Path, selection: Selection | None = None) -> Path:
    """Per task: the expected true score of the search trial chosen by UCB over n evaluation
    episodes (bootstrap over trials and episodes; ``analysis.budget`` says how one episode's
    noise is approximated), its middle-50% band, and the sweep's own budget marked."""
    from analysis.budget import budget_views

    views = budget_views(results, selection)
    if not views:
        raise NothingToShow("no task has 2 or more scored search trials to choose between")
    fig, axes = _grid(len(views), width=4.6, height=3.4)
    for ax, view in zip(axes, views, strict=False):
        curve = view.curve
        ax.plot(curve.episodes, curve.mean, color="C0", lw=2, label="expected score")
        ax.fill_between(curve.episodes, curve.low, curve.high, color="C0", alpha=0.2,
                        label="middle 50% of draws")  # fmt: skip
        ax.axhline(view.best, color="0.4", ls=":", lw=1, label="best search trial")
        last = int(curve.episodes[-1])
        if 0 < view.sweep_episodes <= last:
            ax.axvline(view.sweep_episodes, color="C3", ls="--", lw=1,
                       label=f"sweep used {view.sweep_episodes}")  # fmt: skip
        elif view.sweep_episodes > last:  # past the simulated budget: an arrow at the edge
            ax.plot([last], [curve.mean[-1]], marker=">", color="C3", ls="none", clip_on=False,
                    label=f"sweep used {view.sweep_episodes} (past {last})")  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlim(1, curve.episodes[-1])
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_steps))
        noise = "" if view.noisy else ", noise-free (1 seed per trial)"
        ax.set_title(f"{view.task}\n{count(view.trials, 'search trial')}{noise}", fontsize=9)
        ax.set_xlabel("evaluation episodes spent choosing")
        ax.set_ylabel("normalized score of the choice")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    title = "Tuning budget (Unifloral): expected score of the trial UCB chooses after n episodes"
    fig.suptitle(textwrap.fill(title, 56 * min(3, len(views))), fontsize=10)
    note = (
        "Bootstrap over trials and episodes. One episode's noise = the seeds' spread x "
        "sqrt(eval episodes), which holds training noise too (pessimistic)."
    )
    fig.text(0.5, 0.01, textwrap.fill(note, 80 * min(3, len(views))), ha="center", fontsize=7)
    fig.tight_layout(rect=(0, 0.07 / math.ceil(len(views) / 3), 1, 0.97))
    return _save(fig, Path(out), "tuning_budget", layout=False)


PlotFunction = Callable[[Results, Path, Selection | None], Path]
FIGURES: dict[str, tuple[PlotFunction, str]] = {
    "learning_curves": (learning_curves, "score against gradient steps per task"),
    "sweep_diagnostics": (sweep_diagnostics, "last score against eta, T and lr per trial"),
    "parameter_importance": (parameter_importance, "share of score variance per parameter"),
    "performance_profile": (performance_profiles, "fraction of runs above each score"),
    "tuning_budget": (tuning_budget, "expected score of the choice against evaluation episodes"),
}


def all_plots(
    results: Results, out: Path, selection: Selection | None = None
) -> tuple[list[Path], dict[str, str]]:
    """Every figure of ``FIGURES`` into ``out``: the PNGs written, and the figures skipped
    with the reason. All are drawn first, in a scratch folder, so a figure that fails leaves
    ``out`` untouched rather than half-written."""
    out = Path(out)
    written, skipped = [], {}
    with tempfile.TemporaryDirectory(prefix="analysis-plots-") as scratch:
        for name, (draw, _) in FIGURES.items():
            try:
                written.append(draw(results, Path(scratch), selection))
            except NothingToShow as why:
                skipped[name] = str(why)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for png in written:
            for made in (png, png.with_suffix(".pdf")):
                shutil.move(str(made), out / made.name)
            paths.append(out / png.name)
    return paths, skipped
