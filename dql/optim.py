"""Learning-rate schedules, the EMA schedule, Polyak averaging, gradient-norm clipping and
the Adam steps of the update."""

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
    norms = clip_member_gradients_(
        [p.grad for p in parameters if p.grad is not None], max_norm, members
    )
    return norms[0] if members == 1 else norms


def clip_member_gradients_(
    grads: list[torch.Tensor], max_norm: float, members: int
) -> torch.Tensor:
    """``clip_grad_norm`` on the gradients themselves (contiguous, scaled in place): the
    compiled step's gradients are values, not ``.grad``. Returns the (K,) norms before."""
    per_member = [g.view(-1, members, g[0].numel()) for g in grads]  # (blocks, K, rest)
    norms = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(g, dim=(0, 2)) for g in per_member]), dim=0
    )  # (K,)
    if max_norm > 0:
        # As torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6), never above 1.
        scale = (max_norm / (norms + 1e-6)).clamp_(max=1.0).view(1, members, 1)
        torch._foreach_mul_(per_member, [scale] * len(per_member))
    return norms


def adam_step(optimizer: torch.optim.Adam) -> None:
    """``optimizer.step()``, by the same fused kernel with the same arguments, without the
    Python bookkeeping around it.

    ``Adam.step`` spends about 0.15 ms a call gathering its state and grouping the tensors
    by device before its single fused kernel (Hopper sizes, 2-core CPU): about 2% of a
    compiled gradient step, which calls it twice. Applies to a fused, single-group Adam
    whose every parameter already has state and a gradient; anything else (the first step,
    which creates the state; a foreach Adam; AMSGrad) goes through ``optimizer.step()``.
    Bit for bit the same either way (``tests/test_optim.py``).
    """
    (group,) = optimizer.param_groups  # the agent's optimisers have one group each
    params, state = group["params"], optimizer.state
    if (
        not group["fused"]
        or group["amsgrad"]
        or group["maximize"]
        or group["differentiable"]
        or group.get("decoupled_weight_decay", False)
        or getattr(optimizer, "grad_scale", None) is not None
        or len(state) != len(params)
        or any(p.grad is None or p.grad.is_sparse for p in params)
        or len({(p.device, p.dtype) for p in params}) != 1  # Adam groups by these
    ):
        optimizer.step()
        return
    per_param = [state[p] for p in params]
    steps = [s["step"] for s in per_param]
    torch._foreach_add_(steps, 1)
    beta1, beta2 = group["betas"]
    torch._fused_adam_(
        params,
        [p.grad for p in params],
        [s["exp_avg"] for s in per_param],
        [s["exp_avg_sq"] for s in per_param],
        [],
        steps,
        amsgrad=False,
        lr=group["lr"],
        beta1=beta1,
        beta2=beta2,
        weight_decay=group["weight_decay"],
        eps=group["eps"],
        maximize=False,
        grad_scale=None,
        found_inf=None,
    )


def forget_gradients(parameters: list[torch.nn.Parameter]) -> None:
    """``optimizer.zero_grad(set_to_none=True)`` for these parameters, without its overhead."""
    for p in parameters:
        p.grad = None


def adam_update_(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    state: list[dict[str, torch.Tensor]],
    lr: torch.Tensor,
    optimizer: torch.optim.Adam,
) -> None:
    """One step of ``optimizer``'s Adam written as tensor arithmetic, for a compiled graph.

    ``state`` holds each parameter's ``optimizer.state`` entry (``step``, ``exp_avg``,
    ``exp_avg_sq``), updated in place, so checkpoints and a later ``optimizer.step()`` carry
    on from it. ``lr`` is a tensor, so that a schedule does not recompile the graph. The same
    formula as the fused kernel, to float rounding (``tests/test_optim.py``): inductor fuses
    it into the step's own loops.
    """
    (group,) = optimizer.param_groups
    if group["amsgrad"] or group["weight_decay"] or group["maximize"]:
        raise ValueError("adam_update_ implements plain Adam (no amsgrad, weight decay, maximize)")
    beta1, beta2 = group["betas"]
    eps = group["eps"]
    for p, g, s in zip(params, grads, state, strict=True):
        s["step"].add_(1)
        s["exp_avg"].lerp_(g, 1 - beta1)
        s["exp_avg_sq"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
        step = s["step"].double()  # bias corrections in double, as the fused kernel takes them
        step_size = (lr / (1 - beta1**step)).float()
        bias_correction2_sqrt = (1 - beta2**step).sqrt().float()
        denominator = (s["exp_avg_sq"].sqrt() / bias_correction2_sqrt).add_(eps)
        p.sub_(step_size * s["exp_avg"] / denominator)
