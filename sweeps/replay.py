"""Searches replayed on a table of measured learning curves: what each search would report, and
what it would have cost.

A table holds, for every point of a grid over (eta, T, actor_lr), the per-epoch scores of
real training runs: some "search" seeds, which a search observes, and fresh "confirm" seeds,
on which the configuration a search reports is re-measured. Replaying a search on it costs
no training, so a search can be repeated over many search seeds.

A replayed search is the sweep's own machinery on a simulated clock: an Optuna study (asked
and told as ``sweeps.searcher`` does it, with ``tell_result`` and ``studies.best_params``),
the sweep's per-task ASHA (``sweeps.scheduler.task_asha``, Ray Tune's ASHAScheduler) deciding
after every evaluation, and ``workers`` trials running at once, each epoch taking the CPU
seconds it took when the table was measured. A trial observes one of the search seeds
(chosen per configuration by the search seed, the same for every method), so searches see
one training run's noise; a stopped trial pays only the epochs it ran. The studies sample
each value as a position on its grid axis (``Table.space``), so that every grid point is
as likely as any other at the start.
"""

from __future__ import annotations

import heapq
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from sweeps.plan import METRIC

SEARCHED = ("eta", "T", "actor_lr")
METHODS = ("grid", "random", "tpe", "tpe+asha")


@dataclass(frozen=True)
class Curve:
    """One grid point: per-seed scores after each epoch, and each epoch's CPU-seconds per seed."""

    params: dict[str, float]
    search: np.ndarray  # (search seeds, epochs ran); NaN from the epoch it diverged on
    confirm: np.ndarray  # (confirm seeds, epochs ran)
    cpu_s: np.ndarray  # (epochs ran,): CPU-seconds of one seed's epoch, evaluation included

    @property
    def epochs(self) -> int:
        return int(self.cpu_s.size)

    def confirm_score(self, budget: int) -> float:
        """Mean over the confirm seeds at the last epoch (NaN if it diverged before then)."""
        if self.epochs < budget:
            return math.nan
        return float(np.mean(self.confirm[:, budget - 1]))


@dataclass
class Table:
    task: str
    epochs: int  # the full budget of a trial, in epochs (one evaluation each)
    grid: dict[str, list[float]]  # name -> grid values, ascending
    curves: list[Curve]
    info: dict[str, Any] = field(default_factory=dict)  # how it was measured

    def space(self) -> dict[str, Any]:
        """What the studies sample: each searched value as a position on its grid axis, one
        unit per grid point, so that every point owns an equal share (the grids of eta and
        lr are log-spaced: this is the sweep's log-uniform range cut into equal cells) and
        TPE still sees the order of the values."""
        import optuna.distributions as d

        return {name: d.FloatDistribution(-0.5, len(v) - 0.5) for name, v in self.grid.items()}

    def point(self, index: int) -> dict[str, float]:
        """Curve ``index``'s place in ``space()``."""
        params = self.curves[index].params
        return {name: float(v.index(params[name])) for name, v in self.grid.items()}

    def snap(self, position: dict[str, float]) -> int:
        """The curve of the grid point a position in ``space()`` falls on."""
        point = tuple(
            self.grid[name][min(len(self.grid[name]) - 1, max(0, math.floor(position[name] + 0.5)))]
            for name in SEARCHED
        )
        return self._index[point]

    @property
    def _index(self) -> dict[tuple, int]:
        return {tuple(c.params[n] for n in SEARCHED): i for i, c in enumerate(self.curves)}

    def best_confirm(self) -> float:
        """The best any search could report: the highest confirm score in the table."""
        return float(np.nanmax([c.confirm_score(self.epochs) for c in self.curves]))

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "epochs": self.epochs,
            "grid": self.grid,
            "info": self.info,
            "curves": [
                {
                    "params": c.params,
                    "search": _nan_to_none(c.search),
                    "confirm": _nan_to_none(c.confirm),
                    "cpu_s": c.cpu_s.tolist(),
                }
                for c in self.curves
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Table:
        curves = [
            Curve(
                c["params"],
                np.array(c["search"], dtype=float),
                np.array(c["confirm"], dtype=float),
                np.array(c["cpu_s"], dtype=float),
            )
            for c in data["curves"]
        ]
        return cls(data["task"], data["epochs"], data["grid"], curves, data.get("info", {}))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json()) + "\n")

    @classmethod
    def load(cls, path: Path) -> Table:
        return cls.from_json(json.loads(path.read_text()))


def _nan_to_none(values: np.ndarray) -> list:
    return [[None if math.isnan(v) else v for v in row] for row in values.tolist()]


@dataclass
class Search:
    """What one replayed search did: the incumbent after each finished trial, and the end."""

    method: str
    seed: int
    trace: list[tuple[int, float, float]]  # (trial-epochs, CPU-s, incumbent confirm score)
    trial_epochs: int = 0
    cpu_s: float = 0.0
    trials: int = 0
    stopped: int = 0  # trials ASHA stopped early
    chosen: dict[str, float] | None = None

    @property
    def score(self) -> float:
        return self.trace[-1][2] if self.trace else math.nan


def replay(
    table: Table,
    method: str,
    seed: int,
    num_samples: int = 16,
    workers: int = 4,
    grace_period: int = 2,
    reduction_factor: float = 3.0,
) -> Search:
    """One search on ``table``: ``grid`` (every point, in an order shuffled by ``seed``),
    ``random`` (``num_samples`` distinct grid points), ``tpe`` (``num_samples`` trials of
    Optuna's TPE, seeded as the sweep seeds it, over ``table.space()``) or ``tpe+asha``."""
    import optuna
    from ray.tune.schedulers import TrialScheduler

    from sweeps import studies
    from sweeps.scheduler import task_asha
    from sweeps.searcher import tell_result

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; one of {', '.join(METHODS)}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(seed)
    n = len(table.curves)
    if method.startswith("tpe"):
        sampler = optuna.samplers.TPESampler(seed=seed)  # as studies.StudyStore seeds a study
    else:
        sampler = optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    if method == "grid":
        planned = n
        order = rng.permutation(n)
    elif method == "random":
        planned = min(num_samples, n)
        order = rng.choice(n, size=planned, replace=False)
    else:
        planned, order = num_samples, []
    for i in order:
        study.enqueue_trial(table.point(i))
    # Which search seed a trial of each configuration observes: fixed per (search seed,
    # config), the same for every method, so that methods are compared on the same noise.
    observed = np.random.default_rng([seed, 1]).integers(0, table.curves[0].search.shape[0], n)
    asha = task_asha(table.epochs, grace_period, reduction_factor) if "asha" in method else None
    space = table.space()
    result = Search(method, seed, trace=[])
    clock: list[tuple[float, int, dict[str, Any]]] = []  # (time an epoch ends, tiebreak, trial)

    def start(now: float) -> None:
        if result.trials >= planned:
            return
        asked = study.ask(space)
        index = table.snap(asked.params)
        trial = {"number": asked.number, "index": index, "epoch": 0, "id": f"t{asked.number}"}
        trial["tune"] = SimpleNamespace(trial_id=trial["id"], config={"task": table.task})
        if asha is not None:
            asha.on_trial_add(None, trial["tune"])
        result.trials += 1
        heapq.heappush(clock, (now + table.curves[index].cpu_s[0], asked.number, trial))

    for _ in range(workers):
        start(0.0)
    while clock:
        now, _, trial = heapq.heappop(clock)
        curve = table.curves[trial["index"]]
        epoch = trial["epoch"] = trial["epoch"] + 1
        result.trial_epochs += 1
        result.cpu_s += float(curve.cpu_s[epoch - 1])
        score = float(curve.search[observed[trial["index"]], epoch - 1])
        diverged = math.isnan(score)
        status = "diverged" if diverged else "finished" if epoch == table.epochs else "running"
        row = {METRIC: score, "training_iteration": epoch, "epoch": epoch, "status": status}
        decision = asha.on_trial_result(None, trial["tune"], row) if asha is not None else None
        stop = decision == TrialScheduler.STOP and status == "running"
        if status == "running" and not stop:
            heapq.heappush(clock, (now + curve.cpu_s[epoch], trial["number"], trial))
            continue
        if asha is not None:
            asha.on_trial_complete(None, trial["tune"], row)
        result.stopped += stop
        tell_result(study, trial["number"], trial["id"], row, error=False)
        best = studies.best_params(study)
        if best is not None:
            chosen = table.curves[table.snap(best)]
            result.chosen = chosen.params
            point = chosen.confirm_score(table.epochs)
        else:
            point = math.nan
        result.trace.append((result.trial_epochs, result.cpu_s, point))
        start(now)
    return result


def grid_compute(table: Table) -> tuple[int, float]:
    """Trial-epochs and CPU-seconds of running every grid point to its end (or divergence)."""
    return (
        sum(c.epochs for c in table.curves),
        float(sum(c.cpu_s.sum() for c in table.curves)),
    )
