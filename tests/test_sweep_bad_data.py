"""A dataset with NaN stops a sweep before Ray starts, with the reader's one line (exit 2).

Its own file so that it needs no Ray cluster fixture: the check runs in ``make_plan``.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

pytest.importorskip("ray")


def test_nan_in_a_sweeps_data_fails_in_one_line_before_any_trial(tmp_path, capsys):
    from sweeps.locomotion import SUITE
    from sweeps.runner import main

    n = 50
    observations = np.zeros((n, 11), np.float32)
    observations[[4, 20], 3] = np.inf
    path = tmp_path / "nan.hdf5"
    with h5py.File(path, "w") as f:
        f["observations"] = observations
        f["actions"] = np.zeros((n, 3), np.float32)
        f["rewards"] = np.zeros(n, np.float32)
        f["terminals"] = np.zeros(n, bool)
        f["timeouts"] = np.zeros(n, bool)
    args = ["--tasks", "hopper-medium-v2", "--data", f"hopper-medium-v2={path}"]
    assert main(SUITE, [*args, "--storage", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    assert "observations holds NaN or inf in 2 rows (the first at row 4)" in error
    assert not (tmp_path / "out" / "locomotion").exists()
