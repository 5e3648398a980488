"""A sweep's validated plan: every input checked and every default resolved before Ray starts.

``make_plan`` is where everything the user can get wrong fails, in one line that names the
fix (``SweepInputError`` and dql's own input errors), before a single trial is started.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeps import layout
from sweeps.smoke import (
    SMOKE_CONFIG,
    SMOKE_RANGES,
    SMOKE_SWEEP,
    SMOKE_TASK_CONFIG,
    SMOKE_TASKS,
    smoke_datasets,
)
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
    num_samples: int  # search trials per task in the first round
    seeds: list[int]
    confirm: int
    max_concurrent: int | None  # running trials in all (None: as many as the cluster holds)
    max_concurrent_per_task: int | None
    cpus_per_trial: float
    gpus_per_trial: float
    storage: str  # absolute local path or URI
    name: str
    resume: bool
    extend: int  # search trials per task added by this run (--extend), 0 otherwise
    download: bool
    address: str | None
    grace_period: int
    reduction_factor: float
    max_failures: int
    optuna_seed: int
    optuna_storage: str | None  # an RDB URL; None: a journal file in the sweep's folder
    q_bound: float
    smoke: bool = False
    # task -> overrides of ``fixed`` for that task alone (never epochs or eval_every: ASHA's
    # rungs count evaluations, the same for every task)
    task_fixed: dict[str, dict[str, Any]] = field(default_factory=dict)
    env_id: str | None = None
    round_index: int = 0  # 0: the first round; K: the K-th --extend

    def fixed_for(self, task: str) -> dict[str, Any]:
        """The DQLConfig overrides of ``task``'s trials."""
        return {**self.fixed, **self.task_fixed.get(task, {})}

    @property
    def epochs(self) -> int:
        return self.fixed["num_epochs"]

    @property
    def evaluations(self) -> int:
        """Reports per full trial: one per ``eval_every`` epochs, plus the last epoch."""
        every = self.fixed["eval_every"]
        return self.epochs // every + (1 if self.epochs % every else 0)

    @property
    def sweep_path(self) -> str:
        return f"{self.storage}/{self.name}"

    @property
    def round(self) -> str:
        return layout.round_name(self.round_index)

    @property
    def experiment_path(self) -> str:
        """Tune's experiment folder of this run's round."""
        return f"{self.sweep_path}/{self.round}"

    @property
    def confirm_seeds(self) -> list[int]:
        return [CONFIRM_SEED_OFFSET + i for i in range(self.confirm)]

    def resume_command(self, argv: list[str]) -> str:
        """The command that continues this sweep, for the message after an interruption."""
        import shlex

        kept = [a for a in argv if a != "--resume"]
        if "--extend" in kept:  # a resumed extension continues; it adds no more trials
            at = kept.index("--extend")
            del kept[at : at + 2]
        kept = [a for a in kept if not a.startswith("--extend=")]
        return shlex.join(["python", f"sweeps/{self.suite.name}.py", *kept, "--resume"])


# ---------------------------------------------------------------- validation
def make_plan(suite: Suite, args: argparse.Namespace) -> Plan:
    """Check every input and resolve every default; raises SweepInputError & co. on bad input."""
    from dql.train import budget_overrides, parse_overrides

    smoke = args.smoke
    tasks = _split(args.tasks) if args.tasks else list(suite.tasks)
    data = _parse_data(args.data, tasks)
    defaults = SMOKE_SWEEP if smoke else {}
    ranges = (SMOKE_RANGES if smoke else suite.ranges).with_overrides(
        eta=args.eta_range, T=args.T_range, actor_lr=args.lr_range
    )
    given = {
        **parse_overrides(args.set),
        **budget_overrides(args.epochs, args.steps_per_epoch, args.eval_every, args.eval_episodes),
    }
    fixed = {**(SMOKE_CONFIG if smoke else {}), **given}
    _check_counts(args, defaults)
    name = args.name or suite.name
    storage = _storage(args.storage or "sweep-results")
    round_index = _check_sweep_folder(storage, name, args)
    optuna_storage = _check_optuna_storage(args.optuna_storage)
    if smoke:  # the smoke tasks (all, or those --tasks names) on their own small files
        tasks = tasks if args.tasks else list(SMOKE_TASKS)
        data = {**smoke_datasets([t for t in tasks if t in SMOKE_TASKS]), **data}
    task_fixed = {  # what the command line sets wins over the smoke budget of a task
        task: {k: v for k, v in SMOKE_TASK_CONFIG.get(task, {}).items() if k not in given}
        for task in tasks
        if smoke and task in SMOKE_TASK_CONFIG
    }
    for task in tasks:
        _check_task(task, data.get(task), args, {**fixed, **task_fixed.get(task, {})})
    first = task_preset(tasks[0], fixed)  # epochs etc. as the preset sets them
    fixed.setdefault("num_epochs", first.num_epochs)
    fixed.setdefault("eval_every", first.eval_every)
    if fixed["eval_every"] > fixed["num_epochs"]:
        if args.eval_every is not None:
            raise SweepInputError(
                f"--eval-every {fixed['eval_every']} exceeds --epochs {fixed['num_epochs']}: "
                "no evaluation would run before the end"
            )
        fixed["eval_every"] = fixed["num_epochs"]  # a short budget: evaluate at its end
    return Plan(
        suite=suite,
        tasks=tasks,
        data=data,
        ranges=ranges,
        fixed=fixed,
        num_samples=_pick(args.num_samples, defaults, "num_samples", 16),
        seeds=list(range(_pick(args.seeds, defaults, "seeds", 3))),
        confirm=args.confirm,
        max_concurrent=_pick(args.max_concurrent, defaults, "max_concurrent", None),
        max_concurrent_per_task=args.max_concurrent_per_task,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        storage=storage,
        name=name,
        resume=args.resume,
        extend=args.extend or 0,
        download=args.download,
        address=args.address,
        grace_period=args.grace_period,
        reduction_factor=args.reduction_factor,
        max_failures=args.max_failures,
        optuna_seed=args.optuna_seed,
        optuna_storage=optuna_storage,
        q_bound=args.q_bound,
        smoke=smoke,
        task_fixed=task_fixed,
        env_id=args.env_id,
        round_index=round_index,
    )


def _check_counts(args: argparse.Namespace, defaults: dict) -> None:
    at_least_one = {
        "--num-samples": args.num_samples,
        "--seeds": args.seeds,
        "--max-concurrent": args.max_concurrent,
        "--max-concurrent-per-task": args.max_concurrent_per_task,
        "--grace-period": args.grace_period,
        "--extend": args.extend,
    }
    for flag, value in at_least_one.items():
        if value is not None and value < 1:
            raise SweepInputError(f"{flag} must be at least 1, got {value}")
    if args.cpus_per_trial <= 0 or args.gpus_per_trial < 0 or args.confirm < 0:
        raise SweepInputError(
            "--cpus-per-trial must be > 0, --gpus-per-trial and --confirm >= 0 "
            f"(got {args.cpus_per_trial:g}, {args.gpus_per_trial:g}, {args.confirm})"
        )
    if args.gpus_per_trial > 1 and not float(args.gpus_per_trial).is_integer():
        raise SweepInputError(
            f"--gpus-per-trial {args.gpus_per_trial}: above 1 a trial needs whole GPUs"
        )
    if args.reduction_factor <= 1:
        raise SweepInputError(f"--reduction-factor must exceed 1, got {args.reduction_factor}")
    if args.resume and args.extend:
        raise SweepInputError(
            "--resume and --extend together: --resume continues the newest round (an "
            "interrupted extension included); --extend N starts a new one on a finished sweep"
        )


def _pick(value, defaults: dict, key: str, fallback):
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


def task_preset(task: str, fixed: dict[str, Any]):
    """The task's DQLConfig with the sweep's fixed overrides (the driver reads its preset)."""
    from dql.train import task_config

    return task_config(task, **fixed)


def _check_task(task: str, data: str | None, args, fixed: dict[str, Any]) -> None:
    """Unknown task, bad config, missing or malformed dataset: all fail here."""
    from dql.envs import env_for_task
    from dql.run import prepare_task
    from dql.scores import reference_scores

    if not task.startswith("minari:") and task != "bandit":
        reference_scores(task)  # UnknownTaskError with close ids
    task_preset(task, fixed)  # ConfigError for impossible values
    if args.download and data is None:
        env_for_task(task, args.env_id)  # the file itself is fetched by each trial's node
        return
    prepare_task(task, data, args.env_id, download=False)  # missing file: names the fix


def _storage(storage: str) -> str:
    if "://" in storage:
        return storage.rstrip("/")
    return str(Path(storage).expanduser().resolve())


def _check_sweep_folder(storage: str, name: str, args: argparse.Namespace) -> int:
    """Storage reachable and writable; the sweep exists for --resume/--extend and not
    otherwise. Returns the index of the round this run works on."""
    if "://" not in storage and (why := layout.writable_local_folder(storage)):
        raise SweepInputError(f"--storage {storage} cannot be written: {why}; pick another")
    try:
        sweep = layout.read_json(f"{storage}/{name}/{layout.SWEEP_FILE}")
    except Exception as error:  # any failure here means no trial could write either
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SweepInputError(f"--storage {storage} is unreachable: {first}") from None
    if sweep is None:
        if args.resume or args.extend:
            flag = "--resume" if args.resume else "--extend"
            found = layout.existing_sweeps(storage)
            listed = ", ".join(found) if found else "none"
            raise SweepInputError(
                f"{flag}: there is no sweep {name!r} under {storage} (sweeps there: {listed}); "
                "check --storage and --name, or start it without " + flag
            )
        if _exists(f"{storage}/{name}/{layout.FIRST_ROUND}"):
            raise SweepInputError(
                f"{storage}/{name} holds an unfinished start of a sweep; continue it with "
                "--resume, or pick another --name"
            )
        return 0
    rounds = sweep.get("rounds", [])
    newest = len(rounds) - 1
    if args.resume:
        if rounds and rounds[-1].get("complete"):
            raise SweepInputError(
                f"--resume: sweep {name!r} is complete; add trials with --extend N, "
                "or look at it with python -m analysis summary " + f"{storage}/{name}"
            )
        return max(newest, 0)
    if args.extend:
        if rounds and not rounds[-1].get("complete"):
            raise SweepInputError(
                f"--extend: the newest round of {name!r} ({rounds[-1]['round']}) did not "
                "finish; complete it first with --resume"
            )
        return newest + 1
    raise SweepInputError(
        f"{storage}/{name} already holds a sweep; continue it with --resume, add trials with "
        "--extend N, or pick another --name"
    )


def _exists(path: str) -> bool:
    import pyarrow.fs

    fs, inner = layout.filesystem(path)
    return fs.get_file_info(inner).type != pyarrow.fs.FileType.NotFound


def _check_optuna_storage(url: str | None) -> str | None:
    """An --optuna-storage that cannot be opened fails here, not after Ray has started."""
    if url is None:
        return None
    from sweeps.studies import open_storage

    try:
        open_storage(url)
    except Exception as error:  # sqlalchemy, driver import and file errors alike
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SweepInputError(
            f"--optuna-storage {url} cannot be opened: {first[:200]}; check the URL "
            "(e.g. postgresql://user:password@host/db or sqlite:////abs/path.db) and that the "
            "server is reachable"
        ) from None
    return url
