"""kernels="compiled": the whole update step as one graph.

The first compile in a fresh process takes 10-30 s per graph on 2 cores; inductor caches the
kernels on disk for later runs.
"""

import copy
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import random_transitions, tiny_config
from dql.agent import METRIC_NAMES
from dql.config import ConfigError, DQLConfig
from dql.ensemble import SeedEnsemble
from dql.replay import DeviceReplay


def test_unknown_kernels_are_one_clear_error():
    with pytest.raises(ConfigError, match="kernels='fused' is unknown; choose one of eager, comp"):
        DQLConfig(kernels="fused")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_compiled_kernels_train_as_eager_step_by_step(precision):
    """Two stacked members, max-Q backup, 20 steps: every step's losses agree with eager.

    Compiled is the whole step from the second on: the critic's loss (with the target through
    the EMA actor's chain and the target critic) and the actor's (BC loss, and the Q term
    through the live actor's chain step by step), their gradients, clipping, Adam, Polyak and
    the EMA (synced, skipped and averaged here, at a decaying rate). fp32: they differ
    from eager by float rounding (measured: at most 7e-7 relative in any metric over the 20
    steps, grad norms included), so 1e-5 fails on any wrong value or derivative. bf16: a
    rounding difference can flip a bfloat16 rounding of a kept activation (2^-8 relative),
    so the losses are held to bf16's tolerance in test_precision.py (they differed by at
    most 7e-4 relative); grad norms, one of which moved 10% in one step, are left to the
    fp32 case.
    """
    data = DeviceReplay(random_transitions(n=500, obs_dim=4, act_dim=2, seed=3))
    config = tiny_config(hidden_dim=128, batch_size=128, max_q_backup=True, max_q_backup_samples=3)
    # A decaying rate, and an EMA actor that is synced, skipped and averaged within 20 steps.
    schedules = dict(lr_schedule="cosine", ema_warmup="synced", ema_start_step=8, ema_every=2)
    config = config.replace(precision=precision, **schedules)
    steps = {}
    for kernels in ("eager", "compiled"):
        ensemble = SeedEnsemble(config.replace(kernels=kernels), 4, 2, [0, 1])
        steps[kernels] = np.stack([ensemble.train_epoch(data, 1) for _ in range(20)])
    assert np.isfinite(steps["compiled"]).all()
    assert not np.array_equal(steps["compiled"], steps["eager"])  # the kernels really ran
    if precision == "fp32":
        np.testing.assert_allclose(steps["compiled"], steps["eager"], rtol=1e-5, atol=1e-6)
    else:
        losses = [METRIC_NAMES.index(n) for n in ("bc_loss", "q_loss", "actor_loss", "critic_loss")]
        compiled, eager = steps["compiled"][..., losses], steps["eager"][..., losses]
        np.testing.assert_allclose(compiled, eager, rtol=4 * 2.0**-8, atol=1e-4)


def test_without_a_cpp_compiler_the_toy_stops_before_training_and_names_the_fix(tmp_path):
    """A compiler that does not exist (CXX) and an empty inductor cache: exit 2, one line."""
    env = dict(os.environ, CXX=str(tmp_path / "no-such-g++"))
    env["TORCHINDUCTOR_CACHE_DIR"] = str(tmp_path / "inductor")
    command = [sys.executable, "-m", "dql", "toy", "--out", str(tmp_path / "toy")]
    command += ["--bc-steps", "5", "--ql-steps", "5", "--no-progress", "--set", "kernels=compiled"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "kernels='compiled'" in done.stderr and "--set kernels=eager" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "toy" / "summary.json").exists()


def test_the_compiled_step_is_one_graph_compiled_once_for_every_step_and_a_resume():
    """A learning rate that changes every step and the EMA switching on are not baked into
    the graph (nor the coin, a tensor), nor is Adam's state, which a checkpoint replaces with
    new tensors: the step compiles one graph (both halves, with their gradients, clipping,
    Adam, Polyak and EMA) at its second step, and never again."""
    data = DeviceReplay(random_transitions(n=300, obs_dim=3, act_dim=2, seed=5))
    config = tiny_config(lr_schedule="cosine", ema_start_step=3, ema_every=1, kernels="compiled")
    ensemble = SeedEnsemble(config, 3, 2, [0, 1])
    counters = torch._dynamo.utils.counters
    before = counters["stats"]["unique_graphs"]
    ensemble.train_epoch(data, 2)
    assert counters["stats"]["unique_graphs"] - before == 1
    ensemble.train_epoch(data, 8)
    state = copy.deepcopy(ensemble.state_dict())
    ensemble.load_state_dict(state)
    ensemble.train_epoch(data, 2)
    assert counters["stats"]["unique_graphs"] - before == 1


def test_a_compiled_run_repeats_bit_for_bit_at_a_fixed_thread_count(restore_threads):
    """Compiled kernels may round otherwise than eager, but never differently from one run
    to the next: a kernel that adds in a varying order (an atomic scatter-add, say) fails
    this. The count is fixed, because inductor splits some reductions by it (dql.threads).
    The second run starts from the first one's initial state, with the same compiled graph."""
    torch.set_num_threads(2)
    data = DeviceReplay(random_transitions(n=400, obs_dim=4, act_dim=2, seed=7))
    config = tiny_config(hidden_dim=64, batch_size=64, kernels="compiled")
    ensemble = SeedEnsemble(config, 4, 2, [0, 1])
    initial = copy.deepcopy(ensemble.state_dict())
    runs = []
    for _ in range(2):
        ensemble.load_state_dict(copy.deepcopy(initial))  # no Adam state: step 1 is eager again
        metrics = np.stack([ensemble.train_epoch(data, 1) for _ in range(12)])
        runs.append((metrics, [p.detach().clone() for p in ensemble.actor.parameters()]))
    (m1, p1), (m2, p2) = runs
    np.testing.assert_array_equal(m1, m2)
    assert all(torch.equal(a, b) for a, b in zip(p1, p2, strict=True))
