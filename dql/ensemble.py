"""K seeds of one configuration trained together: the unit a sweep trial trains.

Member k is statistically (and, on one device, numerically) the same as
``DiffusionQL(config.replace(seed=seeds[k]))`` trained by ``Trainer``: it draws its batches
and noise from its own generator, in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from dql.agent import METRIC_NAMES, DiffusionQL
from dql.config import DQLConfig
from dql.replay import DeviceReplay


class SeedEnsemble:
    """K members (one per seed) of the same DQLConfig except the seed, trained together."""

    def __init__(
        self,
        config: DQLConfig,
        state_dim: int,
        action_dim: int,
        seeds: Sequence[int],
        device: torch.device | str = "cpu",
    ):
        seeds = [int(s) for s in seeds]
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct and non-empty, got {seeds}")
        self.config = config
        self.seeds = seeds
        self.members = len(seeds)
        self.state_dim, self.action_dim = state_dim, action_dim
        self.device = torch.device(device)
        self.agents = [
            DiffusionQL(config.replace(seed=s), state_dim, action_dim, self.device) for s in seeds
        ]

    @property
    def step(self) -> int:
        """Gradient steps done per member."""
        return self.agents[0].step

    def member(self, k: int) -> DiffusionQL:
        """Member k as a stand-alone agent (e.g. for ``save_checkpoint``)."""
        return self.agents[k]

    def train_epoch(self, replay: DeviceReplay, steps: int) -> np.ndarray:
        """``steps`` gradient steps per member; (K, len(METRIC_NAMES)) means, one host sync."""
        sums = torch.zeros(self.members, len(METRIC_NAMES), device=self.device)
        for _ in range(steps):
            for k, agent in enumerate(self.agents):
                sums[k] += agent.update(replay.sample(self.config.batch_size, agent.generator))
        return (sums / steps).cpu().numpy()

    @torch.no_grad()
    def act(
        self,
        states: torch.Tensor,
        rule: str | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """(K, n, obs_dim) states -> (K, n, act_dim) actions; member k acts on states[k]."""
        if states.shape[0] != self.members:
            raise ValueError(f"states must have {self.members} rows of members, got {states.shape}")
        return torch.stack(
            [agent.act(s, rule, generator) for agent, s in zip(self.agents, states, strict=True)]
        )

    def state_dict(self) -> dict:
        """Everything a bit-identical continuation needs, RNG streams and optimisers included."""
        return {"seeds": self.seeds, "members": [agent.state_dict() for agent in self.agents]}

    def load_state_dict(self, state: dict) -> None:
        if list(state["seeds"]) != self.seeds:
            raise ValueError(f"state is for seeds {state['seeds']}, this ensemble has {self.seeds}")
        for agent, member in zip(self.agents, state["members"], strict=True):
            agent.load_state_dict(member)
