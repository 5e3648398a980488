"""The README's main job: `python sweeps/locomotion.py --smoke` runs a real sweep from scratch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from analysis.aggregate import task_table
from analysis.loading import load

SCRIPT = Path(__file__).resolve().parents[1] / "sweeps" / "locomotion.py"
LEARNS = "invertedpendulum-random-local"  # 0 = its random-policy data's mean return


def test_smoke_sweep_collects_its_data_runs_four_trials_per_task_and_learns(tmp_path):
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)  # its own local Ray, as on a fresh machine
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "sweep-data").glob("*.hdf5")) == [
        "hopper-random-v2-3000.hdf5",
        "invertedpendulum-random-local-10000.hdf5",
        "walker2d-random-v2-3000.hdf5",
    ]
    experiment = tmp_path / "sweep-results" / "locomotion" / "sweep"
    statuses = json.loads((experiment / "trial_status.json").read_text())
    for task, env_id in (
        ("hopper-random-v2", "Hopper-v5"),
        ("walker2d-random-v2", "Walker2d-v5(xml_file=walker2d.xml)"),
        (LEARNS, "InvertedPendulum-v5(max_episode_steps=100)"),
    ):
        assert sum(s["task"] == task for s in statuses.values()) == 4
        rows = [
            json.loads(line)
            for f in experiment.glob(f"*_{task}_*/result.json")
            for line in f.read_text().splitlines()
        ]
        assert rows and all(row["env_id"] == env_id and row["task"] == task for row in rows)
    # The learning task: the configuration the search reports scores well above the data,
    # and the summary says so (with its local references).
    table = task_table(load(str(experiment))).set_index("task")
    assert table.loc[LEARNS, "last_mean"] > 20, table.loc[LEARNS]
    assert f"{LEARNS}: eta=" in result.stdout and "local reference returns" in result.stdout
