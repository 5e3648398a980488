"""Does learning hold in bf16? The same seeds trained in fp32 and bf16, side by side.

    python bench/bf16_learning.py [--toy-steps N] [--hopper-steps 300] [--json PATH]

1. The paper's 2D bandit at the toy's budget (``python -m dql toy``; ``--toy-steps N`` gives
   each policy N steps instead): both policies, each precision; mode shares of 1000 sampled
   actions and the loss curves (epoch means).
2. Hopper sizes on real data (random-policy Hopper-v5 rollouts made here, the
   hopper-medium-v2 preset): per-step losses of the first ``--hopper-steps`` steps.
Prints the shares, the curves at a few points, their largest relative difference and the
seconds each took. Never part of the tests.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from train_speed import write_report  # bench/ is the script's directory

from dql.agent import METRIC_NAMES
from dql.threads import use_thread_policy
from dql.toy import BEST_MODE, STATE_DIM, ToyBudget, bandit_dataset, train_bandit_policy

PRECISIONS = ("fp32", "bf16")


def toy(steps: int | None) -> dict:
    data = bandit_dataset(seed=0)
    out: dict = {}
    toy_budget = ToyBudget() if steps is None else ToyBudget(bc_steps=steps, ql_steps=steps)
    for precision in PRECISIONS:
        budget = replace(toy_budget, precision=precision)
        for name in ("diffusion_bc", "diffusion_ql"):
            curve: list[tuple[float, float]] = []
            started = time.perf_counter()
            result = train_bandit_policy(
                name,
                budget.config(name, seed=0),
                data,
                progress=lambda _n, m, curve=curve: curve.append((m.bc_loss, m.q_loss)),
            )
            out[(name, precision)] = {
                "seconds": time.perf_counter() - started,
                "shares": result.shares,
                "curve": np.array(curve),
            }
    for name in ("diffusion_bc", "diffusion_ql"):
        a, b = (out[(name, p)] for p in PRECISIONS)
        rel = np.abs(b["curve"][:, 0] - a["curve"][:, 0]) / np.abs(a["curve"][:, 0])
        print(f"\n{name}: fp32 {a['seconds']:.0f} s, bf16 {b['seconds']:.0f} s")
        for precision, r in zip(PRECISIONS, (a, b), strict=True):
            shares = ", ".join(f"{m} {s:.1%}" for m, s in r["shares"].items())
            print(f"  {precision} shares: {shares}")
        marks = sorted({0, len(rel) // 4, len(rel) // 2, 3 * len(rel) // 4, len(rel) - 1})
        for i in marks:
            print(
                f"  epoch {i + 1:>3}: bc_loss fp32 {a['curve'][i, 0]:.4f} bf16 "
                f"{b['curve'][i, 0]:.4f}; q_loss fp32 {a['curve'][i, 1]:.3f} "
                f"bf16 {b['curve'][i, 1]:.3f}"
            )
        print(f"  bc_loss curves: largest relative difference {rel.max():.3f}")
    return {
        f"{name}/{precision}": {
            "seconds": r["seconds"],
            "shares": r["shares"],
            "best_mode_share": r["shares"][BEST_MODE],
            "bc_loss_curve": r["curve"][:, 0].tolist(),
            "q_loss_curve": r["curve"][:, 1].tolist(),
        }
        for (name, precision), r in out.items()
    }


def hopper(steps: int) -> dict:
    from dql.collect import collect
    from dql.ensemble import SeedEnsemble
    from dql.envs import EnvSpec
    from dql.presets import preset_config
    from dql.replay import DeviceReplay
    from dql.run import prepare_task

    with tempfile.TemporaryDirectory() as folder:
        path = collect(EnvSpec("Hopper-v5"), 20_000, Path(folder) / "h.hdf5", show_progress=False)
        prepared = prepare_task("hopper-random-v2", str(path))
    t = prepared.transitions
    replay = DeviceReplay(t)
    losses, seconds = {}, {}
    for precision in PRECISIONS:
        config = preset_config("hopper-medium-v2", precision=precision)
        ensemble = SeedEnsemble(config, t.obs_dim, t.action_dim, [0])
        started = time.perf_counter()
        losses[precision] = np.stack([ensemble.train_epoch(replay, 1)[0] for _ in range(steps)])
        seconds[precision] = time.perf_counter() - started
    print(f"\nHopper sizes, real random-policy data, {steps} steps per precision")
    report = {"seconds": seconds}
    for name in ("bc_loss", "critic_loss", "q_loss"):
        col = METRIC_NAMES.index(name)
        a, b = losses["fp32"][:, col], losses["bf16"][:, col]
        rel = np.abs(b - a) / np.maximum(np.abs(a), 1e-8)
        points = ", ".join(
            f"step {i + 1}: {a[i]:.4f} / {b[i]:.4f}" for i in (0, steps // 2, steps - 1)
        )
        print(
            f"  {name} fp32 / bf16: {points}; relative difference median {np.median(rel):.2e}, "
            f"largest {rel.max():.2e}"
        )
        report[name] = {"fp32": a.tolist(), "bf16": b.tolist()}
    print(f"  seconds: fp32 {seconds['fp32']:.1f}, bf16 {seconds['bf16']:.1f}")
    return report


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--toy-steps", type=int, help="steps per policy (default: the toy's)")
    parser.add_argument("--hopper-steps", type=int, default=300)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    policy = use_thread_policy()
    print(f"threads {policy.threads} (dql.threads policy), state dim {STATE_DIM} bandit")
    report = {"hopper": hopper(args.hopper_steps), "toy": toy(args.toy_steps)}
    write_report(report, args.json)
    return report


if __name__ == "__main__":
    main()
