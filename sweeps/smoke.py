"""The smoke suite's data: small random-policy Hopper and Walker2d files, made where needed.

``python sweeps/locomotion.py --smoke`` must run from scratch on any machine, and on a
cluster every node must find the files, so each node makes them itself (deterministic
rollouts, cached, written atomically) rather than trusting a path only the head has.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sweeps.space import SearchRanges

SMOKE_TASKS = ("hopper-random-v2", "walker2d-random-v2")
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
    return (
        f"tiny budget: tasks {','.join(SMOKE_TASKS)} on {SMOKE_ROWS}-step random-policy files "
        f"collected into ./{SMOKE_FOLDER}, {budget}; flags given as well still win"
    )


def smoke_dataset(task: str, folder: str | os.PathLike = SMOKE_FOLDER) -> str:
    """The task's smoke file under ``folder``, collected first if this machine lacks it."""
    env_id, xml = SMOKE_ENVS[task]
    path = Path(folder).expanduser().resolve() / f"{task}-{SMOKE_ROWS}.hdf5"
    if path.is_file():
        return str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial.hdf5")
    options = ["--env", env_id, "--steps", str(SMOKE_ROWS), "--no-progress"]
    options += ["--xml-file", xml] if xml else []
    print("+ python -m dql collect", " ".join(options), "--out", path, flush=True)
    command = [sys.executable, "-m", "dql", "collect", *options, "--out", str(partial)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    os.replace(partial, path)  # a concurrent trial on the same node sees all or nothing
    return str(path)


def smoke_datasets(folder: str | os.PathLike = SMOKE_FOLDER) -> dict[str, str | None]:
    """Every smoke task's file, made once on the driver's machine (cached)."""
    return {task: smoke_dataset(task, folder) for task in SMOKE_ENVS}
