"""Minari episodes -> transitions, on a tiny dataset of real Hopper-v5 random-policy episodes."""

import sys
import warnings

import gymnasium as gym
import minari
import numpy as np
import pytest
from minari.data_collector import EpisodeBuffer

from dql.data import DatasetError, load_dataset, load_minari, resolve_dataset

DATASET = "test/hopper/random-v0"
LIMIT = 20  # short enough that some episodes are truncated, long enough that some fall


def record(env, seed):
    """One random-policy episode as plain arrays: T + 1 observations, T of the rest."""
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    steps = {"observations": [obs], "actions": [], "rewards": [], "terms": [], "truncs": []}
    done = False
    while not done:
        action = env.action_space.sample()
        obs, reward, term, trunc, _ = env.step(action)
        for key, value in zip(steps, (obs, action, reward, term, trunc), strict=True):
            steps[key].append(value)
        done = term or trunc
    return {key: np.asarray(value) for key, value in steps.items()}


# The metadata Minari warns about when it is missing.
DESCRIBED = dict(
    algorithm_name="random",
    author="dql tests",
    author_email="tests@example.org",
    code_permalink="https://example.org/dql",
    description="random-policy episodes for the reader's tests",
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A Minari store holding DATASET (with reference scores) and one without them."""
    root = tmp_path_factory.mktemp("minari")
    env = gym.make("Hopper-v5", max_episode_steps=LIMIT)
    episodes = [record(env, seed) for seed in range(4)]
    buffers = [
        EpisodeBuffer(
            id=i,
            observations=e["observations"],
            actions=e["actions"],
            rewards=e["rewards"],
            terminations=e["terms"],
            truncations=e["truncs"],
            infos={},
        )
        for i, e in enumerate(episodes)
    ]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(root))
        minari.create_dataset_from_buffers(
            DATASET,
            buffers,
            ref_min_score=-20.0,
            ref_max_score=3000.0,
            env=env,
            eval_env=env.spec,
            **DESCRIBED,
        )
        minari.create_dataset_from_buffers(
            "test/hopper/noref-v0", buffers[:1], env=env, eval_env=env.spec, **DESCRIBED
        )
    env.close()
    return root, episodes


@pytest.fixture
def episodes(store, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(store[0]))
    return store[1]


def expected(episodes, terminate_on_end=False):
    """By hand: step t of each episode is (obs[t], a[t], r[t], obs[t + 1], terminated[t]),
    and truncated steps are D4RL's time limits (dropped unless terminate_on_end)."""
    rows = []
    for e in episodes:
        for t in range(len(e["rewards"])):
            if e["truncs"][t] and not terminate_on_end:
                continue
            obs = e["observations"]
            rows.append((obs[t], e["actions"][t], e["rewards"][t], obs[t + 1], e["terms"][t]))
    return [np.asarray(column, dtype=np.float32) for column in zip(*rows, strict=True)]


def test_the_fixture_holds_both_truncated_and_terminated_episodes(episodes):
    assert any(e["truncs"][-1] for e in episodes)
    assert any(e["terms"][-1] for e in episodes)


@pytest.mark.parametrize("terminate_on_end", [False, True])
def test_episodes_become_d4rl_style_transitions(episodes, terminate_on_end):
    t, _ = load_minari(DATASET, terminate_on_end=terminate_on_end)
    obs, actions, rewards, next_obs, terminals = expected(episodes, terminate_on_end)
    np.testing.assert_array_equal(t.observations, obs)
    np.testing.assert_array_equal(t.actions, actions)
    np.testing.assert_array_equal(t.rewards, rewards)
    np.testing.assert_array_equal(t.next_observations, next_obs)
    np.testing.assert_array_equal(t.terminals, terminals)
    steps = sum(len(e["rewards"]) for e in episodes)
    truncated = sum(int(e["truncs"].sum()) for e in episodes)
    assert len(t) == (steps if terminate_on_end else steps - truncated)
    assert t.terminals.sum() == sum(int(e["terms"].sum()) for e in episodes)


def test_info_names_the_environment_and_reference_scores(episodes):
    _, info = load_minari(DATASET)
    assert info.env_id == "Hopper-v5"
    assert (info.ref_min_score, info.ref_max_score) == (-20.0, 3000.0)
    assert info.total_episodes == len(episodes)
    ref = info.reference()
    assert ref.task == "minari:" + DATASET and ref.domain == "locomotion"
    assert ref.max_episode_steps == LIMIT and ref.hdf5_path is None


def test_a_minari_task_resolves_and_loads(episodes):
    source = resolve_dataset("minari:" + DATASET)
    assert (source.kind, source.location, source.env_id) == ("minari", DATASET, "Hopper-v5")
    assert source.reference.ref_max == 3000.0
    assert len(load_dataset(source)) == len(expected(episodes)[0])


def test_a_dataset_without_reference_scores_cannot_be_scored(episodes):
    with pytest.raises(DatasetError, match="no ref_min_score/ref_max_score"):
        resolve_dataset("minari:test/hopper/noref-v0")


def test_a_dataset_missing_from_the_store_names_the_store_and_the_fix(episodes):
    with pytest.raises(DatasetError, match=r"not in the local store.*minari download"):
        load_minari("test/hopper/absent-v0")


def test_without_minari_installed_the_error_names_the_extra(episodes, monkeypatch):
    monkeypatch.setitem(sys.modules, "minari", None)  # what `import minari` sees when absent
    with pytest.raises(DatasetError, match=r'pip install -e "\.\[minari\]"'):
        load_minari(DATASET)


def create_without_env(dataset_id, buffer, observation_space, action_space):
    """A one-episode Minari dataset that names no environment."""
    with warnings.catch_warnings():  # Minari warns that no environment is named: none is
        warnings.simplefilter("ignore", UserWarning)
        minari.create_dataset_from_buffers(
            dataset_id,
            [buffer],
            observation_space=observation_space,
            action_space=action_space,
            **DESCRIBED,
        )


def test_dict_observations_are_flattened_as_gymnasium_flattens_them(store, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(store[0]))
    space = gym.spaces.Dict(
        {"goal": gym.spaces.Box(-1, 1, (2,)), "observation": gym.spaces.Box(-1, 1, (3,))}
    )
    space.seed(0)
    observations = [space.sample() for _ in range(4)]  # 3 steps
    buffer = EpisodeBuffer(
        observations={k: np.stack([o[k] for o in observations]) for k in space.spaces},
        actions=np.zeros((3, 1), np.float32),
        rewards=np.zeros(3),
        terminations=np.array([False, False, True]),
        truncations=np.zeros(3, bool),
        infos={},
    )
    create_without_env("test/maze/dict-v0", buffer, space, gym.spaces.Box(-1, 1, (1,)))
    t, info = load_minari("test/maze/dict-v0")
    flat = np.stack([gym.spaces.flatten(space, o) for o in observations]).astype(np.float32)
    np.testing.assert_array_equal(t.observations, flat[:-1])
    np.testing.assert_array_equal(t.next_observations, flat[1:])
    assert info.env_id is None


def test_nan_in_a_minari_dataset_is_named_before_training(store, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(store[0]))
    rewards = np.array([0.0, np.inf, 1.0])
    buffer = EpisodeBuffer(
        observations=np.zeros((4, 2), np.float32),
        actions=np.zeros((3, 1), np.float32),
        rewards=rewards,
        terminations=np.array([False, False, True]),
        truncations=np.zeros(3, bool),
        infos={},
    )
    box = gym.spaces.Box
    create_without_env("test/nan/rewards-v0", buffer, box(-1, 1, (2,)), box(-1, 1, (1,)))
    with pytest.raises(DatasetError, match=r"rewards holds NaN or inf in 1 transition \(the "
                       r"first at transition 1\)"):  # fmt: skip
        load_minari("test/nan/rewards-v0")
