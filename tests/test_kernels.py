"""kernels="compiled": Mish and its derivative as fused torch.compile kernels.

The first compile in a fresh process takes about 10 s per kernel on 2 cores; the tests share
one process's kernels, and inductor caches them on disk for later runs.
"""

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
from dql.kernels import compiled_mish_with_derivative
from dql.networks import mish_with_derivative
from dql.replay import DeviceReplay
from dql.run import TrainingRun, prepare_bandit


def test_unknown_kernels_are_one_clear_error():
    with pytest.raises(ConfigError, match="kernels='fused' is unknown; choose one of eager, comp"):
        DQLConfig(kernels="fused")


def test_compiled_mish_matches_eager_in_value_derivative_and_the_out_buffer():
    """Both tails and the middle; value-only, into a strided slice, and into bf16."""
    x = torch.linspace(-30.0, 30.0, 3 * 7 * 4096).view(3, 7, 4096)  # over the size threshold
    want_value, want_slope = mish_with_derivative(x)
    value, none = compiled_mish_with_derivative(x, need_derivative=False)
    assert none is None
    torch.testing.assert_close(value, want_value, rtol=1e-6, atol=1e-6)
    buffer = torch.zeros(3, 4, 7, 4096)  # a chain's (K, T, n, H) buffer: position 2 of 4
    value, slope = compiled_mish_with_derivative(x, out=buffer[:, 2])
    assert value.data_ptr() == buffer[:, 2].data_ptr()
    torch.testing.assert_close(buffer[:, 2], want_value, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(slope, want_slope, rtol=1e-6, atol=1e-6)
    assert not buffer[:, [0, 1, 3]].any()  # nothing written outside the slice
    low = torch.empty(3, 7, 4096, dtype=torch.bfloat16)
    compiled_mish_with_derivative(x, out=low)
    torch.testing.assert_close(low, want_value.to(torch.bfloat16), rtol=0, atol=0)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_compiled_kernels_train_as_eager_step_by_step(precision):
    """Two stacked members, max-Q backup, 20 steps: every step's losses agree with eager.

    Width and batch 128: activations of 2 x 128 x 128, at the size from which kernels compile.
    fp32: the kernels differ from eager by float rounding (measured: at most 4e-7 relative in
    any metric over the 20 steps, grad norms included), so 1e-5 fails on any wrong value or
    derivative. bf16: a rounding difference can flip a bfloat16 rounding of a kept activation
    (2^-8 relative), so the losses are held to bf16's tolerance in test_precision.py (they
    differed by at most 1.2e-3 relative); grad norms, one of which moved 10% in one step,
    are left to the fp32 case.
    """
    data = DeviceReplay(random_transitions(n=500, obs_dim=4, act_dim=2, seed=3))
    config = tiny_config(hidden_dim=128, batch_size=128, max_q_backup=True, max_q_backup_samples=3)
    config = config.replace(precision=precision)
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


def test_the_kernels_are_recorded_in_every_row():
    config = tiny_config(kernels="compiled", num_epochs=2, eval_every=1, eval_episodes=1)
    run = TrainingRun(prepare_bandit(), config, [0])
    rows = [report.row for report in run.epochs() if report.row is not None]
    assert [row["hparams"]["kernels"] for row in rows] == ["compiled", "compiled"]


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
