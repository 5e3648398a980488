"""ASHA per task in one Tune experiment: each task's trials climb only that task's rungs.

A score of 80 on one task and 20 on another say nothing about each other, so one shared
ASHA would stop good trials of hard tasks. Confirm trials (fresh-seed reruns) always run
to the end.
"""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler


def task_asha(max_t: int, grace_period: int, reduction_factor: float) -> PerTaskASHA:
    """The sweep's scheduler: per-task ASHA on the mean score, one rung step per evaluation
    (``bench/search_efficiency.py`` replays the same object on measured learning curves)."""
    from sweeps.plan import METRIC

    return PerTaskASHA(
        metric=METRIC,
        mode="max",
        time_attr="training_iteration",
        max_t=max_t,
        grace_period=min(grace_period, max_t),
        reduction_factor=reduction_factor,
    )


class PerTaskASHA(FIFOScheduler):
    def __init__(self, metric: str, mode: str, **asha: Any):
        super().__init__()
        self._metric, self._mode, self._asha = metric, mode, asha
        self._by_task: dict[str, ASHAScheduler] = {}

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return True

    def _scheduler(self, trial, known: bool = True) -> ASHAScheduler | None:
        """The trial's task's ASHA; with ``known``, only if that ASHA holds the trial (a
        restored experiment's rungs start empty, and ASHA keys its brackets by trial)."""
        if trial.config.get("stage") == "confirm":
            return None
        task = trial.config["task"]
        if task not in self._by_task:
            self._by_task[task] = ASHAScheduler(metric=self._metric, mode=self._mode, **self._asha)
        scheduler = self._by_task[task]
        if known and trial.trial_id not in scheduler._trial_info:
            return None
        return scheduler

    def on_trial_add(self, tune_controller, trial) -> None:
        if scheduler := self._scheduler(trial, known=False):
            scheduler.on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if self._scheduler(trial) is None and trial.config.get("stage") != "confirm":
            self.on_trial_add(tune_controller, trial)
        if scheduler := self._scheduler(trial):
            return scheduler.on_trial_result(tune_controller, trial, result)
        return TrialScheduler.CONTINUE

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        if scheduler := self._scheduler(trial):
            scheduler.on_trial_complete(tune_controller, trial, result)

    def on_trial_error(self, tune_controller, trial) -> None:
        if scheduler := self._scheduler(trial):
            scheduler.on_trial_error(tune_controller, trial)

    def on_trial_remove(self, tune_controller, trial) -> None:
        if scheduler := self._scheduler(trial):
            scheduler.on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return "; ".join(f"{task}: {s.debug_string()}" for task, s in self._by_task.items())
