"""The entry point every suite script calls: ``main(SUITE)``.

sweeps/cli.py        the command line          sweeps/plan.py       validation, defaults
sweeps/driver.py     the concurrent driver     sweeps/searcher.py   per-task Optuna studies
sweeps/scheduler.py  per-task ASHA             sweeps/studies.py    Optuna storage
sweeps/progress.py   a live line per task      sweeps/trainable.py  one trial
sweeps/status.py     trial_status.json         sweeps/smoke.py      the smoke datasets
sweeps/layout.py     the sweep's folder
"""

from __future__ import annotations

import sys

from sweeps.cli import build_parser
from sweeps.plan import Plan, Suite, make_plan
from sweeps.space import SweepInputError

__all__ = ["Plan", "Suite", "build_parser", "main", "make_plan"]


def main(suite: Suite, argv: list[str] | None = None) -> int:
    """Parse, validate (one clear line on bad input), run; the exit status says how it went."""
    from dql.__main__ import user_errors
    from sweeps.driver import RestoreError, run

    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(suite).parse_args(argv)
    try:
        plan = make_plan(suite, args)
        return run(plan, argv)
    except (SweepInputError, *user_errors()) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except RestoreError as error:
        print(f"error: {error}; the results there were left as they were", file=sys.stderr)
        return 1
