"""The D4RL reader against hand-made files with known answers, and D4RL's own loop."""

import h5py
import numpy as np
import pytest

from dql.data import DatasetError, load_d4rl
from dql.data.d4rl import D4RLRows, qlearning_transitions


def write_d4rl(path, terminals, timeouts=None, dtype=np.float32, replay_style=False):
    """A D4RL-layout file whose observation i is (i, 10 i): next_obs shows which row it is."""
    n = len(terminals)
    rows = np.arange(n, dtype=np.float64)
    with h5py.File(path, "w") as f:
        f.create_dataset("observations", data=np.stack([rows, 10 * rows], 1).astype(dtype))
        f.create_dataset("actions", data=(-rows[:, None]).astype(dtype), compression="gzip")
        rewards = (0.5 * rows).astype(dtype)
        f.create_dataset("rewards", data=rewards[:, None] if replay_style else rewards)
        f.create_dataset("terminals", data=np.asarray(terminals, dtype=bool))
        if timeouts is not None:
            f.create_dataset("timeouts", data=np.asarray(timeouts, dtype=bool))
        # Keys D4RL ignores: a stored next_observations (wrong on purpose) and infos/*.
        f.create_dataset("next_observations", data=np.full((n, 2), -1.0, dtype))
        f.create_dataset("infos/qpos", data=np.zeros((n, 3)))
    return path


def flags(n, at):
    out = np.zeros(n, dtype=bool)
    out[list(at)] = True
    return out


def kept_rows(t):
    """Which file rows the transitions came from (observation i is (i, 10 i))."""
    return t.observations[:, 0].astype(int).tolist()


def d4rl_loop(rows, terminate_on_end=False, max_episode_steps=1000):
    """D4RL's qlearning_dataset loop, line for line: the kept rows and their done flags."""
    kept, dones, episode_step = [], [], 0
    for i in range(len(rows.rewards) - 1):
        done_bool = bool(rows.terminals[i])
        if rows.timeouts is not None:
            final_timestep = rows.timeouts[i]
        else:
            final_timestep = episode_step == max_episode_steps - 1
        if (not terminate_on_end) and final_timestep:
            episode_step = 0
            continue
        if done_bool or final_timestep:
            episode_step = 0
        kept.append(i)
        dones.append(done_bool)
        episode_step += 1
    return kept, dones


def test_next_observation_is_the_next_row_and_terminal_rows_are_kept(tmp_path):
    path = write_d4rl(tmp_path / "d.hdf5", flags(8, [2]), flags(8, [5]))
    t = load_d4rl(path)
    assert kept_rows(t) == [0, 1, 2, 3, 4, 6]  # row 5 is a time limit, row 7 is the last
    np.testing.assert_array_equal(t.next_observations[:, 0], [1, 2, 3, 4, 5, 7])
    np.testing.assert_array_equal(t.terminals, [0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(t.rewards, [0, 0.5, 1, 1.5, 2, 3])
    np.testing.assert_array_equal(t.actions[:, 0], [0, -1, -2, -3, -4, -6])


def test_arrays_are_float32_with_flat_rewards_and_terminals(tmp_path):
    t = load_d4rl(write_d4rl(tmp_path / "d.hdf5", flags(6, [1]), flags(6, [])))
    for name in ("observations", "actions", "next_observations", "rewards", "terminals"):
        assert getattr(t, name).dtype == np.float32, name
    assert t.rewards.shape == (5,) and t.terminals.shape == (5,)


def test_the_last_row_is_dropped_whatever_its_flags(tmp_path):
    for last in ("terminal", "timeout"):
        terminals = flags(5, [4] if last == "terminal" else [])
        timeouts = flags(5, [4] if last == "timeout" else [])
        t = load_d4rl(write_d4rl(tmp_path / f"{last}.hdf5", terminals, timeouts))
        assert kept_rows(t) == [0, 1, 2, 3]


def test_a_file_ending_mid_episode_keeps_every_row_but_the_last(tmp_path):
    path = write_d4rl(tmp_path / "d.hdf5", flags(7, [1]), flags(7, [3]))
    t = load_d4rl(path)
    assert kept_rows(t) == [0, 1, 2, 4, 5]  # rows 4-6 are an unfinished episode
    assert t.next_observations[-1, 0] == 6


def test_count_rule_transitions_are_rows_minus_one_minus_timeouts(tmp_path):
    rng = np.random.default_rng(0)
    n = 500
    timeouts = rng.random(n) < 0.05
    terminals = (rng.random(n) < 0.05) & ~timeouts
    t = load_d4rl(write_d4rl(tmp_path / "d.hdf5", terminals, timeouts))
    assert len(t) == (n - 1) - timeouts[: n - 1].sum()


def test_terminate_on_end_keeps_time_limit_rows_as_not_done(tmp_path):
    path = write_d4rl(tmp_path / "d.hdf5", flags(8, [2]), flags(8, [5]))
    t = load_d4rl(path, terminate_on_end=True)
    assert kept_rows(t) == [0, 1, 2, 3, 4, 5, 6]
    np.testing.assert_array_equal(t.terminals, [0, 0, 1, 0, 0, 0, 0])


def test_v0_file_without_timeouts_counts_steps_with_d4rls_off_by_one(tmp_path):
    # Time limit 3. Counter: rows 0,1,2 -> 0,1,2 (row 2 skipped, back to 0); row 3 -> 0;
    # row 4 -> 1 is terminal, so the counter restarts at 1, not 0: rows 5,6 -> 1,2 (row 6
    # skipped); rows 7,8,9 -> 0,1,2 (row 9 skipped); row 10 -> 0; row 11 is the last.
    path = write_d4rl(tmp_path / "v0.hdf5", flags(12, [4]))
    t = load_d4rl(path, max_episode_steps=3)
    assert kept_rows(t) == [0, 1, 3, 4, 5, 7, 8, 10]
    np.testing.assert_array_equal(t.terminals, [0, 0, 0, 1, 0, 0, 0, 0])


def test_v0_terminal_on_the_limit_row_is_skipped_and_the_counter_restarts_at_0(tmp_path):
    # Row 2 is terminal AND the counter's limit row: D4RL skips it; rows 3,4,5 -> 0,1,2.
    path = write_d4rl(tmp_path / "v0.hdf5", flags(8, [2]))
    assert kept_rows(load_d4rl(path, max_episode_steps=3)) == [0, 1, 3, 4, 6]


def test_float64_replay_file_with_n_by_1_rewards(tmp_path):
    path = write_d4rl(tmp_path / "r.hdf5", flags(6, [1]), flags(6, [3]), np.float64, True)
    with h5py.File(path) as f:
        assert f["rewards"].shape == (6, 1) and f["observations"].dtype == np.float64
    t = load_d4rl(path)
    assert t.rewards.shape == (4,) and t.observations.dtype == np.float32
    np.testing.assert_array_equal(t.rewards, [0, 0.5, 1, 2])


def test_vectorised_reader_matches_d4rls_loop_on_random_flags():
    rng = np.random.default_rng(1)
    for case in range(400):
        n = int(rng.integers(2, 80))
        terminals = rng.random(n) < rng.uniform(0, 0.4)
        timeouts = rng.random(n) < 0.15 if case % 2 else None
        toe, steps = bool(case % 3 == 0), int(rng.integers(2, 9))
        obs = np.arange(n, dtype=np.float32)[:, None]
        rows = D4RLRows(obs, obs, np.zeros(n), terminals, timeouts)
        kept, dones = d4rl_loop(rows, toe, steps)
        if not kept:
            continue
        t = qlearning_transitions(rows, toe, steps)
        assert kept_rows(t) == kept, (case, n, steps, toe)
        np.testing.assert_array_equal(t.terminals, np.asarray(dones, np.float32))
        np.testing.assert_array_equal(t.next_observations[:, 0], np.asarray(kept) + 1)


def one_line_error(path, match):
    with pytest.raises(DatasetError, match=match) as error:
        load_d4rl(path)
    assert "\n" not in str(error.value)
    return str(error.value)


def test_missing_file_says_how_to_download(tmp_path):
    message = one_line_error(tmp_path / "nope.hdf5", "does not exist")
    assert "python -m dql data download" in message


def test_truncated_file(tmp_path):
    path = tmp_path / "cut.hdf5"
    write_d4rl(path, np.random.default_rng(0).random(5000) < 0.01, np.zeros(5000))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    message = one_line_error(path, "not a readable HDF5 file")
    assert "download it again" in message


def test_a_file_that_is_not_hdf5(tmp_path):
    path = tmp_path / "text.hdf5"
    path.write_text("observations,actions\n1,2\n")
    one_line_error(path, "truncated, corrupt or not HDF5")


# The four keys a D4RL file must hold, well formed; each test below breaks one.
GOOD = dict(
    observations=np.zeros((4, 2)),
    actions=np.zeros((4, 1)),
    rewards=np.zeros(4),
    terminals=np.zeros(4, bool),
)


def write_keys(path, **arrays):
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            if value is not None:
                f[key] = value
    return path


def test_missing_keys_are_named_with_what_was_found(tmp_path):
    path = write_keys(tmp_path / "keys.hdf5", **{**GOOD, "terminals": None})
    one_line_error(path, r"lacks the key\(s\) terminals \(found: actions, observations, rewards\)")


def test_row_counts_that_disagree(tmp_path):
    path = write_keys(tmp_path / "rows.hdf5", **{**GOOD, "actions": np.zeros((3, 1))})
    one_line_error(path, "disagree on the number of rows .*actions 3")


def test_observations_of_the_wrong_rank(tmp_path):
    path = write_keys(tmp_path / "rank.hdf5", **{**GOOD, "observations": np.zeros(4)})
    one_line_error(path, r"observations must be 2-D .*\(4,\)")


@pytest.mark.parametrize(
    ("key", "bad", "expected"),
    [
        ("rewards", np.array([0, np.nan, 0, np.nan]), "rewards holds NaN or inf in 2 rows"),
        ("observations", np.array([[0, 0], [0, 0], [0, 0], [np.inf, 0]]), "observations holds"),
        ("actions", np.array([[0.0], [-np.inf], [0], [0]]), "actions holds NaN or inf in 1 row "),
        ("terminals", np.array([0.0, 0, np.nan, 1]), "terminals holds NaN or inf in 1 row "),
    ],
)
def test_nan_or_inf_names_the_array_the_count_and_the_first_row(tmp_path, key, bad, expected):
    path = write_keys(tmp_path / "nan.hdf5", **{**GOOD, key: bad})
    message = one_line_error(path, expected)
    first = int(np.flatnonzero(~np.isfinite(bad).reshape(4, -1).all(axis=1))[0])
    assert f"(the first at row {first})" in message


def test_a_truncated_collected_file_says_to_collect_it_again(hopper_file, tmp_path):
    path = tmp_path / "hopper-random-v2-3000.hdf5"
    path.write_bytes(hopper_file.read_bytes()[:20_000])
    message = one_line_error(path, "not a readable HDF5 file")
    assert "data download" not in message
    assert "delete it and collect it again with `python -m dql collect --env Hopper-v5" in message
    assert "--smoke" in message


def test_a_truncated_file_with_d4rls_name_names_its_task(tmp_path):
    path = tmp_path / "hopper_medium-v2.hdf5"
    write_d4rl(path, np.zeros(3000, bool), np.zeros(3000))
    path.write_bytes(path.read_bytes()[:4000])
    message = one_line_error(path, "not a readable HDF5 file")
    assert "`python -m dql data download hopper-medium-v2`" in message
