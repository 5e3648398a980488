"""The Tune trainable: one trial = one configuration, its seeds trained together inside it.

Every evaluation reports one result row (docs/RESULTS.md) with a checkpoint of the whole
run, so a restored trial continues from its last row and never repeats or loses one.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from ray import tune

SEARCHED = ("eta", "T", "actor_lr")
# Tune's result.json can miss the row reported just before a node dies (seen in
# tests/test_sweeps.py); the newest checkpoint's rows.jsonl is exactly-once by construction.
ROWS_FILE = "rows.jsonl"


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def trial_config(config: dict[str, Any]):
    """The DQLConfig of a trial: the task's preset, fixed overrides, then the searched values."""
    from dql.train import task_config

    overrides = dict(config.get("fixed", {}))
    overrides.update({name: config[name] for name in SEARCHED if name in config})
    return task_config(config["task"], **overrides)


def train_trial(config: dict[str, Any]) -> None:
    import logging

    import ray
    import torch

    # One "Checkpoint successfully created" line per report per trial drowns the driver's
    # per-task progress lines.
    logging.getLogger("ray.train").setLevel(logging.WARNING)

    from dql.run import TrainingRun, prepare_task
    from dql.threads import use_thread_policy

    use_thread_policy(cpus=config.get("cpus_per_trial", 1))  # at most its CPUs, fewer if taken
    # Fractional GPUs on machines without CUDA (e.g. test clusters) fall back to the CPU.
    device = "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
    prepared = prepare_task(
        config["task"], _dataset(config), config.get("env_id"), config.get("download", False)
    )
    run = TrainingRun(
        prepared,
        trial_config(config),
        config["seeds"],
        device=device,
        stage=config.get("stage", "search"),
        q_bound=config.get("q_bound", 1e6),
    )
    history: list[dict[str, Any]] = []  # every row so far: each checkpoint carries them all
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            run.load(Path(folder) / "run.pt")
            history = read_rows(Path(folder) / ROWS_FILE)
    node_id = ray.get_runtime_context().get_node_id()
    cpus, gpus = float(config.get("cpus_per_trial", 1)), float(config.get("gpus_per_trial", 0))
    for report in run.epochs():
        if report.row is None:
            continue
        row = {**report.row, "node_id": node_id, "device": device, **cost(cpus, gpus, report.row)}
        history.append(row)
        with tempfile.TemporaryDirectory() as folder:
            run.save(Path(folder) / "run.pt")
            write_rows(Path(folder) / ROWS_FILE, history)
            tune.report(row, checkpoint=tune.Checkpoint.from_directory(folder))
        if row["status"] == "diverged":
            return


def trial_dirname(trial) -> str:
    """Short folder names that say what the trial is (Tune's default lists constants):
    ``trial_007_<id>_hopper-medium-v2_eta=1_T=5_lr=0.0003`` (``..-confirm`` for a rerun)."""
    c = trial.config
    number = trial.experiment_tag.split("_", 1)[0]  # Tune counts trials from 1 in order
    name = f"trial_{int(number):03d}_{trial.trial_id}" if number.isdigit() else trial.trial_id
    task = str(c.get("task", "")).replace(":", "_").replace("/", "_")
    stage = "-confirm" if c.get("stage") == "confirm" else ""
    if "eta" not in c:
        return f"{name}_{task}{stage}"
    return f"{name}_{task}{stage}_eta={c['eta']:.3g}_T={c['T']}_lr={c['actor_lr']:.2g}"


def cost(cpus: float, gpus: float, row: dict[str, Any]) -> dict[str, float]:
    """The trial's resources and what it has held of them so far (wall time x resources)."""
    seconds = float(row.get("wall_time_s", 0.0))
    return {
        "cpus": cpus,
        "gpus": gpus,
        "cpu_seconds": cpus * seconds,
        "gpu_seconds": gpus * seconds,
    }


def _dataset(config: dict[str, Any]) -> str | None:
    """The trial's dataset path on this node: a smoke file this node lacks is made here
    (the driver's copy lies on the driver's disk, which other machines cannot read)."""
    path = config.get("data")
    if path and config.get("smoke") and not Path(path).is_file():
        from sweeps.smoke import smoke_dataset

        try:
            return smoke_dataset(config["task"], Path(path).parent)
        except OSError:  # that folder is not ours to write on this machine
            return smoke_dataset(config["task"], Path(tempfile.gettempdir()) / "sweep-data")
    return path


class DivergenceStopper(tune.Stopper):
    """Ends a trial whose row says it diverged, or whose losses are not finite."""

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if result.get("status") == "diverged":
            return True
        losses = [result.get(name) for name in ("bc_loss", "critic_loss", "q_loss")]
        return any(value is not None and not np.isfinite(value) for value in losses)

    def stop_all(self) -> bool:
        return False
