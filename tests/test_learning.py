"""Diffusion-QL learns where behaviour cloning cannot: the local InvertedPendulum task.

The data are random-policy rollouts (mean return 5 of a possible 100). Diffusion BC
(eta = 0) can only reproduce that; the Q term (eta > 0) must find better actions. Both
arms sample their actions from the policy (``action_selection="sample"``): the released
selection, a softmax over 50 candidates scored by the critic, would let the critic act
for BC too, and with one action dimension 50 candidates cover it, so it would hide what
eta does. Real MuJoCo, real collected HDF5 data, three seeds per arm trained together.
"""

from __future__ import annotations

import numpy as np
import pytest

from dql.data.d4rl import read_d4rl
from dql.local_tasks import LOCAL_TASKS, episode_returns
from dql.run import TrainingRun, prepare_task
from dql.train import task_config

TASK = "invertedpendulum-random-local"
SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("D4RL_DATASET_DIR", str(tmp_path_factory.mktemp("d4rl")))
        return prepare_task(TASK)


def test_the_random_reference_is_the_collected_datas_mean_return(prepared):
    rows = read_d4rl(prepared.dataset)
    returns = episode_returns(rows.rewards, rows.terminals | rows.timeouts)
    assert returns.mean() == pytest.approx(LOCAL_TASKS[TASK].ref_min, rel=1e-9)
    assert prepared.reference.domain == "local"
    assert prepared.env.label == "InvertedPendulum-v5(max_episode_steps=100)"


def final_scores(prepared, eta: float) -> np.ndarray:
    config = task_config(TASK, eta=eta, action_selection="sample", eval_every=10)
    run = TrainingRun(prepared, config, SEEDS)
    rows = [report.row for report in run.epochs() if report.row is not None]
    assert rows[-1]["status"] == "finished"
    return np.array(rows[-1]["normalized_scores"])


def test_diffusion_ql_ends_clearly_above_behaviour_cloning_and_the_data(prepared):
    ql, bc = final_scores(prepared, eta=1.0), final_scores(prepared, eta=0.0)
    print(f"normalized scores: Diffusion-QL {ql.round(1)}, diffusion BC {bc.round(1)}")
    assert ql.min() > bc.max(), (ql, bc)  # every seed of one above every seed of the other
    assert ql.mean() > bc.mean() + 10, (ql, bc)
    assert ql.min() > 10, ql  # 0 is the data's own mean return
