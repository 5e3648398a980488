"""Learning-rate schedules, the EMA schedule, Polyak averaging and gradient-norm clipping."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import torch


def lr_factor(
    schedule: str, step: int, num_epochs: int, steps_per_epoch: int, eval_every: int
) -> float:
    """Multiplier of the base learning rate before gradient step ``step`` (0-based).

    - "released_cosine": the released code's CosineAnnealingLR(T_max=num_epochs) stepped once
      per ``eval_every`` epochs, so after a full run the rate is still ~0.999 of its start.
    - "cosine": a true per-step cosine decay to zero over the whole run.
    - "constant": no decay.
    """
    if schedule == "constant":
        return 1.0
    if schedule == "released_cosine":
        scheduler_steps = step // (eval_every * steps_per_epoch)
        return 0.5 * (1.0 + math.cos(math.pi * scheduler_steps / num_epochs))
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(step / (num_epochs * steps_per_epoch), 1.0)))
    raise ValueError(f"unknown lr_schedule {schedule!r}")


EmaAction = Literal["skip", "sync", "average"]


def ema_action(step: int, start_step: int, every: int, warmup: str) -> EmaAction:
    """What the EMA actor does after gradient step ``step`` (0-based, before increment).

    Every ``every`` steps: from ``start_step`` on, average; before it, the released code does
    nothing (the EMA copy keeps the initial weights), while "synced" copies the live actor.
    """
    if step % every:
        return "skip"
    if step >= start_step:
        return "average"
    return "sync" if warmup == "synced" else "skip"


@torch.no_grad()
def polyak_(target: Iterable[torch.Tensor], source: Iterable[torch.Tensor], rate: float) -> None:
    """target <- (1 - rate) target + rate source, for every pair of tensors."""
    torch._foreach_lerp_(list(target), list(source), rate)


def clip_grad_norm(parameters: Iterable[torch.nn.Parameter], max_norm: float) -> torch.Tensor:
    """Clip to ``max_norm`` (0 disables) and return the norm before clipping, without a sync."""
    with_grad = [p for p in parameters if p.grad is not None]
    norm = torch.nn.utils.get_total_norm([p.grad for p in with_grad])
    if max_norm > 0:
        torch.nn.utils.clip_grads_with_norm_(with_grad, max_norm, norm)
    return norm
