"""The training loop's metrics, evaluation hook and continuation."""

import math

import pytest

from conftest import tiny_config
from dql.agent import DiffusionQL
from dql.replay import DeviceReplay
from dql.trainer import Trainer


def test_epochs_report_finite_means_and_call_the_hook_every_n(transitions):
    agent = DiffusionQL(tiny_config(num_epochs=5), transitions.obs_dim, transitions.action_dim)
    calls = []

    def hook(agent, epoch):
        calls.append((epoch, agent.step))
        return {"score": float(epoch)}

    history = list(Trainer(agent, DeviceReplay(transitions), hook, eval_every=2).epochs())
    assert [m.epoch for m in history] == [1, 2, 3, 4, 5]
    assert [m.step for m in history] == [10, 20, 30, 40, 50]
    assert calls == [(2, 20), (4, 40)]
    assert [m.evaluation for m in history] == [None, {"score": 2.0}, None, {"score": 4.0}, None]
    for m in history:
        for name in ("bc_loss", "critic_loss", "q_loss", "mean_q", "actor_grad_norm"):
            assert math.isfinite(getattr(m, name))
        assert m.steps_per_s > 0
    assert history[-1].bc_loss < history[0].bc_loss * 1.5  # training, not exploding


def test_trainer_continues_from_the_agents_step(transitions):
    agent = DiffusionQL(tiny_config(num_epochs=3), transitions.obs_dim, transitions.action_dim)
    list(Trainer(agent, DeviceReplay(transitions)).epochs(until_epoch=2))
    later = list(Trainer(agent, DeviceReplay(transitions)).epochs())
    assert [m.epoch for m in later] == [3]


def test_partial_epoch_agent_is_refused(transitions):
    agent = DiffusionQL(tiny_config(), transitions.obs_dim, transitions.action_dim)
    agent.step = 5
    with pytest.raises(ValueError, match="whole number of epochs"):
        Trainer(agent, DeviceReplay(transitions))
