"""`python -m dql collect` writes files that read back like real D4RL files."""

from __future__ import annotations

import h5py
import numpy as np

from dql.__main__ import main
from dql.collect import collect
from dql.data import load_d4rl
from dql.data.d4rl import collected_command
from dql.envs import EnvSpec


def test_collected_file_has_d4rl_keys_types_and_flags(tmp_path):
    path = tmp_path / "hopper.hdf5"
    # A 40-step limit so that the file holds both true terminations and time limits.
    assert (
        main(
            [
                "collect",
                "--env",
                "Hopper-v5",
                "--steps",
                "300",
                "--out",
                str(path),
                "--max-episode-steps",
                "40",
                "--no-progress",
            ]
        )
        == 0
    )
    with h5py.File(path) as f:
        for key in ("observations", "actions", "next_observations", "rewards"):
            assert f[key].dtype == np.float32 and f[key].compression == "gzip"
        assert f["terminals"].dtype == np.bool_ and f["timeouts"].dtype == np.bool_
        assert f["observations"].shape == (300, 11) and f["actions"].shape == (300, 3)
        assert f["infos/qpos"].shape == (300, 6) and f["infos/qvel"].shape == (300, 6)
        terminals, timeouts = f["terminals"][:], f["timeouts"][:]
        assert terminals.any() and timeouts.any() and not (terminals & timeouts).any()
        assert f["metadata/env_id"][()].decode() == "Hopper-v5"
        # Episodes: a time limit comes exactly 40 steps after the previous episode's end.
        ends = np.flatnonzero(terminals | timeouts)
        lengths = np.diff(np.r_[-1, ends])
        assert (lengths[timeouts[ends]] == 40).all()
        assert (lengths[terminals[ends]] < 40).all()
    # The user block names the command that makes the file again (read without HDF5).
    assert collected_command(path) == (
        f"python -m dql collect --env Hopper-v5 --steps 300 --out {path} --seed 0 "
        "--max-episode-steps 40"
    )


def test_read_back_next_observations_are_the_environments_own(tmp_path):
    path = collect(
        EnvSpec("Hopper-v5"),
        400,
        tmp_path / "h.hdf5",
        seed=3,
        max_episode_steps=30,
        show_progress=False,
    )
    with h5py.File(path) as f:
        real_next = f["next_observations"][:]
        timeouts, terminals = f["timeouts"][:], f["terminals"][:]
    t = load_d4rl(path)
    kept = np.flatnonzero(~timeouts[:-1])  # D4RL drops time-limit rows and the last row
    assert len(t) == len(kept)
    same = np.all(t.next_observations == real_next[kept], axis=1)
    # Terminal rows are kept with done = 1 and the next episode's first observation as
    # next_obs (D4RL's semantics, masked in the target); every other row matches exactly.
    assert same[~terminals[kept]].all()
    np.testing.assert_array_equal(t.terminals, terminals[kept].astype(np.float32))


def test_the_same_seed_collects_the_same_file(tmp_path):
    a = collect(EnvSpec("Hopper-v5"), 120, tmp_path / "a.hdf5", seed=5, show_progress=False)
    b = collect(EnvSpec("Hopper-v5"), 120, tmp_path / "b.hdf5", seed=5, show_progress=False)
    c = collect(EnvSpec("Hopper-v5"), 120, tmp_path / "c.hdf5", seed=6, show_progress=False)
    with h5py.File(a) as fa, h5py.File(b) as fb, h5py.File(c) as fc:
        np.testing.assert_array_equal(fa["actions"][:], fb["actions"][:])
        np.testing.assert_array_equal(fa["observations"][:], fb["observations"][:])
        assert not np.array_equal(fa["actions"][:], fc["actions"][:])
