"""Sweep folders with chosen numbers, in Tune's layout (docs/RESULTS.md).

For tests and for trying the tables and plots without running a sweep: every number in the
files is the caller's, so aggregates can be checked by hand.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.references import domain_of

HPARAMS = {  # a few DQLConfig fields, enough for the tables
    "eta": 1.0,
    "T": 5,
    "actor_lr": 3e-4,
    "grad_norm": 9.0,
    "num_epochs": 2000,
    "eval_every": 50,
    "eval_episodes": 10,
    "top_k": 1,
}


@dataclass
class FakeTrial:
    """One trial: scores[e][s] is seed s's normalized score at evaluation e."""

    scores: Sequence[Sequence[float]]
    bc_losses: Sequence[Sequence[float]] | None = None  # same shape; default decreasing
    hparams: dict[str, Any] = field(default_factory=dict)
    finished: bool = True  # the last row says finished (else running)
    diverged_after: bool = False  # one more row with NaN scores and status diverged
    error: str | None = None  # written to error.txt
    seeds: Sequence[int] | None = None
    epoch_every: int = 50
    repeat_last: bool = False  # a restored trial re-reports its last interval


def write_trial(experiment: Path, task: str, number: int, trial: FakeTrial, stage: str) -> Path:
    """Write params.json, result.json (JSON lines) and error.txt as Tune does."""
    hparams = {**HPARAMS, **trial.hparams}
    trial_id = f"{number:05x}"
    folder = experiment / (
        f"trial_{number:03d}_{trial_id}_eta={hparams['eta']:.3g}_T={hparams['T']}"
        f"_lr={hparams['actor_lr']:.2g}"
    )
    folder.mkdir(parents=True)
    seeds = list(trial.seeds or range(len(trial.scores[0]) if trial.scores else 1))
    params = {"task": task, "stage": stage, "seeds": seeds, "fixed": {}}
    params.update({k: hparams[k] for k in ("eta", "T", "actor_lr")})
    (folder / "params.json").write_text(json.dumps(params))
    lines = []
    n = len(trial.scores)
    for e, scores in enumerate(trial.scores):
        bc = trial.bc_losses[e] if trial.bc_losses else [1.0 / (e + 1)] * len(seeds)
        last = e == n - 1 and not trial.diverged_after
        status = "finished" if last and trial.finished else "running"
        lines.append(_row(task, stage, seeds, scores, bc, (e + 1) * trial.epoch_every, hparams))
        lines[-1].update(status=status, trial_id=trial_id, training_iteration=e + 1)
    if trial.diverged_after:
        row = _row(task, stage, seeds, [math.nan] * len(seeds), [math.nan] * len(seeds),
                   (n + 1) * trial.epoch_every, hparams)  # fmt: skip
        row.update(status="diverged", status_reason="critic_loss is nan", trial_id=trial_id)
        lines.append(row)
    if trial.repeat_last and lines:
        lines.insert(len(lines) - 1, {**lines[-1], "normalized_scores": [-1.0] * len(seeds)})
    (folder / "result.json").write_text("".join(json.dumps(r) + "\n" for r in lines))
    if trial.error is not None:
        (folder / "error.txt").write_text(trial.error)
    return folder


def _row(task, stage, seeds, scores, bc, epoch, hparams) -> dict[str, Any]:
    mean = sum(scores) / len(scores)
    return {
        "task": task,
        "domain": domain_of(task),
        "env_id": "Hopper-v5",
        "mujoco_version": "3.3.0",
        "dataset": f"/data/{task}.hdf5",
        "stage": stage,
        "seeds": seeds,
        "normalized_scores": list(scores),
        "returns": [10.0 * s for s in scores],
        "normalized_score": mean,
        "normalized_score_std": 0.0,
        "return_mean": 10.0 * mean,
        "eval_episodes": hparams["eval_episodes"],
        "epoch": epoch,
        "gradient_steps": epoch * 1000,
        "bc_loss": sum(bc) / len(bc),
        "q_loss": -1.0,
        "critic_loss": 1.0,
        "mean_q": 50.0,
        "bc_losses": list(bc),
        "wall_time_s": float(epoch),
        "status": "running",
        "status_reason": "",
        "hparams": hparams,
        "quirks": {"ema_warmup": "released"},
        "versions": {},
        "time_total_s": float(epoch),
    }


def write_sweep(root: Path, task: str, trials: Sequence[FakeTrial], stage: str = "search") -> Path:
    """``root/TASK[-confirm]/trial_...`` for each trial; returns the experiment folder."""
    experiment = Path(root) / (task + ("-confirm" if stage == "confirm" else ""))
    experiment.mkdir(parents=True, exist_ok=True)
    for number, trial in enumerate(trials, start=1):
        write_trial(experiment, task, number, trial, stage)
    return experiment
