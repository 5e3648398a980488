"""Command line: ``python -m dql {train,collect,data,toy}``."""

from __future__ import annotations

import argparse
import sys


class StrictParser(argparse.ArgumentParser):
    """A (sub)command's parser: no abbreviated flags (``--epoch`` is not ``--epochs``), and an
    unknown flag is reported with this subcommand's usage rather than the top-level one."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **{**kwargs, "allow_abbrev": False})

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras


def _add_train(commands) -> None:
    train = commands.add_parser(
        "train",
        help="one training run with the task's paper preset",
        description="Train Diffusion-QL on one task; writes OUT/results.jsonl (one row per "
        "evaluation with normalized scores), OUT/run.json, checkpoints and TensorBoard logs.",
    )
    train.add_argument("--task", required=True, help="e.g. hopper-medium-v2, minari:ID")
    train.add_argument("--data", help="a D4RL-format HDF5 file (default: resolved from --task)")
    train.add_argument("--env", dest="env_id", help="evaluation env id (default: from --task)")
    train.add_argument("--epochs", type=int, help="epochs (default: the preset's)")
    train.add_argument("--steps-per-epoch", type=int, help="gradient steps per epoch (1000)")
    train.add_argument("--eval-every", type=int, help="epochs between evaluations")
    train.add_argument("--eval-episodes", type=int, help="episodes per evaluation")
    train.add_argument("--seed", type=int, default=0, help="the (first) training seed")
    train.add_argument("--num-seeds", type=int, default=1, help="seeds SEED..SEED+N-1, batched")
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="any DQLConfig field, e.g. --set eta=0.5 --set T=10",
    )
    train.add_argument("--out", default="runs/train", help="output folder (default runs/train)")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    train.add_argument("--download", action="store_true", help="download a missing D4RL file")
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_threads(train)


def _add_threads(command) -> None:
    command.add_argument(
        "--threads",
        type=int,
        help="torch threads, fixed (default: one per core no other process keeps busy, revised "
        "while training; see dql/threads.py)",
    )


def _add_collect(commands) -> None:
    collect = commands.add_parser(
        "collect",
        help="write a D4RL-format HDF5 file from real rollouts",
        description="Roll out a random policy or a trained dql checkpoint in a Gymnasium env "
        "and write the transitions in D4RL's format (keys, dtypes, flags, gzip).",
    )
    collect.add_argument("--env", required=True, help="Gymnasium id, e.g. Hopper-v5")
    collect.add_argument("--policy", default="random", help="'random' or a checkpoint path")
    collect.add_argument("--steps", type=int, required=True, help="rows (environment steps)")
    collect.add_argument("--out", required=True, help="the .hdf5 file to write")
    collect.add_argument("--seed", type=int, default=0)
    collect.add_argument(
        "--max-episode-steps", type=int, help="time limit (default: the env's, 1000)"
    )
    collect.add_argument(
        "--xml-file", help="MuJoCo model file (Walker2d: walker2d.xml is D4RL's v4 model)"
    )
    collect.add_argument("--no-progress", action="store_true")


def _add_toy(commands) -> None:
    from dql import toy as toy_module
    from dql.config import LR_SCHEDULES

    toy = commands.add_parser(
        "toy",
        help="the paper's 2D bandit: diffusion BC vs Diffusion-QL",
        description="Train diffusion BC (eta = 0) and Diffusion-QL on the four-mode bandit; "
        "write a scatter plot and DIR/summary.json with the share of actions in each mode.",
    )
    defaults = toy_module.ToyBudget()
    toy.add_argument("--out", required=True, help="folder for toy.png, summary.json, run.json")
    toy.add_argument(
        "--bc-steps", type=int, default=defaults.bc_steps, help="diffusion BC (default %(default)s)"
    )
    toy.add_argument(
        "--ql-steps", type=int, default=defaults.ql_steps, help="Diffusion-QL (default %(default)s)"
    )
    toy.add_argument("--eta", type=float, default=defaults.eta, help="Diffusion-QL's eta")
    toy.add_argument("--T", type=int, default=defaults.T, help="diffusion steps")
    toy.add_argument(
        "--lr",
        type=float,
        default=defaults.lr,
        help="actor and critic rate (default %(default)s; released: 3e-4)",
    )
    toy.add_argument("--seed", type=int, default=0)
    toy.add_argument(
        "--precision", help="fp32 (default), or bf16 (DQLConfig.precision; as --set precision=)"
    )
    toy.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        help=f"{defaults.lr_schedule} (default: decays to zero), or constant as the released toy",
    )
    toy.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a DQLConfig field for both policies, e.g. --set kernels=compiled",
    )
    toy.add_argument("--samples", type=int, default=1000, help="actions sampled per policy")
    toy.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    _add_threads(toy)


def _run_train(args) -> int:
    from dql.train import TrainRequest, budget_overrides, parse_overrides, train

    overrides = parse_overrides(args.set) | budget_overrides(
        args.epochs, args.steps_per_epoch, args.eval_every, args.eval_episodes
    )
    rows = train(
        TrainRequest(
            task=args.task,
            out=args.out,
            data=args.data,
            env_id=args.env_id,
            seeds=[args.seed + i for i in range(args.num_seeds)],
            overrides=overrides,
            device=args.device,
            download=args.download,
            resume=args.resume,
            show_progress=not args.no_progress,
            threads=args.threads,
        )
    )
    if rows:
        last = rows[-1]
        best = max(row["normalized_score"] for row in rows)
        print(
            f"{last['task']} on {last['env_id']}: normalized score {last['normalized_score']:.1f} "
            f"at epoch {last['epoch']} (best {best:.1f}); rows in {args.out}/results.jsonl"
        )
    return 0


def _run_collect(args) -> int:
    from dql.collect import collect
    from dql.envs import EnvSpec

    spec = EnvSpec(args.env, {"xml_file": args.xml_file} if args.xml_file else {})
    path = collect(
        spec,
        args.steps,
        args.out,
        policy=args.policy,
        seed=args.seed,
        max_episode_steps=args.max_episode_steps,
        show_progress=not args.no_progress,
    )
    print(f"wrote {args.steps} rows from {spec.label} to {path}")
    return 0


def _flag_or_set(value, overrides: dict, field: str, default):
    """A toy flag that is also a DQLConfig field: the flag, else ``--set field=``, else default.

    Both given is refused: which one should win is a guess the user did not make.
    """
    from dql.config import ConfigError

    if value is not None and field in overrides:
        flag = "--" + field.replace("_", "-")
        raise ConfigError(f"{flag} and --set {field}=... both given; give one of them")
    return value if value is not None else overrides.pop(field, default)


def _run_toy(args) -> int:
    from dql import toy as toy_module
    from dql.train import parse_overrides

    overrides = parse_overrides(args.set)
    defaults = toy_module.ToyBudget()
    budget = toy_module.ToyBudget(
        bc_steps=args.bc_steps,
        ql_steps=args.ql_steps,
        eta=args.eta,
        T=args.T,
        lr=args.lr,
        lr_schedule=_flag_or_set(args.lr_schedule, overrides, "lr_schedule", defaults.lr_schedule),
        precision=_flag_or_set(args.precision, overrides, "precision", defaults.precision),
        overrides=overrides,
    )
    toy_module.run_toy(
        args.out,
        budget,
        seed=args.seed,
        num_samples=args.samples,
        show_progress=not args.no_progress,
        threads=args.threads,
    )
    return 0


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors caused by input: shown as one line, without a traceback."""
    from dql.config import ConfigError
    from dql.data import DatasetError
    from dql.envs import EnvError

    return (ConfigError, DatasetError, EnvError, FileNotFoundError, FileExistsError)


def main(argv: list[str] | None = None) -> int:
    from dql.data.cli import add_data_commands, run_data_command

    parser = StrictParser(prog="python -m dql", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)  # StrictParser too
    _add_train(commands)
    _add_collect(commands)
    add_data_commands(commands)
    _add_toy(commands)
    args = parser.parse_args(argv)
    runners = {
        "train": _run_train,
        "collect": _run_collect,
        "data": run_data_command,
        "toy": _run_toy,
    }
    try:
        return runners[args.command](args)
    except user_errors() as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
