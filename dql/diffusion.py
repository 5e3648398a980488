"""The policy: a conditional DDPM over actions (forward noising, BC loss, reverse sampling).

Works on plain (n, ...) batches, or on (K, n, ...) batches for a K-member policy (one copy
per seed). Every random draw can be passed in instead of drawn, so that K members can each
draw from their own generator, in the order a single agent draws.
"""

from __future__ import annotations

import torch
from torch import nn

from dql.chain import ChainConstants, ReverseChain, reverse_step, run_chain
from dql.networks import NoisePredictor, linear_layers
from dql.schedules import diffusion_coefficients, make_betas


class DiffusionPolicy(nn.Module):
    """pi(a|s) as T denoising steps of ``NoisePredictor``; sampling keeps the gradient."""

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        T: int = 5,
        beta_schedule: str = "vp",
        max_action: float = 1.0,
        hidden_dim: int = 256,
        time_dim: int = 16,
        members: int = 1,
    ):
        super().__init__()
        self.action_dim = action_dim
        self.T = T
        self.max_action = float(max_action)
        self.members = members
        # The reverse chain as one node with a hand-written backward (``dql.chain``); False
        # runs it step by step through ``self.model``, which a compiler can then fuse (as
        # it always runs while torch.compile traces it: ``dql.kernels``).
        self.fused_chain = True
        self.model = NoisePredictor(state_dim, action_dim, hidden_dim, time_dim, members)
        self.coef = diffusion_coefficients(make_betas(beta_schedule, T))
        as_buffer = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
        self.register_buffer("steps", torch.arange(T), persistent=False)
        self.register_buffer("sqrt_alpha_bar", as_buffer(self.coef.sqrt_alpha_bar), False)
        self.register_buffer(
            "sqrt_one_minus_alpha_bar", as_buffer(self.coef.sqrt_one_minus_alpha_bar), False
        )
        # Per-step constants of the reverse chain as Python floats: no indexing in the loop.
        c = self.coef
        self.chain_constants = ChainConstants(
            recip=c.sqrt_recip_alpha_bar.tolist(),
            recipm1=c.sqrt_recipm1_alpha_bar.tolist(),
            mean_x0=c.posterior_mean_coef1.tolist(),
            mean_xt=c.posterior_mean_coef2.tolist(),
            std=c.posterior_std.tolist(),
            max_action=self.max_action,
        )

    def _time_embeddings(self, states: torch.Tensor) -> torch.Tensor:
        """All T learned embeddings, once: (T, time_dim), or (K, T, time_dim) per member."""
        steps = self.steps if states.dim() == 2 else self.steps.expand(len(states), -1)
        return self.model.embed_time(steps)

    # ---- forward process and the behaviour-cloning loss ----
    def q_sample(self, a0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(alpha_bar_t) a0 + sqrt(1 - alpha_bar_t) eps."""
        return (
            self.sqrt_alpha_bar[t].unsqueeze(-1) * a0
            + self.sqrt_one_minus_alpha_bar[t].unsqueeze(-1) * noise
        )

    def bc_draws(
        self,
        shape: tuple[int, ...],
        generator: torch.Generator | None = None,
        device: torch.device | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The BC loss's random draws for samples of ``shape`` ((n,) or (K, n)): steps
        t ~ U{0..T-1}, then noise eps."""
        t = torch.randint(0, self.T, shape, generator=generator, device=device)
        noise = torch.randn((*shape, self.action_dim), generator=generator, device=device)
        return t, noise

    def bc_loss(
        self,
        actions: torch.Tensor,
        states: torch.Tensor,
        generator: torch.Generator | None = None,
        draws: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """MSE between true and predicted noise, t ~ U{0..T-1} per sample.

        One loss for a plain batch; one per member, shape (K,), for (K, n, ...) batches.
        ``draws`` (from ``bc_draws``) replaces drawing from ``generator``.
        """
        if draws is None:
            draws = self.bc_draws(tuple(actions.shape[:-1]), generator, actions.device)
        t, noise = draws
        time_embedding = torch.take_along_dim(
            self._time_embeddings(states), t.unsqueeze(-1), dim=-2
        )
        predicted = self.model(self.q_sample(actions, t, noise), time_embedding, states)
        return (predicted - noise).square().mean(dim=(-2, -1))

    # ---- reverse process ----
    def chain_draws(
        self,
        shape: tuple[int, ...],
        generator: torch.Generator | None = None,
        device: torch.device | None = None,
    ) -> torch.Tensor:
        """The chain's noise for states of ``shape`` ((n,) or (K, n)): x_T, then one draw per
        noisy step, stacked as (..., T, n, A)."""
        *members, n = shape
        return torch.randn(
            (*members, self.T, n, self.action_dim), generator=generator, device=device
        )

    def sample(
        self,
        states: torch.Tensor,
        generator: torch.Generator | None = None,
        draws: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One action per state; differentiable through all T steps (fixed noise draws).

        ``draws`` (from ``chain_draws``) replaces drawing from ``generator``.
        """
        if draws is None:
            draws = self.chain_draws(tuple(states.shape[:-1]), generator, states.device)
        plain = states.dim() == 2  # one member's (n, S) states: run as K = 1
        if plain:
            states, draws = states.unsqueeze(0), draws.unsqueeze(0)
        time_embedding = self._time_embeddings(states)  # (K, T, D), once per chain
        if not self.fused_chain or torch.compiler.is_compiling():
            actions = self._sample_step_by_step(states, draws, time_embedding)
            return actions.squeeze(0) if plain else actions
        layers = linear_layers(self.model.trunk)
        weights = [p for layer in layers for p in layer.parameters()]
        low = layers[1].product_dtype  # the hidden layers' (``use_low_precision``)
        if torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters()):
            actions = ReverseChain.apply(
                self.chain_constants,
                low,
                draws,
                states,
                time_embedding,
                *weights,
            )
        else:
            actions = run_chain(
                self.chain_constants,
                draws,
                states,
                time_embedding,
                weights,
                False,
                low,
            )[0]
        return actions.squeeze(0) if plain else actions

    def _sample_step_by_step(self, states, draws, time_embedding) -> torch.Tensor:
        """The same chain through ``self.model`` one step at a time, recorded by autograd:
        the path for a compiler, which fuses it and derives its backward (``dql.kernels``,
        and a compiled noise predictor: ``SeedEnsemble(compile=...)``)."""
        c = self.chain_constants
        x = draws[:, 0].clone(memory_format=torch.contiguous_format)  # one layout: no recompiles
        for k, i in enumerate(reversed(range(self.T))):
            step_embedding = time_embedding[:, i : i + 1].expand(*x.shape[:-1], -1)
            eps = self.model(x, step_embedding, states)
            x = reverse_step(c, x, eps, i, draws[:, k + 1] if i > 0 else None)[0]
        return x.clamp(-c.max_action, c.max_action)

    def forward(self, states: torch.Tensor, generator: torch.Generator | None = None):
        return self.sample(states, generator)
