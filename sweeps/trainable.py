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
    import ray
    import torch

    from dql.run import TrainingRun, prepare_task
    from dql.threads import use_thread_policy

    use_thread_policy(cpus=config.get("cpus_per_trial", 1))  # at most its CPUs, fewer if taken
    # Fractional GPUs on machines without CUDA (e.g. test clusters) fall back to the CPU.
    device = "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
    prepared = prepare_task(
        config["task"], config.get("data"), config.get("env_id"), config.get("download", False)
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
    for report in run.epochs():
        if report.row is None:
            continue
        row = {**report.row, "node_id": node_id, "device": device}
        history.append(row)
        with tempfile.TemporaryDirectory() as folder:
            run.save(Path(folder) / "run.pt")
            write_rows(Path(folder) / ROWS_FILE, history)
            tune.report(row, checkpoint=tune.Checkpoint.from_directory(folder))
        if row["status"] == "diverged":
            return


class DivergenceStopper(tune.Stopper):
    """Ends a trial whose row says it diverged, or whose losses are not finite."""

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if result.get("status") == "diverged":
            return True
        losses = [result.get(name) for name in ("bc_loss", "critic_loss", "q_loss")]
        return any(value is not None and not np.isfinite(value) for value in losses)

    def stop_all(self) -> bool:
        return False
