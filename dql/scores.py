"""D4RL's normalized score: 100 * (return - random) / (expert - random).

Scores are comparable with the literature only with D4RL's own reference returns, shipped
as package data (resources/d4rl_ref_scores.csv, every D4RL id). Minari datasets carry
their own references in their metadata; pass those as ``reference``. The local tasks
(dql/local_tasks.py) have local references, comparable with nothing published.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import overload

import numpy as np
from numpy.typing import ArrayLike

from dql.presets import UnknownTaskError, did_you_mean

MINARI_PREFIX = "minari:"


@dataclass(frozen=True)
class ReferenceScores:
    """The returns that map to scores 0 and 100 for one task, and where its D4RL file lives."""

    task: str
    domain: str  # locomotion, antmaze, adroit, kitchen, maze2d, ...
    ref_min: float  # score 0 (random policy)
    ref_max: float  # score 100 (expert)
    max_episode_steps: int | None = None  # time limit (v0 files mark it by step counting)
    hdf5_path: str | None = None  # under D4RL's offline_rl URL; None for Minari datasets

    def __post_init__(self) -> None:
        finite = math.isfinite(self.ref_min) and math.isfinite(self.ref_max)
        if not finite or self.ref_max <= self.ref_min:
            raise ValueError(
                f"{self.task}: reference returns must be finite with ref_max > ref_min, "
                f"got ref_min={self.ref_min}, ref_max={self.ref_max}"
            )

    @property
    def file_name(self) -> str | None:
        """D4RL's cache file name (the URL's base name), e.g. ``hopper_medium-v2.hdf5``."""
        return self.hdf5_path.rsplit("/", 1)[-1] if self.hdf5_path else None


@cache
def d4rl_reference_scores() -> dict[str, ReferenceScores]:
    """Every D4RL dataset id -> its reference scores, read once from the package data."""
    text = resources.files("dql").joinpath("resources/d4rl_ref_scores.csv").read_text()
    table = {}
    for row in csv.DictReader(text.splitlines()):
        steps = row["max_episode_steps"].strip()
        table[row["dataset_id"]] = ReferenceScores(
            task=row["dataset_id"],
            domain=row["domain"],
            ref_min=float(row["ref_min_score"]),
            ref_max=float(row["ref_max_score"]),
            max_episode_steps=int(steps) if steps else None,
            hdf5_path=row["hdf5_path_under_offline_rl"],
        )
    return table


def reference_scores(task: str) -> ReferenceScores:
    """D4RL's reference scores for ``task``; an unknown id is an error naming close ids."""
    from dql.local_tasks import LOCAL_TASKS

    table = d4rl_reference_scores()
    if task in table:
        return table[task]
    if task in LOCAL_TASKS:
        return LOCAL_TASKS[task].reference
    if task.startswith(MINARI_PREFIX):
        raise UnknownTaskError(
            f"{task}: Minari datasets carry their reference scores in their own metadata; "
            "get them with dql.data.resolve_dataset(task).reference and pass them as reference="
        )
    raise UnknownTaskError(
        f"no D4RL reference scores for task {task!r}.{did_you_mean(task, [*table, *LOCAL_TASKS])} "
        "Known tasks are D4RL's dataset ids (e.g. hopper-medium-v2, antmaze-umaze-v2) and "
        f"the local tasks ({', '.join(LOCAL_TASKS)}); "
        "for a Minari dataset use 'minari:<dataset id>'."
    )


@overload
def normalized_score(
    task: str, returns: float, reference: ReferenceScores | None = None
) -> float: ...
@overload
def normalized_score(
    task: str, returns: ArrayLike, reference: ReferenceScores | None = None
) -> np.ndarray: ...
def normalized_score(
    task: str, returns: ArrayLike, reference: ReferenceScores | None = None
) -> float | np.ndarray:
    """D4RL's normalized score x100 of raw episode return(s): a float for a number."""
    ref = reference if reference is not None else reference_scores(task)
    scores = 100.0 * (np.asarray(returns, dtype=np.float64) - ref.ref_min)
    scores /= ref.ref_max - ref.ref_min
    if np.ndim(returns) == 0 and not isinstance(returns, np.ndarray):
        return float(scores)
    return scores
