"""Aggregate metrics with honest uncertainty (Agarwal et al., 2021, "Deep RL at the Edge of
the Statistical Precipice"), written on numpy/scipy.

rliable implements these, but pulls ``arch`` (with statsmodels), seaborn and absl and ships
only a source archive; the few functions below are all we need. ``task_scores`` everywhere is
a mapping task -> 1-D array of per-run (per-seed) scores; tasks may have different run counts.
Pooled metrics (IQM, optimality gap) treat every (task, run) score alike, as rliable does on
its runs x tasks matrix; with equal run counts the two agree exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from analysis.wording import fixed

TaskScores = Mapping[str, Sequence[float] | np.ndarray]


@dataclass(frozen=True)
class Interval:
    """A point estimate and its bootstrap confidence interval."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{fixed(self.value)} [{fixed(self.low)}, {fixed(self.high)}]"


def iqm(scores: Sequence[float] | np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% (25% trimmed from each end)."""
    return float(stats.trim_mean(np.asarray(scores, dtype=float).ravel(), 0.25))


def optimality_gap(scores: Sequence[float] | np.ndarray, gamma: float = 100.0) -> float:
    """Mean shortfall below ``gamma`` (100 = expert on D4RL's normalized scale)."""
    return float(np.mean(np.maximum(gamma - np.asarray(scores, dtype=float).ravel(), 0.0)))


def pooled(task_scores: TaskScores) -> np.ndarray:
    """Every finite (task, run) score in one array."""
    arrays = [np.asarray(v, dtype=float).ravel() for v in task_scores.values()]
    values = np.concatenate(arrays) if arrays else np.array([])
    return values[np.isfinite(values)]


def _clean(task_scores: TaskScores) -> dict[str, np.ndarray]:
    out = {}
    for task, values in task_scores.items():
        array = np.asarray(values, dtype=float).ravel()
        array = array[np.isfinite(array)]
        if array.size:
            out[task] = array
    return out


def stratified_bootstrap(
    task_scores: TaskScores,
    metric: Callable[[np.ndarray], float],
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile CI of ``metric(pooled scores)``, resampling runs within each task.

    Tasks are the strata: each bootstrap sample redraws every task's runs with replacement and
    keeps its run count, so no task can drop out of a resample.
    """
    clean = _clean(task_scores)
    if not clean:
        return Interval(float("nan"), float("nan"), float("nan"))
    point = metric(np.concatenate(list(clean.values())))
    rng = np.random.default_rng(seed)
    samples = np.empty(reps)
    for i in range(reps):
        draws = [v[rng.integers(0, v.size, v.size)] for v in clean.values()]
        samples[i] = metric(np.concatenate(draws))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return Interval(float(point), float(low), float(high))


def iqm_ci(task_scores: TaskScores, **kwargs) -> Interval:
    return stratified_bootstrap(task_scores, iqm, **kwargs)


def optimality_gap_ci(task_scores: TaskScores, gamma: float = 100.0, **kwargs) -> Interval:
    return stratified_bootstrap(task_scores, lambda s: optimality_gap(s, gamma), **kwargs)


def probability_of_improvement(x: TaskScores, y: TaskScores) -> float:
    """P(X > Y): per shared task, the chance a run of X beats a run of Y (ties count half),
    averaged over tasks (the Mann-Whitney U statistic over m n, as in rliable)."""
    x, y = _clean(x), _clean(y)
    tasks = [t for t in x if t in y]
    if not tasks:
        return float("nan")
    per_task = []
    for task in tasks:
        a, b = x[task][:, None], y[task][None, :]
        per_task.append(np.mean((a > b) + 0.5 * (a == b)))
    return float(np.mean(per_task))


def probability_of_improvement_ci(
    x: TaskScores, y: TaskScores, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """``probability_of_improvement`` with a stratified bootstrap over both sets' runs."""
    x, y = _clean(x), _clean(y)
    tasks = [t for t in x if t in y]
    if not tasks:
        return Interval(float("nan"), float("nan"), float("nan"))
    point = probability_of_improvement(x, y)
    rng = np.random.default_rng(seed)
    samples = np.empty(reps)
    for i in range(reps):
        xs = {t: x[t][rng.integers(0, x[t].size, x[t].size)] for t in tasks}
        ys = {t: y[t][rng.integers(0, y[t].size, y[t].size)] for t in tasks}
        samples[i] = probability_of_improvement(xs, ys)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return Interval(point, float(low), float(high))


def performance_profile(task_scores: TaskScores, taus: Sequence[float] | np.ndarray) -> np.ndarray:
    """Fraction of runs scoring above each tau, averaged over tasks (each task weighs 1)."""
    clean = _clean(task_scores)
    taus = np.asarray(taus, dtype=float)
    if not clean:
        return np.full(taus.shape, np.nan)
    return np.mean([(v[:, None] > taus[None, :]).mean(axis=0) for v in clean.values()], axis=0)


def performance_profile_band(
    task_scores: TaskScores,
    taus: Sequence[float] | np.ndarray,
    reps: int = 500,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The profile and its pointwise stratified-bootstrap band (low, high)."""
    clean = _clean(task_scores)
    profile = performance_profile(clean, taus)
    if not clean:
        return profile, profile, profile
    rng = np.random.default_rng(seed)
    samples = np.stack(
        [
            performance_profile(
                {t: v[rng.integers(0, v.size, v.size)] for t, v in clean.items()}, taus
            )
            for _ in range(reps)
        ]
    )
    alpha = (1 - confidence) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha], axis=0)
    return profile, low, high


def mean_ci_halfwidth(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> float:
    """Half-width of Student's t interval of a mean (learning-curve bands over few seeds)."""
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    if array.size < 2:
        return float("nan")
    sem = array.std(ddof=1) / np.sqrt(array.size)
    return float(stats.t.ppf(0.5 + confidence / 2, array.size - 1) * sem)


@dataclass(frozen=True)
class BudgetCurve:
    """Expected true score of the configuration chosen after n evaluation episodes."""

    episodes: np.ndarray  # n = 1, 2, ..., the budget spent choosing
    mean: np.ndarray  # mean over bootstrap draws of the chosen trial's true score
    low: np.ndarray  # lower edge of the spread band (a quantile over draws)
    high: np.ndarray

    def at(self, episodes: int) -> float:
        """The expected score at ``episodes`` (the last simulated budget beyond the curve)."""
        return float(self.mean[min(max(int(episodes), 1), len(self.mean)) - 1])


def tuning_budget_curve(
    true_scores: Sequence[float] | np.ndarray,
    episode_noise: Sequence[float] | np.ndarray,
    max_episodes: int,
    reps: int = 500,
    resample_trials: bool = True,
    band: float = 0.5,
    seed: int = 0,
) -> BudgetCurve:
    """Unifloral's tuning-budget view (Jackson et al., 2025): online policy selection as a
    bandit whose arms are trained configurations and whose pulls are evaluation episodes.

    Each bootstrap draw resamples the trials (``len(true_scores)`` of them, with
    replacement; ``resample_trials=False`` keeps every trial once, in a random order), then
    runs UCB1 for ``max_episodes`` pulls: every arm once, then the arm with the highest
    ``mean + sigma * sqrt(2 ln t / pulls)``. A pull of arm i returns ``true_scores[i]``
    plus one value drawn (with replacement) from ``episode_noise``, the zero-mean deviations
    of one episode's score (sigma is their std; none: noise-free, greedy). After each pull
    the chosen configuration is the arm with the best empirical mean, and the draw records
    that arm's *true* score. ``mean`` averages over draws; ``low``/``high`` hold the middle
    ``band`` of the draws (the spread of what one tuning run would get, not a CI of the
    mean). Without noise and without resampling, every n >= number of trials picks the best.
    """
    mu = np.asarray(true_scores, dtype=float)
    mu = mu[np.isfinite(mu)]
    noise = np.asarray(episode_noise, dtype=float)
    noise = noise[np.isfinite(noise)]
    n = max(int(max_episodes), 1)
    if mu.size == 0:
        empty = np.full(n, np.nan)
        return BudgetCurve(np.arange(1, n + 1), empty, empty, empty)
    rng = np.random.default_rng(seed)
    k = mu.size
    if resample_trials:
        arms = mu[rng.integers(0, k, (reps, k))]
    else:
        arms = rng.permuted(np.tile(mu, (reps, 1)), axis=1)
    sigma = float(noise.std()) if noise.size else 0.0
    rows = np.arange(reps)
    pulls = np.zeros((reps, k))
    sums = np.zeros((reps, k))
    chosen = np.empty((n, reps))
    for t in range(n):
        if t < k:
            arm = np.full(reps, t)
        else:
            bonus = sigma * np.sqrt(2 * np.log(t) / pulls)
            arm = np.argmax(sums / pulls + bonus, axis=1)
        episode = noise[rng.integers(0, noise.size, reps)] if noise.size else 0.0
        sums[rows, arm] += arms[rows, arm] + episode
        pulls[rows, arm] += 1
        estimate = np.where(pulls > 0, sums / np.maximum(pulls, 1), -np.inf)
        chosen[t] = arms[rows, np.argmax(estimate, axis=1)]
    low, high = np.quantile(chosen, [(1 - band) / 2, (1 + band) / 2], axis=1)
    return BudgetCurve(np.arange(1, n + 1), chosen.mean(axis=1), low, high)
