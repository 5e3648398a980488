"""The training loop: epochs of gradient steps, per-epoch metrics, periodic evaluation."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from dql.agent import METRIC_NAMES, DiffusionQL
from dql.replay import DeviceReplay

# Called with (agent, epoch) every ``eval_every`` epochs; its dict lands in EpochMetrics.
EvalHook = Callable[[DiffusionQL, int], dict[str, Any]]


@dataclass
class EpochMetrics:
    """Means over one epoch's gradient steps, plus the evaluation if one ran after it."""

    epoch: int  # epochs completed, counting from 1
    step: int  # gradient steps completed
    bc_loss: float
    q_loss: float
    actor_loss: float
    critic_loss: float
    mean_q: float  # mean of (Q1 + Q2) / 2 on dataset actions
    target_q: float  # mean backed-up target
    actor_grad_norm: float  # before clipping
    critic_grad_norm: float
    steps_per_s: float
    epoch_time_s: float
    evaluation: dict[str, Any] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Trainer:
    """Runs whole epochs of ``config.steps_per_epoch`` steps; continues from ``agent.step``."""

    def __init__(
        self,
        agent: DiffusionQL,
        replay: DeviceReplay,
        eval_hook: EvalHook | None = None,
        eval_every: int | None = None,
    ):
        if agent.members != 1:
            raise ValueError(f"Trainer trains one agent; {agent.members} members: SeedEnsemble")
        self.agent = agent
        self.replay = replay
        self.eval_hook = eval_hook
        self.eval_every = eval_every or agent.config.eval_every
        steps_per_epoch = agent.config.steps_per_epoch
        if agent.step % steps_per_epoch:
            raise ValueError(
                f"agent.step={agent.step} is not a whole number of epochs of {steps_per_epoch}"
            )

    @property
    def epoch(self) -> int:
        return self.agent.step // self.agent.config.steps_per_epoch

    def epochs(self, until_epoch: int | None = None) -> Iterator[EpochMetrics]:
        """Train epoch by epoch up to ``until_epoch`` (default: config.num_epochs)."""
        cfg = self.agent.config
        until_epoch = cfg.num_epochs if until_epoch is None else until_epoch
        while self.epoch < until_epoch:
            started = time.perf_counter()
            # Metrics stay on the device during the epoch; one host sync at its end.
            epoch_means = self.agent.train_steps(self.replay, cfg.steps_per_epoch)[0]
            means = dict(zip(METRIC_NAMES, epoch_means.tolist(), strict=True))
            elapsed = time.perf_counter() - started
            metrics = EpochMetrics(
                epoch=self.epoch,
                step=self.agent.step,
                steps_per_s=cfg.steps_per_epoch / elapsed,
                epoch_time_s=elapsed,
                **means,
            )
            if self.eval_hook is not None and self.epoch % self.eval_every == 0:
                metrics.evaluation = self.eval_hook(self.agent, self.epoch)
            yield metrics
