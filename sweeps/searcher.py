"""One Tune searcher for every task of a sweep: each task asks its own Optuna study.

Scores of different tasks are not comparable, so no task's sampler ever sees another's
trials. The searcher decides which task gets the next free trial slot (the task with the
fewest running trials first), keeps the total and per-task limits, and starts a task's
confirm trial (the best configuration on fresh seeds) as soon as that task's search ends.

Resume: the Optuna storage is the record of what each study asked and learned; Tune's
snapshot of this searcher (``save``/``restore``) only says which Tune trial runs which
Optuna trial. A study trial that is still RUNNING but that no Tune trial owns after a
restore (asked for after Tune's last snapshot) is handed out again before anything new is
asked, so a killed driver neither loses nor adds trials; values the driver died before
drawing (``study.ask`` writes them one by one) are drawn then. A trial that ended after Tune's
last snapshot (its study, or for a confirm trial its ``studies.CONFIRM_TRIAL`` record, says
so) is not asked again: the driver lists it from its folder (``status.ended_after_snapshot``).
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass
from typing import Any

from ray.tune.search import Searcher

from sweeps import studies
from sweeps.plan import METRIC
from sweeps.studies import StudyStore


@dataclass(frozen=True)
class TaskSearch:
    """What the searcher needs to know about one task."""

    task: str
    study_name: str
    search_config: dict[str, Any]  # per-task constants of its search trials (seeds, data...)
    confirm_config: dict[str, Any]  # ... and of its confirm trial (fresh seeds)
    confirm: int  # fresh seeds of the confirm stage (0: none)


class TaskSearcher(Searcher):
    def __init__(
        self,
        tasks: list[TaskSearch],
        store: StudyStore,
        space: dict[str, Any],
        seed: int,
        max_concurrent: int | None = None,
        max_concurrent_per_task: int | None = None,
        round_name: str = "",
    ):
        super().__init__(metric=METRIC, mode="max")
        self._tasks = {t.task: t for t in tasks}
        self._store = store
        self._space = space
        self._seed = seed
        self.max_concurrent = max_concurrent
        self.max_concurrent_per_task = max_concurrent_per_task
        self._live: dict[str, dict[str, Any]] = {}  # Tune trial id -> task, stage, number
        self._studies: dict[str, Any] = {}  # opened lazily; never pickled
        self._orphans: dict[str, list[int]] | None = None
        self._round = round_name  # each asked trial carries it (studies.ROUND)

    # ------------------------------------------------------------ Tune's interface
    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # metric and mode are fixed; the space is the studies'

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self._orphans is None:
            self._orphans = self._find_orphans()
        if self.max_concurrent and len(self._live) >= self.max_concurrent:
            return None
        order = sorted(self._tasks, key=lambda task: self._running(task))
        for task in order:
            if self.max_concurrent_per_task and self._running(task) >= (
                self.max_concurrent_per_task
            ):
                continue
            config = self._next_trial(task, trial_id)
            if config is not None:
                return config
        if not self._live and all(self._task_done(task) for task in self._tasks):
            return Searcher.FINISHED
        return None

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        entry = self._live.pop(trial_id, None)
        if entry is None:
            return
        study = self._study(entry["task"])
        if entry["stage"] == "confirm":
            ended = {"params": entry["params"], "round": getattr(self, "_round", "")}
            study.set_user_attr(f"{studies.CONFIRM_TRIAL}{trial_id}", {**ended, "failed": error})
            return
        tell_result(study, entry["number"], trial_id, result, error)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump({"live": self._live}, file)
        self._store.sync()  # the journal's copy in remote storage keeps pace with Tune's

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self._live = pickle.load(file)["live"]
        self._orphans = None  # recomputed against the study at the next suggestion

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_studies": {}}

    # ------------------------------------------------------------ the routing
    def _study(self, task: str):
        if task not in self._studies:
            name = self._tasks[task].study_name
            self._studies[task] = self._store.study(name, self._seed, create=False)
        return self._studies[task]

    def _running(self, task: str) -> int:
        return sum(entry["task"] == task for entry in self._live.values())

    def _find_orphans(self) -> dict[str, list[int]]:
        owned = {(e["task"], e.get("number")) for e in self._live.values()}
        return {
            task: [
                t.number
                for t in self._study(task).get_trials(deepcopy=False)
                if t.state.name == "RUNNING" and (task, t.number) not in owned
            ]
            for task in self._tasks
        }

    def _next_trial(self, task: str, trial_id: str) -> dict[str, Any] | None:
        spec, study = self._tasks[task], self._study(task)
        if self._orphans[task]:
            number = self._orphans[task].pop(0)
            params = hand_out_again(study, number, trial_id, self._space)
        elif studies.asked(study) < studies.planned(study):
            asked = study.ask(self._space)
            if getattr(self, "_round", ""):  # a searcher pickled before rounds were tagged
                asked.set_user_attr(studies.ROUND, self._round)
            asked.set_user_attr("tune_trial_id", trial_id)
            number, params = asked.number, dict(asked.params)
        else:
            return self._confirm_trial(task, trial_id)
        self._live[trial_id] = {"task": task, "stage": "search", "number": number}
        return {**spec.search_config, **params}

    def _confirm_trial(self, task: str, trial_id: str) -> dict[str, Any] | None:
        if any(e["task"] == task and e["stage"] == "confirm" for e in self._live.values()):
            return None
        spec = self._tasks[task]
        best = studies.confirm_pending(self._study(task), spec.confirm)
        if best is None:
            return None
        self._live[trial_id] = {"task": task, "stage": "confirm", "params": best}
        return {**spec.confirm_config, **best}

    def _task_done(self, task: str) -> bool:
        study = self._study(task)
        pending = studies.confirm_pending(study, self._tasks[task].confirm)
        return studies.search_complete(study) and pending is None


def hand_out_again(study, number: int, trial_id: str, space: dict[str, Any]) -> dict[str, Any]:
    """The searched values of study trial ``number``, now run by Tune trial ``trial_id``.

    ``study.ask`` creates the trial and then stores its values one write at a time, so a
    driver killed in between leaves a RUNNING trial with some values missing: they are drawn
    now, from the same distributions (an enqueued trial's fixed values included)."""
    import optuna

    frozen = study.get_trials(deepcopy=False)[number]
    trial = optuna.Trial(study, frozen._trial_id)
    for name, distribution in space.items():
        if name not in frozen.params:
            suggest(trial, name, distribution)
    trial.set_user_attr("tune_trial_id", trial_id)
    return {name: trial.params[name] for name in space}


def suggest(trial, name: str, distribution) -> Any:
    """``trial``'s value of ``name`` from an Optuna distribution, through the public API."""
    from optuna.distributions import FloatDistribution, IntDistribution

    low, high, log, step = (
        distribution.low, distribution.high, distribution.log, distribution.step
    )  # fmt: skip
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(name, low, high, step=step, log=log)
    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(name, low, high, step=step, log=log)
    raise TypeError(f"no suggest for {type(distribution).__name__} ({name})")


def tell_result(study, number: int, trial_id: str, result: dict | None, error: bool) -> None:
    """Record a finished search trial: its last mean score, or a failure without a value."""
    import optuna

    result = result or {}
    value = result.get(METRIC)
    ok = not error and isinstance(value, int | float) and math.isfinite(value)
    status = "failed" if error else result.get("status", "")
    if ok and status == "running":
        status = "stopped_early"  # ended by ASHA with rows still saying running
    frozen = study.get_trials(deepcopy=False)[number]
    if frozen.state.name != "RUNNING":
        return  # told before the driver died; Tune reran its last interval
    trial = optuna.Trial(study, frozen._trial_id)
    trial.set_user_attr("status", status)
    trial.set_user_attr("epoch", result.get("epoch"))
    for name in ("cpu_seconds", "gpu_seconds"):
        trial.set_user_attr(name, result.get(name, 0.0))
    state = optuna.trial.TrialState.COMPLETE if ok else optuna.trial.TrialState.FAIL
    study.tell(number, float(value) if ok else None, state=state)
