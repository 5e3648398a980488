"""The tuning-budget view against cases computed by hand, and in the summary and plots."""

import numpy as np
import pytest

from analysis import plots
from analysis.aggregate import seed_scores
from analysis.budget import budget_views, episode_noise
from analysis.cli import main
from analysis.loading import load
from analysis.statistics import tuning_budget_curve
from analysis.synthetic import FakeTrial, write_sweep


def test_without_noise_every_budget_that_tries_each_trial_picks_the_better_one():
    curve = tuning_budget_curve([10.0, 30.0], [], 6, reps=2000, resample_trials=False)
    assert curve.mean[1:] == pytest.approx([30.0] * 5)
    # One episode tries one trial, the first in a random order: the mean of the two.
    assert curve.mean[0] == pytest.approx(20.0, abs=1.0)


def test_resampling_the_trials_misses_the_better_one_a_quarter_of_the_time():
    curve = tuning_budget_curve([10.0, 30.0], [], 4, reps=8000, seed=1)
    # Two draws from {10, 30}: both are 10 with chance 1/4, so 3/4 * 30 + 1/4 * 10 = 25.
    assert curve.mean[-1] == pytest.approx(25.0, abs=0.5)


def test_with_huge_noise_a_small_budget_chooses_at_random():
    noise = np.random.default_rng(0).normal(0.0, 1e5, 1000)
    curve = tuning_budget_curve([10.0, 30.0, 50.0], noise, 5, reps=4000, resample_trials=False)
    assert curve.mean[:5] == pytest.approx([30.0] * 5, abs=1.5)
    small = tuning_budget_curve([10.0, 30.0, 50.0], noise / 1e4, 5, reps=4000)
    assert small.mean[-1] > curve.mean[-1] + 5  # less noise, a better choice


def test_the_curve_is_reproducible_from_its_seed_and_bands_its_mean():
    args = ([1.0, 5.0, 9.0], [-3.0, 3.0], 30)
    first, again = tuning_budget_curve(*args, seed=3), tuning_budget_curve(*args, seed=3)
    assert np.array_equal(first.mean, again.mean)
    assert np.all(first.low <= first.high) and np.all(first.low <= first.mean + 1e-9)
    assert first.at(10**6) == first.mean[-1]


def test_one_episode_noise_is_the_seed_spread_scaled_by_the_episodes_behind_a_score(tmp_path):
    write_sweep(tmp_path, "hopper-medium-v2", [FakeTrial([[10.0, 20.0]]), FakeTrial([[40.0]])])
    per_seed = seed_scores(load(str(tmp_path)).rows)
    # Seeds 10 and 20: residuals +-5, times sqrt(2 / 1) for two seeds, times sqrt(4 episodes).
    assert sorted(episode_noise(per_seed, 4)) == pytest.approx([-5 * 2**0.5 * 2, 5 * 2**0.5 * 2])


def test_summary_line_and_figure_and_a_task_with_one_trial_is_skipped(tmp_path, capsys):
    trials = [FakeTrial([[20.0 + 10 * i, 24.0 + 10 * i]] * 2) for i in range(3)]
    write_sweep(tmp_path, "hopper-medium-v2", trials)
    write_sweep(tmp_path, "walker2d-medium-v2", [FakeTrial([[50.0]])])
    views = budget_views(load(str(tmp_path)))
    assert [v.task for v in views] == ["hopper-medium-v2"]
    # 3 trials x 2 evaluations x 2 seeds x 10 episodes.
    assert views[0].sweep_episodes == 120 and views[0].best == 42.0 and views[0].noisy
    assert main(["summary", str(tmp_path)]) == 0
    line = [s for s in capsys.readouterr().out.splitlines() if "Tuning budget view" in s]
    assert len(line) == 1 and "with 10 evaluation episodes per choice" in line[0]
    assert "(sweep used 120: " in line[0]
    assert main(["plot", str(tmp_path), "--out", str(tmp_path / "plots")]) == 0
    assert (tmp_path / "plots" / "tuning_budget.png").exists()
    write_sweep(tmp_path / "one", "walker2d-medium-v2", [FakeTrial([[50.0]])])
    with pytest.raises(plots.NothingToShow, match="2 or more scored search trials"):
        plots.tuning_budget(load(str(tmp_path / "one")), tmp_path / "none")
    write_sweep(tmp_path / "single", "walker2d-medium-v2", [FakeTrial([[50.0]])] * 2)
    assert not budget_views(load(str(tmp_path / "single")))[0].noisy  # no seed spread to use
