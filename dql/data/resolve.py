"""Task id -> where its data are: an explicit file, a Minari id, or D4RL's local cache
(where a local task's data are collected on first use).

Resolution only finds the data and their reference scores (cheap, and it fails before
any training starts); ``load_dataset`` then reads them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dql.data.d4rl import load_d4rl
from dql.data.download import d4rl_dataset_dir, download_d4rl
from dql.data.errors import DatasetError
from dql.data.minari_data import load_minari, minari_info, open_minari
from dql.local_tasks import local_dataset, local_task
from dql.replay import Transitions
from dql.scores import MINARI_PREFIX, ReferenceScores, reference_scores


@dataclass(frozen=True)
class DatasetSource:
    """Where a task's transitions come from, and how to score returns on it."""

    kind: Literal["d4rl", "minari"]
    location: Path | str  # a D4RL-format file, or a Minari dataset id
    task: str
    reference: ReferenceScores
    env_id: str | None = None  # the env the dataset names (Minari); None: map from the task
    env_kwargs: dict[str, Any] = field(default_factory=dict)


def resolve_dataset(
    task: str,
    data: str | os.PathLike | None = None,
    download: bool = False,
    dataset_dir: str | os.PathLike | None = None,
) -> DatasetSource:
    """Find ``task``'s data: ``data`` if given, a ``minari:`` id, else D4RL's cache folder."""
    if task.startswith(MINARI_PREFIX):
        if data is not None:
            raise DatasetError(
                f"{task} names a Minari dataset; --data is for D4RL-format files "
                "(give a D4RL task id such as hopper-medium-v2 with it)"
            )
        return _resolve_minari(task, download)
    reference = reference_scores(task)  # an unknown task fails here, naming close ids
    if data is not None:
        path = Path(data).expanduser()
        if not path.is_file():
            raise DatasetError(f"dataset file {path} (from --data) does not exist")
        return DatasetSource("d4rl", path, task, reference)
    folder = d4rl_dataset_dir(dataset_dir)
    if local := local_task(task):  # made here, not downloaded: cheap and seeded
        return DatasetSource("d4rl", local_dataset(local, folder), task, reference)
    path = folder / reference.file_name
    if path.is_file():
        return DatasetSource("d4rl", path, task, reference)
    if download:
        return DatasetSource("d4rl", download_d4rl(task, folder), task, reference)
    partial = path.with_name(path.name + ".part")
    resume = f" (a partial download {partial} is there; the same command resumes it)"
    raise DatasetError(
        f"no dataset file for {task}: looked for {path} (D4RL_DATASET_DIR, default "
        f"~/.d4rl/datasets). Download it with `python -m dql data download {task}` or add "
        f"--download, or pass --data PATH{resume if partial.exists() else ''}"
    )


def _resolve_minari(task: str, download: bool) -> DatasetSource:
    dataset_id = task.removeprefix(MINARI_PREFIX)
    info = minari_info(open_minari(dataset_id, download))
    return DatasetSource(
        "minari", dataset_id, task, info.reference(), info.env_id, dict(info.env_kwargs)
    )


def load_dataset(source: DatasetSource, terminate_on_end: bool = False) -> Transitions:
    """The transitions of a resolved source (D4RL qlearning semantics either way)."""
    if source.kind == "minari":
        return load_minari(str(source.location), terminate_on_end)[0]
    steps = source.reference.max_episode_steps or 1000
    return load_d4rl(source.location, terminate_on_end, max_episode_steps=steps)
