"""`python -m dql train`: end to end on a collected file, and bad input refused up front."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import h5py
import numpy as np
import pytest

from dql.__main__ import main
from dql.scores import normalized_score

TINY = [
    "--epochs",
    "2",
    "--steps-per-epoch",
    "15",
    "--eval-every",
    "1",
    "--eval-episodes",
    "2",
    "--set",
    "hidden_dim=32",
    "--set",
    "batch_size=64",
    "--no-progress",
]


def train_args(data, out) -> list[str]:
    return ["train", "--task", "hopper-medium-v2", "--data", str(data), "--out", str(out), *TINY]


def test_train_runs_end_to_end_and_reports_normalized_scores(hopper_file, tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "dql", *train_args(hopper_file, out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2]
    last = rows[-1]
    assert last["status"] == "finished" and rows[0]["status"] == "running"
    assert last["env_id"] == "Hopper-v5" and last["mujoco_version"]
    assert last["gradient_steps"] == 30 and last["hparams"]["hidden_dim"] == 32
    assert math.isfinite(last["normalized_score"])
    assert last["normalized_score"] == pytest.approx(
        float(normalized_score("hopper-medium-v2", last["return_mean"]))
    )
    assert "normalized score" in result.stdout
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert (out / "checkpoints" / "last.pt").is_file()
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["num_epochs"] == 2 and run["versions"]["mujoco"]


def test_train_refuses_to_overwrite_a_finished_run(hopper_file, tmp_path, capsys):
    out = tmp_path / "run"
    args = train_args(hopper_file, out)
    (out).mkdir()
    (out / "results.jsonl").write_text('{"epoch": 1}\n')
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err
    assert (out / "results.jsonl").read_text() == '{"epoch": 1}\n'  # nothing lost


def _write(path, **arrays):
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f[key] = value
    return path


def _bad_files(tmp_path, hopper_file):
    truncated = tmp_path / "truncated.hdf5"
    truncated.write_bytes(hopper_file.read_bytes()[:5000])
    not_hdf5 = tmp_path / "notes.hdf5"
    not_hdf5.write_text("these are not the rollouts you are looking for\n")
    n = 50
    missing_keys = _write(tmp_path / "nokeys.hdf5", observations=np.zeros((n, 11), np.float32))
    walker = _write(
        tmp_path / "walker.hdf5",
        observations=np.zeros((n, 17), np.float32),
        actions=np.zeros((n, 6), np.float32),
        rewards=np.zeros(n, np.float32),
        terminals=np.zeros(n, bool),
        timeouts=np.zeros(n, bool),
    )
    return {
        "truncated": truncated,
        "not_hdf5": not_hdf5,
        "missing_keys": missing_keys,
        "walker": walker,
    }


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing", "python -m dql data download hopper-medium-v2"),
        ("truncated", "truncated.hdf5"),
        ("not_hdf5", "notes.hdf5"),
        ("missing_keys", "actions"),
        ("walker", "size 17"),
    ],
)
def test_bad_data_gives_one_clear_line_before_training(
    case, expected, hopper_file, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("D4RL_DATASET_DIR", str(tmp_path / "datasets"))
    files = _bad_files(tmp_path, hopper_file)
    data = [] if case == "missing" else ["--data", str(files[case])]
    out = tmp_path / "run"
    assert main(["train", "--task", "hopper-medium-v2", *data, "--out", str(out), *TINY]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    assert expected in error
    if case == "missing":
        assert str(tmp_path / "datasets") in error  # the paths it searched
    assert not (out / "results.jsonl").exists()


def test_a_trained_run_can_be_the_behaviour_policy_of_collect(hopper_file, tmp_path):
    out = tmp_path / "run"
    assert main([*train_args(hopper_file, out), "--num-seeds", "2"]) == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert rows[-1]["seeds"] == [0, 1] and len(rows[-1]["normalized_scores"]) == 2
    collected = tmp_path / "by-policy.hdf5"
    checkpoint = out / "checkpoints" / "last.pt"
    assert (
        main(
            [
                "collect",
                "--env",
                "Hopper-v5",
                "--policy",
                str(checkpoint),
                "--steps",
                "40",
                "--out",
                str(collected),
                "--no-progress",
            ]
        )
        == 0
    )
    with h5py.File(collected) as f:
        actions = f["actions"][:]
        assert f["metadata/policy"][()].decode() == str(checkpoint)
    assert actions.shape == (40, 3) and np.abs(actions).max() <= 1.0
    assert len(np.unique(actions.round(4), axis=0)) > 1  # the policy acts on each state


def test_train_shows_steps_steps_per_second_and_time_left_within_the_epoch(
    hopper_file, tmp_path, capsys
):
    args = [a for a in train_args(hopper_file, tmp_path / "run") if a != "--no-progress"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "epoch 1" in err and "/15 [" in err and "step/s" in err  # steps of 15, rate, ETA
    assert main(train_args(hopper_file, tmp_path / "quiet")) == 0
    assert "step/s" not in capsys.readouterr().err


def test_nan_in_the_data_stops_train_and_data_info_with_the_same_line(tmp_path, capsys):
    n = 50
    rewards = np.zeros(n, np.float32)
    rewards[[7, 9, 30]] = np.nan
    path = _write(
        tmp_path / "nan.hdf5",
        observations=np.zeros((n, 11), np.float32),
        actions=np.zeros((n, 3), np.float32),
        rewards=rewards,
        terminals=np.zeros(n, bool),
        timeouts=np.zeros(n, bool),
    )
    expected = "rewards holds NaN or inf in 3 rows (the first at row 7)"
    assert main(train_args(path, tmp_path / "run")) == 2
    train_error = capsys.readouterr().err.strip()
    assert expected in train_error and len(train_error.splitlines()) == 1
    assert not (tmp_path / "run").exists()
    assert main(["data", "info", str(path)]) == 2
    assert capsys.readouterr().err.strip() == train_error


def test_abbreviated_flags_fail_with_the_subcommands_usage(capsys):
    for argv, usage in (
        (["train", "--task", "hopper-medium-v2", "--epoch", "1"], "python -m dql train"),
        (["data", "info", "x.hdf5", "--max-episode", "5"], "python -m dql data info"),
        (["collect", "--env", "Hopper-v5", "--step", "5", "--out", "x"], "python -m dql collect"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith(f"usage: {usage} ") and argv[-2] in err, err
