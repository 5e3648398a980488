"""Aggregates of sweep folders written with known numbers."""

import numpy as np
import pandas as pd
import pytest

from analysis.aggregate import (
    Selection,
    domain_averages,
    offline_pick,
    run_scores,
    seed_scores,
    task_table,
    trial_scores,
)
from analysis.loading import load
from analysis.statistics import iqm, iqm_ci
from analysis.synthetic import FakeTrial, write_sweep


def test_last_best_and_best_of_mean_by_hand(tmp_path):
    # seed 0: 10, 50, 30; seed 1: 40, 20, 30
    write_sweep(tmp_path, "hopper-medium-v2", [FakeTrial([[10, 40], [50, 20], [30, 30]])])
    trial = trial_scores(load(str(tmp_path))).iloc[0]
    assert trial["last_mean"] == 30 and trial["last_spread"] == 0
    # the paper's convention: each seed's own best evaluation, then mean and std over seeds
    assert trial["best_mean"] == 45 and trial["best_spread"] == pytest.approx(
        np.std([50, 40], ddof=1)
    )
    # the stricter one: the evaluation with the best seed mean (epoch 100: 50 and 20)
    assert trial["best_of_mean_mean"] == 35 and trial["best_of_mean_epoch"] == 100
    assert trial["best_of_mean_spread"] == pytest.approx(np.std([50, 20], ddof=1))
    se = trial_scores(load(str(tmp_path)), Selection(spread="se")).iloc[0]
    assert se["best_spread"] == pytest.approx(np.std([50, 40], ddof=1) / np.sqrt(2))


def test_offline_rule_indexes_the_argsort_unlike_the_released_bug():
    losses = np.array([0.9, 0.5, 0.7, 0.6])
    assert offline_pick(losses, 0) == 1  # smallest bc_loss
    assert offline_pick(losses, 1) == 3  # second smallest
    assert offline_pick(losses, 9) == 0  # clipped to the largest
    released_bug = int(np.flatnonzero(np.argsort(losses) == 1)[0])
    assert released_bug == 0 != offline_pick(losses, 1)


def test_offline_selected_score_per_seed_with_the_preset_top_k(tmp_path):
    scores = [[10, 1], [20, 2], [30, 3], [40, 4]]
    losses = [[0.9, 0.1], [0.5, 0.2], [0.7, 0.3], [0.6, 0.4]]
    write_sweep(tmp_path, "hopper-medium-v2", [FakeTrial(scores, losses, {"top_k": 1})])
    per_seed = seed_scores(load(str(tmp_path)).rows).set_index("seed")
    assert per_seed.loc[0, "offline"] == 40 and per_seed.loc[0, "offline_epoch"] == 200
    assert per_seed.loc[1, "offline"] == 2
    override = seed_scores(load(str(tmp_path)).rows, top_k=0).set_index("seed")
    assert list(override["offline"]) == [20, 1]


def test_confirm_rows_are_reported_when_present_and_search_chooses_otherwise(tmp_path):
    write_sweep(
        tmp_path, "hopper-medium-v2", [FakeTrial([[60], [70]]), FakeTrial([[90]], finished=False)]
    )
    write_sweep(tmp_path, "walker2d-medium-v2", [FakeTrial([[20, 30]]), FakeTrial([[50, 70]])])
    write_sweep(tmp_path, "walker2d-medium-v2", [FakeTrial([[40, 44, 48]])], stage="confirm")
    table = task_table(load(str(tmp_path))).set_index("task")
    # finished trials first, even though the running one scores higher so far
    assert table.loc["hopper-medium-v2", "source"] == "search"
    assert table.loc["hopper-medium-v2", "last_mean"] == 70
    assert table.loc["walker2d-medium-v2", "source"] == "confirm"
    assert table.loc["walker2d-medium-v2", "last_mean"] == 44
    search_only = task_table(load(str(tmp_path)), Selection(prefer_confirm=False))
    assert search_only.set_index("task").loc["walker2d-medium-v2", "last_mean"] == 60


def test_tuning_budget_counts_search_evaluations_and_episodes(tmp_path):
    write_sweep(
        tmp_path,
        "hopper-medium-v2",
        [FakeTrial([[1, 2], [3, 4]]), FakeTrial([[5, 6]]), FakeTrial([], error="boom")],
    )
    write_sweep(tmp_path, "hopper-medium-v2", [FakeTrial([[1, 2, 3]] * 5)], stage="confirm")
    row = task_table(load(str(tmp_path))).iloc[0]
    assert row["search_trials"] == 3
    assert row["tuning_evaluations"] == 3  # 2 + 1 scored evaluations
    assert row["tuning_episodes"] == 3 * 2 * 10  # evaluations x seeds x 10 episodes


def test_domain_average_is_missing_when_a_task_is():
    frame = pd.DataFrame({"domain": ["locomotion"] * 2 + ["antmaze"], "x": [1.0, np.nan, 4.0]})
    averages = domain_averages(frame, ["x"]).set_index("domain")["x"]
    assert np.isnan(averages["locomotion"]) and averages["antmaze"] == 4.0


def test_iqm_of_a_sweep_by_hand_and_its_interval(tmp_path):
    write_sweep(tmp_path, "hopper-medium-v2", [FakeTrial([[10, 20, 30, 40]])], stage="confirm")
    write_sweep(tmp_path, "walker2d-medium-v2", [FakeTrial([[50, 60, 70, 80]])], stage="confirm")
    scores = run_scores(load(str(tmp_path)), "last")
    assert iqm(np.concatenate(list(scores.values()))) == pytest.approx((30 + 40 + 50 + 60) / 4)
    interval = iqm_ci(scores, reps=500)
    assert interval.low <= 45 <= interval.high


def test_compute_is_summed_per_task_and_stage_in_gpu_or_cpu_hours():
    from analysis.aggregate import compute_cost, cost_text

    trials = pd.DataFrame(
        {
            "task": ["hopper-medium-v2"] * 3 + ["bandit"],
            "stage": ["search", "search", "confirm", "search"],
            "gpu_seconds": [3600.0, 1800.0, 360.0, 0.0],
            "cpu_seconds": [7200.0, 3600.0, 720.0, 900.0],
        }
    )
    cost = compute_cost(trials).set_index(["task", "stage"])
    assert cost.loc[("hopper-medium-v2", "search"), "gpu_hours"] == pytest.approx(1.5)
    assert cost.loc[("hopper-medium-v2", "confirm"), "gpu_hours"] == pytest.approx(0.1)
    cost = cost.reset_index()
    assert cost_text(cost[cost["task"] == "bandit"]) == "0.25 CPU-h"  # no GPU: CPU-hours
    assert cost_text(cost, "search") == "1.5 GPU-h"
    older = trials.drop(columns=["gpu_seconds", "cpu_seconds"])  # rows before costs existed
    assert compute_cost(older).empty and cost_text(compute_cost(older)) is None


def test_an_extended_sweep_reports_the_confirm_rerun_of_the_configuration_the_search_chose(
    tmp_path,
):
    first = {"eta": 1.0, "T": 5, "actor_lr": 3e-4}
    later = {"eta": 2.0, "T": 8, "actor_lr": 1e-4}  # found by --extend, confirmed afterwards
    write_sweep(tmp_path / "sweep", "hopper-medium-v2",
                [FakeTrial([[50]], hparams=first), FakeTrial([[70]], hparams=later)])  # fmt: skip
    # The earlier winner's rerun happens to score higher on its fresh seeds: not the report.
    write_sweep(tmp_path / "sweep", "hopper-medium-v2", [FakeTrial([[90, 90]], hparams=first)],
                stage="confirm")  # fmt: skip
    write_sweep(tmp_path / "extend-1", "hopper-medium-v2",
                [FakeTrial([[60, 62]], hparams=later)], stage="confirm")  # fmt: skip
    row = task_table(load(str(tmp_path))).iloc[0]
    assert row["source"] == "confirm" and row["eta"] == 2.0 and row["last_mean"] == 61


def test_the_summary_pools_local_reference_tasks_apart_from_published_ones(tmp_path):
    """A local 100 is not a D4RL 100: the IQM over the D4RL tasks is theirs alone."""
    from analysis.summary import summary_text

    write_sweep(tmp_path, "hopper-medium-v2", [FakeTrial([[10, 20, 30, 40]])], stage="confirm")
    write_sweep(tmp_path, "walker2d-medium-v2", [FakeTrial([[50, 60, 70, 80]])], stage="confirm")
    local = [FakeTrial([[90, 95, 100, 100]])]
    write_sweep(tmp_path, "invertedpendulum-random-local", local, stage="confirm")
    summary = summary_text(load(str(tmp_path)))
    published = summary.split("Across 2 tasks with published references, 8 runs")[1]
    assert published.splitlines()[1].startswith(f"  IQM {(30 + 40 + 50 + 60) / 4:.1f}"), summary
    assert "Across 1 task with local references, 4 runs" in summary
