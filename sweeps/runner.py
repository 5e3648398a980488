"""The sweep driver every suite script shares: command line, validation, search, confirm.

A suite script says what it sweeps (tasks and ranges) and calls ``main(SUITE)``. Everything
the user can get wrong is checked in ``make_plan`` before Ray starts a single trial.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeps.space import SearchRanges, SweepInputError

METRIC = "normalized_score"
CONFIRM_SEED_OFFSET = 1000  # confirm seeds never overlap the search seeds 0..S-1


@dataclass(frozen=True)
class Suite:
    """What a suite sweeps; the command line may override all of it."""

    name: str
    tasks: tuple[str, ...]
    ranges: SearchRanges = field(default_factory=SearchRanges)
    description: str = ""


@dataclass
class Plan:
    """A validated sweep, ready to run."""

    suite: Suite
    tasks: list[str]
    data: dict[str, str | None]  # task -> explicit dataset path (None: resolved per node)
    ranges: SearchRanges
    fixed: dict[str, Any]  # DQLConfig overrides shared by every trial
    num_samples: int
    seeds: list[int]
    confirm: int
    max_concurrent: int
    cpus_per_trial: float
    gpus_per_trial: float
    storage: str  # absolute local path or URI
    name: str
    resume: bool
    download: bool
    address: str | None
    grace_period: int
    reduction_factor: float
    max_failures: int
    optuna_seed: int
    q_bound: float
    env_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        return self.fixed["num_epochs"]

    @property
    def evaluations(self) -> int:
        """Reports per full trial: one per ``eval_every`` epochs, plus the last epoch."""
        every = self.fixed["eval_every"]
        return self.epochs // every + (1 if self.epochs % every else 0)

    def experiment_path(self, task: str, stage: str = "search") -> str:
        suffix = "-confirm" if stage == "confirm" else ""
        return f"{self.storage}/{self.name}/{_folder_name(task)}{suffix}"


def _folder_name(task: str) -> str:
    return task.replace(":", "_").replace("/", "_")


# ---------------------------------------------------------------- command line
def build_parser(suite: Suite) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"python sweeps/{suite.name}.py",
        description=suite.description or f"Diffusion-QL sweep: {suite.name}",
    )
    add = p.add_argument
    add("--tasks", help=f"comma-separated task ids (default: {','.join(suite.tasks)})")
    add("--data", action="append", default=[], metavar="TASK=PATH", help="dataset per task")
    add("--env", dest="env_id", help="evaluation env id for every task (default: from the task)")
    add("--num-samples", type=int, help="configurations Optuna tries per task (default 16)")
    add("--seeds", type=int, help="seeds trained inside each trial (default 3)")
    add(
        "--confirm",
        type=int,
        default=0,
        metavar="K",
        help="rerun the best config with K fresh seeds",
    )
    add("--max-concurrent", type=int, help="trials running at once per task (default 4)")
    add("--cpus-per-trial", type=float, default=1.0)
    add("--gpus-per-trial", type=float, default=0.0, help="e.g. 0.25 for four trials per GPU")
    add("--epochs", type=int, help="epochs per trial (default: the preset's)")
    add("--steps-per-epoch", type=int, help="gradient steps per epoch (default 1000)")
    add("--eval-every", type=int, help="epochs between evaluations (default: the preset's)")
    add("--eval-episodes", type=int, help="episodes per evaluation (default: the preset's)")
    add("--set", action="append", default=[], metavar="FIELD=VALUE", help="fix any DQLConfig field")
    add("--eta-range", metavar="LO,HI", help=f"eta, log scale (default {_pair(suite.ranges.eta)})")
    add("--T-range", metavar="LO,HI", help=f"diffusion steps (default {_pair(suite.ranges.T)})")
    add(
        "--lr-range",
        metavar="LO,HI",
        help=f"actor lr, log (default {_pair(suite.ranges.actor_lr)})",
    )
    add("--grace-period", type=int, default=2, help="ASHA: evaluations before a trial can stop")
    add("--reduction-factor", type=float, default=3.0, help="ASHA: keep 1/factor per rung")
    add(
        "--max-failures", type=int, default=2, help="retries of a crashed trial from its checkpoint"
    )
    add("--q-bound", type=float, default=1e6, help="mean |Q| above this marks a trial diverged")
    add("--optuna-seed", type=int, default=0, help="seed of Optuna's TPE sampler")
    add("--storage", help="results folder or s3:// URI (default ./sweep-results)")
    add("--name", help=f"experiment name (default {suite.name})")
    add("--resume", action="store_true", help="continue the interrupted sweep --name")
    add("--download", action="store_true", help="download missing D4RL files (on every node)")
    add("--address", help="Ray cluster address, e.g. auto (default: start a local Ray)")
    add("--smoke", action="store_true", help="tiny datasets and budget: a real sweep in minutes")
    return p


def _pair(values) -> str:
    return f"{values[0]:g},{values[1]:g}"


# ---------------------------------------------------------------- validation
def make_plan(suite: Suite, args: argparse.Namespace) -> Plan:
    """Check every input and resolve every default; raises SweepInputError & co. on bad input."""
    from dql.train import budget_overrides, parse_overrides

    smoke = args.smoke
    tasks = _split(args.tasks) if args.tasks else list(suite.tasks)
    data = _parse_data(args.data, tasks)
    if smoke and not args.tasks:
        data, tasks = smoke_datasets(), list(SMOKE_TASKS)
    defaults = SMOKE_SWEEP if smoke else {}
    ranges = (SMOKE_RANGES if smoke else suite.ranges).with_overrides(
        eta=args.eta_range, T=args.T_range, actor_lr=args.lr_range
    )
    fixed = {
        **(SMOKE_CONFIG if smoke else {}),
        **parse_overrides(args.set),
        **budget_overrides(args.epochs, args.steps_per_epoch, args.eval_every, args.eval_episodes),
    }
    for task in tasks:
        _check_task(task, data.get(task), args, fixed)
    first = _task_config(tasks[0], fixed)  # epochs etc. as the preset sets them
    fixed.setdefault("num_epochs", first.num_epochs)
    fixed.setdefault("eval_every", first.eval_every)
    if fixed["eval_every"] > fixed["num_epochs"]:
        if args.eval_every is not None:
            raise SweepInputError(
                f"--eval-every {fixed['eval_every']} exceeds --epochs {fixed['num_epochs']}: "
                "no evaluation would run before the end"
            )
        fixed["eval_every"] = fixed["num_epochs"]  # a short budget: evaluate at its end
    positive = {
        "--num-samples": _pick(args.num_samples, defaults, "num_samples", 16),
        "--seeds": _pick(args.seeds, defaults, "seeds", 3),
        "--max-concurrent": _pick(args.max_concurrent, defaults, "max_concurrent", 4),
        "--grace-period": args.grace_period,
    }
    for flag, value in positive.items():
        if value < 1:
            raise SweepInputError(f"{flag} must be at least 1, got {value}")
    if args.cpus_per_trial <= 0 or args.gpus_per_trial < 0 or args.confirm < 0:
        raise SweepInputError(
            "--cpus-per-trial must be > 0, --gpus-per-trial and --confirm >= 0 "
            f"(got {args.cpus_per_trial}, {args.gpus_per_trial}, {args.confirm})"
        )
    if args.gpus_per_trial > 1 and not float(args.gpus_per_trial).is_integer():
        raise SweepInputError(
            f"--gpus-per-trial {args.gpus_per_trial}: above 1 a trial needs whole GPUs"
        )
    if args.reduction_factor <= 1:
        raise SweepInputError(f"--reduction-factor must exceed 1, got {args.reduction_factor}")
    name = args.name or suite.name
    storage = _storage(args.storage or "sweep-results")
    plan = Plan(
        suite=suite,
        tasks=tasks,
        data=data,
        ranges=ranges,
        fixed=fixed,
        num_samples=positive["--num-samples"],
        seeds=list(range(positive["--seeds"])),
        confirm=args.confirm,
        max_concurrent=positive["--max-concurrent"],
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        storage=storage,
        name=name,
        resume=args.resume,
        download=args.download,
        address=args.address,
        grace_period=args.grace_period,
        reduction_factor=args.reduction_factor,
        max_failures=args.max_failures,
        optuna_seed=args.optuna_seed,
        q_bound=args.q_bound,
        env_id=args.env_id,
    )
    _check_storage(plan)
    return plan


def _pick(value, defaults: dict, key: str, fallback: int) -> int:
    return value if value is not None else defaults.get(key, fallback)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _parse_data(pairs: list[str], tasks: list[str]) -> dict[str, str | None]:
    data: dict[str, str | None] = {}
    for pair in pairs:
        task, sep, path = pair.partition("=")
        if not sep or task not in tasks:
            raise SweepInputError(
                f"--data {pair!r}: expected TASK=PATH with TASK one of --tasks ({', '.join(tasks)})"
            )
        data[task] = str(Path(path).expanduser().resolve())  # trials run elsewhere
    return data


def _task_config(task: str, fixed: dict[str, Any]):
    from dql.train import task_config

    return task_config(task, **fixed)


def _check_task(task: str, data: str | None, args, fixed: dict[str, Any]) -> None:
    """Unknown task, bad config, missing or malformed dataset: all fail here."""
    from dql.envs import env_for_task
    from dql.run import prepare_task
    from dql.scores import reference_scores

    if not task.startswith("minari:") and task != "bandit":
        reference_scores(task)  # UnknownTaskError with close ids
    _task_config(task, fixed)  # ConfigError for impossible values
    if args.download and data is None:
        env_for_task(task, args.env_id)  # the file itself is fetched by each trial's node
        return
    prepare_task(task, data, args.env_id, download=False)  # missing file: names the fix


def _storage(storage: str) -> str:
    if "://" in storage:
        return storage.rstrip("/")
    return str(Path(storage).expanduser().resolve())


def _check_storage(plan: Plan) -> None:
    import pyarrow.fs

    uri = plan.storage if "://" in plan.storage else f"file://{plan.storage}"
    try:
        filesystem, root = pyarrow.fs.FileSystem.from_uri(uri)
        filesystem.get_file_info(root)
    except Exception as error:  # any failure here means no trial could write
        raise SweepInputError(f"storage {plan.storage} is unreachable: {error}") from None
    for task in plan.tasks:
        path = plan.experiment_path(task)
        info = filesystem.get_file_info(path.split("://", 1)[-1] if "://" in path else path)
        if info.type != pyarrow.fs.FileType.NotFound and not plan.resume:
            raise SweepInputError(
                f"{path} already holds a sweep; continue it with --resume, or pick another --name"
            )


# ---------------------------------------------------------------- running
def trial_constants(plan: Plan, task: str, stage: str, seeds: list[int]) -> dict[str, Any]:
    return {
        "task": task,
        "data": plan.data.get(task),
        "env_id": plan.env_id,
        "download": plan.download,
        "seeds": seeds,
        "stage": stage,
        "fixed": plan.fixed,
        "cpus_per_trial": plan.cpus_per_trial,
        "q_bound": plan.q_bound,
    }


def _run_config(plan: Plan, task: str, stage: str):
    from ray import tune

    from sweeps.trainable import DivergenceStopper

    return tune.RunConfig(
        name=plan.experiment_path(task, stage).rsplit("/", 1)[-1],
        storage_path=f"{plan.storage}/{plan.name}",
        failure_config=tune.FailureConfig(max_failures=plan.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        stop=DivergenceStopper(),
        progress_reporter=_reporter(),
        verbose=1,
    )


def trial_dirname(trial) -> str:
    """Short folder names that say what the trial searched (Tune's default lists constants)."""
    c = trial.config
    number = trial.experiment_tag.split("_", 1)[0]  # Tune counts trials from 1 in order
    name = f"trial_{int(number):03d}_{trial.trial_id}" if number.isdigit() else trial.trial_id
    if "eta" not in c:
        return name
    return f"{name}_eta={c['eta']:.3g}_T={c['T']}_lr={c['actor_lr']:.2g}"


def _reporter():
    """A compact table of the searched values and scores, at most every 15 s."""
    from ray.tune import CLIReporter

    return CLIReporter(
        parameter_columns=["eta", "T", "actor_lr"],
        metric_columns={
            "epoch": "epoch",
            METRIC: "score",
            "normalized_score_std": "std",
            "status": "status",
        },
        max_report_frequency=15,
    )


def _trainable(plan: Plan):
    from ray import tune

    from sweeps.trainable import train_trial

    return tune.with_resources(
        train_trial, {"cpu": plan.cpus_per_trial, "gpu": plan.gpus_per_trial}
    )


def search(plan: Plan, task: str):
    """Optuna (TPE) proposes, ASHA stops the weak; the paper's preset is tried first."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    path = plan.experiment_path(task)
    if plan.resume and tune.Tuner.can_restore(path):
        print(f"resuming {path}")
        tuner = tune.Tuner.restore(path, trainable=_trainable(plan), resume_errored=True)
        return tuner.fit()
    preset = _task_config(task, plan.fixed)
    first = {"eta": preset.eta, "T": preset.T, "actor_lr": preset.actor_lr}
    points = [first] if plan.ranges.contains(first) else []
    if not points:
        print(f"{task}: the paper preset {first} lies outside the search ranges; not tried")
    searcher = OptunaSearch(
        plan.ranges.optuna_space(),
        metric=METRIC,
        mode="max",
        points_to_evaluate=points,
        seed=plan.optuna_seed,
    )
    scheduler = ASHAScheduler(
        time_attr="training_iteration",
        metric=METRIC,
        mode="max",
        max_t=plan.evaluations,
        grace_period=min(plan.grace_period, plan.evaluations),
        reduction_factor=plan.reduction_factor,
    )
    tuner = tune.Tuner(
        _trainable(plan),
        param_space=trial_constants(plan, task, "search", plan.seeds),
        tune_config=tune.TuneConfig(
            search_alg=ConcurrencyLimiter(searcher, max_concurrent=plan.max_concurrent),
            scheduler=scheduler,
            num_samples=plan.num_samples,
            trial_dirname_creator=trial_dirname,
        ),
        run_config=_run_config(plan, task, "search"),
    )
    return tuner.fit()


def best_configuration(results) -> dict[str, Any] | None:
    """The searched values of the best trial by its last mean score, preferring full trials."""
    scored = [
        r
        for r in results
        if r.error is None and r.metrics and math.isfinite(r.metrics.get(METRIC, math.nan))
    ]
    full = [r for r in scored if r.metrics.get("status") == "finished"]
    pool = full or scored
    if not pool:
        return None
    best = max(pool, key=lambda r: r.metrics[METRIC])
    return {name: best.config[name] for name in ("eta", "T", "actor_lr")}


def confirm(plan: Plan, task: str, best: dict[str, Any]):
    """Rerun the chosen configuration with fresh seeds; its rows are tagged stage=confirm."""
    from ray import tune

    path = plan.experiment_path(task, "confirm")
    if plan.resume and tune.Tuner.can_restore(path):
        return tune.Tuner.restore(path, trainable=_trainable(plan), resume_errored=True).fit()
    seeds = [CONFIRM_SEED_OFFSET + i for i in range(plan.confirm)]
    tuner = tune.Tuner(
        _trainable(plan),
        param_space={**trial_constants(plan, task, "confirm", seeds), **best},
        tune_config=tune.TuneConfig(num_samples=1, trial_dirname_creator=trial_dirname),
        run_config=_run_config(plan, task, "confirm"),
    )
    return tuner.fit()


def start_ray(plan: Plan) -> None:
    import ray

    # The classic reporter: the new console output prints every row in full (dozens of lines).
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Every report carries a checkpoint by design (no row is ever repeated on restore).
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if not ray.is_initialized():
        ray.init(address=plan.address, include_dashboard=False, log_to_driver=True)
    if plan.gpus_per_trial > 0:
        most = max((n["Resources"].get("GPU", 0) for n in ray.nodes() if n["Alive"]), default=0)
        if plan.gpus_per_trial > most and plan.address is None:
            raise SweepInputError(
                f"--gpus-per-trial {plan.gpus_per_trial:g} but the largest node has {most:g} "
                "GPUs; lower it (e.g. 0.25 shares one GPU among four trials) or use a cluster"
            )
        if plan.gpus_per_trial > most:
            print(
                f"warning: no node has {plan.gpus_per_trial:g} GPUs yet; trials wait for the "
                "autoscaler to add one"
            )


def run(plan: Plan) -> dict[str, dict[str, Any]]:
    """Search every task (then confirm), write trial_status.json, return the statuses."""
    from sweeps.status import write_trial_status

    start_ray(plan)
    statuses = {}
    for task in plan.tasks:
        results = search(plan, task)
        statuses[task] = write_trial_status(
            results, plan.experiment_path(task), "search", plan.epochs
        )
        best = best_configuration(results)
        if plan.confirm and best is not None:
            confirmed = confirm(plan, task, best)
            write_trial_status(
                confirmed, plan.experiment_path(task, "confirm"), "confirm", plan.epochs
            )
    report(plan)
    return statuses


def report(plan: Plan) -> None:
    """Print the sweep's summary and write its LaTeX table into the results folder."""
    root = f"{plan.storage}/{plan.name}"
    from analysis.storage import ResultsError
    from analysis.summary import summarize
    from analysis.tables import write_sweep_table

    try:
        print(summarize([root]))
        print(f"LaTeX table: {write_sweep_table(root)}")
    except ResultsError as error:  # e.g. every trial failed before reporting
        print(f"no table for {root}: {error}")


# ---------------------------------------------------------------- smoke
SMOKE_TASKS = ("hopper-random-v2", "walker2d-random-v2")
SMOKE_RANGES = SearchRanges(eta=(0.1, 10.0), T=(2, 6), actor_lr=(1e-4, 1e-3))
# DQLConfig fields of the smoke budget (flags and --set still override them).
SMOKE_CONFIG = {
    "num_epochs": 4,
    "steps_per_epoch": 20,
    "eval_every": 1,
    "eval_episodes": 2,
    "batch_size": 64,
    "hidden_dim": 64,
}
SMOKE_SWEEP = {"num_samples": 4, "seeds": 1, "max_concurrent": 2}
SMOKE_ENVS = {
    "hopper-random-v2": ("Hopper-v5", None),
    "walker2d-random-v2": ("Walker2d-v5", "walker2d.xml"),
}
SMOKE_ROWS = 3000


def smoke_datasets(folder: str | os.PathLike = "sweep-data") -> dict[str, str | None]:
    """Random-policy Hopper and Walker2d files made with ``python -m dql collect`` (cached)."""
    folder = Path(folder).resolve()
    paths: dict[str, str | None] = {}
    for task, (env_id, xml) in SMOKE_ENVS.items():
        path = folder / f"{task}-{SMOKE_ROWS}.hdf5"
        if not path.is_file():
            command = [
                sys.executable,
                "-m",
                "dql",
                "collect",
                "--env",
                env_id,
                "--steps",
                str(SMOKE_ROWS),
                "--out",
                str(path),
                "--no-progress",
            ]
            if xml:
                command += ["--xml-file", xml]
            print("+", " ".join(command[1:]))
            subprocess.run(command, check=True)
        paths[task] = str(path)
    return paths


# ---------------------------------------------------------------- entry point
def main(suite: Suite, argv: list[str] | None = None) -> int:
    """Parse, validate (one clear line on bad input), run; the exit status says how it went."""
    from dql.__main__ import user_errors

    args = build_parser(suite).parse_args(argv)
    try:
        plan = make_plan(suite, args)
        run(plan)
    except (SweepInputError, *user_errors()) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
