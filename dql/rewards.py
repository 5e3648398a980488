"""Reward transformations (``reward_tune``), applied after loading as the released code does."""

from __future__ import annotations

import dataclasses

import numpy as np

from dql.replay import Transitions


def episode_returns(t: Transitions) -> np.ndarray:
    """Returns of the episodes in the transitions.

    An episode ends at a terminal or where the next row does not continue it (its next
    observation is not the next row's observation: a dropped time-limit row), as IQL splits them.
    """
    breaks = t.terminals.astype(bool).copy()
    breaks[:-1] |= np.any(np.abs(t.observations[1:] - t.next_observations[:-1]) > 1e-6, axis=1)
    breaks[-1] = True
    ends = np.flatnonzero(breaks)
    sums = np.add.reduceat(t.rewards.astype(np.float64), np.r_[0, ends[:-1] + 1])
    return sums


def tune_rewards(t: Transitions, mode: str) -> Transitions:
    """A copy of ``t`` with rewards transformed as in reference/ALGORITHM.md."""
    r = t.rewards.astype(np.float64)
    if mode == "no":
        return t
    if mode == "normalize":
        r = (r - r.mean()) / r.std()
    elif mode == "cql_antmaze":
        r = (r - 0.5) * 4.0
    elif mode == "antmaze":
        r = (r - 0.25) * 2.0
    elif mode == "iql_antmaze":
        r = r - 1.0
    elif mode == "iql_locomotion":
        returns = episode_returns(t)
        r = r / (returns.max() - returns.min()) * 1000.0
    else:
        raise ValueError(f"unknown reward_tune {mode!r}")
    return dataclasses.replace(t, rewards=r.astype(np.float32))
