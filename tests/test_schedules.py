"""The beta schedules and DDPM quantities, pinned to numbers computed independently."""

import math

import numpy as np
import pytest

from dql.schedules import cosine_betas, diffusion_coefficients, linear_betas, make_betas, vp_betas


def test_vp_betas_for_five_steps_match_the_paper():
    np.testing.assert_allclose(vp_betas(5), [0.196, 0.459, 0.636, 0.755, 0.835], atol=6e-4)


def test_alpha_bar_matches_the_closed_form_of_the_vp_schedule():
    # prod_k alpha_k = exp(-b_min t/T - ½ (b_max - b_min) t²/T²), since sum_{k<=t}(2k-1) = t².
    T = 5
    t = np.arange(1, T + 1)
    closed_form = np.exp(-0.1 * t / T - 0.5 * 9.9 * t**2 / T**2)
    np.testing.assert_allclose(diffusion_coefficients(vp_betas(T)).alpha_bar, closed_form)


def test_posterior_variance_by_hand():
    c = diffusion_coefficients(vp_betas(5))
    ab = [math.exp(-0.02 * t - 0.198 * t**2) for t in range(1, 6)]
    beta_2 = 1 - ab[1] / ab[0]
    assert c.posterior_variance[1] == pytest.approx(beta_2 * (1 - ab[0]) / (1 - ab[1]))
    assert c.posterior_variance[0] == 0.0
    assert c.posterior_log_variance_clipped[0] == pytest.approx(math.log(1e-20))
    # The posterior mean of step 0 is x0 itself: coef1 = 1, coef2 = 0.
    assert c.posterior_mean_coef1[0] == pytest.approx(1.0)
    assert c.posterior_mean_coef2[0] == pytest.approx(0.0)


def test_posterior_mean_coefficients_by_hand():
    c = diffusion_coefficients(np.array([0.1, 0.2, 0.3]))
    ab_prev, ab, beta = 0.9 * 0.8, 0.9 * 0.8 * 0.7, 0.3
    assert c.posterior_mean_coef1[2] == pytest.approx(beta * math.sqrt(ab_prev) / (1 - ab))
    assert c.posterior_mean_coef2[2] == pytest.approx((1 - ab_prev) * math.sqrt(0.7) / (1 - ab))
    assert c.sqrt_recipm1_alpha_bar[2] == pytest.approx(math.sqrt(1 / ab - 1))


def test_linear_schedule_spans_1e4_to_2e2():
    betas = linear_betas(5)
    np.testing.assert_allclose(betas, [1e-4, 0.005075, 0.01005, 0.015025, 0.02])


def test_cosine_schedule_follows_the_squared_cosine_and_is_clipped():
    s, T = 0.008, 10
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    c = diffusion_coefficients(cosine_betas(T))
    assert c.alpha_bar[3] == pytest.approx(f(4) / f(0), rel=1e-9)
    # At t = T the squared cosine reaches ~0, so the last beta would be ~1: it is clipped.
    assert cosine_betas(T)[-1] == 0.999


def test_unknown_schedule_is_an_error_naming_the_choices():
    with pytest.raises(ValueError, match="cosine"):
        make_betas("quadratic", 5)
