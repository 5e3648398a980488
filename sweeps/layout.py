"""Where a sweep keeps what: ``STORAGE/NAME/`` on a local disk or in s3:// / gs:// storage.

    STORAGE/NAME/sweep.json          the plan of every round (written before a round starts)
    STORAGE/NAME/optuna.journal      the per-task Optuna studies (unless --optuna-storage)
    STORAGE/NAME/sweep/              Tune's experiment for the first round: every task's
                                     search and confirm trials, trial_status.json
    STORAGE/NAME/extend-1/ ...       one more experiment per --extend
    STORAGE/NAME/results_table.tex   the table, written when the sweep completes

A round is one Tune experiment; ``--resume`` continues the newest round, ``--extend N``
starts the next one on the same studies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.fs

SWEEP_FILE = "sweep.json"
FIRST_ROUND = "sweep"


def as_uri(path: str) -> str:
    return path if "://" in path else f"file://{path}"


def filesystem(path: str) -> tuple[pyarrow.fs.FileSystem, str]:
    """pyarrow's filesystem for a local path or URI, and the path inside it."""
    return pyarrow.fs.FileSystem.from_uri(as_uri(path))


def round_name(index: int) -> str:
    """``sweep`` for the first round (index 0), ``extend-K`` for the K-th extension."""
    return FIRST_ROUND if index == 0 else f"extend-{index}"


def read_json(path: str) -> Any | None:
    """A JSON file in local or remote storage; None when it does not exist."""
    text = read_text(path)
    return None if text is None else json.loads(text)


def file_exists(path: str) -> bool:
    """Whether a file exists in local or remote storage."""
    fs, inner = filesystem(path)
    return fs.get_file_info(inner).type == pyarrow.fs.FileType.File


def write_json(path: str, content: Any) -> None:
    fs, inner = filesystem(path)
    fs.create_dir(inner.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(inner) as stream:
        stream.write(json.dumps(content, indent=2, default=str).encode())


def existing_sweeps(storage: str) -> list[str]:
    """Names of the sweeps under ``storage`` (folders holding a sweep.json)."""
    fs, inner = filesystem(storage)
    if fs.get_file_info(inner).type != pyarrow.fs.FileType.Directory:
        return []
    found = fs.get_file_info(pyarrow.fs.FileSelector(inner))
    names = [info.base_name for info in found if info.type == pyarrow.fs.FileType.Directory]
    return sorted(n for n in names if read_json(f"{storage}/{n}/{SWEEP_FILE}") is not None)


def trial_folders(experiment_path: str) -> list[pyarrow.fs.FileInfo]:
    """The ``trial_*`` folders of a Tune experiment in local or remote storage."""
    fs, root = filesystem(experiment_path)
    if fs.get_file_info(root).type != pyarrow.fs.FileType.Directory:
        return []
    return [
        info
        for info in fs.get_file_info(pyarrow.fs.FileSelector(root))
        if info.type == pyarrow.fs.FileType.Directory and info.base_name.startswith("trial_")
    ]


def read_text(path: str) -> str | None:
    """A text file in local or remote storage; None when it does not exist."""
    fs, inner = filesystem(path)
    if fs.get_file_info(inner).type != pyarrow.fs.FileType.File:
        return None
    with fs.open_input_stream(inner) as stream:
        return stream.read().decode()


def copy_file(source: str, target: str) -> None:
    """Copy one file between local and remote storage (the journal into s3://, and back)."""
    source_fs, source_path = filesystem(source)
    target_fs, target_path = filesystem(target)
    target_fs.create_dir(target_path.rsplit("/", 1)[0], recursive=True)
    pyarrow.fs.copy_files(
        source_path, target_path, source_filesystem=source_fs, destination_filesystem=target_fs
    )


def writable_local_folder(path: str) -> str | None:
    """Why nothing could be written under a local ``path``, or None if it can be."""
    import os

    probe = Path(path)
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable by this user"
    return None
