"""Minari datasets (D4RL's maintained successor) -> transitions with D4RL's semantics.

Minari stores whole episodes (T + 1 observations, T actions), so the next observation is
always the real one. To stay comparable with D4RL-trained results, truncations are treated
as D4RL's time limits (that step is dropped unless ``terminate_on_end``) and terminations
as terminals (kept with done = 1). minari is optional: it is imported only here, lazily.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import gymnasium
import numpy as np

from dql.data.d4rl import check_finite
from dql.data.errors import DatasetError
from dql.replay import Transitions
from dql.scores import MINARI_PREFIX, ReferenceScores

INSTALL_HINT = 'pip install -e ".[minari]"'
# The environment name inside a Minari id (namespace/env/name-vN) -> our result domain.
_DOMAINS = {
    "antmaze": "antmaze",
    "pen": "adroit",
    "hammer": "adroit",
    "door": "adroit",
    "relocate": "adroit",
    "kitchen": "kitchen",
    "pointmaze": "maze2d",
}
_LOCOMOTION = {"hopper", "halfcheetah", "walker2d", "ant", "humanoid", "swimmer"}


@dataclass(frozen=True)
class MinariInfo:
    """What evaluation and scoring need from a Minari dataset's metadata."""

    dataset_id: str
    env_id: str | None  # the evaluation env if the dataset names one, else the collecting env
    env_kwargs: dict[str, Any] = field(default_factory=dict)  # from that env's spec
    env_spec: str | None = None  # the spec's JSON (max_episode_steps, wrappers, ...)
    ref_min_score: float | None = None
    ref_max_score: float | None = None
    total_episodes: int = 0
    total_steps: int = 0

    def reference(self) -> ReferenceScores:
        """Reference scores for ``minari:<id>``; an error if the metadata lacks them."""
        task = MINARI_PREFIX + self.dataset_id
        if self.ref_min_score is None or self.ref_max_score is None:
            raise DatasetError(
                f"Minari dataset {self.dataset_id} has no ref_min_score/ref_max_score in its "
                "metadata, so its returns cannot be turned into normalized scores; use a "
                "dataset that has them (e.g. mujoco/hopper/medium-v0) or a D4RL task id"
            )
        try:
            return ReferenceScores(
                task=task,
                domain=minari_domain(self.dataset_id),
                ref_min=float(self.ref_min_score),
                ref_max=float(self.ref_max_score),
                max_episode_steps=_spec_field(self.env_spec, "max_episode_steps"),
            )
        except ValueError as error:
            raise DatasetError(f"Minari dataset {self.dataset_id}: {error}") from error


def minari_domain(dataset_id: str) -> str:
    """``mujoco/hopper/medium-v0`` -> locomotion, ``D4RL/pen/human-v2`` -> adroit."""
    parts = dataset_id.lower().split("/")
    env = parts[-2] if len(parts) >= 2 else parts[0]
    if env in _LOCOMOTION:
        return "locomotion"
    return _DOMAINS.get(env, parts[0] if parts[0] != "d4rl" else env)


def import_minari():
    """The minari module, or a one-line error saying how to install it."""
    try:
        import minari
    except ImportError as error:
        raise DatasetError(
            f"Minari datasets need the minari package, which is not installed: {INSTALL_HINT}"
        ) from error
    return minari


def open_minari(dataset_id: str, download: bool = False):
    """The ``MinariDataset`` from the local store (``$MINARI_DATASETS_PATH``)."""
    minari = import_minari()
    try:
        return minari.load_dataset(dataset_id, download=download)
    except FileNotFoundError as error:
        from minari.storage import get_dataset_path

        raise DatasetError(
            f"Minari dataset {dataset_id} is not in the local store "
            f"({get_dataset_path(dataset_id)}; set MINARI_DATASETS_PATH to use another); "
            f"download it with `minari download {dataset_id}` or pass --download"
        ) from error
    except (ValueError, OSError, KeyError) as error:
        reason = " ".join(str(error).split())
        raise DatasetError(f"cannot read Minari dataset {dataset_id}: {reason}") from error


def minari_info(dataset) -> MinariInfo:
    """The evaluation env and reference scores a ``MinariDataset``'s metadata records."""
    meta = dataset.storage.metadata
    spec = meta.get("eval_env_spec") or meta.get("env_spec")
    return MinariInfo(
        dataset_id=str(meta["dataset_id"]),
        env_id=_spec_field(spec, "id"),
        env_kwargs=dict(_spec_field(spec, "kwargs") or {}),
        env_spec=spec,
        ref_min_score=meta.get("ref_min_score"),
        ref_max_score=meta.get("ref_max_score"),
        total_episodes=int(meta.get("total_episodes", 0)),
        total_steps=int(meta.get("total_steps", 0)),
    )


def _spec_field(spec_json: str | None, name: str) -> Any:
    return json.loads(spec_json).get(name) if spec_json else None


def load_minari(
    dataset_id: str, terminate_on_end: bool = False, download: bool = False
) -> tuple[Transitions, MinariInfo]:
    """Transitions of a local Minari dataset, and its metadata (env id, reference scores)."""
    dataset = open_minari(dataset_id, download)
    info = minari_info(dataset)
    obs_space, act_space = dataset.observation_space, dataset.action_space
    if not isinstance(act_space, gymnasium.spaces.Box):
        raise DatasetError(
            f"Minari dataset {dataset_id} has {act_space} actions; Diffusion-QL needs "
            "continuous (Box) actions"
        )
    columns: dict[str, list[np.ndarray]] = {k: [] for k in Transitions.__dataclass_fields__}
    for episode in dataset.iterate_episodes():
        obs = _flat(episode.observations, obs_space)
        steps = len(episode.rewards)
        if len(obs) != steps + 1 or len(episode.actions) != steps:
            raise DatasetError(
                f"Minari dataset {dataset_id}, episode {episode.id}: {len(obs)} observations "
                f"and {len(episode.actions)} actions for {steps} steps (expected T + 1 and T)"
            )
        kept = slice(None)
        if not terminate_on_end:
            kept = ~np.asarray(episode.truncations, dtype=bool)
        columns["observations"].append(obs[:-1][kept])
        columns["next_observations"].append(obs[1:][kept])
        columns["actions"].append(np.asarray(episode.actions).reshape(steps, -1)[kept])
        columns["rewards"].append(np.asarray(episode.rewards).reshape(steps)[kept])
        columns["terminals"].append(np.asarray(episode.terminations).reshape(steps)[kept])
    if not columns["rewards"] or not sum(len(r) for r in columns["rewards"]):
        raise DatasetError(f"Minari dataset {dataset_id} holds no transitions")
    arrays = {k: np.concatenate(v).astype(np.float32) for k, v in columns.items()}
    fix = (
        f"the dataset is damaged; delete it and download it again (`minari download {dataset_id}`)"
    )
    check_finite(arrays, f"Minari dataset {dataset_id}", "transition", fix)
    return Transitions(**arrays), info


def _flat(observations: Any, space: Any) -> np.ndarray:
    """Observations as (T + 1, dims); Dict spaces concatenated in the space's key order,
    which is the order ``gymnasium.wrappers.FlattenObservation`` uses at evaluation."""
    if isinstance(observations, dict):
        parts = [_flat(observations[key], sub) for key, sub in space.spaces.items()]
        return np.concatenate(parts, axis=1)
    observations = np.asarray(observations)
    return observations.reshape(len(observations), -1)
