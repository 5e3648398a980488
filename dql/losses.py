"""Diffusion-QL's critic target and losses, as pure functions of tensors.

Q values are (batch, 1), or (K, batch, 1) for K members; every mean is over one member's
batch, so K members give K losses, shape (K,).
"""

from __future__ import annotations

import torch


def batch_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean over the batch and feature axes: a scalar, or one value per member."""
    return x.mean(dim=(-2, -1))


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
    per_state = (*reward.shape[:-1], samples_per_state)
    max_q1 = next_q1.reshape(per_state).amax(dim=-1, keepdim=True)
    max_q2 = next_q2.reshape(per_state).amax(dim=-1, keepdim=True)
    return reward + not_done * discount * torch.minimum(max_q1, max_q2)


def critic_loss(q1: torch.Tensor, q2: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE(Q1, y) + MSE(Q2, y)."""
    return batch_mean((q1 - target).square()) + batch_mean((q2 - target).square())


def normalised_q_loss(
    q1_pi: torch.Tensor, q2_pi: torch.Tensor, numerator_is_q1: torch.Tensor | bool
) -> torch.Tensor:
    """q_loss = -mean(Q_i(s, a_pi)) / mean|Q_j(s, a_pi)| with the denominator detached.

    (i, j) = (1, 2) when ``numerator_is_q1`` else (2, 1); the released code flips a fair coin
    each step. A tensor coin selects without a host sync; K members flip K coins, shape (K,).
    """
    loss_q1 = -batch_mean(q1_pi) / batch_mean(q2_pi.abs()).detach()
    loss_q2 = -batch_mean(q2_pi) / batch_mean(q1_pi.abs()).detach()
    if isinstance(numerator_is_q1, bool):
        return loss_q1 if numerator_is_q1 else loss_q2
    return torch.where(numerator_is_q1, loss_q1, loss_q2)
