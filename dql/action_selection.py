"""How an action is chosen at evaluation time from the diffusion policy."""

from __future__ import annotations

import torch

from dql.diffusion import DiffusionPolicy
from dql.networks import TwinCritic


@torch.no_grad()
def select_actions(
    actor: DiffusionPolicy,
    critic_target: TwinCritic,
    states: torch.Tensor,
    rule: str = "softmax",
    num_candidates: int = 50,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One action per state.

    - "softmax" (released code, the default): sample ``num_candidates`` actions per state,
      score them with min(Q1, Q2) of the target critic, draw one with probability
      proportional to exp(Q).
    - "argmax": the best-scored candidate.
    - "sample": a single plain sample from the policy, no critic.
    """
    if rule == "sample":
        return actor.sample(states, generator)
    if rule not in ("softmax", "argmax"):
        raise ValueError(f"unknown action selection {rule!r}; use softmax, argmax or sample")
    n = states.shape[-2]  # states: (n, obs_dim), or (K, n, obs_dim) for K members
    repeated = states.repeat_interleave(num_candidates, dim=-2)
    candidates = actor.sample(repeated, generator)
    q = critic_target.q_min(repeated, candidates).reshape(-1, num_candidates)
    if rule == "argmax":
        choice = q.argmax(dim=1)
    else:
        choice = torch.multinomial(torch.softmax(q, dim=1), 1, generator=generator).squeeze(1)
    candidates = candidates.reshape(*states.shape[:-2], n, num_candidates, -1)
    choice = choice.reshape(*states.shape[:-2], n, 1, 1)
    return torch.take_along_dim(candidates, choice, dim=-2).squeeze(-2)
