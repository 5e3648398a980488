"""D4RL normalized scores from the shipped reference returns."""

import numpy as np
import pytest

from dql.presets import UnknownTaskError
from dql.scores import ReferenceScores, d4rl_reference_scores, normalized_score, reference_scores


def test_every_d4rl_id_is_shipped():
    table = d4rl_reference_scores()
    assert len(table) == 180  # every row of D4RL's reference table, v0/v1/v2
    for family in ("hopper", "halfcheetah", "walker2d", "ant"):
        for version in ("v0", "v1", "v2"):
            assert f"{family}-medium-{version}" in table
    assert "antmaze-umaze-v2" in table and "pen-human-v1" in table


def test_hopper_reference_row():
    ref = reference_scores("hopper-medium-v2")
    assert ref == ReferenceScores(
        task="hopper-medium-v2",
        domain="locomotion",
        ref_min=-20.272305,
        ref_max=3234.3,
        max_episode_steps=1000,
        hdf5_path="gym_mujoco_v2/hopper_medium-v2.hdf5",
    )
    assert ref.file_name == "hopper_medium-v2.hdf5"


def test_a_row_without_a_time_limit_reads_as_none():
    assert reference_scores("carla-lane-v0").max_episode_steps is None


def test_normalized_score_is_d4rl_formula_times_100():
    # hopper: (1617.01 - -20.272305) / (3234.3 - -20.272305) = 0.5030...
    assert normalized_score("hopper-medium-v2", 3234.3) == pytest.approx(100.0)
    assert normalized_score("hopper-medium-v2", -20.272305) == pytest.approx(0.0)
    expected = 100 * (1617.01 + 20.272305) / (3234.3 + 20.272305)
    assert normalized_score("hopper-medium-v2", 1617.01) == pytest.approx(expected)
    assert normalized_score("antmaze-umaze-v2", 0.7) == pytest.approx(70.0)
    assert normalized_score("kitchen-complete-v0", 3.0) == pytest.approx(75.0)


def test_a_float_gives_a_float_and_an_array_an_array():
    assert type(normalized_score("antmaze-umaze-v2", 1)) is float
    assert type(normalized_score("antmaze-umaze-v2", np.float32(1))) is float
    scores = normalized_score("antmaze-umaze-v2", [0.0, 0.5, 1.0])
    assert isinstance(scores, np.ndarray)
    np.testing.assert_allclose(scores, [0.0, 50.0, 100.0])


def test_an_explicit_reference_serves_minari_ids():
    ref = ReferenceScores("minari:mujoco/hopper/medium-v0", "locomotion", -10.0, 10.0)
    assert normalized_score(ref.task, 0.0, ref) == pytest.approx(50.0)


def test_an_unknown_task_suggests_close_ids():
    with pytest.raises(UnknownTaskError, match="Did you mean hopper-medium-v2"):
        normalized_score("hopper-medum-v2", 1.0)


def test_a_minari_id_without_reference_says_where_references_come_from():
    with pytest.raises(UnknownTaskError, match="metadata"):
        reference_scores("minari:mujoco/hopper/medium-v0")


def test_reference_scores_must_span_a_range():
    with pytest.raises(ValueError, match="ref_max > ref_min"):
        ReferenceScores("x", "locomotion", 1.0, 1.0)
