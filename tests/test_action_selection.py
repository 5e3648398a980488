"""The three evaluation-time action-selection rules."""

import pytest
import torch

from conftest import tiny_config
from dql.action_selection import select_actions
from dql.agent import DiffusionQL
from dql.replay import DeviceReplay


@pytest.fixture
def trained(transitions):
    agent = DiffusionQL(tiny_config(), transitions.obs_dim, transitions.action_dim)
    replay = DeviceReplay(transitions)
    for _ in range(30):
        agent.update(replay.sample(32, agent.generator))
    return agent


def candidates_and_q(agent, states, num, seed):
    g = torch.Generator().manual_seed(seed)
    repeated = states.repeat_interleave(num, dim=0)
    with torch.no_grad():
        actions = agent.actor.sample(repeated, g)
        q = agent.critic_target.q_min(repeated, actions).reshape(len(states), num)
    return actions.reshape(len(states), num, -1), q, g


def test_argmax_picks_the_candidate_the_target_critic_scores_highest(trained):
    states = torch.randn(6, 3)
    chosen = select_actions(
        trained.actor, trained.critic_target, states, "argmax", 50, torch.Generator().manual_seed(1)
    )
    candidates, q, _ = candidates_and_q(trained, states, 50, seed=1)
    assert torch.equal(chosen, candidates[torch.arange(6), q.argmax(dim=1)])


def test_softmax_draws_in_proportion_to_exp_q(trained):
    states = torch.randn(4, 3)
    chosen = select_actions(
        trained.actor,
        trained.critic_target,
        states,
        "softmax",
        50,
        torch.Generator().manual_seed(2),
    )
    candidates, q, g = candidates_and_q(trained, states, 50, seed=2)
    pick = torch.multinomial(torch.softmax(q, dim=1), 1, generator=g).squeeze(1)
    assert torch.equal(chosen, candidates[torch.arange(4), pick])


def test_softmax_selection_favours_high_q_actions(trained):
    # Over many states the softmax choice scores higher than one plain sample on average.
    states = torch.randn(400, 3)
    g = torch.Generator().manual_seed(3)
    soft = trained.act(states, "softmax", g)
    plain = trained.act(states, "sample", g)
    q = trained.critic_target.q_min
    with torch.no_grad():
        assert q(states, soft).mean() > q(states, plain).mean()


def test_plain_sample_is_one_draw_of_the_policy(trained):
    states = torch.randn(5, 3)
    chosen = trained.act(states, "sample", torch.Generator().manual_seed(4))
    assert torch.equal(chosen, trained.actor.sample(states, torch.Generator().manual_seed(4)))
    assert chosen.shape == (5, 2) and chosen.abs().max() <= 1.0


def test_unknown_rule_is_an_error(trained):
    with pytest.raises(ValueError, match="softmax, argmax or sample"):
        trained.act(torch.randn(1, 3), "greedy")
