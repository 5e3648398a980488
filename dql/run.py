"""One training run of K seeds: data, ensemble, periodic evaluation, result rows.

Shared by ``python -m dql train`` and the sweep trainable, so a row means the same thing
wherever it was made (fields: docs/RESULTS.md). Everything that can fail on bad input
happens in ``prepare_task`` before any gradient step.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dql.agent import METRIC_NAMES
from dql.checkpoint import atomic_save, global_rng_state, set_global_rng_state
from dql.config import DQLConfig
from dql.envs import EnvSpec, check_dataset_fits, env_for_task, mujoco_version
from dql.evaluation import agent_policy, evaluate
from dql.provenance import package_versions
from dql.replay import DeviceReplay, Transitions
from dql.rewards import tune_rewards
from dql.scores import ReferenceScores, normalized_score

RUN_FORMAT = "dql-run-2"  # 2: the batched ensemble's state layout


@dataclass
class PreparedTask:
    """A task made ready to train on: its transitions, evaluation env and score references."""

    task: str
    domain: str
    dataset: str  # file path or Minari id
    transitions: Transitions  # rewards NOT yet transformed (reward_tune is per config)
    env: EnvSpec
    reference: ReferenceScores


def prepare_task(
    task: str,
    data: str | os.PathLike | None = None,
    env_id: str | None = None,
    download: bool = False,
) -> PreparedTask:
    """Resolve, load and check a task's data; raises a one-line error on any bad input."""
    from dql.data import load_dataset, resolve_dataset

    if task == "bandit" and data is None:
        return prepare_bandit()
    source = resolve_dataset(task, data=data, download=download)
    if env_id is None and source.env_id:  # a Minari dataset names its own environment
        spec = EnvSpec(source.env_id, dict(source.env_kwargs))
    else:
        spec = env_for_task(task, env_id)
    transitions = load_dataset(source)
    check_dataset_fits(spec, transitions.obs_dim, transitions.action_dim, str(source.location))
    return PreparedTask(
        task=task,
        domain=source.reference.domain,
        dataset=str(source.location),
        transitions=transitions,
        env=spec,
        reference=source.reference,
    )


def prepare_bandit(seed: int = 0) -> PreparedTask:
    """The paper's four-mode bandit, scored by dql/Bandit-v0 (0 = worst mode, 100 = best)."""
    from dql.bandit_env import REWARD_RANGE
    from dql.toy import bandit_dataset

    low, high = REWARD_RANGE
    return PreparedTask(
        task="bandit",
        domain="bandit",
        dataset=f"bandit_dataset(seed={seed})",
        transitions=bandit_dataset(seed=seed),
        env=EnvSpec("dql/Bandit-v0"),
        reference=ReferenceScores("bandit", "bandit", low, high, 1, ""),
    )


def divergence_reason(metrics: np.ndarray, q_bound: float) -> str:
    """Why the (K, len(METRIC_NAMES)) epoch means show divergence; "" when they do not."""
    for name, column in zip(METRIC_NAMES, np.asarray(metrics).T, strict=True):
        bad = ~np.isfinite(column)
        if bad.any():
            return f"{name} is {column[bad][0]} (member {int(np.argmax(bad))})"
    mean_q = np.abs(metrics[:, METRIC_NAMES.index("mean_q")])
    if q_bound > 0 and (mean_q > q_bound).any():
        return f"mean |Q| {mean_q.max():.3g} exceeds the bound {q_bound:g}"
    return ""


@dataclass
class EpochReport:
    """One epoch: per-member training means, and the result row when it evaluated."""

    epoch: int
    step: int
    metrics: dict[str, list[float]]  # name -> one value per member
    steps_per_s: float  # gradient steps per second per member
    row: dict[str, Any] | None = None  # docs/RESULTS.md; present at evaluations and at the end
    finished: bool = False


@dataclass
class TrainingRun:
    """K seeds of one configuration trained together, evaluated every ``eval_every`` epochs."""

    prepared: PreparedTask
    config: DQLConfig
    seeds: Sequence[int]
    device: str = "cpu"
    stage: str = "single"
    q_bound: float = 1e6  # mean |Q| above this counts as divergence (0 disables)
    epoch: int = field(default=0, init=False)
    wall_time_s: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        from dql.ensemble import SeedEnsemble

        if len(set(self.seeds)) != len(self.seeds) or not self.seeds:
            raise ValueError(f"seeds must be distinct and non-empty, got {list(self.seeds)}")
        t = tune_rewards(self.prepared.transitions, self.config.reward_tune)
        self.replay = DeviceReplay(t, self.device)
        self.ensemble = SeedEnsemble(
            self.config, t.obs_dim, t.action_dim, list(self.seeds), self.device
        )

    def epochs(self, progress: Callable[[int], object] | None = None) -> Iterator[EpochReport]:
        """Train to ``config.num_epochs``, continuing from wherever a loaded state left off;
        ``progress(1)`` after each gradient step (a progress bar within the epoch)."""
        cfg = self.config
        while self.epoch < cfg.num_epochs:
            started = time.perf_counter()
            metrics = self.ensemble.train_epoch(self.replay, cfg.steps_per_epoch, progress)
            train_time = time.perf_counter() - started
            self.epoch += 1
            per_member = {name: metrics[:, i].tolist() for i, name in enumerate(METRIC_NAMES)}
            report = EpochReport(
                self.epoch, self.ensemble.step, per_member, cfg.steps_per_epoch / train_time
            )
            reason = divergence_reason(metrics, self.q_bound)
            last = self.epoch == cfg.num_epochs
            if reason:
                self.wall_time_s += time.perf_counter() - started
                report.row = self._row(metrics, None, "diverged", f"{reason} at epoch {self.epoch}")
                report.finished = True
                yield report
                return
            if last or self.epoch % cfg.eval_every == 0:
                result = self.evaluate()
                self.wall_time_s += time.perf_counter() - started
                report.row = self._row(metrics, result, "finished" if last else "running", "")
            else:
                self.wall_time_s += time.perf_counter() - started
            report.finished = last
            yield report

    def evaluate(self):
        """``eval_episodes`` episodes per member, seeded by the run's seeds and the epoch."""
        seed = int(np.random.SeedSequence([*self.seeds, self.epoch]).generate_state(1)[0] >> 1)
        policy = agent_policy(self.ensemble, seed=seed)
        return evaluate(policy, self.prepared.env, len(self.seeds), self.config.eval_episodes, seed)

    def _row(self, metrics: np.ndarray, result, status: str, reason: str) -> dict[str, Any]:
        p, cfg = self.prepared, self.config
        # A run that diverged before evaluating has no scores.
        returns = [math.nan] * len(self.seeds) if result is None else result.mean_returns.tolist()
        scores = [float(normalized_score(p.task, r, p.reference)) for r in returns]
        means = dict(zip(METRIC_NAMES, metrics.mean(axis=0).tolist(), strict=True))
        return {
            "task": p.task,
            "domain": p.domain,
            "env_id": p.env.label,
            "mujoco_version": "" if p.domain == "bandit" else mujoco_version(),
            "dataset": p.dataset,
            "stage": self.stage,
            "seeds": list(self.seeds),
            "normalized_scores": scores,
            "returns": returns,
            "normalized_score": float(np.mean(scores)),
            "normalized_score_std": float(np.std(scores)),
            "return_mean": float(np.mean(returns)),
            "eval_episodes": cfg.eval_episodes,
            "epoch": self.epoch,
            "gradient_steps": self.ensemble.step,
            "bc_loss": means["bc_loss"],
            "q_loss": means["q_loss"],
            "critic_loss": means["critic_loss"],
            "mean_q": means["mean_q"],
            "bc_losses": metrics[:, METRIC_NAMES.index("bc_loss")].tolist(),
            "wall_time_s": self.wall_time_s,
            "status": status,
            "status_reason": reason,
            "hparams": cfg.to_dict(),
            "quirks": cfg.quirks(),
            "versions": package_versions(),
        }

    # ---- checkpoints: everything needed to continue bit-identically ----
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": RUN_FORMAT,
            "task": self.prepared.task,
            "config": self.config.to_dict(),
            "seeds": list(self.seeds),
            "state_dim": self.replay_dims[0],
            "action_dim": self.replay_dims[1],
            "epoch": self.epoch,
            "wall_time_s": self.wall_time_s,
            "ensemble": self.ensemble.state_dict(),
            "rng": global_rng_state(),
        }

    @property
    def replay_dims(self) -> tuple[int, int]:
        t = self.prepared.transitions
        return t.obs_dim, t.action_dim

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != RUN_FORMAT:
            raise ValueError(f"not a dql run checkpoint (format {state.get('format')!r})")
        # Through DQLConfig: a checkpoint from before a field existed has its default.
        same_config = DQLConfig.from_dict(state["config"]) == self.config
        if not same_config or state["seeds"] != list(self.seeds):
            raise ValueError("the checkpoint was made with another configuration or seeds")
        self.ensemble.load_state_dict(state["ensemble"])
        self.epoch = int(state["epoch"])
        self.wall_time_s = float(state["wall_time_s"])
        set_global_rng_state(state["rng"])

    def save(self, path: str | os.PathLike) -> None:
        atomic_save(self.state_dict(), Path(path))

    def load(self, path: str | os.PathLike) -> None:
        self.load_state_dict(torch.load(path, map_location="cpu", weights_only=False))


def load_policy_agent(path: str | os.PathLike, device: str = "cpu"):
    """The actor of a run checkpoint (a SeedEnsemble) or of a ``save_checkpoint`` file."""
    from dql.checkpoint import load_checkpoint
    from dql.ensemble import SeedEnsemble

    payload = torch.load(path, map_location="cpu", weights_only=False)
    if payload.get("format") != RUN_FORMAT:
        return load_checkpoint(path, device, restore_rng=False)[0]
    ensemble = SeedEnsemble(
        DQLConfig.from_dict(payload["config"]),
        payload["state_dim"],
        payload["action_dim"],
        payload["seeds"],
        device,
    )
    ensemble.load_state_dict(payload["ensemble"])
    return ensemble
