"""precision="bf16": bfloat16 products in the hidden layers, everything else fp32."""

import numpy as np
import pytest
import torch

from conftest import random_transitions, tiny_config
from dql.config import ConfigError, DQLConfig
from dql.diffusion import DiffusionPolicy
from dql.ensemble import SeedEnsemble
from dql.networks import use_low_precision
from dql.replay import DeviceReplay
from dql.run import TrainingRun, prepare_bandit

BF16_EPS = 2.0**-8  # bfloat16 keeps 8 significant bits: inputs are rounded by up to half this


def test_an_unknown_precision_is_one_clear_error():
    with pytest.raises(ConfigError, match="precision='fp16' is unknown; choose one of fp32, bf16"):
        DQLConfig(precision="fp16")


@pytest.mark.parametrize("fused", [True, False])
def test_bf16_chain_gradients_match_the_fp32_chain_to_bf16_rounding(fused):
    """Both chain paths (the hand-written backward, and autograd through the model)."""
    torch.manual_seed(0)
    policy = DiffusionPolicy(4, 3, T=5, hidden_dim=64, members=2)
    policy.fused_chain = fused
    states = torch.randn(2, 32, 4)
    draws = policy.chain_draws((2, 32), torch.Generator().manual_seed(1))
    weights = torch.randn(2, 32, 3)
    results = []
    for low in (None, torch.bfloat16):
        use_low_precision(policy, low)
        policy.zero_grad()
        actions = policy.sample(states, draws=draws)
        (actions * weights).sum().backward()
        results.append((actions.detach(), [p.grad.clone() for p in policy.parameters()]))
    (a32, g32), (a16, g16) = results
    assert a16.dtype == torch.float32 and not torch.equal(a16, a32)  # bf16 really was used
    torch.testing.assert_close(a16, a32, rtol=0, atol=20 * BF16_EPS)
    for name_and_p, grad32, grad16 in zip(policy.named_parameters(), g32, g16, strict=True):
        # Each gradient as a whole: its error relative to its size, a few bf16 roundings deep.
        error = (grad16 - grad32).norm() / grad32.norm()
        assert error < 10 * BF16_EPS, (name_and_p[0], float(error))


def test_bf16_trains_close_to_fp32_and_keeps_fp32_state():
    """Same seeds: step-1 losses agree to bf16 rounding; 150 steps later the loss levels agree.

    Tolerances: the first step sees identical weights and batches, so only rounding (a few
    bf16 epsilons at most) separates the losses. Later the rounding differences have been fed
    back through 150 updates; measured, the epoch means still agree to 2e-5 here, and 1%
    leaves room for other CPUs' kernels while a wrong gradient would move them further.
    """
    data = DeviceReplay(random_transitions(n=2000, obs_dim=5, act_dim=3))
    config = tiny_config(hidden_dim=64, batch_size=64, max_q_backup=True, max_q_backup_samples=3)
    first, later, agents = [], [], []
    for precision in ("fp32", "bf16"):
        ensemble = SeedEnsemble(config.replace(precision=precision), 5, 3, [0, 1])
        first.append(ensemble.train_epoch(data, 1))
        ensemble.train_epoch(data, 100)
        later.append(ensemble.train_epoch(data, 50))
        agents.append(ensemble)
    bf16 = agents[1]
    assert all(p.dtype == torch.float32 for p in bf16.actor.parameters())
    assert all(
        v.dtype == torch.float32 for s in bf16.critic_optimizer.state.values() for v in s.values()
    )
    assert np.isfinite(later[1]).all()
    bc, critic = 0, 3  # METRIC_NAMES columns: bc_loss, critic_loss
    np.testing.assert_allclose(first[1][:, bc], first[0][:, bc], rtol=4 * BF16_EPS)
    np.testing.assert_allclose(first[1][:, critic], first[0][:, critic], rtol=4 * BF16_EPS)
    assert not np.array_equal(first[1], first[0])  # the format changed something
    np.testing.assert_allclose(later[1][:, bc], later[0][:, bc], rtol=0.01)
    np.testing.assert_allclose(later[1][:, critic], later[0][:, critic], rtol=0.01)


def test_the_precision_and_every_other_field_are_recorded_in_every_row():
    """Every row carries the whole configuration (``kernels`` and ``precision`` included)."""
    config = tiny_config(precision="bf16", num_epochs=2, eval_every=1, eval_episodes=1)
    run = TrainingRun(prepare_bandit(), config, [0])
    rows = [report.row for report in run.epochs() if report.row is not None]
    assert [row["hparams"]["precision"] for row in rows] == ["bf16", "bf16"]
    assert all(row["hparams"] == run.config.to_dict() for row in rows)
