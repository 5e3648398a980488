"""The 2D bandit as a one-step Gymnasium environment, so sweeps can score it like any task.

The reward of an action is the mean reward of the mode it lands on (within 0.2 of the
centre, the radius the toy's shares use) and 0 elsewhere, which is also the worst mode's
mean: a normalized score of 100 means every action hits the best mode.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from dql.toy import MODES, SHARE_RADIUS, STATE_DIM

ENV_ID = "dql/Bandit-v0"
REWARD_RANGE = (min(mean for _, mean in MODES.values()), max(m for _, m in MODES.values()))


def bandit_reward(action: np.ndarray) -> float:
    for centre, mean_reward in MODES.values():
        if np.linalg.norm(np.asarray(action) - centre) <= SHARE_RADIUS:
            return mean_reward
    return REWARD_RANGE[0]


class BanditEnv(gym.Env):
    """Constant zero state; every episode is one action."""

    def __init__(self):
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (STATE_DIM,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(STATE_DIM, dtype=np.float32), {}

    def step(self, action):
        reward = bandit_reward(action)
        return np.zeros(STATE_DIM, dtype=np.float32), reward, True, False, {}


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=BanditEnv, max_episode_steps=1)
