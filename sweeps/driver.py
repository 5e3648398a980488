"""The concurrent driver: every task of a sweep searched at once in one Tune experiment.

One experiment per round (``STORAGE/NAME/sweep``, then ``extend-K``), with a searcher and a
scheduler that route by task (``TaskSearcher``, ``PerTaskASHA``), rather than one Tuner per
task: one Tune state to restore, Tune's own Ctrl-C handling and fault tolerance, and trial
slots shared by all tasks, so that the cluster stays full until the last task's tail.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from typing import Any

from sweeps import layout, studies
from sweeps.plan import Plan
from sweeps.space import SweepInputError
from sweeps.status import (
    ended_after_snapshot,
    last_row,
    read_trial_status,
    statuses_of,
    write_trial_status,
)

INTERRUPTED = 130  # the shell's code for a run ended by Ctrl-C


class RestoreError(RuntimeError):
    """Tune could not restore the round to resume; nothing was changed."""


def run(plan: Plan, argv: list[str]) -> int:
    """Run (or continue) this plan's round; returns the exit status."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress lines say it all
    start_ray(plan)
    store = studies.StudyStore.for_sweep(plan.sweep_path, plan.optuna_storage)
    print(f"Studies: {store.url} (watch them with: optuna-dashboard {store.url})", flush=True)
    if not plan.resume:
        prepare_studies(plan, store)
        record_round(plan, store, complete=False)
    tuner = _restored_tuner(plan) if plan.resume else _new_tuner(plan, store)
    results = tuner.fit()
    statuses, cut_off = statuses_of(results, plan.experiment_path, plan.epochs)
    statuses.update(
        ended_after_snapshot(plan.experiment_path, _ended(plan, store), statuses, plan.epochs)
    )
    complete = cut_off == 0 and all(_task_done(plan, store, task) for task in plan.tasks)
    before = read_trial_status(plan.experiment_path)
    if not write_trial_status(plan.experiment_path, statuses):
        print(
            f"error: Tune restored {len(statuses)} trials of {plan.experiment_path}, but "
            f"{len(before)} were recorded before; trial_status.json and the table are left as "
            "they were",
            file=sys.stderr,
        )
        return 1
    remove_orphans(plan.experiment_path, statuses)
    store.sync()
    if not complete:
        print(
            f"\nThe sweep was interrupted: {cut_off} trials were cut off (labelled "
            "'interrupted'); no table was written. Continue it with:\n  "
            + plan.resume_command(argv),
            file=sys.stderr,
        )
        return INTERRUPTED
    record_round(plan, store, complete=True)
    report(plan)
    return 0


# ---------------------------------------------------------------- studies and rounds
def prepare_studies(plan: Plan, store: studies.StudyStore) -> None:
    """Create each task's study (the paper preset first) or, for --extend, raise its plan."""
    from sweeps.plan import task_preset

    for task in plan.tasks:
        study = store.study(studies.study_name(plan.name, task), plan.optuna_seed)
        if plan.extend:
            study.set_user_attr(studies.PLANNED, studies.planned(study) + plan.extend)
            continue
        if studies.planned(study):
            raise SweepInputError(
                f"the Optuna storage already holds a study {study.study_name!r}; "
                "continue it with --resume or --extend N, or pick another --name"
            )
        study.set_user_attr(studies.PLANNED, plan.num_samples)
        preset = task_preset(task, plan.fixed_for(task))
        first = {"eta": preset.eta, "T": preset.T, "actor_lr": preset.actor_lr}
        if plan.ranges.contains(first):
            study.enqueue_trial(first)
        else:
            print(f"{task}: the paper preset {first} lies outside the search ranges; not tried")


def record_round(plan: Plan, store: studies.StudyStore, complete: bool) -> None:
    """sweep.json: every round's settings and whether it completed (for --resume/--extend)."""
    path = f"{plan.sweep_path}/{layout.SWEEP_FILE}"
    sweep = layout.read_json(path) or {"name": plan.name, "suite": plan.suite.name, "rounds": []}
    sweep["studies"] = store.url
    rounds = sweep["rounds"]
    if len(rounds) <= plan.round_index:
        rounds.append(
            {
                "round": plan.round,
                "started": datetime.now(UTC).isoformat(timespec="seconds"),
                "tasks": plan.tasks,
                "search_trials_added": plan.extend or plan.num_samples,
                "seeds": plan.seeds,
                "confirm": plan.confirm,
                "fixed": plan.fixed,
                "task_fixed": plan.task_fixed,
                "ranges": {k: list(getattr(plan.ranges, k)) for k in ("eta", "T", "actor_lr")},
            }
        )
    rounds[plan.round_index]["complete"] = complete
    layout.write_json(path, sweep)


def _task_done(plan: Plan, store: studies.StudyStore, task: str) -> bool:
    study = _task_study(plan, store, task)
    return studies.search_complete(study) and studies.confirm_pending(study, plan.confirm) is None


def _task_study(plan: Plan, store: studies.StudyStore, task: str):
    return store.study(studies.study_name(plan.name, task), plan.optuna_seed, create=False)


def _ended(plan: Plan, store: studies.StudyStore) -> dict[str, dict[str, Any]]:
    """Tune trial id -> task, stage...: this round's trials whose end the studies recorded."""
    return {
        trial_id: {"task": task, **ended}
        for task in plan.tasks
        for trial_id, ended in studies.ended_in_round(
            _task_study(plan, store, task), plan.round
        ).items()
    }


def remove_orphans(experiment_path: str, statuses: dict[str, Any]) -> None:
    """Delete trial folders Tune does not know whose task and searched values a known trial
    has as well: trials started after Tune's last snapshot before the driver died, whose
    study trial was handed out again and rerun from the start. Their partial copies would
    count twice in the analysis. A folder holding only checkpoints (Tune had not copied its
    params.json) says who it is by its last row. Any other unknown folder is left as it is."""
    fs, _ = layout.filesystem(experiment_path)
    folders = layout.trial_folders(experiment_path)

    def identity(info) -> tuple | None:
        path = f"{experiment_path}/{info.base_name}"
        try:
            config = layout.read_json(f"{path}/params.json")
        except (OSError, ValueError):
            return None
        if config is None and (row := last_row(path)):
            config = {"task": row.get("task"), "stage": row.get("stage"), **row.get("hparams", {})}
        if not isinstance(config, dict):
            return None
        return tuple(config.get(k) for k in ("task", "stage", "eta", "T", "actor_lr"))

    known = {entry["trial_dir"] for entry in statuses.values()}
    rerun = {identity(info) for info in folders if info.base_name in known}
    for info in folders:
        if info.base_name not in known and (found := identity(info)) and found in rerun:
            print(f"removing {info.base_name}: started after Tune's last snapshot, rerun since")
            fs.delete_dir(info.path)


# ---------------------------------------------------------------- Tune
def _new_tuner(plan: Plan, store: studies.StudyStore):
    from ray import tune

    from sweeps.progress import TaskProgress
    from sweeps.scheduler import task_asha
    from sweeps.searcher import TaskSearcher
    from sweeps.trainable import trial_dirname

    searcher = TaskSearcher(
        [_task_search(plan, task) for task in plan.tasks],
        store,
        plan.ranges.optuna_space(),
        plan.optuna_seed,
        plan.max_concurrent,
        plan.max_concurrent_per_task,
        round_name=plan.round,
    )
    scheduler = task_asha(plan.evaluations, plan.grace_period, plan.reduction_factor)
    names = {task: studies.study_name(plan.name, task) for task in plan.tasks}
    progress = TaskProgress(store, names, gpus=plan.gpus_per_trial > 0)
    return tune.Tuner(
        _trainable(plan),
        param_space=_constants(plan),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=-1,  # the searcher says when every task is done
            trial_dirname_creator=trial_dirname,
            # A finished trial's process takes the next trial: no seconds of start-up and
            # imports per trial during which a slot is held but nothing trains.
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=plan.round,
            storage_path=plan.sweep_path,
            failure_config=tune.FailureConfig(max_failures=plan.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            stop=_stopper(),
            callbacks=[progress],
            verbose=0,  # TaskProgress prints a line per task instead of a line per trial
        ),
    )


def _restored_tuner(plan: Plan):
    from ray import tune

    path = plan.experiment_path
    try:
        if not tune.Tuner.can_restore(path):
            raise RestoreError(f"{path} holds no Tune experiment state")
        print(f"resuming {path}", flush=True)
        # Errored trials stay failed: they already had their --max-failures retries.
        return tune.Tuner.restore(path, trainable=_trainable(plan), resume_errored=False)
    except RestoreError:
        raise
    except Exception as error:  # whatever Tune raised, the old results must stay as they are
        raise RestoreError(
            f"Tune could not restore {path}: {type(error).__name__}: {error}"
        ) from None


def _task_search(plan: Plan, task: str):
    from sweeps.searcher import TaskSearch

    shared = {"task": task, "data": plan.data.get(task), "fixed": plan.fixed_for(task)}
    return TaskSearch(
        task=task,
        study_name=studies.study_name(plan.name, task),
        search_config={**shared, "stage": "search", "seeds": plan.seeds},
        confirm_config={**shared, "stage": "confirm", "seeds": plan.confirm_seeds},
        confirm=plan.confirm,
    )


def _constants(plan: Plan) -> dict[str, Any]:
    """What every trial of the round shares (the searcher adds task, stage, seeds, values)."""
    return {
        "env_id": plan.env_id,
        "download": plan.download,
        "smoke": plan.smoke,
        "fixed": plan.fixed,
        "cpus_per_trial": plan.cpus_per_trial,
        "gpus_per_trial": plan.gpus_per_trial,
        "q_bound": plan.q_bound,
    }


def _stopper():
    from sweeps.trainable import DivergenceStopper

    return DivergenceStopper()


def _trainable(plan: Plan):
    from ray import tune

    from sweeps.trainable import train_trial

    return tune.with_resources(
        train_trial, {"cpu": plan.cpus_per_trial, "gpu": plan.gpus_per_trial}
    )


# ---------------------------------------------------------------- Ray
def start_ray(plan: Plan) -> None:
    import ray

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Every report carries a checkpoint by design (no row is ever repeated on restore).
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Tune's snapshot of which trials exist at most 1 s old: a trial asked for just before
    # the driver dies is then one that has not started yet (its study trial is re-handed).
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
    if not ray.is_initialized():
        ray.init(address=plan.address, include_dashboard=False, log_to_driver=True)
    if plan.gpus_per_trial > 0:
        most = max((n["Resources"].get("GPU", 0) for n in ray.nodes() if n["Alive"]), default=0)
        if plan.gpus_per_trial > most and plan.address is None:
            raise SweepInputError(
                f"--gpus-per-trial {plan.gpus_per_trial:g} but the largest node has {most:g} "
                "GPUs; lower it (e.g. 0.25 shares one GPU among four trials) or use a cluster"
            )
        if plan.gpus_per_trial > most:
            print(
                f"warning: no node has {plan.gpus_per_trial:g} GPUs yet; trials wait for the "
                "autoscaler to add one"
            )
    slots = trial_slots(plan)
    limit = plan.max_concurrent or slots
    # Tune keeps one pending trial for a custom searcher; as many as free slots keeps them full.
    os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", str(max(1, min(limit, slots))))
    print(
        f"{len(plan.tasks)} tasks searched at once: up to {limit} trials running "
        f"({slots} fit the cluster now at {plan.cpus_per_trial:g} CPU"
        + (f", {plan.gpus_per_trial:g} GPU" if plan.gpus_per_trial else "")
        + " each"
        + (
            f", at most {plan.max_concurrent_per_task} per task"
            if plan.max_concurrent_per_task
            else ""
        )
        + ")",
        flush=True,
    )


def trial_slots(plan: Plan) -> int:
    """Trials the cluster's resources hold at once right now (an autoscaler may add more)."""
    import ray

    total = ray.cluster_resources()
    slots = int(total.get("CPU", 0) // plan.cpus_per_trial)
    if plan.gpus_per_trial:
        slots = min(slots, int(round(total.get("GPU", 0) / plan.gpus_per_trial, 6)))
    return max(slots, 1)


# ---------------------------------------------------------------- the end
def report(plan: Plan) -> None:
    """Print the sweep's summary and write its LaTeX table into the results folder."""
    from analysis.storage import ResultsError
    from analysis.summary import summarize
    from analysis.tables import write_sweep_table

    try:
        print(summarize([plan.sweep_path]))
        print(f"LaTeX table: {write_sweep_table(plan.sweep_path)}")
    except ResultsError as error:  # e.g. every trial failed before reporting
        print(f"no table for {plan.sweep_path}: {error}")
