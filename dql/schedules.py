"""Beta schedules and the DDPM quantities derived from them (pure functions, float64)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def vp_betas(T: int, b_min: float = 0.1, b_max: float = 10.0) -> np.ndarray:
    """The variance-preserving schedule the paper uses: alpha_t = exp(-b_min/T - ½Δb(2t-1)/T²)."""
    t = np.arange(1, T + 1, dtype=np.float64)
    alpha = np.exp(-b_min / T - 0.5 * (b_max - b_min) * (2 * t - 1) / T**2)
    return 1.0 - alpha


def linear_betas(T: int, beta_start: float = 1e-4, beta_end: float = 2e-2) -> np.ndarray:
    """DDPM's linear schedule: T values evenly spaced from 1e-4 to 2e-2."""
    return np.linspace(beta_start, beta_end, T, dtype=np.float64)


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """Nichol & Dhariwal's cosine schedule, beta clipped to at most 0.999."""
    t = np.arange(T + 1, dtype=np.float64)
    f = np.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    return np.clip(1.0 - alpha_bar[1:] / alpha_bar[:-1], 0.0, max_beta)


BETA_SCHEDULES = {"vp": vp_betas, "linear": linear_betas, "cosine": cosine_betas}


def make_betas(name: str, T: int) -> np.ndarray:
    if name not in BETA_SCHEDULES:
        raise ValueError(f"unknown beta schedule {name!r}; choose one of {sorted(BETA_SCHEDULES)}")
    return BETA_SCHEDULES[name](T)


@dataclass(frozen=True)
class DiffusionCoefficients:
    """Everything forward noising and reverse sampling need, indexed by step 0..T-1."""

    betas: np.ndarray
    alphas: np.ndarray
    alpha_bar: np.ndarray
    alpha_bar_prev: np.ndarray
    sqrt_alpha_bar: np.ndarray  # forward noising: x_t = sqrt(ab) a + sqrt(1-ab) eps
    sqrt_one_minus_alpha_bar: np.ndarray
    sqrt_recip_alpha_bar: np.ndarray  # x0 = sqrt(1/ab) x_t - sqrt(1/ab - 1) eps
    sqrt_recipm1_alpha_bar: np.ndarray
    posterior_variance: np.ndarray  # beta (1 - ab_prev) / (1 - ab)
    posterior_log_variance_clipped: np.ndarray  # log of the above, clipped at 1e-20
    posterior_mean_coef1: np.ndarray  # multiplies x0
    posterior_mean_coef2: np.ndarray  # multiplies x_t

    @property
    def posterior_std(self) -> np.ndarray:
        """exp(½ log variance), as the released sampler computes the noise scale."""
        return np.exp(0.5 * self.posterior_log_variance_clipped)


def diffusion_coefficients(betas: np.ndarray) -> DiffusionCoefficients:
    betas = np.asarray(betas, dtype=np.float64)
    alphas = 1.0 - betas
    alpha_bar = np.cumprod(alphas)
    alpha_bar_prev = np.concatenate([[1.0], alpha_bar[:-1]])
    posterior_variance = betas * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
    return DiffusionCoefficients(
        betas=betas,
        alphas=alphas,
        alpha_bar=alpha_bar,
        alpha_bar_prev=alpha_bar_prev,
        sqrt_alpha_bar=np.sqrt(alpha_bar),
        sqrt_one_minus_alpha_bar=np.sqrt(1.0 - alpha_bar),
        sqrt_recip_alpha_bar=np.sqrt(1.0 / alpha_bar),
        sqrt_recipm1_alpha_bar=np.sqrt(1.0 / alpha_bar - 1.0),
        posterior_variance=posterior_variance,
        posterior_log_variance_clipped=np.log(np.maximum(posterior_variance, 1e-20)),
        posterior_mean_coef1=betas * np.sqrt(alpha_bar_prev) / (1.0 - alpha_bar),
        posterior_mean_coef2=(1.0 - alpha_bar_prev) * np.sqrt(alphas) / (1.0 - alpha_bar),
    )
