"""Aggregate metrics against numbers computed by hand."""

import numpy as np
import pytest

from analysis.statistics import (
    iqm,
    iqm_ci,
    optimality_gap,
    optimality_gap_ci,
    performance_profile,
    performance_profile_band,
    probability_of_improvement,
    probability_of_improvement_ci,
)


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm([8, 1, 7, 2, 6, 3, 5, 4]) == pytest.approx((3 + 4 + 5 + 6) / 4)
    assert iqm([0, 10, 10, 1000]) == pytest.approx(10.0)  # the outlier is trimmed


def test_optimality_gap_counts_only_the_shortfall_below_gamma():
    assert optimality_gap([90, 110, 50]) == pytest.approx((10 + 0 + 50) / 3)
    assert optimality_gap([0.5, 1.5], gamma=1.0) == pytest.approx(0.25)


def test_stratified_bootstrap_interval_contains_the_hand_computed_iqm():
    scores = {"a": [1, 2, 3, 4], "b": [5, 6, 7, 8]}
    interval = iqm_ci(scores, reps=500)
    assert interval.value == pytest.approx(4.5)
    assert interval.low <= 4.5 <= interval.high
    assert interval.low >= 1 and interval.high <= 8
    gap = optimality_gap_ci(scores, gamma=10, reps=500)
    assert gap.value == pytest.approx(10 - 4.5)
    assert gap.low <= gap.value <= gap.high


def test_the_bootstrap_keeps_every_task_in_every_resample():
    # One run per task: resampling within tasks cannot change anything.
    interval = iqm_ci({"a": [1.0], "b": [2.0], "c": [3.0], "d": [4.0]}, reps=100)
    assert (interval.low, interval.value, interval.high) == pytest.approx((2.5, 2.5, 2.5))


def test_probability_of_improvement_by_hand():
    # task t: X=[1, 3] vs Y=[2, 2] wins 2 of 4 pairs; task u: a tie counts half.
    x = {"t": [1, 3], "u": [2]}
    y = {"t": [2, 2], "u": [2]}
    assert probability_of_improvement(x, y) == pytest.approx((0.5 + 0.5) / 2)
    assert probability_of_improvement({"t": [5, 6]}, {"t": [1, 2]}) == 1.0
    ci = probability_of_improvement_ci({"t": [5, 6, 7]}, {"t": [1, 2, 8]}, reps=300)
    assert ci.value == pytest.approx(6 / 9)
    assert ci.low <= ci.value <= ci.high


def test_performance_profile_weighs_tasks_equally():
    scores = {"a": [10, 20, 30, 40], "b": [50, 60]}
    profile = performance_profile(scores, [0, 25, 55, 100])
    np.testing.assert_allclose(profile, [1.0, (0.5 + 1.0) / 2, (0 + 0.5) / 2, 0.0])
    mean, low, high = performance_profile_band(scores, [25], reps=200)
    assert low[0] <= mean[0] <= high[0]


def test_non_finite_scores_are_ignored():
    assert iqm_ci({"a": [1, 2, np.nan, 3, 4]}, reps=50).value == pytest.approx(2.5)
