"""Diffusion-QL: the networks, their optimisers, and the update step.

``DiffusionQL.update`` is the whole algorithm of one gradient step; read it with the paper.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from dql.action_selection import select_actions
from dql.config import DQLConfig
from dql.diffusion import DiffusionPolicy
from dql.losses import backed_up_target, critic_loss, normalised_q_loss
from dql.networks import TwinCritic
from dql.optim import clip_grad_norm, ema_action, lr_factor, polyak_
from dql.replay import Batch

# The order of the values ``DiffusionQL.update`` returns, one tensor per step.
METRIC_NAMES = (
    "bc_loss",
    "q_loss",
    "actor_loss",
    "critic_loss",
    "mean_q",
    "target_q",
    "actor_grad_norm",
    "critic_grad_norm",
)


def derived_seeds(seed: int, count: int) -> list[int]:
    """Independent 63-bit seeds for the separate random streams of one run."""
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(count, np.uint64) >> 1]


class DiffusionQL:
    """Actor (diffusion policy), its EMA copy, twin critic and target, Adam for both."""

    def __init__(
        self,
        config: DQLConfig,
        state_dim: int,
        action_dim: int,
        device: torch.device | str = "cpu",
    ):
        self.config = config
        self.state_dim, self.action_dim = state_dim, action_dim
        self.device = torch.device(device)
        init_seed, train_seed = derived_seeds(config.seed, 2)
        with torch.random.fork_rng(devices=[]):  # seeded init without touching global RNG
            torch.manual_seed(init_seed)
            self.actor = DiffusionPolicy(
                state_dim,
                action_dim,
                T=config.T,
                beta_schedule=config.beta_schedule,
                max_action=config.max_action,
                hidden_dim=config.hidden_dim,
                time_dim=config.time_dim,
            ).to(self.device)
            self.critic = TwinCritic(state_dim, action_dim, config.hidden_dim).to(self.device)
        # The EMA actor starts as a copy of the initial actor (released: and stays so until
        # ema_start_step); it is used only for critic targets.
        self.ema_actor = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr)
        self.critic_optimizer = torch.optim.Adam(
            self.critic.parameters(), lr=config.effective_critic_lr
        )
        # Fixed parameter lists, built once: the hot path reuses them every step.
        self._actor_params = list(self.actor.parameters())
        self._critic_params = list(self.critic.parameters())
        self._ema_params = list(self.ema_actor.parameters())
        self._critic_target_params = list(self.critic_target.parameters())
        self.generator = torch.Generator(self.device).manual_seed(train_seed)
        self.step = 0  # gradient steps taken

    def update(self, batch: Batch) -> torch.Tensor:
        """One gradient step: critic, then actor, then target critic and EMA actor.

        Returns the step's metrics as one tensor in ``METRIC_NAMES`` order (no host sync).
        """
        cfg, rng = self.config, self.generator
        self._set_learning_rates()

        # Critic: regress both heads onto r + gamma (1 - done) min_i Q_i'(s', a'), a' ~ EMA actor.
        q1, q2 = self.critic(batch.state, batch.action)
        with torch.no_grad():
            target_q = self._backed_up_target(batch)
        loss_critic = critic_loss(q1, q2, target_q)
        self.critic_optimizer.zero_grad(set_to_none=True)
        loss_critic.backward()
        critic_grad_norm = clip_grad_norm(self._critic_params, cfg.grad_norm)
        self.critic_optimizer.step()

        # Actor: diffusion BC loss + eta * Q loss normalised by the other head's mean |Q|.
        bc_loss = self.actor.bc_loss(batch.action, batch.state, rng)
        if cfg.eta > 0:
            new_action = self.actor.sample(batch.state, rng)  # gradient through all T steps
            q1_pi, q2_pi = self.critic(batch.state, new_action)
            coin = torch.rand((), generator=rng, device=self.device) > 0.5
            q_loss = normalised_q_loss(q1_pi, q2_pi, numerator_is_q1=coin)
        else:  # pure diffusion BC: the Q term has no gradient, so it is not computed
            q_loss = torch.zeros((), device=self.device)
        actor_loss = bc_loss + cfg.eta * q_loss
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward(inputs=self._actor_params)  # critic weights untouched
        actor_grad_norm = clip_grad_norm(self._actor_params, cfg.grad_norm)
        self.actor_optimizer.step()

        # Targets: Polyak critic every step; EMA actor on its own schedule.
        polyak_(self._critic_target_params, self._critic_params, cfg.tau)
        self._step_ema()
        self.step += 1

        return torch.stack(
            [
                bc_loss.detach(),
                q_loss.detach(),
                actor_loss.detach(),
                loss_critic.detach(),
                0.5 * (q1 + q2).detach().mean(),
                target_q.mean(),
                actor_grad_norm,
                critic_grad_norm,
            ]
        )

    def _backed_up_target(self, batch: Batch) -> torch.Tensor:
        """y for the critic; next actions come from the EMA actor (max-Q: several per state)."""
        cfg = self.config
        if cfg.discount == 0:  # one-step problem (the bandit): y = r, nothing to sample
            return batch.reward
        n = cfg.max_q_backup_samples if cfg.max_q_backup else 1
        next_state = batch.next_state.repeat_interleave(n, dim=0)
        next_q1, next_q2 = self.critic_target(
            next_state, self.ema_actor.sample(next_state, self.generator)
        )
        return backed_up_target(batch.reward, batch.not_done, cfg.discount, next_q1, next_q2, n)

    def _set_learning_rates(self) -> None:
        cfg = self.config
        factor = lr_factor(
            cfg.lr_schedule, self.step, cfg.num_epochs, cfg.steps_per_epoch, cfg.eval_every
        )
        for optimizer, base in (
            (self.actor_optimizer, cfg.actor_lr),
            (self.critic_optimizer, cfg.effective_critic_lr),
        ):
            for group in optimizer.param_groups:
                group["lr"] = base * factor

    def _step_ema(self) -> None:
        cfg = self.config
        action = ema_action(self.step, cfg.ema_start_step, cfg.ema_every, cfg.ema_warmup)
        if action == "average":
            polyak_(self._ema_params, self._actor_params, 1.0 - cfg.ema_decay)
        elif action == "sync":
            polyak_(self._ema_params, self._actor_params, 1.0)

    @torch.no_grad()
    def act(
        self,
        states: torch.Tensor,
        rule: str | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Evaluation actions for a batch of states (the config's selection rule by default)."""
        return select_actions(
            self.actor,
            self.critic_target,
            states,
            rule or self.config.action_selection,
            self.config.num_action_candidates,
            generator,
        )

    # ---- state for checkpoints ----
    def state_dict(self) -> dict:
        return {
            "actor": self.actor.state_dict(),
            "ema_actor": self.ema_actor.state_dict(),
            "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "step": self.step,
        }

    def load_state_dict(self, state: dict) -> None:
        for name in ("actor", "ema_actor", "critic", "critic_target"):
            getattr(self, name).load_state_dict(state[name])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.generator.set_state(state["generator"].cpu())
        self.step = int(state["step"])
