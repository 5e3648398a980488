"""Tiny Diffusion-QL set-ups shared by the tests."""

import numpy as np
import pytest
import torch

from dql.config import DQLConfig
from dql.replay import Transitions


@pytest.fixture
def restore_threads():
    """Tests that set torch's (process-wide) thread count give the old one back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def random_transitions(n: int = 512, obs_dim: int = 3, act_dim: int = 2, seed: int = 0):
    """Random transitions with a reward that depends on the action, some terminals."""
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (n, act_dim)).astype(np.float32)
    return Transitions(
        observations=rng.normal(size=(n, obs_dim)).astype(np.float32),
        actions=actions,
        next_observations=rng.normal(size=(n, obs_dim)).astype(np.float32),
        rewards=(actions[:, 0] - actions[:, 1] ** 2).astype(np.float32),
        terminals=(rng.random(n) < 0.05).astype(np.float32),
    )


def tiny_config(**overrides) -> DQLConfig:
    values = dict(T=3, hidden_dim=16, batch_size=32, steps_per_epoch=10, num_epochs=4, eval_every=2)
    return DQLConfig(**{**values, **overrides})


@pytest.fixture
def transitions():
    return random_transitions()


@pytest.fixture(scope="session")
def hopper_file(tmp_path_factory):
    """A small D4RL-format file of real Hopper-v5 random-policy rollouts, made once."""
    from dql.collect import collect
    from dql.envs import EnvSpec

    path = tmp_path_factory.mktemp("data") / "hopper-random.hdf5"
    return collect(EnvSpec("Hopper-v5"), 1500, path, seed=0, show_progress=False)


@pytest.fixture(scope="session")
def cluster():
    """A real multi-node Ray: a head without GPUs and two workers declaring one GPU each."""
    import os

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # the same with or without a token
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "num_gpus": 0})
    workers = [cluster.add_node(num_cpus=2, num_gpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    yield cluster, workers
    ray.shutdown()
    cluster.shutdown()
