"""Training 2k steps straight equals 1k, checkpoint, a fresh process, and 1k more."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch

from conftest import random_transitions
from dql.agent import DiffusionQL
from dql.checkpoint import load_checkpoint, save_checkpoint
from dql.config import DQLConfig
from dql.replay import DeviceReplay, Transitions
from dql.trainer import Trainer

# Small networks, but every stateful part is exercised: max-Q backup, EMA averaging starting
# mid-run, a per-step cosine schedule, clipping, and the critic's own learning rate.
CONFIG = dict(
    T=3,
    hidden_dim=16,
    batch_size=32,
    steps_per_epoch=250,
    num_epochs=8,
    eval_every=2,
    max_q_backup=True,
    max_q_backup_samples=3,
    ema_start_step=600,
    lr_schedule="cosine",
    critic_lr=1e-3,
    seed=3,
)

CONTINUE_IN_FRESH_PROCESS = textwrap.dedent(
    """
    import sys, numpy as np, torch
    from dql.checkpoint import load_checkpoint, save_checkpoint
    from dql.replay import DeviceReplay, Transitions
    from dql.trainer import Trainer
    torch.set_num_threads({threads})
    data = Transitions(**dict(np.load(sys.argv[1])))
    agent, extra = load_checkpoint(sys.argv[2])
    for _ in Trainer(agent, DeviceReplay(data)).epochs(until_epoch=8):
        pass
    save_checkpoint(agent, sys.argv[3], extra)
    """
)


def test_resumed_training_in_a_fresh_process_gives_identical_parameters(tmp_path: Path):
    data = random_transitions(n=2000, obs_dim=5, act_dim=3, seed=1)
    np.savez(tmp_path / "data.npz", **vars(data))
    config = DQLConfig(**CONFIG)

    straight = DiffusionQL(config, data.obs_dim, data.action_dim)
    for _ in Trainer(straight, DeviceReplay(data)).epochs(until_epoch=8):
        pass
    assert straight.step == 2000

    first_half = DiffusionQL(config, data.obs_dim, data.action_dim)
    for _ in Trainer(first_half, DeviceReplay(data)).epochs(until_epoch=4):
        pass
    save_checkpoint(first_half, tmp_path / "half.pt", extra={"note": "kept"})
    script = tmp_path / "continue.py"
    script.write_text(CONTINUE_IN_FRESH_PROCESS.format(threads=torch.get_num_threads()))
    subprocess.run(
        [
            sys.executable,
            str(script),
            str(tmp_path / "data.npz"),
            str(tmp_path / "half.pt"),
            str(tmp_path / "resumed.pt"),
        ],
        check=True,
        cwd=Path(__file__).parent.parent,
    )
    resumed, extra = load_checkpoint(tmp_path / "resumed.pt")

    assert resumed.step == 2000 and extra == {"note": "kept"}
    for name in ("actor", "ema_actor", "critic", "critic_target"):
        a, b = getattr(straight, name).state_dict(), getattr(resumed, name).state_dict()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}.{key} differs after resuming"
    # The EMA really averaged, so the test covers it (released quirk: untouched before 600).
    assert not torch.equal(
        straight.ema_actor.model.trunk[0].weight, straight.actor.model.trunk[0].weight
    )
    torch.testing.assert_close(
        straight.actor_optimizer.state_dict()["state"],
        resumed.actor_optimizer.state_dict()["state"],
        rtol=0,
        atol=0,
    )
    assert torch.equal(straight.generator.get_state(), resumed.generator.get_state())


def test_checkpoint_write_is_atomic_and_missing_file_is_a_clear_error(tmp_path: Path):
    data = random_transitions()
    agent = DiffusionQL(DQLConfig(**{**CONFIG, "hidden_dim": 8}), data.obs_dim, data.action_dim)
    save_checkpoint(agent, tmp_path / "ckpt.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]  # no partial file left
    try:
        load_checkpoint(tmp_path / "absent.pt")
    except FileNotFoundError as error:
        assert "absent.pt" in str(error)
    else:
        raise AssertionError("loading a missing checkpoint must fail")


def test_transitions_round_trip_through_npz(tmp_path: Path):
    data = random_transitions(n=10)
    np.savez(tmp_path / "d.npz", **vars(data))
    again = Transitions(**dict(np.load(tmp_path / "d.npz")))
    assert np.array_equal(again.actions, data.actions)
