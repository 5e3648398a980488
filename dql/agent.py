"""Diffusion-QL: the networks, their optimisers, and the update step.

``DiffusionQL.update_members`` is the whole algorithm of one gradient step; read it with the
paper. The networks hold K members (one per seed, K = 1 for a single agent) stacked on a
leading axis, so ``SeedEnsemble`` trains K seeds as one batched model with this same step.
"""

from __future__ import annotations

import copy
import ctypes
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch

from dql.action_selection import select_actions
from dql.config import DQLConfig
from dql.diffusion import DiffusionPolicy
from dql.kernels import CompiledStep, check_compiler
from dql.losses import backed_up_target, batch_mean, critic_loss, normalised_q_loss
from dql.networks import TwinCritic, use_low_precision
from dql.optim import (
    adam_step,
    clip_grad_norm,
    ema_action,
    forget_gradients,
    lr_factor,
    polyak_,
)
from dql.replay import Batch, DeviceReplay
from dql.threads import revise_threads

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


def keep_freed_memory() -> None:
    """Ask glibc to keep freed memory for reuse instead of handing it back to the system.

    Every gradient step allocates and frees the same few hundred MB of activations; by
    default glibc returns large blocks to the kernel and every step then pays a page fault
    per 4 KiB again (about 5% of a step at K = 8 on a 2-core CPU). Process-wide and harmless
    for a training process; a no-op where the C library is not glibc.
    """
    global _KEPT_FREED_MEMORY
    if _KEPT_FREED_MEMORY:
        return
    _KEPT_FREED_MEMORY = True
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)  # blocks up to 1 GiB come from the heap
        libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)  # and the heap is not trimmed below that
    except (OSError, AttributeError):
        pass


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
_KEPT_FREED_MEMORY = False


class StepDraws(NamedTuple):
    """Every random draw of one gradient step after the batch, stacked over the K members.

    Each member draws from its own generator, in this order (the order of the step itself).
    """

    next_action_chain: torch.Tensor | None  # (K, T, B n, A): EMA actor's chain for the target
    bc_steps: torch.Tensor  # (K, B): diffusion step t of each sample of the BC loss
    bc_noise: torch.Tensor  # (K, B, A): the noise eps the BC loss predicts
    policy_chain: torch.Tensor | None  # (K, T, B, A): the live actor's chain for q_loss
    coin: torch.Tensor | None  # (K,): numerator of q_loss is Q1 where True


class DiffusionQL:
    """Actor (diffusion policy), its EMA copy, twin critic and target, Adam for both.

    ``seeds`` gives K members that differ only in their seed (default: the config's seed, one
    member). Member k is initialised and draws its random numbers exactly as a single agent
    with seed ``seeds[k]``; Adam, Polyak and EMA act elementwise and clipping per member, so
    each member's training is that single agent's, whatever K.
    """

    def __init__(
        self,
        config: DQLConfig,
        state_dim: int,
        action_dim: int,
        device: torch.device | str = "cpu",
        seeds: Sequence[int] | None = None,
    ):
        self.config = config
        self.seeds = [config.seed] if seeds is None else [int(s) for s in seeds]
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct and non-empty, got {self.seeds}")
        self.members = K = len(self.seeds)
        self.state_dim, self.action_dim = state_dim, action_dim
        self.device = torch.device(device)
        if self.device.type == "cpu":
            keep_freed_memory()
        with torch.random.fork_rng(devices=[]):  # seeded init without touching global RNG
            self.actor = DiffusionPolicy(
                state_dim,
                action_dim,
                T=config.T,
                beta_schedule=config.beta_schedule,
                max_action=config.max_action,
                hidden_dim=config.hidden_dim,
                time_dim=config.time_dim,
                members=K,
            )
            self.critic = TwinCritic(state_dim, action_dim, config.hidden_dim, members=K)
            train_seeds = []
            for k, seed in enumerate(self.seeds):
                init_seed, train_seed = derived_seeds(seed, 2)
                torch.manual_seed(init_seed)  # member k: actor, then critic, as one agent would
                self.actor.model.reset_member(k)
                self.critic.reset_member(k)
                train_seeds.append(train_seed)
        self.actor.to(self.device)
        self.critic.to(self.device)
        low = {"fp32": None, "bf16": torch.bfloat16}[config.precision]
        use_low_precision(self.actor, low)  # and so the EMA actor and target critic below
        use_low_precision(self.critic, low)
        # The EMA actor starts as a copy of the initial actor (released: and stays so until
        # ema_start_step); it is used only for critic targets.
        self.ema_actor = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_optimizer = _adam(self.actor.parameters(), config.actor_lr)
        self.critic_optimizer = _adam(self.critic.parameters(), config.effective_critic_lr)
        # Fixed parameter lists, built once: the hot path reuses them every step.
        self._actor_params = list(self.actor.parameters())
        self._critic_params = list(self.critic.parameters())
        self._ema_params = list(self.ema_actor.parameters())
        self._critic_target_params = list(self.critic_target.parameters())
        self.generators = [torch.Generator(self.device).manual_seed(s) for s in train_seeds]
        self.step = 0  # gradient steps taken (by every member)
        # kernels="compiled" (``dql.kernels``): the whole step is one compiled graph from the
        # second step on; a missing compiler is raised here.
        self._compiled_step = None
        if config.kernels == "compiled":
            check_compiler(self.device)
            self._compiled_step = CompiledStep(self)

    @property
    def generator(self) -> torch.Generator:
        """The training generator of a single agent (batches and every draw of its steps)."""
        if self.members != 1:
            raise AttributeError(f"{self.members} members have one generator each: .generators")
        return self.generators[0]

    def update(self, batch: Batch) -> torch.Tensor:
        """One gradient step of a single agent on a plain (B, ...) batch.

        Returns the step's metrics as one tensor in ``METRIC_NAMES`` order (no host sync).
        """
        if self.members != 1:
            raise ValueError(
                f"update takes one agent's batch; {self.members} members train by train_steps"
            )
        batch = Batch(*(column.unsqueeze(0) for column in batch))
        return self.update_members(batch, self.draw_step(len(batch.state[0])))[0]

    def train_steps(
        self, replay: DeviceReplay, steps: int, progress: Callable[[int], object] | None = None
    ) -> torch.Tensor:
        """``steps`` gradient steps; (K, len(METRIC_NAMES)) means on the device, no host sync.

        ``progress(1)`` is called after each step is queued (a progress bar's ``update``)."""
        sums = torch.zeros(self.members, len(METRIC_NAMES), device=self.device)
        for _ in range(steps):
            revise_threads()  # a neighbour that took a core costs one thread, not the step
            batch = replay.sample_members(self.config.batch_size, self.generators)
            sums += self.update_members(batch, self.draw_step(self.config.batch_size))
            if progress is not None:
                progress(1)
        return sums / steps

    def draw_step(self, batch_size: int) -> StepDraws:
        """Each member's draws for one step from its own generator, in the step's order."""
        cfg, actor, device = self.config, self.actor, self.device
        needs_target = cfg.discount > 0
        n_next = batch_size * (cfg.max_q_backup_samples if cfg.max_q_backup else 1)
        columns = []
        for g in self.generators:
            next_chain = actor.chain_draws((n_next,), g, device) if needs_target else None
            bc_steps, bc_noise = actor.bc_draws((batch_size,), g, device)
            policy_chain = coin = None
            if cfg.eta > 0:
                policy_chain = actor.chain_draws((batch_size,), g, device)
                coin = torch.rand((), generator=g, device=device) > 0.5
            columns.append((next_chain, bc_steps, bc_noise, policy_chain, coin))
        return StepDraws(
            *(None if c[0] is None else torch.stack(c) for c in zip(*columns, strict=True))
        )

    def update_members(self, batch: Batch, draws: StepDraws) -> torch.Tensor:
        """One gradient step of all K members: critic, then actor, then target critic and EMA.

        ``batch`` holds (K, B, ...) tensors, ``draws`` the members' random draws. Losses are
        per member, shape (K,); their sum is backpropagated, which gives each member's slice
        of the stacked parameters exactly its own gradient. Returns (K, len(METRIC_NAMES)).
        """
        cfg, K = self.config, self.members
        self._set_learning_rates()
        if self._compiled_step is not None and self._compiled_step.ready():
            metrics = self._compiled_step(batch, draws)
            self.step += 1
            return metrics

        loss_critic, q1, q2, target_q = self._critic_losses(batch, draws)
        forget_gradients(self._critic_params)
        loss_critic.sum().backward()
        critic_grad_norm = clip_grad_norm(self._critic_params, cfg.grad_norm, K)
        adam_step(self.critic_optimizer)

        bc_loss, q_loss, actor_loss = self._actor_losses(batch, draws)
        forget_gradients(self._actor_params)
        actor_loss.sum().backward(inputs=self._actor_params)  # critic weights untouched
        actor_grad_norm = clip_grad_norm(self._actor_params, cfg.grad_norm, K)
        adam_step(self.actor_optimizer)

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
                batch_mean(0.5 * (q1 + q2).detach()),
                batch_mean(target_q),
                actor_grad_norm.reshape(K),
                critic_grad_norm.reshape(K),
            ],
            dim=1,
        )

    def _critic_losses(self, batch: Batch, draws: StepDraws):
        """Regress both heads onto r + gamma (1 - done) min_i Q_i'(s', a'), a' ~ EMA actor.

        Returns the critic loss per member, Q1, Q2 and the target."""
        q1, q2 = self.critic(batch.state, batch.action)
        with torch.no_grad():
            target_q = self._backed_up_target(batch, draws.next_action_chain)
        return critic_loss(q1, q2, target_q), q1, q2, target_q

    def _actor_losses(self, batch: Batch, draws: StepDraws):
        """Diffusion BC loss + eta * Q loss normalised by the other head's mean |Q|.

        Returns bc_loss, q_loss and the actor loss, each per member."""
        cfg = self.config
        bc_loss = self.actor.bc_loss(
            batch.action, batch.state, draws=(draws.bc_steps, draws.bc_noise)
        )
        if cfg.eta > 0:  # a_pi keeps the gradient through all T steps
            new_action = self.actor.sample(batch.state, draws=draws.policy_chain)
            q1_pi, q2_pi = self.critic(batch.state, new_action)
            q_loss = normalised_q_loss(q1_pi, q2_pi, numerator_is_q1=draws.coin)
        else:  # pure diffusion BC: the Q term has no gradient, so it is not computed
            q_loss = torch.zeros(self.members, device=self.device)
        return bc_loss, q_loss, bc_loss + cfg.eta * q_loss

    def _backed_up_target(self, batch: Batch, next_action_chain: torch.Tensor | None):
        """y for the critic; next actions come from the EMA actor (max-Q: several per state)."""
        cfg = self.config
        if cfg.discount == 0:  # one-step problem (the bandit): y = r, nothing to sample
            return batch.reward
        n = cfg.max_q_backup_samples if cfg.max_q_backup else 1
        next_state = batch.next_state.repeat_interleave(n, dim=-2)
        next_action = self.ema_actor.sample(next_state, draws=next_action_chain)
        next_q1, next_q2 = self.critic_target(next_state, next_action)
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
        """Evaluation actions for a batch of states (the config's selection rule by default).

        States are (n, obs_dim) for a single agent, or (K, n, obs_dim): member k acts on
        states[k]. One generator serves all members.
        """
        members = 1 if states.dim() == 2 else len(states) if states.dim() == 3 else -1
        if members != self.members:
            raise ValueError(
                f"states must be (n, obs_dim) for one agent or ({self.members}, n, obs_dim), "
                f"one row per member; got {tuple(states.shape)}"
            )
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
        """Everything a bit-identical continuation needs (tensors are live views: copy them)."""
        return {
            "seeds": list(self.seeds),
            "actor": self.actor.state_dict(),
            "ema_actor": self.ema_actor.state_dict(),
            "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "generators": [g.get_state() for g in self.generators],
            "step": self.step,
        }

    def load_state_dict(self, state: dict) -> None:
        if list(state["seeds"]) != self.seeds:
            raise ValueError(f"state is for seeds {state['seeds']}, these members: {self.seeds}")
        for name in ("actor", "ema_actor", "critic", "critic_target"):
            getattr(self, name).load_state_dict(state[name])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        for generator, saved in zip(self.generators, state["generators"], strict=True):
            generator.set_state(saved.cpu())
        self.step = int(state["step"])


def _adam(params, lr: float) -> torch.optim.Adam:
    """Adam, fused into one kernel where this PyTorch has it (elementwise: per member as is)."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):  # no fused kernel for this device or build
        return torch.optim.Adam(params, lr=lr, foreach=True)
