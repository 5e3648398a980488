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


def clip_grad_norm(
    parameters: Iterable[torch.nn.Parameter], max_norm: float, members: int = 1
) -> torch.Tensor:
    """Clip each member's gradient to ``max_norm`` (0 disables); return the norms before.

    Parameters stack K members' copies on their first axis, possibly several blocks of K (the
    twin critic's heads): copy i belongs to member i mod K. Member k's norm is taken over its
    own copies only, so each member is clipped as if it were trained alone. No host sync.
    Returns a scalar for ``members=1``, else shape (K,).
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    per_member = [g.view(-1, members, g[0].numel()) for g in grads]  # (blocks, K, rest)
    norms = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(g, dim=(0, 2)) for g in per_member]), dim=0
    )  # (K,)
    if max_norm > 0:
        # As torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6), never above 1.
        scale = (max_norm / (norms + 1e-6)).clamp_(max=1.0).view(1, members, 1)
        torch._foreach_mul_(per_member, [scale] * len(per_member))
    return norms[0] if members == 1 else norms
