"""The smoke suite: small random-policy Hopper and Walker2d files and a local task that
learns, its data made where needed.

``python sweeps/locomotion.py --smoke`` must run from scratch on any machine, and on a
cluster every node must find the files, so each node makes them itself (deterministic
rollouts, cached, written atomically) rather than trusting a path only the head has.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from sweeps.space import SearchRanges

# The D4RL-format path on random-policy files (scores stay at random level on this budget),
# and a local task that visibly learns within it (dql/local_tasks.py).
SMOKE_TASKS = ("hopper-random-v2", "walker2d-random-v2", "invertedpendulum-random-local")
SMOKE_RANGES = SearchRanges(eta=(0.1, 10.0), T=(2, 6), actor_lr=(1e-4, 1e-3))
# DQLConfig fields of the smoke budget (flags and --set still override them).
SMOKE_CONFIG = {
    "num_epochs": 4,
    "steps_per_epoch": 20,
    "eval_every": 1,
    "eval_episodes": 2,
    "batch_size": 64,
    "hidden_dim": 64,
}
# Per task, under the flags: the local task needs 2,000 gradient steps to show what it learns.
SMOKE_TASK_CONFIG = {
    "invertedpendulum-random-local": {"steps_per_epoch": 500, "eval_episodes": 5, "batch_size": 256}
}
SMOKE_SWEEP = {"num_samples": 4, "seeds": 1}
SMOKE_ENVS = {
    "hopper-random-v2": ("Hopper-v5", None),
    "walker2d-random-v2": ("Walker2d-v5", "walker2d.xml"),
}
SMOKE_ROWS = 3000
SMOKE_FOLDER = "sweep-data"


def describe_smoke() -> str:
    """What --smoke sets, for its --help line."""
    budget = ", ".join(f"{k}={v}" for k, v in {**SMOKE_SWEEP, **SMOKE_CONFIG}.items())
    per_task = "; ".join(
        f"{task}: " + ", ".join(f"{k}={v}" for k, v in values.items())
        for task, values in SMOKE_TASK_CONFIG.items()
    )
    return (
        f"tiny budget: tasks {','.join(SMOKE_TASKS)} on random-policy files collected into "
        f"./{SMOKE_FOLDER}, {budget} ({per_task}); flags given as well still win"
    )


def smoke_dataset(task: str, folder: str | os.PathLike = SMOKE_FOLDER) -> str:
    """The task's smoke file under ``folder``, collected first if this machine lacks it."""
    from dql.collect import collected_file
    from dql.envs import EnvSpec
    from dql.local_tasks import local_dataset, local_task

    folder = Path(folder).expanduser().resolve()
    if local := local_task(task):
        return str(local_dataset(local, folder))
    env_id, xml = SMOKE_ENVS[task]
    spec = EnvSpec(env_id, {"xml_file": xml} if xml else {})
    return str(collected_file(spec, SMOKE_ROWS, folder / f"{task}-{SMOKE_ROWS}.hdf5"))


def smoke_datasets(
    tasks: Sequence[str] = SMOKE_TASKS, folder: str | os.PathLike = SMOKE_FOLDER
) -> dict[str, str | None]:
    """The smoke tasks' files, made once on the driver's machine (cached)."""
    return {task: smoke_dataset(task, folder) for task in tasks}
