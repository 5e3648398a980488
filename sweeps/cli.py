"""The command line every suite script shares (``python sweeps/SUITE.py --help``)."""

from __future__ import annotations

import argparse

from sweeps.plan import Suite
from sweeps.smoke import describe_smoke


def build_parser(suite: Suite) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"python sweeps/{suite.name}.py",
        description=suite.description or f"Diffusion-QL sweep: {suite.name}",
        allow_abbrev=False,  # --epoch must not pass for --epochs
    )
    add = p.add_argument
    add("--tasks", help=f"comma-separated task ids (default: {','.join(suite.tasks)})")
    add("--data", action="append", default=[], metavar="TASK=PATH", help="dataset per task")
    add("--env", dest="env_id", help="evaluation env id for every task (default: from the task)")
    add(
        "--num-samples",
        type=int,
        metavar="N",
        help="configurations Optuna tries per task (default 16)",
    )
    add("--seeds", type=int, metavar="N", help="seeds trained inside each trial (default 3)")
    add(
        "--confirm",
        type=int,
        default=0,
        metavar="K",
        help="rerun each task's best with K fresh seeds (default 0: no confirm stage)",
    )
    add(
        "--max-concurrent",
        type=int,
        metavar="N",
        help="trials running at once over all tasks (default: as many as the cluster holds)",
    )
    add("--max-concurrent-per-task", type=int, metavar="N", help="cap per task (default: none)")
    add("--cpus-per-trial", type=float, default=1.0, help="CPUs each trial holds (default 1)")
    add(
        "--gpus-per-trial",
        type=float,
        default=0.0,
        help="GPUs each trial holds, e.g. 0.25 for four trials per GPU (default 0)",
    )
    add("--epochs", type=int, metavar="N", help="epochs per trial (default: the preset's)")
    add("--steps-per-epoch", type=int, metavar="N", help="gradient steps per epoch (default 1000)")
    add(
        "--eval-every",
        type=int,
        metavar="N",
        help="epochs between evaluations (default: the preset's)",
    )
    add(
        "--eval-episodes",
        type=int,
        metavar="N",
        help="episodes per evaluation (default: the preset's)",
    )
    add("--set", action="append", default=[], metavar="FIELD=VALUE", help="fix any DQLConfig field")
    add("--eta-range", metavar="LO,HI", help=f"eta, log scale (default {_pair(suite.ranges.eta)})")
    add("--T-range", metavar="LO,HI", help=f"diffusion steps (default {_pair(suite.ranges.T)})")
    add(
        "--lr-range",
        metavar="LO,HI",
        help=f"actor lr, log (default {_pair(suite.ranges.actor_lr)})",
    )
    add(
        "--grace-period",
        type=int,
        default=1,  # with 3 below: chosen by bench/search_efficiency.py (README, Sweeps)
        help="ASHA: evaluations before a trial can stop (default 1)",
    )
    add(
        "--reduction-factor",
        type=float,
        default=3.0,
        help="ASHA: keep 1/factor per rung (default 3)",
    )
    add(
        "--max-failures",
        type=int,
        default=2,
        help="retries of a crashed trial from its checkpoint (default 2)",
    )
    add(
        "--q-bound",
        type=float,
        default=1e6,
        help="mean |Q| above this marks a trial diverged (default 1e6)",
    )
    add("--optuna-seed", type=int, default=0, help="seed of each task's TPE sampler (default 0)")
    add(
        "--optuna-storage",
        metavar="URL",
        help="Optuna RDB for the studies, e.g. postgresql://user:pw@host/db "
        "(default: STORAGE/NAME/optuna.journal)",
    )
    add(
        "--storage",
        default="sweep-results",
        help="results folder or s3:// URI (default ./sweep-results)",
    )
    add("--name", help=f"sweep name (default {suite.name})")
    add("--resume", action="store_true", help="continue the interrupted sweep --name")
    add("--extend", type=int, metavar="N", help="add N search trials per task to a finished sweep")
    add("--download", action="store_true", help="download missing D4RL files (on every node)")
    add("--address", help="Ray cluster address, e.g. auto (default: start a local Ray)")
    add("--smoke", action="store_true", help=describe_smoke())
    return p


def _pair(values) -> str:
    return f"{values[0]:g},{values[1]:g}"
