"""The README's main job: `python sweeps/locomotion.py --smoke` runs a real sweep from scratch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "sweeps" / "locomotion.py"


def test_smoke_sweep_collects_its_data_and_runs_four_trials_per_task(tmp_path):
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
        "walker2d-random-v2-3000.hdf5",
    ]
    experiment = tmp_path / "sweep-results" / "locomotion" / "sweep"
    statuses = json.loads((experiment / "trial_status.json").read_text())
    for task, env_id in (
        ("hopper-random-v2", "Hopper-v5"),
        ("walker2d-random-v2", "Walker2d-v5(xml_file=walker2d.xml)"),
    ):
        assert sum(s["task"] == task for s in statuses.values()) == 4
        rows = [
            json.loads(line)
            for f in experiment.glob(f"*_{task}_*/result.json")
            for line in f.read_text().splitlines()
        ]
        assert rows and all(row["env_id"] == env_id and row["task"] == task for row in rows)
