"""K seeds of one configuration trained together: the unit a sweep trial trains.

The members are one batched model (``DiffusionQL`` with K stacked copies of every network),
updated by one step for all. Member k is the same, to float rounding, as
``DiffusionQL(config.replace(seed=seeds[k]))`` trained by ``Trainer``: it has that agent's
initial weights and draws its batches and noise from its own generator in the same order.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch

from dql.agent import DiffusionQL
from dql.config import DQLConfig
from dql.replay import DeviceReplay

CompileMode = bool | str  # "auto", or a torch.compile mode such as "reduce-overhead"


class SeedEnsemble(DiffusionQL):
    """K members (one per seed) of the same DQLConfig except the seed, trained together.

    ``compile``: "auto" compiles the networks with ``torch.compile`` on CUDA only (small
    networks leave a GPU idle between kernel launches; on CPU it needs a C++ compiler and
    minutes of compiling per shape); True compiles on any device; another string is a
    ``torch.compile`` mode (e.g. "reduce-overhead": CUDA graphs), on any device; False
    never. If compiling fails the ensemble warns and trains in eager mode.
    """

    def __init__(
        self,
        config: DQLConfig,
        state_dim: int,
        action_dim: int,
        seeds: Sequence[int],
        device: torch.device | str = "cpu",
        compile: CompileMode = "auto",
    ):
        super().__init__(config, state_dim, action_dim, device, seeds=seeds)
        self.compiled = False
        if compile == "auto":  # kernels="compiled" compiles the step's losses itself
            compile = self.device.type == "cuda" and config.kernels == "eager"
        if compile:
            self.compiled = self._compile_networks(None if compile is True else compile)

    def train_epoch(
        self, replay: DeviceReplay, steps: int, progress: Callable[[int], object] | None = None
    ) -> np.ndarray:
        """``steps`` gradient steps per member; (K, len(METRIC_NAMES)) per-member means.

        The metrics stay on the device until the single host sync at the end; ``progress``
        is told of each step (see ``train_steps``).
        """
        return self.train_steps(replay, steps, progress).cpu().numpy()

    def member(self, k: int) -> DiffusionQL:
        """A copy of member k as a stand-alone agent (weights, Adam state, generator, step).

        For per-seed checkpoints (``save_checkpoint``) and per-seed inspection.
        """
        K = self.members
        agent = DiffusionQL(
            self.config.replace(seed=self.seeds[k]), self.state_dim, self.action_dim, self.device
        )

        def take(tensor: torch.Tensor) -> torch.Tensor:  # copy i of a stack is member i mod K
            return tensor.view(-1, K, *tensor.shape[1:])[:, k].reshape(-1, *tensor.shape[1:])

        with torch.no_grad():
            for name in ("actor", "ema_actor", "critic", "critic_target"):
                mine, theirs = getattr(self, name), getattr(agent, name)
                for p, q in zip(mine.parameters(), theirs.parameters(), strict=True):
                    q.copy_(take(p))
        for mine, theirs in (
            (self.actor_optimizer, agent.actor_optimizer),
            (self.critic_optimizer, agent.critic_optimizer),
        ):
            for p, q in zip(
                mine.param_groups[0]["params"], theirs.param_groups[0]["params"], strict=True
            ):
                theirs.state[q] = {
                    key: value.clone() if value.dim() == 0 else take(value)
                    for key, value in mine.state[p].items()
                }
            theirs.param_groups[0]["lr"] = mine.param_groups[0]["lr"]
        agent.generator.set_state(self.generators[k].get_state())
        agent.step = self.step
        return agent

    def _compile_networks(self, mode: str | None) -> bool:
        """Swap each network's forward for a compiled one and run it once, so that a compiler
        failure surfaces here; then warn and stay eager."""
        networks = (self.actor.model, self.ema_actor.model, self.critic, self.critic_target)
        try:
            for net in networks:
                net.forward = torch.compile(net.forward, mode=mode, dynamic=False)
            for policy in (self.actor, self.ema_actor):  # the chain through the compiled model
                policy.fused_chain = False
            states = torch.zeros(self.members, 2, self.state_dim, device=self.device)
            with torch.no_grad():  # a throwaway generator: training streams stay untouched
                generator = torch.Generator(self.device).manual_seed(0)
                self.critic(states, self.actor.sample(states, generator))
        except Exception as error:  # any compiler failure: stay eager
            for net in networks:
                net.__dict__.pop("forward", None)
            for policy in (self.actor, self.ema_actor):
                policy.fused_chain = True
            warnings.warn(f"torch.compile failed, training in eager mode: {error}", stacklevel=3)
            return False
        return True
