"""A live line per task instead of Ray's per-trial table: what a person watching wants.

    hopper-medium-v2    search 5/16: 2 finished, 2 stopped early, 1 diverged, 0 failed,
                        3 running | best 71.2 | 0.41 GPU-h        (one line on the screen)
    walker2d-medium-v2  search done (16/16), confirm running | best 80.3 | 0.97 GPU-h

Counts and the best score come from the task's Optuna study (so they survive a resume);
the cost of running trials from their latest rows.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from ray.tune import Callback

from analysis.wording import fixed
from sweeps import studies
from sweeps.studies import StudyStore


class TaskProgress(Callback):
    def __init__(self, store: StudyStore, names: dict[str, str], gpus: bool, every_s: float = 15):
        self._store, self._names, self._gpus, self._every = store, names, gpus, every_s
        self._latest: dict[str, dict[str, Any]] = {}  # running trial -> its newest row
        self._last_print = 0.0

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self._latest[trial.trial_id] = {
            "task": trial.config.get("task"),
            "stage": trial.config.get("stage"),
            "seconds": result.get("gpu_seconds" if self._gpus else "cpu_seconds", 0.0),
        }

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        entry = self._latest.get(trial.trial_id)
        if entry is not None:
            entry["ended"] = True

    def on_step_end(self, iteration, trials, **info) -> None:
        if time.monotonic() - self._last_print >= self._every:
            self._last_print = time.monotonic()
            self.print_lines(trials)

    def on_experiment_end(self, trials, **info) -> None:
        self.print_lines(trials)

    def print_lines(self, trials) -> None:
        running = Counter(
            (t.config.get("task"), t.config.get("stage")) for t in trials if t.status == "RUNNING"
        )
        width = max(len(task) for task in self._names)
        for task, name in self._names.items():
            line = self.line(task, name, running)
            print(f"{task:<{width}}  {line}", flush=True)

    def line(self, task: str, name: str, running: Counter) -> str:
        study = self._store.study(name, 0, create=False)
        trials = study.get_trials(deepcopy=False)
        ended = [t for t in trials if t.state.name in studies.FINISHED_STATES]
        kinds = Counter(t.user_attrs.get("status", "failed") for t in ended)
        planned = studies.planned(study)
        if len(ended) >= planned:
            search = f"search done ({len(ended)}/{planned})"
        else:
            counts = ", ".join(
                f"{kinds.get(k, 0)} {k.replace('_', ' ')}"
                for k in ("finished", "stopped_early", "diverged", "failed")
            )
            search = f"search {len(ended)}/{planned}: {counts}, {running[task, 'search']} running"
        if running[task, "confirm"]:
            search += ", confirm running"
        elif studies.confirmed(study):
            search += ", confirmed"
        values = [t.value for t in ended if t.value is not None]
        best = f"best {fixed(max(values))}" if values else "no score yet"
        seconds = sum(t.user_attrs.get(self._cost_key, 0.0) or 0.0 for t in ended)
        seconds += sum(
            e["seconds"]
            for e in self._latest.values()
            if e["task"] == task and (e["stage"] == "confirm" or not e.get("ended"))
        )
        unit = "GPU-h" if self._gpus else "CPU-h"
        return f"{search} | {best} | {seconds / 3600:.3g} {unit}"

    @property
    def _cost_key(self) -> str:
        return "gpu_seconds" if self._gpus else "cpu_seconds"
