"""Tasks whose data are collected here, with local reference returns, that learn in minutes.

Every D4RL task needs hours of training before its score says anything, and random-policy
D4RL files (the only ones a machine without downloads can make) barely learn. A local task
is a small MuJoCo environment with data made by ``python -m dql collect`` on first use
(deterministic, cached), on which Diffusion-QL visibly beats behaviour cloning within a few
thousand gradient steps on a laptop CPU. Its scores are NOT comparable with the literature:
they use *local* reference returns, and every table and summary says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dql.envs import EnvSpec
from dql.scores import ReferenceScores

LOCAL_DOMAIN = "local"


@dataclass(frozen=True)
class LocalTask:
    """A task made from rollouts collected here, and the returns its scores are scaled by."""

    task: str
    env_id: str
    max_episode_steps: int  # the time limit of the data and of evaluation
    rows: int  # environment steps collected
    seed: int
    ref_min: float  # score 0: the collected data's mean episode return (how: ``ref_min_how``)
    ref_max: float  # score 100: the most the environment can pay within the time limit
    ref_min_how: str
    ref_max_how: str
    config: dict[str, Any] = field(default_factory=dict)  # DQLConfig fields of its preset

    @property
    def env(self) -> EnvSpec:
        return EnvSpec(self.env_id, {"max_episode_steps": self.max_episode_steps})

    @property
    def reference(self) -> ReferenceScores:
        return ReferenceScores(
            self.task, LOCAL_DOMAIN, self.ref_min, self.ref_max, self.max_episode_steps, None
        )

    @property
    def file_name(self) -> str:
        return f"{self.task}-{self.rows}.hdf5"

    def collect_options(self) -> list[str]:
        """The ``python -m dql collect`` options that make its data (without ``--out``)."""
        return [
            *("--env", self.env_id, "--steps", str(self.rows), "--seed", str(self.seed)),
            *("--max-episode-steps", str(self.max_episode_steps)),
        ]


LOCAL_TASKS = {
    task.task: task
    for task in (
        LocalTask(
            task="invertedpendulum-random-local",
            env_id="InvertedPendulum-v5",
            max_episode_steps=100,
            rows=10_000,
            seed=0,
            # Measured with local_tasks.episode_returns on the file this entry collects
            # (MuJoCo 3, Gymnasium 1): 1,617 complete episodes, median 4, max 26.
            ref_min=5.18243661100804,
            ref_max=100.0,
            ref_min_how="mean return of the 1,617 episodes of its random-policy data",
            ref_max_how="1 per step for the whole 100-step time limit",
            # Actions lie in [-3, 3]; a narrow network is plenty for a 4-dim state.
            config={
                "max_action": 3.0,
                "hidden_dim": 64,
                "num_epochs": 10,
                "steps_per_epoch": 200,
                "eval_every": 5,
                "eval_episodes": 10,
            },
        ),
    )
}


def local_task(task: str) -> LocalTask | None:
    return LOCAL_TASKS.get(task)


def local_dataset(task: LocalTask, folder: str | os.PathLike) -> Path:
    """The task's data file under ``folder``, collected first if it is not there."""
    from dql.collect import collected_file

    path = Path(folder).expanduser() / task.file_name
    return collected_file(EnvSpec(task.env_id), task.rows, path, task.seed, task.max_episode_steps)


def episode_returns(rewards: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The return of every complete episode (``ends``: terminal or time-limit rows)."""
    rewards = np.asarray(rewards, dtype=np.float64)
    last = np.flatnonzero(ends)
    if len(last) == 0:
        return np.zeros(0)
    sums = np.cumsum(rewards)[last]
    return np.diff(sums, prepend=0.0)
