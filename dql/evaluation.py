"""Evaluation episodes: K policies x N episodes stepped side by side in one vector env.

Episode j of every member starts from the reset seed ``seed + j``, so members are compared
on the same start states, and a vectorised evaluation replays exactly the episodes that
``evaluate_one_by_one`` runs (tests/test_evaluation.py checks this).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from dql.envs import EnvSpec, mujoco_version

# (K, n, obs_dim) observations -> (K, n, act_dim) actions, one row of policies per member.
Policy = Callable[[np.ndarray], np.ndarray]


@dataclass
class EvaluationResult:
    returns: np.ndarray  # (K, N) undiscounted return of each episode
    lengths: np.ndarray  # (K, N) steps of each episode
    env_id: str  # EnvSpec.label
    mujoco_version: str
    seed: int

    @property
    def mean_returns(self) -> np.ndarray:
        """(K,) mean return per member: what D4RL normalises."""
        return self.returns.mean(axis=1)


def evaluate(policy: Policy, spec: EnvSpec, members: int, episodes: int, seed: int):
    """Run ``members * episodes`` episodes at once; the policy sees every env every step."""
    total = members * episodes
    envs = spec.make_vector(total)
    try:
        obs, _ = envs.reset(seed=[seed + j for _ in range(members) for j in range(episodes)])
        returns = np.zeros(total)
        lengths = np.zeros(total, dtype=np.int64)
        running = np.ones(total, dtype=bool)
        action_shape = envs.single_action_space.shape
        while running.any():
            actions = _act_on_running(policy, obs, running, members, episodes, action_shape)
            obs, reward, terminated, truncated, _ = envs.step(actions)
            # Finished envs keep stepping (autoreset) until all are done; their steps are masked.
            returns += np.where(running, reward, 0.0)
            lengths += running
            running &= ~(terminated | truncated)
    finally:
        envs.close()
    return EvaluationResult(
        returns.reshape(members, episodes),
        lengths.reshape(members, episodes),
        spec.label,
        mujoco_version(),
        seed,
    )


def _act_on_running(policy, obs, running, members, episodes, action_shape) -> np.ndarray:
    """Ask the policy only about running episodes (padded to the busiest member's count)."""
    alive = running.reshape(members, episodes)
    width = max(int(alive.sum(axis=1).max()), 1)
    rows = np.zeros((members, width), dtype=np.int64)
    counts = alive.sum(axis=1)
    for k in range(members):
        live = np.flatnonzero(alive[k])
        rows[k, : len(live)] = live
        rows[k, len(live) :] = live[0] if len(live) else 0  # padding, discarded below
    members_index = np.arange(members)[:, None]
    chosen = policy(obs.reshape(members, episodes, -1)[members_index, rows])
    actions = np.zeros((members, episodes, *action_shape))
    for k in range(members):
        actions[k, rows[k, : counts[k]]] = chosen[k, : counts[k]]
    return actions.reshape(members * episodes, *action_shape)


def evaluate_one_by_one(policy: Policy, spec: EnvSpec, members: int, episodes: int, seed: int):
    """The same episodes as ``evaluate``, one environment at a time (the slow reference)."""
    env = spec.make()
    returns = np.zeros((members, episodes))
    lengths = np.zeros((members, episodes), dtype=np.int64)
    try:
        for k in range(members):
            for j in range(episodes):
                obs, _ = env.reset(seed=seed + j)
                done = False
                while not done:
                    states = np.zeros((members, 1, obs.size), dtype=obs.dtype)
                    states[k, 0] = obs
                    action = policy(states)[k, 0]
                    obs, reward, terminated, truncated, _ = env.step(action)
                    returns[k, j] += reward
                    lengths[k, j] += 1
                    done = terminated or truncated
    finally:
        env.close()
    return EvaluationResult(returns, lengths, spec.label, mujoco_version(), seed)


def agent_policy(agent, rule: str | None = None, seed: int = 0) -> Policy:
    """Wrap a DiffusionQL or SeedEnsemble (K members) as a numpy policy with a seeded sampler."""
    generator = torch.Generator(agent.device).manual_seed(seed)

    def policy(observations: np.ndarray) -> np.ndarray:
        states = torch.as_tensor(observations, dtype=torch.float32, device=agent.device)
        return agent.act(states, rule, generator).cpu().numpy().astype(np.float64)

    return policy
