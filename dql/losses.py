"""Diffusion-QL's critic target and losses, as pure functions of tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def backed_up_target(
    reward: torch.Tensor,
    not_done: torch.Tensor,
    discount: float,
    next_q1: torch.Tensor,
    next_q2: torch.Tensor,
    samples_per_state: int = 1,
) -> torch.Tensor:
    """y = r + (1 - done) gamma min(max_j Q1'(s', a'_j), max_j Q2'(s', a'_j)).

    ``next_q*`` hold ``samples_per_state`` consecutive rows per next state (repeat_interleave
    order). With one sample this is the ordinary clipped double-Q target; with 10 it is the
    paper's max-Q backup: the max is taken per head first, then the min of the two maxima.
    """
    batch = len(reward)
    max_q1 = next_q1.reshape(batch, samples_per_state).amax(dim=1, keepdim=True)
    max_q2 = next_q2.reshape(batch, samples_per_state).amax(dim=1, keepdim=True)
    return reward + not_done * discount * torch.minimum(max_q1, max_q2)


def critic_loss(q1: torch.Tensor, q2: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE(Q1, y) + MSE(Q2, y)."""
    return F.mse_loss(q1, target) + F.mse_loss(q2, target)


def normalised_q_loss(
    q1_pi: torch.Tensor, q2_pi: torch.Tensor, numerator_is_q1: torch.Tensor | bool
) -> torch.Tensor:
    """q_loss = -mean(Q_i(s, a_pi)) / mean|Q_j(s, a_pi)| with the denominator detached.

    (i, j) = (1, 2) when ``numerator_is_q1`` else (2, 1); the released code flips a fair coin
    each step. A tensor coin selects without a host sync.
    """
    loss_q1 = -q1_pi.mean() / q2_pi.abs().mean().detach()
    loss_q2 = -q2_pi.mean() / q1_pi.abs().mean().detach()
    if isinstance(numerator_is_q1, bool):
        return loss_q1 if numerator_is_q1 else loss_q2
    return torch.where(numerator_is_q1, loss_q1, loss_q2)
