"""``python -m analysis {table,plot,summary} RESULTS...``: the analysis from a shell."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from analysis.aggregate import METRICS, Selection
from analysis.loading import TruncatedResultsWarning, load
from analysis.references import available_references
from analysis.storage import ResultsError


def build_parser() -> argparse.ArgumentParser:
    from analysis.plots import FIGURES

    p = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Tables, plots and summaries of Diffusion-QL sweeps and training runs.",
        allow_abbrev=False,
    )
    # Subcommands: no abbreviated flags either, and a bad flag shows that subcommand's usage.
    sub = p.add_subparsers(dest="command", required=True, parser_class=_StrictParser)
    help_results = "sweep or run folders (local or s3://), searched recursively"

    table = sub.add_parser("table", help="paper-style results table")
    table.add_argument("results", nargs="+", help=help_results)
    table.add_argument("--format", choices=("latex", "markdown", "csv"), default="latex")
    table.add_argument("--out", help="write to this file (default: print)")
    table.add_argument(
        "--reference",
        default="paper",
        help=f"comma-separated reference columns, '' for none ({','.join(available_references())})",
    )
    table.add_argument(
        "--metrics",
        default=",".join(METRICS),
        help="our columns: last,best,offline,best_of_mean (default last,best,offline)",
    )
    table.add_argument("--spread", choices=("std", "se"), default="std", help="± over seeds")
    table.add_argument(
        "--search-only", action="store_true", help="ignore confirm rows (report search trials)"
    )
    table.add_argument("--top-k", type=int, help="offline rule rank (default: each preset's)")
    table.add_argument(
        "--standalone", action="store_true", help="LaTeX: a whole two-column document"
    )
    table.add_argument(
        "--wide",
        action="store_true",
        help="LaTeX: a table* across both columns (default: shrunk to fit one column)",
    )
    table.add_argument(
        "--hyperparameters", action="store_true", help="the per-task hyperparameter table instead"
    )

    figures = "; ".join(f"{name}.png/.pdf: {what}" for name, (_, what) in FIGURES.items())
    plot = sub.add_parser(
        "plot",
        help="learning curves, sweep diagnostics, profiles",
        description=f"Writes into --out: {figures}. A figure with nothing to show is "
        "skipped, and the command says so.",
    )
    plot.add_argument("results", nargs="+", help=help_results)
    plot.add_argument("--out", required=True, help="folder for the PNG and PDF files")

    summary = sub.add_parser("summary", help="trials by status, best configuration, time")
    summary.add_argument("results", nargs="+", help=help_results)
    return p


class _StrictParser(argparse.ArgumentParser):
    """A subcommand's parser: no abbreviated flags (``--out`` is not ``--o``), and an unknown
    flag is reported with this subcommand's usage rather than the top-level one."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **{**kwargs, "allow_abbrev": False})

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def run_table(args: argparse.Namespace) -> str:
    from analysis.tables import (
        frame_markdown,
        hyperparameter_latex,
        hyperparameter_table,
        render,
        score_table,
        standalone_document,
    )

    results = load(args.results)
    selection = Selection(spread=args.spread, prefer_confirm=not args.search_only, top_k=args.top_k)
    if args.hyperparameters:
        frame = hyperparameter_table(results, selection)
        if args.format == "latex":
            text = hyperparameter_latex(frame, wide=args.wide)
            return standalone_document(text) if args.standalone else text
        return frame.to_csv(index=False) if args.format == "csv" else frame_markdown(frame)
    metrics = _split(args.metrics)
    unknown = [m for m in metrics if m not in (*METRICS, "best_of_mean")]
    if unknown:
        raise ValueError(f"unknown --metrics {unknown}; choose from last,best,offline,best_of_mean")
    table = score_table(results, metrics, _split(args.reference), selection)
    return render(table, args.format, standalone=args.standalone, wide=args.wide)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("default", TruncatedResultsWarning)
        warnings.showwarning = _one_line_warning
        return _run(args)


def _one_line_warning(message, category, *_args, **_kwargs) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    try:
        if args.command == "table":
            text = run_table(args)
            if args.out:
                from analysis.storage import write_text

                print(f"wrote {write_text(args.out, text)}")
            else:
                sys.stdout.write(text)
        elif args.command == "plot":
            from analysis.plots import all_plots

            paths, skipped = all_plots(load(args.results), Path(args.out))
            for path in paths:
                print(f"wrote {path} and {path.with_suffix('.pdf').name}")
            for name, why in skipped.items():
                print(f"skipped {name}: {why}")
        else:
            from analysis.summary import summarize

            print(summarize(args.results))
    except (ResultsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
