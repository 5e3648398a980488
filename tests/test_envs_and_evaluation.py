"""Task -> environment mapping, and vectorised evaluation against one-by-one episodes."""

from __future__ import annotations

import numpy as np
import pytest

from dql.envs import EnvError, EnvSpec, check_dataset_fits, env_for_task
from dql.evaluation import evaluate, evaluate_one_by_one


def test_locomotion_tasks_map_to_v5_and_walker_keeps_the_v4_model():
    assert env_for_task("hopper-medium-v2") == EnvSpec("Hopper-v5")
    assert env_for_task("halfcheetah-medium-replay-v2") == EnvSpec("HalfCheetah-v5")
    walker = env_for_task("walker2d-medium-expert-v2")
    assert walker.env_id == "Walker2d-v5" and walker.kwargs == {"xml_file": "walker2d.xml"}
    assert walker.label == "Walker2d-v5(xml_file=walker2d.xml)"
    assert env_for_task("minari:mujoco/hopper/medium-v0") == EnvSpec("Hopper-v5")


def test_ant_is_refused_unless_an_environment_is_named():
    with pytest.raises(EnvError, match="111"):
        env_for_task("ant-medium-v2")
    assert env_for_task("ant-medium-v2", env_id="Ant-v5") == EnvSpec("Ant-v5")


def test_robotics_tasks_name_the_extra_when_it_is_missing():
    pytest.importorskip("gymnasium")
    try:
        import gymnasium_robotics  # noqa: F401

        pytest.skip("gymnasium-robotics is installed here")
    except ImportError:
        pass
    spec = env_for_task("antmaze-umaze-v2")
    with pytest.raises(EnvError, match=r"\.\[robotics\]"):
        spec.make()


def test_a_dataset_of_another_environment_is_refused_before_training():
    with pytest.raises(EnvError, match="size 17"):
        check_dataset_fits(EnvSpec("Hopper-v5"), 17, 6, "walker.hdf5")
    check_dataset_fits(EnvSpec("Hopper-v5"), 11, 3, "hopper.hdf5")


def linear_policy(seed: int):
    """A deterministic policy: each member k has its own fixed linear map."""
    weights = np.random.default_rng(seed).normal(scale=0.3, size=(2, 3, 11))

    def policy(observations: np.ndarray) -> np.ndarray:
        return np.tanh(np.einsum("kao,kno->kna", weights, observations))

    return policy


def test_vectorised_evaluation_replays_the_one_by_one_episodes():
    spec = EnvSpec("Hopper-v5")
    side_by_side = evaluate(linear_policy(0), spec, members=2, episodes=3, seed=7)
    one_by_one = evaluate_one_by_one(linear_policy(0), spec, members=2, episodes=3, seed=7)
    np.testing.assert_allclose(side_by_side.returns, one_by_one.returns, rtol=1e-12)
    np.testing.assert_array_equal(side_by_side.lengths, one_by_one.lengths)
    assert side_by_side.returns.shape == (2, 3)
    # Different seeds give different episodes, and members differ from each other.
    other = evaluate(linear_policy(0), spec, members=2, episodes=3, seed=8)
    assert not np.allclose(other.returns, side_by_side.returns)
    assert not np.allclose(side_by_side.returns[0], side_by_side.returns[1])
    assert side_by_side.env_id == "Hopper-v5" and side_by_side.mujoco_version


def test_the_bandit_scores_actions_by_the_mode_they_land_on():
    from dql.bandit_env import bandit_reward
    from dql.run import prepare_bandit
    from dql.scores import normalized_score

    assert bandit_reward(np.array([0.8, -0.8])) == 5.0  # the best mode
    assert bandit_reward(np.array([-0.75, 0.85])) == 3.0
    assert bandit_reward(np.array([1.0, -1.0])) == 0.0  # the clamped corner is off every mode
    prepared = prepare_bandit()
    best = evaluate(lambda s: np.tile([0.8, -0.8], (*s.shape[:2], 1)), prepared.env, 1, 4, 0)
    assert normalized_score("bandit", best.mean_returns[0], prepared.reference) == 100.0
