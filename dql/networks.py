"""The noise-prediction network eps(x_t, t, s) and the twin critic, as in the paper."""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """[sin(t f_k), cos(t f_k)] with f_k = exp(-k ln(10000) / (dim/2 - 1)), k = 0..dim/2-1."""
    half = dim // 2
    freqs = torch.exp(
        torch.arange(half, device=t.device, dtype=torch.float32) * (-math.log(10000.0) / (half - 1))
    )
    angles = t.to(torch.float32)[:, None] * freqs[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def mlp(in_dim: int, hidden_dim: int, out_dim: int, hidden_layers: int = 3) -> nn.Sequential:
    """hidden_layers x (Linear, Mish), then a Linear head with no output activation."""
    layers: list[nn.Module] = []
    for i in range(hidden_layers):
        layers += [nn.Linear(in_dim if i == 0 else hidden_dim, hidden_dim), nn.Mish()]
    layers.append(nn.Linear(hidden_dim, out_dim))
    return nn.Sequential(*layers)


class NoisePredictor(nn.Module):
    """eps(x_t, t, s): an MLP over [noisy action, time embedding, state]."""

    def __init__(self, state_dim: int, action_dim: int, hidden_dim: int = 256, time_dim: int = 16):
        super().__init__()
        self.time_dim = time_dim
        self.time_mlp = nn.Sequential(
            nn.Linear(time_dim, time_dim * 2), nn.Mish(), nn.Linear(time_dim * 2, time_dim)
        )
        self.trunk = mlp(action_dim + time_dim + state_dim, hidden_dim, action_dim)

    def embed_time(self, t: torch.Tensor) -> torch.Tensor:
        """The learned time embedding of integer steps t, shape (len(t), time_dim)."""
        return self.time_mlp(sinusoidal_embedding(t, self.time_dim))

    def forward(self, x: torch.Tensor, time_embedding: torch.Tensor, state: torch.Tensor):
        """Predicted noise; ``time_embedding`` comes from ``embed_time`` (one row per sample)."""
        return self.trunk(torch.cat([x, time_embedding, state], dim=-1))


class TwinCritic(nn.Module):
    """Two independent Q networks over [state, action]: Linear-Mish x3, Linear(256, 1)."""

    def __init__(self, state_dim: int, action_dim: int, hidden_dim: int = 256):
        super().__init__()
        self.q1 = mlp(state_dim + action_dim, hidden_dim, 1)
        self.q2 = mlp(state_dim + action_dim, hidden_dim, 1)

    def forward(self, state: torch.Tensor, action: torch.Tensor):
        sa = torch.cat([state, action], dim=-1)
        return self.q1(sa), self.q2(sa)

    def q_min(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        q1, q2 = self(state, action)
        return torch.minimum(q1, q2)
