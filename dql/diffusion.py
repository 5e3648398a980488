"""The policy: a conditional DDPM over actions (forward noising, BC loss, reverse sampling)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dql.networks import NoisePredictor
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
    ):
        super().__init__()
        self.action_dim = action_dim
        self.T = T
        self.max_action = float(max_action)
        self.model = NoisePredictor(state_dim, action_dim, hidden_dim, time_dim)
        self.coef = diffusion_coefficients(make_betas(beta_schedule, T))
        as_buffer = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
        self.register_buffer("steps", torch.arange(T), persistent=False)
        self.register_buffer("sqrt_alpha_bar", as_buffer(self.coef.sqrt_alpha_bar), False)
        self.register_buffer(
            "sqrt_one_minus_alpha_bar", as_buffer(self.coef.sqrt_one_minus_alpha_bar), False
        )
        # Per-step constants of the reverse chain as Python floats: no indexing in the loop.
        c = self.coef
        self._recip = c.sqrt_recip_alpha_bar.tolist()
        self._recipm1 = c.sqrt_recipm1_alpha_bar.tolist()
        self._mean_x0 = c.posterior_mean_coef1.tolist()
        self._mean_xt = c.posterior_mean_coef2.tolist()
        self._std = c.posterior_std.tolist()

    # ---- forward process and the behaviour-cloning loss ----
    def q_sample(self, a0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(alpha_bar_t) a0 + sqrt(1 - alpha_bar_t) eps."""
        return self.sqrt_alpha_bar[t, None] * a0 + self.sqrt_one_minus_alpha_bar[t, None] * noise

    def bc_loss(
        self, actions: torch.Tensor, states: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """MSE between true and predicted noise, t ~ U{0..T-1} per sample."""
        t = torch.randint(0, self.T, (len(actions),), generator=generator, device=actions.device)
        noise = torch.randn(
            actions.shape, generator=generator, device=actions.device, dtype=actions.dtype
        )
        time_embedding = self.model.embed_time(self.steps)[t]
        predicted = self.model(self.q_sample(actions, t, noise), time_embedding, states)
        return F.mse_loss(predicted, noise)

    # ---- reverse process ----
    def reverse_step(
        self, x: torch.Tensor, eps: torch.Tensor, i: int, noise: torch.Tensor | None
    ) -> torch.Tensor:
        """x_i -> x_{i-1}: reconstruct x0 (clamped), take the posterior mean, add noise if i > 0."""
        x0 = (self._recip[i] * x - self._recipm1[i] * eps).clamp(-self.max_action, self.max_action)
        mean = self._mean_x0[i] * x0 + self._mean_xt[i] * x
        if i == 0 or noise is None:
            return mean
        return mean + self._std[i] * noise

    def sample(
        self, states: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One action per state; differentiable through all T steps (fixed noise draws)."""
        n = len(states)
        draws = torch.randn((self.T, n, self.action_dim), generator=generator, device=states.device)
        time_embedding = self.model.embed_time(self.steps)  # (T, time_dim), once per chain
        x = draws[0]
        for k, i in enumerate(reversed(range(self.T))):
            eps = self.model(x, time_embedding[i].expand(n, -1), states)
            x = self.reverse_step(x, eps, i, draws[k + 1] if i > 0 else None)
        return x.clamp(-self.max_action, self.max_action)

    def forward(self, states: torch.Tensor, generator: torch.Generator | None = None):
        return self.sample(states, generator)
