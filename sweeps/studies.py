"""Each task's Optuna study, stored with Optuna's own storage so a sweep can be resumed,
extended and watched (``optuna-dashboard STORAGE``).

By default the studies live in a journal file in the sweep's folder. With a remote
``--storage`` (s3://, gs://) the journal is written on the driver's disk and copied into the
sweep's folder at every Tune checkpoint, so that the results folder stays complete. An
``--optuna-storage URL`` (PostgreSQL, MySQL, SQLite) replaces the journal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeps import layout

JOURNAL = "optuna.journal"
PLANNED = "planned_search_trials"  # study user attribute: the search trials this task gets
CONFIRMED = "confirmed_configurations"  # study user attribute: searched values rerun so far
ROUND = "round"  # trial user attribute: the round (Tune experiment) that asked for it
# study user attribute prefix + a confirm trial's Tune id: its round, values and whether it
# failed (one write records that it ended and which trial it was)
CONFIRM_TRIAL = "confirm_trial:"


_OPENED: dict[str, Any] = {}  # one storage object per URL and process (a journal replays
# its whole log when opened; the searcher and the progress lines share one)


def open_storage(url: str):
    """An Optuna storage for an RDB URL (``scheme://...``) or a journal file path."""
    if url not in _OPENED:
        _OPENED[url] = _new_storage(url)
    return _OPENED[url]


def _new_storage(url: str):
    import optuna

    if "://" in url:
        return optuna.storages.RDBStorage(url)
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    Path(url).parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(url)))


def study_name(sweep: str, task: str) -> str:
    return f"{sweep}/{task}"


@dataclass
class StudyStore:
    """Where a sweep's studies live; ``url`` is what optuna-dashboard and load_study take."""

    url: str
    mirror: str | None = None  # the journal's copy in remote sweep storage

    @classmethod
    def for_sweep(cls, sweep_path: str, rdb_url: str | None) -> StudyStore:
        if rdb_url:
            return cls(rdb_url)
        if "://" not in sweep_path:
            return cls(f"{sweep_path}/{JOURNAL}")
        digest = hashlib.sha1(sweep_path.encode()).hexdigest()[:12]
        local = Path.home() / ".cache" / "dql-sweeps" / digest / JOURNAL
        store = cls(str(local), mirror=f"{sweep_path}/{JOURNAL}")
        if not local.is_file() and layout.file_exists(store.mirror):
            layout.copy_file(store.mirror, str(local))  # resuming on a new driver machine
        return store

    def storage(self):
        return open_storage(self.url)

    def study(self, name: str, seed: int, create: bool = True):
        """The named study (created when ``create``) with a seeded TPE sampler.

        The seed also counts the trials the study already holds: a sampler seeded alike on
        resume would draw its first random configurations again, duplicates of trials the
        study has already run."""
        import optuna

        if create:
            study = optuna.create_study(
                study_name=name, storage=self.storage(), direction="maximize", load_if_exists=True
            )
        else:
            study = optuna.load_study(study_name=name, storage=self.storage())
        held = len(study.get_trials(deepcopy=False))
        study.sampler = optuna.samplers.TPESampler(seed=seed + 100_003 * held)
        return study

    def sync(self) -> None:
        """Copy the journal into the sweep's remote storage (no-op for local and RDB)."""
        if self.mirror and Path(self.url).is_file():
            layout.copy_file(self.url, self.mirror)


def confirmed(study) -> list[dict[str, Any]]:
    """The searched values rerun on fresh seeds so far (``CONFIRMED``: sweeps before
    2026-12-02)."""
    attrs = study.user_attrs
    ended = [v["params"] for k, v in attrs.items() if k.startswith(CONFIRM_TRIAL)]
    return [*attrs.get(CONFIRMED, []), *ended]


# ---------------------------------------------------------------- what a study says
FINISHED_STATES = ("COMPLETE", "FAIL", "PRUNED")


def planned(study) -> int:
    return int(study.user_attrs.get(PLANNED, 0))


def asked(study) -> int:
    """Trials handed out so far (an enqueued one, such as the paper preset, waits unasked)."""
    return sum(t.state.name != "WAITING" for t in study.get_trials(deepcopy=False))


def search_complete(study) -> bool:
    """Every planned search trial has been asked for and has ended."""
    trials = study.get_trials(deepcopy=False)
    return len(trials) >= planned(study) and all(t.state.name in FINISHED_STATES for t in trials)


def best_params(study) -> dict[str, Any] | None:
    """The searched values of the best trial by its last mean score, preferring full trials
    (a trial ASHA stopped early is scored on fewer epochs)."""
    import math

    scored = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state.name == "COMPLETE" and t.value is not None and math.isfinite(t.value)
    ]
    full = [t for t in scored if t.user_attrs.get("status") == "finished"]
    pool = full or scored
    if not pool:
        return None
    return dict(max(pool, key=lambda t: t.value).params)


def confirm_pending(study, confirm: int) -> dict[str, Any] | None:
    """The configuration still to be rerun on fresh seeds, once the search has ended."""
    if not confirm or not search_complete(study):
        return None
    best = best_params(study)
    if best is None or best in confirmed(study):
        return None
    return best


def ended_in_round(study, round_name: str) -> dict[str, dict[str, Any]]:
    """Tune trial id -> stage, whether it failed, and whether it carries its round, for
    every search and confirm trial of this round that the study has seen end. Trials from
    before trials carried their round are listed too (``tagged`` False): the caller keeps
    them only if their folder is in this round's experiment."""
    out = {}
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        ours = attrs.get(ROUND, round_name) == round_name and "tune_trial_id" in attrs
        if ours and trial.state.name in FINISHED_STATES:
            failed = attrs.get("status") == "failed"
            out[attrs["tune_trial_id"]] = {
                "stage": "search", "failed": failed, "tagged": ROUND in attrs
            }  # fmt: skip
    for key, ended in study.user_attrs.items():
        if key.startswith(CONFIRM_TRIAL) and ended.get("round") in (round_name, ""):
            out[key.removeprefix(CONFIRM_TRIAL)] = {
                "stage": "confirm", "failed": ended.get("failed", False),
                "tagged": bool(ended.get("round")),
            }  # fmt: skip
    return out
