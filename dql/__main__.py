"""Command line: ``python -m dql toy --out DIR`` (more commands arrive with the data issue)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dql", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    toy = commands.add_parser(
        "toy",
        help="the paper's 2D bandit: diffusion BC vs Diffusion-QL",
        description="Train diffusion BC (eta = 0) and Diffusion-QL on the four-mode bandit; "
        "write a scatter plot and DIR/summary.json with the share of actions in each mode.",
    )
    from dql import toy as toy_module

    defaults = toy_module.ToyBudget()
    toy.add_argument("--out", required=True, help="folder for toy.png, summary.json, run.json")
    toy.add_argument("--bc-steps", type=int, default=defaults.bc_steps)
    toy.add_argument("--ql-steps", type=int, default=defaults.ql_steps)
    toy.add_argument("--eta", type=float, default=defaults.eta, help="Diffusion-QL's eta")
    toy.add_argument("--T", type=int, default=defaults.T, help="diffusion steps")
    toy.add_argument(
        "--lr", type=float, default=defaults.lr, help="actor and critic rate (released: 3e-4)"
    )
    toy.add_argument("--seed", type=int, default=0)
    toy.add_argument("--samples", type=int, default=1000, help="actions sampled per policy")
    toy.add_argument("--no-progress", action="store_true", help="hide the progress bars")

    args = parser.parse_args(argv)
    if args.command == "toy":
        budget = toy_module.ToyBudget(
            bc_steps=args.bc_steps, ql_steps=args.ql_steps, eta=args.eta, T=args.T, lr=args.lr
        )
        toy_module.run_toy(
            args.out,
            budget,
            seed=args.seed,
            num_samples=args.samples,
            show_progress=not args.no_progress,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
