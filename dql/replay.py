"""Offline transitions, and batches drawn from them on the training device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch


@dataclass
class Transitions:
    """D4RL ``qlearning_dataset`` arrays: one row per (s, a, r, s', done)."""

    observations: np.ndarray  # (M, obs_dim)
    actions: np.ndarray  # (M, act_dim)
    next_observations: np.ndarray  # (M, obs_dim)
    rewards: np.ndarray  # (M,)
    terminals: np.ndarray  # (M,), 1.0 where the episode truly ended

    def __post_init__(self) -> None:
        n = len(self.observations)
        shapes = {name: getattr(self, name).shape for name in self.__dataclass_fields__}
        if any(shape[0] != n for shape in shapes.values()):
            raise ValueError(f"transition arrays disagree on their number of rows: {shapes}")
        if n == 0:
            raise ValueError("the dataset holds no transitions")
        if self.observations.ndim != 2 or self.actions.ndim != 2:
            raise ValueError(f"observations and actions must be 2-D arrays, got {shapes}")
        if self.next_observations.shape != self.observations.shape:
            raise ValueError(f"next_observations must match observations: {shapes}")
        if self.rewards.ndim != 1 or self.terminals.ndim != 1:
            raise ValueError(f"rewards and terminals must be 1-D arrays, got {shapes}")

    def __len__(self) -> int:
        return len(self.observations)

    @property
    def obs_dim(self) -> int:
        return self.observations.shape[1]

    @property
    def action_dim(self) -> int:
        return self.actions.shape[1]


class Batch(NamedTuple):
    """One batch of transitions; K members' batches carry a leading (K,) axis."""

    state: torch.Tensor  # (B, obs_dim)
    action: torch.Tensor  # (B, act_dim)
    next_state: torch.Tensor  # (B, obs_dim)
    reward: torch.Tensor  # (B, 1)
    not_done: torch.Tensor  # (B, 1)


class DeviceReplay:
    """The whole dataset as one float32 table on the device; one gather per batch."""

    def __init__(self, transitions: Transitions, device: torch.device | str = "cpu"):
        t = transitions
        columns = [
            t.observations,
            t.actions,
            t.next_observations,
            np.asarray(t.rewards).reshape(-1, 1),
            1.0 - np.asarray(t.terminals, dtype=np.float64).reshape(-1, 1),
        ]
        widths = [c.shape[1] for c in columns]
        table = np.concatenate([np.asarray(c, dtype=np.float32) for c in columns], axis=1)
        self.table = torch.from_numpy(table).to(device)
        self.widths = widths
        self.size = len(table)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        """``batch_size`` rows drawn uniformly with replacement, as the released buffer does."""
        return self._gather(self.draw_indices(batch_size, generator))

    def sample_members(self, batch_size: int, generators: list[torch.Generator]) -> Batch:
        """One batch per member, (K, batch_size, ...), each drawn with that member's generator."""
        return self._gather(torch.stack([self.draw_indices(batch_size, g) for g in generators]))

    def draw_indices(self, batch_size: int, generator: torch.Generator | None) -> torch.Tensor:
        return torch.randint(
            0, self.size, (batch_size,), generator=generator, device=self.table.device
        )

    def _gather(self, idx: torch.Tensor) -> Batch:
        return Batch(*self.table[idx].split(self.widths, dim=-1))
