"""One Diffusion-QL gradient step, checked against the paper's definitions."""

import copy

import pytest
import torch

from conftest import tiny_config
from dql.agent import METRIC_NAMES, DiffusionQL
from dql.replay import DeviceReplay


def step_metrics(agent, batch) -> dict[str, float]:
    return dict(zip(METRIC_NAMES, agent.update(batch).tolist(), strict=True))


def test_actor_q_loss_normalises_by_the_other_head_on_the_policys_own_actions(transitions):
    agent = DiffusionQL(tiny_config(), transitions.obs_dim, transitions.action_dim)
    replay = DeviceReplay(transitions)
    for _ in range(20):  # let the two heads drift apart
        agent.update(replay.sample(32, agent.generator))
    batch = replay.sample(32, agent.generator)
    actor_before, ema_before = copy.deepcopy(agent.actor), copy.deepcopy(agent.ema_actor)
    generator_state = agent.generator.get_state()
    q_loss = step_metrics(agent, batch)["q_loss"]

    # Replay the step's random draws: target actions, BC loss, the policy's action, the coin.
    g = torch.Generator().set_state(generator_state)
    ema_before.sample(batch.next_state, g)
    actor_before.bc_loss(batch.action, batch.state, g)
    with torch.no_grad():
        a_pi = actor_before.sample(batch.state, g)
        numerator_is_q1 = bool(torch.rand((), generator=g) > 0.5)
        q1, q2 = agent.critic(batch.state, a_pi)  # the critic after its update this step
        q1_data, q2_data = agent.critic(batch.state, batch.action)
    num, other = (q1, q2) if numerator_is_q1 else (q2, q1)
    other_data = q2_data if numerator_is_q1 else q1_data
    assert q_loss == pytest.approx((-num.mean() / other.abs().mean()).item(), rel=1e-5)
    # Neither the numerator's own head nor dataset actions give that value.
    assert q_loss != pytest.approx((-num.mean() / num.abs().mean()).item(), rel=1e-3)
    assert q_loss != pytest.approx((-num.mean() / other_data.abs().mean()).item(), rel=1e-3)


def test_released_ema_keeps_the_initial_actor_until_the_start_step(transitions):
    cfg = tiny_config(ema_start_step=20, ema_every=5, ema_warmup="released")
    agent = DiffusionQL(cfg, transitions.obs_dim, transitions.action_dim)
    replay = DeviceReplay(transitions)
    initial = copy.deepcopy(agent.actor)
    for _ in range(20):
        agent.update(replay.sample(32, agent.generator))
    for ema, p0 in zip(agent.ema_actor.parameters(), initial.parameters(), strict=True):
        assert torch.equal(ema, p0)
    agent.update(replay.sample(32, agent.generator))  # step 20: first average
    for ema, p0, p in zip(
        agent.ema_actor.parameters(), initial.parameters(), agent.actor.parameters(), strict=True
    ):
        torch.testing.assert_close(ema, 0.995 * p0 + 0.005 * p)


def test_synced_ema_copies_the_live_actor_before_the_start_step(transitions):
    cfg = tiny_config(ema_start_step=20, ema_every=5, ema_warmup="synced")
    agent = DiffusionQL(cfg, transitions.obs_dim, transitions.action_dim)
    replay = DeviceReplay(transitions)
    for _ in range(16):  # the sync after step 15 copies the actor just updated
        agent.update(replay.sample(32, agent.generator))
    for ema, p in zip(agent.ema_actor.parameters(), agent.actor.parameters(), strict=True):
        assert torch.equal(ema, p)
    agent.update(replay.sample(32, agent.generator))  # step 16: no EMA update
    assert not torch.equal(agent.ema_actor.model.trunk[0].weight, agent.actor.model.trunk[0].weight)


@pytest.mark.parametrize(("critic_lr", "expected"), [(None, 3e-4), (1e-3, 1e-3)])
def test_critic_learning_rate_is_fixed_unless_set(transitions, critic_lr, expected):
    cfg = tiny_config(actor_lr=1e-3, critic_lr=critic_lr, lr_schedule="constant")
    agent = DiffusionQL(cfg, transitions.obs_dim, transitions.action_dim)
    agent.update(DeviceReplay(transitions).sample(32, agent.generator))
    assert agent.actor_optimizer.param_groups[0]["lr"] == 1e-3
    assert agent.critic_optimizer.param_groups[0]["lr"] == expected
    assert cfg.quirks()["critic_lr"] == ("released_fixed_3e-4" if critic_lr is None else "own")


def test_true_cosine_schedule_lowers_both_rates_every_step(transitions):
    cfg = tiny_config(lr_schedule="cosine", num_epochs=2, steps_per_epoch=10)
    agent = DiffusionQL(cfg, transitions.obs_dim, transitions.action_dim)
    replay = DeviceReplay(transitions)
    rates = []
    for _ in range(3):
        agent.update(replay.sample(32, agent.generator))
        rates.append(agent.critic_optimizer.param_groups[0]["lr"])
    assert rates[0] == 3e-4 and rates[0] > rates[1] > rates[2]


def test_update_moves_target_critic_by_tau(transitions):
    agent = DiffusionQL(tiny_config(), transitions.obs_dim, transitions.action_dim)
    target_before = copy.deepcopy(agent.critic_target)
    agent.update(DeviceReplay(transitions).sample(32, agent.generator))
    for t0, t1, p in zip(
        target_before.parameters(),
        agent.critic_target.parameters(),
        agent.critic.parameters(),
        strict=True,
    ):
        torch.testing.assert_close(t1, 0.995 * t0 + 0.005 * p)


def test_gradient_norms_are_clipped(transitions):
    agent = DiffusionQL(tiny_config(grad_norm=1e-3), transitions.obs_dim, transitions.action_dim)
    before = copy.deepcopy(agent.critic)
    metrics = step_metrics(agent, DeviceReplay(transitions).sample(32, agent.generator))
    assert metrics["critic_grad_norm"] > 1e-3  # reported before clipping
    # Adam's first step moves each weight by ~lr whatever the gradient scale, so check the
    # first moment instead: it is (1 - beta1) times the clipped gradient.
    exp_avgs = [agent.critic_optimizer.state[p]["exp_avg"] for p in agent.critic.parameters()]
    clipped_norm = torch.linalg.vector_norm(torch.cat([m.flatten() for m in exp_avgs])) / 0.1
    assert clipped_norm.item() == pytest.approx(1e-3, rel=1e-3)
    assert any(
        not torch.equal(a, b)
        for a, b in zip(before.parameters(), agent.critic.parameters(), strict=True)
    )


def test_max_q_backup_trains(transitions):
    cfg = tiny_config(max_q_backup=True, max_q_backup_samples=4)
    agent = DiffusionQL(cfg, transitions.obs_dim, transitions.action_dim)
    metrics = step_metrics(agent, DeviceReplay(transitions).sample(32, agent.generator))
    assert all(map(torch.isfinite, map(torch.tensor, metrics.values())))
