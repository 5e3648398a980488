"""Write D4RL-format HDF5 files from real rollouts (``python -m dql collect``).

No machine here can download D4RL, so tests and the smoke sweep train on files this module
makes: the same keys, dtypes, flags and gzip compression as a real D4RL file, episodes
concatenated, the last one possibly cut mid-way with neither flag set (reference/DATA.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from dql.data.d4rl import COLLECTED_MARK, USERBLOCK
from dql.envs import EnvSpec, mujoco_version
from dql.provenance import provenance

ActionFn = Callable[[np.ndarray], np.ndarray]


def random_policy(env, seed: int) -> ActionFn:
    env.action_space.seed(seed)
    return lambda _obs: env.action_space.sample()


def checkpoint_policy(path: str | os.PathLike, seed: int, rule: str | None = None) -> ActionFn:
    """A trained dql checkpoint as the behaviour policy (one state at a time, on the CPU)."""
    from dql.evaluation import agent_policy
    from dql.run import load_policy_agent

    agent = load_policy_agent(path)
    policy = agent_policy(agent, rule, seed)
    # A run of K seeds acts as K members; the first member is the behaviour policy.
    return lambda obs: policy(np.repeat(obs[None, None], agent.members, axis=0))[0, 0]


def collect(
    spec: EnvSpec,
    steps: int,
    out: str | os.PathLike,
    policy: str = "random",
    seed: int = 0,
    max_episode_steps: int | None = None,
    show_progress: bool = True,
) -> Path:
    """Roll out ``policy`` ("random" or a checkpoint path) for ``steps`` rows into ``out``."""
    if steps < 2:
        raise ValueError(
            f"--steps must be at least 2 (a D4RL file drops its last row), got {steps}"
        )
    out = Path(out)
    limit = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    env = spec.make(**limit)
    act = random_policy(env, seed) if policy == "random" else checkpoint_policy(policy, seed)
    columns: dict[str, list] = {
        key: []
        for key in (
            "observations",
            "actions",
            "rewards",
            "terminals",
            "timeouts",
            "next_observations",
            "infos/qpos",
            "infos/qvel",
        )
    }
    obs, _ = env.reset(seed=seed)
    episodes = 0
    data = env.unwrapped.data
    for _ in tqdm(range(steps), desc=f"collect {spec.label}", disable=not show_progress):
        qpos, qvel = data.qpos.copy(), data.qvel.copy()  # the state behind ``obs``
        action = np.asarray(act(obs), dtype=np.float32)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        for key, value in zip(
            columns,
            (obs, action, reward, terminated, truncated and not terminated, next_obs, qpos, qvel),
            strict=True,
        ):
            columns[key].append(value)
        if terminated or truncated:
            episodes += 1
            obs, _ = env.reset()
        else:
            obs = next_obs
    env.close()
    command = collect_command(spec, steps, out, policy, seed, max_episode_steps)
    write_d4rl_file(
        out,
        columns,
        command,
        metadata={
            "env_id": spec.label,
            "policy": str(policy),
            "seed": seed,
            "max_episode_steps": max_episode_steps or env.spec.max_episode_steps or 0,
            "mujoco_version": mujoco_version(),
            "episodes_completed": episodes,
            "provenance": repr(provenance()),
        },
    )
    return out


def collected_file(
    spec: EnvSpec,
    steps: int,
    out: str | os.PathLike,
    seed: int = 0,
    max_episode_steps: int | None = None,
) -> Path:
    """``out`` if it is there, else random-policy rollouts collected into it now: data that
    every machine can make for itself, the same everywhere (seeded), instead of a download."""
    out = Path(out).expanduser()
    if out.is_file():
        return out
    command = collect_command(spec, steps, out, "random", seed, max_episode_steps)
    print(f"+ {command}", flush=True)
    return collect(spec, steps, out, "random", seed, max_episode_steps, show_progress=False)


def collect_command(
    spec: EnvSpec,
    steps: int,
    out: Path,
    policy: str,
    seed: int,
    max_episode_steps: int | None,
) -> str:
    """The ``python -m dql collect`` command that makes this file again."""
    parts = ["python -m dql collect", f"--env {spec.env_id}", f"--steps {steps}"]
    parts += [f"--out {out}", f"--seed {seed}"]
    if policy != "random":
        parts.append(f"--policy {policy}")
    if max_episode_steps is not None:
        parts.append(f"--max-episode-steps {max_episode_steps}")
    if "xml_file" in spec.kwargs:
        parts.append(f"--xml-file {spec.kwargs['xml_file']}")
    return " ".join(parts)


# D4RL's dtypes: float32 arrays, boolean flags.
_DTYPES = {"terminals": np.bool_, "timeouts": np.bool_}


def write_d4rl_file(out: Path, columns: dict[str, list], command: str, metadata: dict) -> None:
    """Write gzip-compressed datasets, atomically (a partial file never has the final name).

    The file's HDF5 user block (bytes HDF5 leaves to the application, before its own
    header) says that ``command`` made it, in plain text: readable even when the file is
    cut short, so the reader can say how to make it again instead of "download it".
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    # Per process: concurrent writers of one file (trials on one node) never share a partial.
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    with h5py.File(partial, "w", userblock_size=USERBLOCK) as f:
        for key, values in columns.items():
            f.create_dataset(
                key, data=np.asarray(values, dtype=_DTYPES.get(key, np.float32)), compression="gzip"
            )
        for key, value in metadata.items():
            f[f"metadata/{key}"] = value
        f["metadata/command"] = command
    mark = (COLLECTED_MARK + command + "\n").encode()[:USERBLOCK]
    with open(partial, "r+b") as raw:
        raw.write(mark)
    os.replace(partial, out)
