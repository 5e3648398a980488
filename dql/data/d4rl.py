"""D4RL HDF5 files -> transitions, exactly as D4RL's ``qlearning_dataset`` makes them.

Every offline-RL paper trained on ``qlearning_dataset``'s output, so our numbers are
comparable only if we drop and keep the same rows (reference/DATA.md): the next
observation is the next row, the last row is dropped, time-limit rows are skipped (unless
``terminate_on_end``), terminal rows are kept with done = 1. Files without ``timeouts``
(locomotion v0) mark the time limit by D4RL's step counter, off-by-one included.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from dql.data.errors import DatasetError
from dql.replay import Transitions

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals")
REDOWNLOAD = "delete it and download it again with `python -m dql data download TASK`"
# Files made by `python -m dql collect` start with this text in their HDF5 user block.
COLLECTED_MARK = "made by: "
USERBLOCK = 512


def collected_command(path: Path) -> str | None:
    """The ``python -m dql collect`` command that made ``path``, or None for any other file
    (read from the user block as raw bytes, so that a truncated file still tells)."""
    try:
        with open(path, "rb") as raw:
            head = raw.read(USERBLOCK)
    except OSError:
        return None
    if not head.startswith(COLLECTED_MARK.encode()):
        return None
    return head[len(COLLECTED_MARK) :].split(b"\n", 1)[0].decode(errors="replace")


def remake_advice(path: Path) -> str:
    """How to replace a damaged file: collect a collected file again, download a D4RL one,
    and say both when the file is neither marked as collected nor named as D4RL names it
    (a file collected before collect marked its files)."""
    from dql.scores import d4rl_reference_scores

    command = collected_command(path)
    if command is not None:
        return (
            f"it was made by `python -m dql collect`: delete it and collect it again with "
            f"`{command}` (a --smoke sweep collects a missing sweep-data file by itself)"
        )
    tasks = [t for t, ref in d4rl_reference_scores().items() if ref.file_name == path.name]
    if tasks:
        return REDOWNLOAD.replace("TASK", tasks[0])
    return (
        f"delete it, then for a D4RL file {REDOWNLOAD.removeprefix('delete it and ')}; for a "
        "file made by `python -m dql collect`, collect it again (a --smoke sweep collects a "
        "missing sweep-data file by itself)"
    )


@dataclass
class D4RLRows:
    """The raw rows of a D4RL file: one per environment step, episodes concatenated."""

    observations: np.ndarray  # (N, obs_dim), float32 or float64 as stored
    actions: np.ndarray  # (N, act_dim)
    rewards: np.ndarray  # (N,)
    terminals: np.ndarray  # (N,) bool
    timeouts: np.ndarray | None  # (N,) bool; None in locomotion v0 files

    def __len__(self) -> int:
        return len(self.rewards)


def read_d4rl(path: str | os.PathLike) -> D4RLRows:
    """The rows of a D4RL-format file, checked; any defect is one ``DatasetError`` line."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetError(
            f"dataset file {path} does not exist; check the path, or download the task's "
            "file with `python -m dql data download TASK`"
        )
    if not path.is_file():
        raise DatasetError(f"{path} is a directory, not a D4RL HDF5 file")
    try:
        with h5py.File(path, "r") as f:
            found = sorted(k for k in f if isinstance(f[k], h5py.Dataset))
            missing = [k for k in REQUIRED_KEYS if k not in found]
            if missing:
                raise DatasetError(
                    f"{path} lacks the key(s) {', '.join(missing)} (found: "
                    f"{', '.join(found) or 'none'}); a D4RL file holds observations, actions, "
                    "rewards, terminals and (v1/v2) timeouts"
                )
            raw = {k: f[k][()] for k in (*REQUIRED_KEYS, "timeouts") if k in found}
    except OSError as error:
        reason = " ".join(str(error).split())
        raise DatasetError(
            f"{path} is not a readable HDF5 file ({reason}): it is truncated, corrupt or not "
            f"HDF5; {remake_advice(path)}"
        ) from error
    return _checked_rows(path, raw)


def _checked_rows(path: Path, raw: dict[str, np.ndarray]) -> D4RLRows:
    """Shapes and row counts as D4RL writes them; (N, 1) columns become (N,)."""
    for key in ("observations", "actions"):
        if raw[key].ndim != 2:
            raise DatasetError(
                f"{path}: {key} must be 2-D (rows, dims), got shape {raw[key].shape}"
            )
    for key in ("rewards", "terminals", "timeouts"):
        if key in raw:
            column = raw[key]
            if column.ndim == 2 and column.shape[1] == 1:
                column = column[:, 0]
            if column.ndim != 1:
                raise DatasetError(f"{path}: {key} must be 1-D (rows,), got {column.shape}")
            raw[key] = column
    rows = {key: len(value) for key, value in raw.items()}
    if len(set(rows.values())) != 1:
        counts = ", ".join(f"{key} {n}" for key, n in rows.items())
        raise DatasetError(
            f"{path}: the keys disagree on the number of rows ({counts}); "
            f"the file is damaged, {remake_advice(path)}"
        )
    if rows["rewards"] < 2:
        raise DatasetError(f"{path} holds {rows['rewards']} row(s); at least 2 are needed")
    # Next observations are the next rows of observations, so this covers them too.
    check_finite(raw, str(path), "row", f"the file is damaged; {remake_advice(path)}")
    timeouts = raw.get("timeouts")
    return D4RLRows(
        observations=raw["observations"],
        actions=raw["actions"],
        rewards=raw["rewards"],
        terminals=raw["terminals"].astype(bool),
        timeouts=None if timeouts is None else timeouts.astype(bool),
    )


def check_finite(arrays: dict[str, np.ndarray], where: str, unit: str, fix: str) -> None:
    """One ``DatasetError`` for the first array holding NaN or inf: its name, how many
    ``unit``s (rows) hold one and the first; NaN would only surface as a "diverged" trial.

    One vectorised pass per float array (well under a second for a 2M-row file)."""
    for name, values in arrays.items():
        if not np.issubdtype(values.dtype, np.floating):
            continue  # bool and integer flags cannot hold NaN
        finite = np.isfinite(values)
        if finite.all():
            continue
        bad = ~finite.reshape(len(values), -1).all(axis=1)
        count = int(bad.sum())
        raise DatasetError(
            f"{where}: {name} holds NaN or inf in {count:,} {unit}{'s' if count != 1 else ''} "
            f"(the first at {unit} {int(np.argmax(bad))}); {fix}"
        )


def time_limit_rows(rows: D4RLRows, max_episode_steps: int = 1000) -> np.ndarray:
    """Which of the first N - 1 rows D4RL skips as time-limit rows (bool, (N - 1,))."""
    if rows.timeouts is not None:
        return rows.timeouts[:-1].copy()
    return step_counter_limits(rows.terminals[:-1], max_episode_steps)


def step_counter_limits(terminals: np.ndarray, max_episode_steps: int) -> np.ndarray:
    """D4RL's rule without ``timeouts``: the rows where its step counter reaches L - 1.

    The counter restarts at 0 after a skipped time-limit row but at 1 after a terminal row
    (D4RL's off-by-one), so between terminals it runs ``(s + k) mod L`` from a start s of
    0 or 1; only those starts need a loop, one cheap step per terminal.
    """
    length = int(max_episode_steps)
    if length < 2:
        raise DatasetError(f"max_episode_steps must be at least 2, got {max_episode_steps}")
    terminals = np.asarray(terminals, dtype=bool)
    ends = np.flatnonzero(terminals)
    starts = np.concatenate(([0], ends + 1))
    sizes = np.diff(np.concatenate((starts, [len(terminals)])))
    # A terminal row that is also a time-limit row is skipped, and then the counter of the
    # next stretch starts at 0 instead of 1.
    count, start_counts = 0, []
    for last in ((sizes[:-1] - 1) % length).tolist():
        start_counts.append(count)
        count = 0 if (count + last) % length == length - 1 else 1
    start_counts.append(count)
    offsets = np.arange(len(terminals)) - np.repeat(starts, sizes)
    return (np.repeat(start_counts, sizes) + offsets) % length == length - 1


def qlearning_transitions(
    rows: D4RLRows, terminate_on_end: bool = False, max_episode_steps: int = 1000
) -> Transitions:
    """``qlearning_dataset`` on rows already read: float32 arrays, terminals as 0/1."""
    if terminate_on_end:  # every row but the last, time-limit rows included
        idx = np.arange(len(rows) - 1)
    else:
        idx = np.flatnonzero(~time_limit_rows(rows, max_episode_steps))
    if len(idx) == 0:
        raise DatasetError("no transitions remain after dropping time-limit rows")
    return Transitions(
        observations=rows.observations[idx].astype(np.float32, copy=False),
        actions=rows.actions[idx].astype(np.float32, copy=False),
        next_observations=rows.observations[idx + 1].astype(np.float32, copy=False),
        rewards=rows.rewards[idx].astype(np.float32, copy=False),
        terminals=rows.terminals[idx].astype(np.float32),
    )


def load_d4rl(
    path: str | os.PathLike, terminate_on_end: bool = False, max_episode_steps: int = 1000
) -> Transitions:
    """Transitions of a D4RL file as D4RL makes them; rewards are NOT transformed here."""
    rows = read_d4rl(path)
    try:
        return qlearning_transitions(rows, terminate_on_end, max_episode_steps)
    except DatasetError as error:
        raise DatasetError(f"{path}: {error}") from error
