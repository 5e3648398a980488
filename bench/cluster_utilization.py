"""How full a sweep keeps a cluster: trial-slot occupancy, one task after another vs. all at once.

    python bench/cluster_utilization.py [--tasks 4] [--samples 6] [--workers 3] [--json PATH]

A real multi-node Ray (``ray.cluster_utils.Cluster``): a head without GPUs and WORKERS nodes
declaring one (fake) GPU each; trials hold 0.5 GPU, so the cluster has 2 x WORKERS trial
slots. The tasks are Hopper tasks on one small file of real Hopper-v5 rollouts (made with
``dql.collect``), with a budget of seconds per trial, more tasks x samples than slots.

Occupancy = busy trial-slot-seconds / (slots x wall time), where a trial's busy span runs
from its start (its first row's timestamp minus Tune's time_total_s) to its last row, and
wall time from the first trial's start to the last trial's end. Both orders run in the same
process on the same cluster: first the old one (the driver called once per task, 4 trials
at once, the old per-task default), then the new driver on all tasks at once. Never part
of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

TASKS = (
    "hopper-medium-v2",
    "hopper-medium-replay-v2",
    "hopper-medium-expert-v2",
    "hopper-expert-v2",
    "hopper-random-v2",
    "hopper-full-replay-v2",
)
BUDGET = ["--epochs", "4", "--steps-per-epoch", "50", "--eval-every", "1", "--eval-episodes", "1",
          "--set", "hidden_dim=16", "--set", "batch_size=32", "--T-range", "2,5", "--seeds", "1",
          "--grace-period", "1", "--reduction-factor", "2", "--cpus-per-trial", "0.25",
          "--gpus-per-trial", "0.5"]  # fmt: skip


def spans(sweep: Path) -> list[tuple[float, float]]:
    """(start, end) of every trial under a sweep folder, from its rows."""
    out: dict[str, tuple[float, float]] = {}
    for result in sweep.glob("**/result.json"):
        for line in result.read_text().splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            start, end = row["timestamp"] - row["time_total_s"], row["timestamp"]
            first, last = out.get(row["trial_id"], (start, end))
            out[row["trial_id"]] = (min(first, start), max(last, end))
    return list(out.values())


def occupancy(trial_spans: list[tuple[float, float]], slots: int) -> tuple[float, float]:
    """(occupancy, wall seconds) over the window from the first start to the last end."""
    begin = min(s for s, _ in trial_spans)
    end = max(e for _, e in trial_spans)
    busy = sum(e - s for s, e in trial_spans)
    return busy / (slots * (end - begin)), end - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--samples", type=int, default=12)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    from dql.collect import collect
    from dql.envs import EnvSpec
    from sweeps.locomotion import SUITE
    from sweeps.runner import main as sweep

    tasks = TASKS[: args.tasks]
    folder = Path(tempfile.mkdtemp(prefix="cluster-utilization-"))
    data = collect(EnvSpec("Hopper-v5"), 1500, folder / "hopper.hdf5", seed=0, show_progress=False)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "num_gpus": 0})
    for _ in range(args.workers):
        cluster.add_node(num_cpus=2, num_gpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    slots = 2 * args.workers
    common = [*BUDGET, "--num-samples", str(args.samples), "--storage", str(folder),
              "--address", cluster.address]  # fmt: skip
    try:
        started = time.perf_counter()
        for task in tasks:  # the old driver: one task after another, confirm waiting on it
            code = sweep(SUITE, ["--tasks", task, "--data", f"{task}={data}", "--name",
                                 f"old-{task}", "--max-concurrent", "4", *common])  # fmt: skip
            assert code == 0, f"old order, {task}: exit {code}"
        old_wall = time.perf_counter() - started
        old_spans = [s for task in tasks for s in spans(folder / f"old-{task}")]

        started = time.perf_counter()
        pairs = [a for task in tasks for a in ("--data", f"{task}={data}")]
        code = sweep(SUITE, ["--tasks", ",".join(tasks), *pairs, "--name", "new", *common])
        assert code == 0, f"new driver: exit {code}"
        new_wall = time.perf_counter() - started
        new_spans = spans(folder / "new")
    finally:
        ray.shutdown()
        cluster.shutdown()

    old_occ, old_window = occupancy(old_spans, slots)
    new_occ, new_window = occupancy(new_spans, slots)
    figures = {
        "tasks": len(tasks),
        "samples_per_task": args.samples,
        "trial_slots": slots,
        "old": {"occupancy": old_occ, "trials_window_s": old_window, "driver_wall_s": old_wall,
                "trials": len(old_spans)},
        "new": {"occupancy": new_occ, "trials_window_s": new_window, "driver_wall_s": new_wall,
                "trials": len(new_spans)},
        "wall_time_ratio_old_over_new": old_wall / new_wall,
    }  # fmt: skip
    print(f"{len(tasks)} tasks x {args.samples} samples on {slots} trial slots ({args.workers} "
          f"workers x 2 trials at 0.5 GPU; {os.cpu_count()} real CPU cores)")  # fmt: skip
    print(f"{'order':<28}{'occupancy':>10}{'trial window':>14}{'driver wall':>13}{'trials':>8}")
    for label, key in (("one task after another", "old"), ("all tasks at once", "new")):
        f = figures[key]
        print(f"{label:<28}{f['occupancy']:>10.1%}{f['trials_window_s']:>13.0f}s"
              f"{f['driver_wall_s']:>12.0f}s{f['trials']:>8}")  # fmt: skip
    print(f"wall time, old / new: {figures['wall_time_ratio_old_over_new']:.2f}x")
    from train_speed import write_report  # bench/ is the script's directory

    write_report(figures, args.json)


if __name__ == "__main__":
    main()
