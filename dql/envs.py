"""Which Gymnasium environment a task is evaluated in, and how to make it.

D4RL's locomotion data came from gym's mujoco-py environments, which no longer install;
Gymnasium's v5 environments on the ``mujoco`` package are the maintained equivalent
(reference/DATA.md). Every result records the environment id, its keyword arguments and the
MuJoCo version, because those decide what a score means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np

LOCOMOTION = {
    "hopper": ("Hopper-v5", {}),
    "halfcheetah": ("HalfCheetah-v5", {}),
    # Walker2d-v5 changed foot friction; the v4 model file restores D4RL's dynamics.
    "walker2d": ("Walker2d-v5", {"xml_file": "walker2d.xml"}),
}
# gymnasium-robotics ids for the other D4RL domains (evaluated only when it is installed).
ROBOTICS = {
    "antmaze-umaze-diverse": "AntMaze_UMaze-v5",
    "antmaze-umaze": "AntMaze_UMaze-v5",
    "antmaze-medium": "AntMaze_Medium_Diverse_GR-v5",
    "antmaze-large": "AntMaze_Large_Diverse_GR-v5",
    "pen": "AdroitHandPen-v1",
    "hammer": "AdroitHandHammer-v1",
    "door": "AdroitHandDoor-v1",
    "relocate": "AdroitHandRelocate-v1",
    "kitchen": "FrankaKitchen-v1",
}


class EnvError(ValueError):
    """A task that cannot be evaluated here; the message says what to do instead."""


@dataclass(frozen=True)
class EnvSpec:
    """An evaluation environment: a Gymnasium id plus the keyword arguments it is made with."""

    env_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The id as results record it, e.g. ``Walker2d-v5(xml_file=walker2d.xml)``."""
        if not self.kwargs:
            return self.env_id
        args = ",".join(f"{k}={v}" for k, v in sorted(self.kwargs.items()))
        return f"{self.env_id}({args})"

    def make(self, **overrides: Any):
        """The environment; dict observations (AntMaze) flattened in key order, as the data are."""
        import gymnasium as gym

        _register_if_needed(self.env_id)
        env = gym.make(self.env_id, **{**self.kwargs, **overrides})
        if isinstance(env.observation_space, gym.spaces.Dict):
            env = gym.wrappers.FlattenObservation(env)
        return env

    def make_vector(self, num_envs: int, **overrides: Any):
        """``num_envs`` copies stepped in lockstep (in-process: MuJoCo steps are microseconds)."""
        import gymnasium as gym

        return gym.vector.SyncVectorEnv([lambda: self.make(**overrides)] * num_envs)


def env_for_task(task: str, env_id: str | None = None) -> EnvSpec:
    """The evaluation environment of a D4RL task id (``env_id`` overrides the mapping)."""
    if env_id:
        return EnvSpec(env_id)
    if task == "bandit":
        return EnvSpec("dql/Bandit-v0")
    from dql.local_tasks import local_task

    if local := local_task(task):
        return local.env
    name = task.split(":", 1)[-1].lower()
    prefix = name.split("-", 1)[0].split("/", 1)[0]
    if task.startswith("minari:"):
        # mujoco/hopper/medium-v0 -> hopper; D4RL/pen/human-v2 -> pen
        parts = name.split("/")
        prefix = parts[1] if len(parts) > 1 else parts[0]
        if parts[0] == "mujoco" and prefix in LOCOMOTION:
            # Minari's mujoco datasets were collected on the plain v5 environments.
            return EnvSpec(LOCOMOTION[prefix][0])
    if prefix in LOCOMOTION:
        env, kwargs = LOCOMOTION[prefix]
        return EnvSpec(env, dict(kwargs))
    if prefix == "ant":
        raise EnvError(
            f"{task}: D4RL's ant data has 111 observation dimensions but Gymnasium's Ant-v5 "
            "has 105 (contact forces changed), so no maintained environment can score it. "
            "Name one yourself with --env (e.g. --env Ant-v4 if you have a matching build)."
        )
    for key, robotics_id in ROBOTICS.items():
        if name.startswith(key) or prefix == key:
            return EnvSpec(robotics_id)
    raise EnvError(
        f"no evaluation environment known for task {task!r}; pass --env GYMNASIUM_ID "
        f"(known prefixes: {', '.join([*LOCOMOTION, *ROBOTICS])})"
    )


def _register_if_needed(env_id: str) -> None:
    if env_id.startswith("dql/"):  # the project's own environments register on import
        import dql.bandit_env  # noqa: F401

        return
    if env_id not in ROBOTICS.values():
        return
    try:
        import gymnasium_robotics  # noqa: F401  (registers the environments)
    except ImportError as error:
        raise EnvError(
            f"{env_id} comes from gymnasium-robotics, which is not installed: "
            'pip install -e ".[robotics]"'
        ) from error


def mujoco_version() -> str:
    try:
        return metadata.version("mujoco")
    except metadata.PackageNotFoundError:
        return ""


def space_dims(spec: EnvSpec) -> tuple[int, int]:
    """(observation size, action size) of the environment, made once and closed."""
    env = spec.make()
    try:
        return int(np.prod(env.observation_space.shape)), int(np.prod(env.action_space.shape))
    finally:
        env.close()


def check_dataset_fits(spec: EnvSpec, obs_dim: int, action_dim: int, dataset: str) -> None:
    """Fail before training when the data cannot have come from the evaluation environment."""
    env_obs, env_act = space_dims(spec)
    if (env_obs, env_act) != (obs_dim, action_dim):
        raise EnvError(
            f"{dataset} has observations of size {obs_dim} and actions of size {action_dim}, "
            f"but {spec.label} has {env_obs} and {env_act}: the data belong to another "
            "environment; pass the matching --task or --env"
        )
