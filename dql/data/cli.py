"""``python -m dql data {download,info}``: fetch D4RL files, and see what a dataset holds."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dql.data.d4rl import (
    collected_command,
    qlearning_transitions,
    read_d4rl,
    step_counter_limits,
)
from dql.data.download import download_d4rl
from dql.data.minari_data import minari_info, open_minari
from dql.data.resolve import DatasetSource, resolve_dataset


def add_data_commands(subparsers: Any) -> None:
    """Add ``data download`` and ``data info`` to the ``python -m dql`` parser."""
    data = subparsers.add_parser(
        "data",
        help="download D4RL files; show what a dataset holds",
        description="Download D4RL datasets into D4RL's cache ($D4RL_DATASET_DIR, default "
        "~/.d4rl/datasets), or describe a dataset file or task.",
    )
    commands = data.add_subparsers(dest="data_command", required=True)
    download = commands.add_parser(
        "download",
        help="download D4RL files (resumes an interrupted download)",
        description="Download each task's D4RL file; an interrupted download is resumed.",
    )
    download.add_argument("tasks", nargs="+", metavar="TASK", help="e.g. hopper-medium-v2")
    download.add_argument("--dir", help="target folder (default $D4RL_DATASET_DIR)")
    download.add_argument("--base-url", help="mirror to use (default $D4RL_BASE_URL or D4RL's)")
    download.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    info = commands.add_parser(
        "info",
        help="rows, dimensions, episodes, terminals and time limits of a dataset",
        description="Describe a D4RL-format file, or the dataset a task id resolves to.",
    )
    info.add_argument("target", metavar="PATH|TASK", help="an .hdf5 file or a task id")
    info.add_argument("--dir", help="D4RL dataset folder (default $D4RL_DATASET_DIR)")
    info.add_argument(
        "--max-episode-steps",
        type=int,
        help="time limit for files without timeouts (default: the task's, else 1000)",
    )


def run_data_command(args: argparse.Namespace) -> int:
    """Run ``data download`` or ``data info``; errors propagate as ``DatasetError``."""
    if args.data_command == "download":
        for task in args.tasks:
            path = download_d4rl(
                task, args.dir, base_url=args.base_url, progress=not args.no_progress
            )
            print(f"{task}: {path}")
        return 0
    path = Path(args.target).expanduser()
    if path.exists() or path.suffix in (".hdf5", ".h5"):
        lines = describe_d4rl(path, args.max_episode_steps or 1000)
    else:
        source = resolve_dataset(args.target, dataset_dir=args.dir)
        lines = describe_source(source, args.max_episode_steps)
    width = max(len(key) for key in lines)
    for key, value in lines.items():
        print(f"{key:<{width}}  {value}")
    return 0


def describe_d4rl(path: Path, max_episode_steps: int = 1000) -> dict[str, str]:
    """What a D4RL-format file holds, and how many transitions D4RL makes of it."""
    rows = read_d4rl(path)
    n = len(rows)
    if rows.timeouts is not None:
        limits = rows.timeouts
        timeouts = f"{int(limits.sum()):,}"
    else:  # the counter over all N rows: its first N - 1 values are D4RL's
        limits = step_counter_limits(rows.terminals, max_episode_steps)
        timeouts = f"absent (v0 file: time limits by D4RL's step counter, L={max_episode_steps})"
    ends = rows.terminals | limits
    unfinished = " (the last one unfinished)" if not ends[-1] else ""
    transitions = len(qlearning_transitions(rows, max_episode_steps=max_episode_steps))
    return {
        "file": str(path),
        "made by": collected_command(path) or "not `python -m dql collect` (a D4RL file?)",
        "rows": f"{n:,}",
        "observations": f"{rows.observations.shape[1]} dims, {rows.observations.dtype}",
        "actions": f"{rows.actions.shape[1]} dims, {rows.actions.dtype}",
        "terminals": f"{int(rows.terminals.sum()):,}",
        "timeouts": timeouts,
        "episodes": f"{int(ends.sum()) + bool(unfinished):,}{unfinished}",
        "transitions": f"{transitions:,} (D4RL qlearning_dataset: time-limit rows and the "
        "last row dropped)",
        "reward range": f"{rows.rewards.min():.4g} .. {rows.rewards.max():.4g}",
    }


def describe_source(source: DatasetSource, max_episode_steps: int | None) -> dict[str, str]:
    """A resolved task: its file (or Minari metadata) and its reference scores."""
    ref = source.reference
    scores = {"task": source.task, "reference returns": f"{ref.ref_min:g} .. {ref.ref_max:g}"}
    if source.kind == "d4rl":
        steps = max_episode_steps or ref.max_episode_steps or 1000
        return {**scores, **describe_d4rl(Path(source.location), steps)}
    info = minari_info(open_minari(str(source.location)))
    return {
        **scores,
        "minari dataset": info.dataset_id,
        "environment": str(info.env_id),
        "episodes": f"{info.total_episodes:,}",
        "steps": f"{info.total_steps:,}",
    }
