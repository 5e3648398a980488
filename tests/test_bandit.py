"""The paper's 2D bandit through the real command line, on a small budget."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dql.toy import (
    BEST_MODE,
    MODES,
    PICTURE_BEST_SHARE,
    PICTURE_MODE_FLOOR,
    ToyBudget,
    bandit_dataset,
    mode_shares,
    picture_check,
    quadrant_shares,
)


def test_bandit_data_has_four_equal_modes_with_their_rewards():
    data = bandit_dataset(num_samples=4000, seed=1)
    shares = mode_shares(data.actions)
    assert all(abs(share - 0.25) < 0.01 for share in shares.values())
    for name, (centre, mean_reward) in MODES.items():
        near = np.linalg.norm(data.actions - np.asarray(centre), axis=1) < 0.3
        assert abs(data.rewards[near].mean() - mean_reward) < 0.05, name
    assert data.actions.min() >= -1 and data.actions.max() <= 1


def test_toy_command_writes_plot_and_shares_bc_keeps_all_modes_ql_prefers_the_best(tmp_path):
    out = tmp_path / "toy"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "dql",
            "toy",
            "--out",
            str(out),
            "--bc-steps",
            "2000",
            "--ql-steps",
            "300",
            "--no-progress",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"diffusion_bc", "diffusion_ql"}
    assert all(set(shares) == set(MODES) for shares in summary.values())
    assert "diffusion_bc: up_left" in completed.stdout
    assert (out / "toy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run = json.loads((out / "run.json").read_text())
    assert run["configs"]["diffusion_ql"]["eta"] == 2.5 and "torch" in run["versions"]
    # The toy's schedule, not bandit_config's constant one, reaches both policies.
    assert {c["lr_schedule"] for c in run["configs"].values()} == {ToyBudget().lr_schedule}
    # How long each policy trained, and on how many threads.
    assert set(run["train_seconds"]) == set(summary)
    assert all(seconds > 0 for seconds in run["train_seconds"].values())
    assert run["torch_threads"] >= 1

    # Diffusion behaviour cloning reproduces all four modes of the data.
    assert min(summary["diffusion_bc"].values()) >= 0.12, summary
    # Diffusion-QL moves its mass toward the highest-reward mode (down-right, mean reward 5).
    quadrants = run["quadrant_shares"]
    assert quadrants["diffusion_ql"]["down_right"] >= 0.5, quadrants
    assert quadrants["diffusion_ql"]["down_right"] > quadrants["diffusion_bc"]["down_right"] + 0.2
    assert quadrants["diffusion_ql"]["down_left"] < 0.05, quadrants  # the worst mode is left

    # The verdict on the paper's picture comes from these very shares, and is printed.
    picture = run["picture"]
    assert picture["bc_smallest_mode_share"] == min(summary["diffusion_bc"].values())
    assert picture["ql_best_mode_share"] == summary["diffusion_ql"][BEST_MODE]
    assert picture["ql_best_quadrant_share"] == quadrants["diffusion_ql"][BEST_MODE]
    expected = picture["ql_best_mode_share"] >= PICTURE_BEST_SHARE and picture["bc_keeps_all_modes"]
    assert picture["reproduced"] is expected
    verdict = "yes" if expected else "no"
    assert f"the paper's picture: {verdict}." in completed.stdout


def _policy_actions(centres_and_counts, rng):
    """Actions around the given points, as a trained policy might sample them."""
    return np.concatenate(
        [rng.normal(centre, 0.03, size=(count, 2)) for centre, count in centres_and_counts]
    ).clip(-1, 1)


def test_picture_check_needs_every_bc_mode_and_most_ql_actions_on_the_best_mode():
    rng = np.random.default_rng(0)
    corner = (1.0, -1.0)  # the clamped corner beyond the best mode: in its quadrant, off it
    best = MODES[BEST_MODE][0]
    all_modes = _policy_actions([(c, 250) for c, _ in MODES.values()], rng)
    three_modes = _policy_actions([(c, 333) for n, (c, _) in MODES.items() if n != "up_left"], rng)
    on_best = _policy_actions([(best, 900), (corner, 100)], rng)
    in_corner = _policy_actions([(best, 700), (corner, 300)], rng)

    def check(bc, ql):
        return picture_check(mode_shares(bc), mode_shares(ql), quadrant_shares(ql))

    good = check(all_modes, on_best)
    assert good.reproduced and good.bc_keeps_all_modes and good.ql_on_best_mode
    assert "the paper's picture: yes." in good.summary()

    cornered = check(all_modes, in_corner)
    assert cornered.bc_keeps_all_modes and not cornered.ql_on_best_mode
    assert not cornered.reproduced
    assert cornered.ql_best_quadrant_share > 0.99  # the whole mass is in the best quadrant
    assert cornered.ql_best_mode_share < PICTURE_BEST_SHARE
    assert "clamped corner" in cornered.summary()

    lost_mode = check(three_modes, on_best)
    assert lost_mode.bc_smallest_mode_share < PICTURE_MODE_FLOOR
    assert lost_mode.ql_on_best_mode and not lost_mode.reproduced
    assert lost_mode.to_dict()["reproduced"] is False


def test_toy_refuses_impossible_budget(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "dql", "toy", "--out", str(tmp_path), "--T", "0"],
        capture_output=True,
        text=True,
    )
    assert completed.returncode != 0
    assert "T=0" in completed.stderr and not (Path(tmp_path) / "summary.json").exists()


@pytest.mark.parametrize(
    ("flag", "field", "value"),
    [("--precision", "precision", "bf16"), ("--lr-schedule", "lr_schedule", "constant")],
)
def test_toy_refuses_a_flag_and_its_set_both_before_training(tmp_path, flag, field, value):
    """--X and --set x= both given: one line naming both, nothing written."""
    command = [sys.executable, "-m", "dql", "toy", "--out", str(tmp_path / "toy")]
    command += [flag, value, "--set", f"{field}={value}"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2, completed.stderr
    assert f"{flag} and --set {field}=" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not (tmp_path / "toy").exists()
