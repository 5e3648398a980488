"""What ``DQLConfig.kernels="compiled"`` compiles: the whole update step as one graph, with
``torch.compile`` (inductor's C++ on a CPU).

``CompiledStep`` is ``DiffusionQL.update_members`` written functionally: the critic's loss
and its gradient (``torch.func.grad_and_value`` over the critic's weights), clipping and
Adam, then the actor's loss (the BC loss, and the Q term through the live actor's whole
reverse chain and the just-updated critic) and its gradient, clipping and Adam, then Polyak
and EMA. The losses are the very functions the eager step calls (``_critic_losses``' target,
``_actor_losses``); compiled, the chain is traced step by step (``DiffusionPolicy.sample``
takes that path while compiling). One call per step, then: the products stay the same
library calls and everything between them, gradients and optimiser included, becomes fused
loops, with none of the Python, autograd and dispatch between some three thousand eager
operations. (Compiling the two halves' losses separately, as this module did until 6
December, left 5-9% of a K = 1 step on 2 cores to wrappers, autograd and the optimisers
between four graph calls: the whole step is 14% faster there, 28% in bf16, 5% at K = 8.)

The formulas are the eager ones, so results agree to float rounding (a few 1e-7 relative),
not bit for bit: the option is off by default. The first step of a run is eager (it creates
Adam's state); evaluation samples with the eager chain.

Compiling takes 10-20 s per process and setting at Hopper sizes on 2 cores (T = 50, the
toy's chain, longer), then mostly comes from inductor's disk cache; ``check_compiler``
compiles a small function before training, so that a missing C++ compiler is one clear error.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad_and_value

from dql.config import ConfigError
from dql.losses import batch_mean, critic_loss
from dql.networks import mish_with_derivative
from dql.optim import adam_update_, clip_member_gradients_, ema_action, lr_factor

# Graphs per compiled function: one per setting that changes the graph (T, shapes, eta...).
# Dynamo's default limit is 8, past which it silently runs the function eagerly; a sweep's
# reused trial process compiles one per trial. Bounded, so a higher limit is safe.
RECOMPILE_LIMIT = 64


def compile_graph(fn):
    """``fn`` compiled whole (``fullgraph``: a graph break is an error, not a slow path)."""
    limit = torch._dynamo.config.recompile_limit
    torch._dynamo.config.recompile_limit = max(limit, RECOMPILE_LIMIT)
    # dynamic_threads: the kernel asks OpenMP for the thread count at each call, so it
    # follows dql.threads' policy (by default it would keep the count it was compiled at).
    return torch.compile(fn, fullgraph=True, options={"cpp.dynamic_threads": True})


class _ActorLosses(nn.Module):
    """The agent's actor losses as a module over the actor's weights, for ``functional_call``
    (which swaps a module's parameters; the losses are methods of the agent, not a forward)."""

    def __init__(self, agent: Any):
        super().__init__()
        self.actor = agent.actor
        self.losses = agent._actor_losses  # a bound method: not registered as a module

    def forward(self, batch, draws):
        return self.losses(batch, draws)


class CompiledStep:
    """One compiled graph per step for ``agent`` (a ``DiffusionQL``): see the module text."""

    def __init__(self, agent: Any):
        self.agent = agent
        self.actor_losses = _ActorLosses(agent)
        self.critic_weights = dict(agent.critic.named_parameters())
        self.actor_weights = dict(self.actor_losses.named_parameters())
        # The step's rates as one tensor (actor lr, critic lr, EMA weight), refilled each
        # step: a Python float would be a constant of the graph and recompile it.
        self.rates = torch.zeros(3, dtype=torch.float32, device=agent.device)
        self.graph = compile_graph(self._step)

    def ready(self) -> bool:
        """Whether Adam has its state (made by the first, eager, step)."""
        agent = self.agent
        return len(agent.critic_optimizer.state) == len(agent._critic_params) and len(
            agent.actor_optimizer.state
        ) == len(agent._actor_params)

    def __call__(self, batch, draws) -> torch.Tensor:
        agent, cfg = self.agent, self.agent.config
        factor = lr_factor(
            cfg.lr_schedule, agent.step, cfg.num_epochs, cfg.steps_per_epoch, cfg.eval_every
        )
        ema = ema_action(agent.step, cfg.ema_start_step, cfg.ema_every, cfg.ema_warmup)
        ema_weight = {"skip": 0.0, "sync": 1.0, "average": 1.0 - cfg.ema_decay}[ema]
        rates = (cfg.actor_lr * factor, cfg.effective_critic_lr * factor, ema_weight)
        self.rates.copy_(torch.tensor(rates, dtype=torch.float32))
        # Adam's state goes in as arguments: replaced by a checkpoint's, it is no new graph.
        critic_state = [agent.critic_optimizer.state[p] for p in agent._critic_params]
        actor_state = [agent.actor_optimizer.state[p] for p in agent._actor_params]
        return self.graph(batch, draws, self.rates, critic_state, actor_state)

    def _step(self, batch, draws, rates, critic_state, actor_state) -> torch.Tensor:
        agent, cfg, K = self.agent, self.agent.config, self.agent.members
        actor_lr, critic_lr, ema_weight = rates[0], rates[1], rates[2]
        with torch.no_grad():
            target_q = agent._backed_up_target(batch, draws.next_action_chain)

        def critic_objective(weights):
            q1, q2 = functional_call(agent.critic, weights, (batch.state, batch.action))
            loss = critic_loss(q1, q2, target_q)
            return loss.sum(), (loss, q1, q2)

        grads, (_, (loss_critic, q1, q2)) = grad_and_value(critic_objective, has_aux=True)(
            {name: p.detach() for name, p in self.critic_weights.items()}
        )
        grads = [grads[name].contiguous() for name in self.critic_weights]
        critic_grad_norm = clip_member_gradients_(grads, cfg.grad_norm, K)
        with torch.no_grad():
            adam_update_(
                agent._critic_params, grads, critic_state, critic_lr, agent.critic_optimizer
            )

        def actor_objective(weights):  # the critic, updated above, is a constant here
            losses = functional_call(self.actor_losses, weights, (batch, draws))
            return losses[2].sum(), losses  # bc_loss, q_loss, actor_loss

        grads, (_, (bc_loss, q_loss, actor_loss)) = grad_and_value(actor_objective, has_aux=True)(
            {name: p.detach() for name, p in self.actor_weights.items()}
        )
        grads = [grads[name].contiguous() for name in self.actor_weights]
        actor_grad_norm = clip_member_gradients_(grads, cfg.grad_norm, K)
        with torch.no_grad():
            adam_update_(agent._actor_params, grads, actor_state, actor_lr, agent.actor_optimizer)
            torch._foreach_lerp_(agent._critic_target_params, agent._critic_params, cfg.tau)
            torch._foreach_lerp_(agent._ema_params, agent._actor_params, ema_weight)
        metrics = [
            bc_loss,
            q_loss,
            actor_loss,
            loss_critic,
            batch_mean(0.5 * (q1 + q2)),
            batch_mean(target_q),
            actor_grad_norm,
            critic_grad_norm,
        ]
        return torch.stack(metrics, dim=1).detach()


class KernelCompileError(ConfigError):
    """torch.compile could not build the kernels (no working C++ compiler, most often): an
    input error of the set-up, shown as one line with its fix like any ``ConfigError``."""


def check_compiler(device: torch.device | str = "cpu") -> None:
    """Compile and run a small function on ``device``, so that a failure surfaces before
    training; it names the fix."""
    x = torch.linspace(-6.0, 6.0, 64, device=device)
    try:
        compile_graph(mish_with_derivative)(x)
    except Exception as error:  # any compiler failure: name the fix
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise KernelCompileError(
            f"kernels='compiled': torch.compile failed on {torch.device(device).type} "
            f"({type(error).__name__}: {first_line[:200]}); install a C++ compiler "
            "(e.g. g++) or train with --set kernels=eager"
        ) from error
