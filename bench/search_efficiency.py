"""What a search finds per unit of compute: grid, random search, TPE and TPE + ASHA.

    python bench/search_efficiency.py [--tasks bandit,invertedpendulum-random-local]
        [--search-seeds 50] [--num-samples 16] [--workers 4] [--jobs 2]
        [--tables bench-output/search-efficiency/tables] [--out bench-output/search-efficiency]

A tabular benchmark. 1. For every point of a grid over eta x T x actor_lr (inside the
suite's ranges) one real ``dql.run.TrainingRun`` trains some "search" seeds and some fresh
"confirm" seeds together, evaluating after every epoch; the per-epoch per-seed scores and
each epoch's CPU-seconds (process time, per seed) are cached as JSON under ``--tables``,
so a rerun only replays. 2. Each search method is replayed on that table
(``sweeps/replay.py``: the sweep's own Optuna calls and its own ASHA scheduler, Ray Tune's,
on a simulated clock with ``--workers`` trials at once) for every search seed. What counts
is the confirm score of the configuration a search would report (its mean over the confirm
seeds at the full budget) against the compute the search spent (trial-epochs, CPU-seconds;
a stopped trial pays only its epochs; the confirm stage costs every method the same and is
left out). Prints a table per task, an ASHA (grace period, reduction factor) table that
chose the sweep's defaults, and draws best-so-far curves (``search_efficiency.png``).

Each search seed draws which search seed's run a trial observes, so searches see the
noise of one training run; the platform's trials average 3 seeds. Not replayed: the
sweep's first trial, the paper preset, which Optuna is given before it samples.
Never part of the tests.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sweeps.replay import METHODS, Search, Table, grid_compute, replay


def log_grid(low: float, high: float, n: int) -> list[float]:
    return [float(f"{v:.3g}") for v in np.geomspace(low, high, n)]


@dataclass(frozen=True)
class TaskBench:
    """One task's grid and per-trial budget, small enough for the 30-minute, 2-core bench."""

    task: str
    grid: dict[str, list[float]]
    epochs: int
    steps_per_epoch: int
    eval_episodes: int
    overrides: dict[str, Any] = field(default_factory=dict)  # further DQLConfig fields
    search_seeds: tuple[int, ...] = (0, 1, 2)  # the sweep's trial seeds
    confirm_seeds: tuple[int, ...] = (1000, 1001)  # fresh seeds, as the confirm stage's

    def configs(self) -> list[dict[str, float]]:
        g = self.grid
        return [
            {"eta": eta, "T": int(T), "actor_lr": lr}
            for eta in g["eta"]
            for T in g["T"]
            for lr in g["actor_lr"]
        ]


BENCHES = {
    # Inside sweeps/bandit.py's ranges (eta 0.1-10, T 2-50, lr 1e-4-3e-3); T stops at 12,
    # as T = 50 takes 4x T = 12's time per step. Width 64 instead of the toy's 128.
    "bandit": TaskBench(
        "bandit",
        grid={"eta": log_grid(0.1, 10, 4), "T": [2, 5, 12], "actor_lr": log_grid(1e-4, 3e-3, 3)},
        epochs=12,
        steps_per_epoch=100,
        eval_episodes=30,
        overrides={"hidden_dim": 64},
    ),
    # Inside sweeps/locomotion.py's ranges (eta 0.1-10, T 2-20, lr 1e-4-1e-3); 3 x 3 x 3 and
    # 1,500 of the preset's 2,000 steps, so that both tables build in under 30 minutes.
    "invertedpendulum-random-local": TaskBench(
        "invertedpendulum-random-local",
        grid={"eta": [0.1, 1.0, 10.0], "T": [2, 5, 10], "actor_lr": log_grid(1e-4, 1e-3, 3)},
        epochs=10,
        steps_per_epoch=150,
        eval_episodes=5,
    ),
}


# ---------------------------------------------------------------- 1. the table
def measure(task: str, params: dict[str, float], bench: TaskBench) -> dict[str, Any]:
    """Train one grid point's seeds together, one thread; scores and CPU-s per epoch."""
    from dql.run import TrainingRun, prepare_task
    from dql.threads import use_thread_policy
    from dql.train import task_config

    use_thread_policy(1)
    config = task_config(
        task,
        **bench.overrides,
        **params,
        num_epochs=bench.epochs,
        steps_per_epoch=bench.steps_per_epoch,
        eval_every=1,
        eval_episodes=bench.eval_episodes,
    )
    seeds = [*bench.search_seeds, *bench.confirm_seeds]
    run = TrainingRun(prepare_task(task), config, seeds)
    scores, cpu_s = [], []
    started = time.process_time()
    for report in run.epochs():
        now = time.process_time()
        cpu_s.append((now - started) / len(seeds))
        started = now
        scores.append(report.row["normalized_scores"])  # NaN where it diverged
    per_seed = np.array(scores, dtype=float).T  # (seeds, epochs)
    s = len(bench.search_seeds)
    return {
        "params": params,
        "search": per_seed[:s].tolist(),
        "confirm": per_seed[s:].tolist(),
        "cpu_s": cpu_s,
    }


def build_table(bench: TaskBench, folder: Path, jobs: int) -> tuple[Table, float]:
    """The cached table when it was measured with this grid and budget, else measure it now;
    returns it and the seconds spent building it in this run."""
    path = folder / f"{bench.task}.json"
    spec = json.loads(json.dumps(asdict(bench)))  # tuples as lists, as read back
    if path.is_file():
        table = Table.load(path)
        if table.info.get("bench") == spec:
            return table, 0.0
        print(f"{path}: measured with another grid or budget; measuring again")
    configs = bench.configs()
    # Longest first (cost grows with T), so that the last job does not run alone.
    order = sorted(range(len(configs)), key=lambda i: -configs[i]["T"])
    print(
        f"{bench.task}: training {len(configs)} grid points x {len(bench.search_seeds)} + "
        f"{len(bench.confirm_seeds)} seeds, {jobs} at a time",
        flush=True,
    )
    started = time.perf_counter()
    results: dict[int, dict] = {}
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {i: pool.submit(measure, bench.task, configs[i], bench) for i in order}
        for done, i in enumerate(order, 1):
            results[i] = futures[i].result()
            c = results[i]
            print(
                f"  [{done}/{len(configs)}] {configs[i]}: search "
                f"{np.round(np.array(c['search'], dtype=float)[:, -1], 1).tolist()}, confirm "
                f"{np.round(np.array(c['confirm'], dtype=float)[:, -1], 1).tolist()}, "
                f"{sum(c['cpu_s']):.0f} CPU-s/seed",
                flush=True,
            )
    wall = time.perf_counter() - started
    info = {"bench": spec, "build_wall_s": wall, "jobs": jobs, "cpus": os.cpu_count()}
    table = Table.from_json(
        {
            "task": bench.task,
            "epochs": bench.epochs,
            "grid": bench.grid,
            "info": info,
            "curves": [results[i] for i in range(len(configs))],
        }
    )
    table.save(path)
    return table, wall


# ---------------------------------------------------------------- 2. the searches
def replay_seeds(table: Table, method: str, seeds: int, **options: Any) -> list[Search]:
    """``seeds`` replays of one search (tens of milliseconds each)."""
    return [replay(table, method, seed, **options) for seed in range(seeds)]


def run_searches(table: Table, seeds: int, **options: Any) -> dict[str, list[Search]]:
    return {method: replay_seeds(table, method, seeds, **options) for method in METHODS}


def spread(values: list[float]) -> str:
    a = np.asarray(values, dtype=float)
    return f"{np.median(a):5.1f} [{a.min():5.1f}-{a.max():5.1f}]"


def hits(runs: list[Search], grid_score: float) -> float:
    """Share of the searches whose report scores within 2 points of the grid's (median)."""
    return float(np.mean([r.score >= grid_score - 2 for r in runs]))


def print_task(table: Table, searches: dict[str, list[Search]]) -> dict[str, Any]:
    epochs_all, cpu_all = grid_compute(table)
    grid_score = float(np.median([s.score for s in searches["grid"]]))
    print(
        f"\n{table.task}: {len(table.curves)} grid points x {table.epochs} epochs; best confirm "
        f"score in the table {table.best_confirm():.1f}; grid search reports "
        f"{grid_score:.1f} (median)"
    )
    header = (
        f"{'method':<10}{'trials':>7}{'stopped':>8}  {'confirm score med [min-max]':<28}"
        f"{'trial-epochs':>13}{'CPU-s':>8}{'% grid':>8}{'gap':>7}{'hits':>6}"
    )
    print(header)
    rows = {}
    for method, runs in searches.items():
        cpu = float(np.median([s.cpu_s for s in runs]))
        score = float(np.median([s.score for s in runs]))
        rows[method] = {
            "scores": [s.score for s in runs],
            "trial_epochs": [s.trial_epochs for s in runs],
            "cpu_s": [s.cpu_s for s in runs],
            "median_score": score,
            "median_cpu_share": cpu / cpu_all,
            "gap": score - grid_score,
            "hits": hits(runs, grid_score),
            "chosen": [s.chosen for s in runs],
        }
        print(
            f"{method:<10}{np.median([s.trials for s in runs]):>7.0f}"
            f"{np.median([s.stopped for s in runs]):>8.0f}  {spread(rows[method]['scores']):<28}"
            f"{np.median([s.trial_epochs for s in runs]):>13.0f}{cpu:>8.0f}"
            f"{cpu / cpu_all:>8.0%}{score - grid_score:>+7.1f}{hits(runs, grid_score):>6.0%}"
        )
    return {
        "grid_trial_epochs": epochs_all,
        "grid_cpu_s": cpu_all,
        "methods": rows,
        "best_in_table": table.best_confirm(),
        "grid_median": grid_score,
    }


OUT = Path("bench-output/search-efficiency")  # never committed (.gitignore)
ASHA_PAIRS = [(g, rf) for g in (1, 2, 3, 4) for rf in (2.0, 3.0, 4.0)]


def asha_sweep(tables: list[Table], grids: dict[str, float], seeds: int, **options: Any):
    """TPE + ASHA at each (grace period, reduction factor); the rule that picks the default:
    the least compute (the worst task's median share of the grid's CPU-s) among the pairs
    whose median comes within 2 points of the grid's on every task where any pair does."""
    print(
        "\nTPE + ASHA by (grace period, reduction factor): median confirm score, gap to the "
        "grid, % of the grid's CPU-s, hits (searches within 2 points of the grid)"
    )
    print(f"{'grace':>5}{'rf':>4}  " + "".join(f"{t.task[:24]:>30}" for t in tables))
    figures = {}
    for grace, rf in ASHA_PAIRS:
        cells, entry = [], {}
        for table in tables:
            pair = {"grace_period": grace, "reduction_factor": rf}
            runs = replay_seeds(table, "tpe+asha", seeds, **{**options, **pair})
            score = float(np.median([s.score for s in runs]))
            share = float(np.median([s.cpu_s for s in runs])) / grid_compute(table)[1]
            gap = score - grids[table.task]
            hit = hits(runs, grids[table.task])
            entry[table.task] = {"score": score, "gap": gap, "cpu_share": share, "hits": hit}
            cells.append(f"{score:6.1f} {gap:+6.1f} {share:5.0%} {hit:5.0%}")
        figures[(grace, rf)] = entry
        print(f"{grace:>5}{rf:>4g}  " + "".join(f"{c:>30}" for c in cells))

    # Tasks on which no pair comes within 2 points (a good configuration that no search of
    # this size finds) cannot tell pairs apart: the choice is made on the others.
    telling = [t.task for t in tables if any(e[t.task]["gap"] >= -2 for e in figures.values())]

    def worst_share(p):
        return max(figures[p][t]["cpu_share"] for t in telling)

    ok = [p for p, e in figures.items() if telling and all(e[t]["gap"] >= -2 for t in telling)]
    if ok:
        pick = min(ok, key=lambda p: (worst_share(p), -min(figures[p][t]["gap"] for t in telling)))
        why = f"within 2 points of the grid on {', '.join(telling)}, the least compute"
    else:
        pick = (2, 3.0)
        why = "no pair comes within 2 points of the grid on any task"
    print(f"chosen: --grace-period {pick[0]} --reduction-factor {pick[1]:g} ({why})")
    return {f"{g},{rf:g}": e for (g, rf), e in figures.items()}, pick


SAMPLES = (16, 24, 32, 48)


def samples_sweep(tables: list[Table], grids: dict[str, float], seeds: int, **options: Any):
    """How many trials random search, TPE and TPE + ASHA (at the chosen pair) need."""
    print(
        "\nBy trials per search (--num-samples): median confirm score (gap to the grid) and "
        "% of the grid's CPU-s, hits"
    )
    methods = ("random", "tpe", "tpe+asha")
    figures = {}
    for table in tables:
        print(f"{table.task}\n{'trials':>6}" + "".join(f"{m:>28}" for m in methods))
        total = grid_compute(table)[1]
        for n in SAMPLES:
            cells = []
            for method in methods:
                runs = replay_seeds(table, method, seeds, **{**options, "num_samples": n})
                score = float(np.median([r.score for r in runs]))
                share = float(np.median([r.cpu_s for r in runs])) / total
                figures[f"{table.task}/{method}/{n}"] = {"score": score, "cpu_share": share}
                hit = hits(runs, grids[table.task])
                figures[f"{table.task}/{method}/{n}"]["hits"] = hit
                cells.append(
                    f"{score:5.1f} ({score - grids[table.task]:+5.1f}) {share:4.0%} {hit:4.0%}"
                )
            print(f"{n:>6}" + "".join(f"{c:>28}" for c in cells))
    return figures


# ---------------------------------------------------------------- 3. the plot
def plot(tables: list[Table], searches: dict[str, dict[str, list[Search]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tables), figsize=(5.5 * len(tables), 4), squeeze=False)
    for ax, table in zip(axes[0], tables, strict=True):
        total = grid_compute(table)[1]
        for method, runs in searches[table.task].items():
            x = np.linspace(0, 100 * max(s.cpu_s for s in runs) / total, 400)
            curves = np.array([_step(s, x * total / 100) for s in runs])
            ok = ~np.any(np.isnan(curves), axis=0)  # once every search has an incumbent
            med = np.median(curves[:, ok], axis=0)
            lo, hi = np.percentile(curves[:, ok], [25, 75], axis=0)
            (line,) = ax.plot(x[ok], med, label=method)
            ax.fill_between(x[ok], lo, hi, color=line.get_color(), alpha=0.15)
            end = 100 * np.median([s.cpu_s for s in runs]) / total
            ax.plot(end, np.median([s.score for s in runs]), "o", color=line.get_color())
        ax.axhline(table.best_confirm(), color="grey", ls=":", lw=1, label="best in table")
        ax.axvline(30, color="grey", ls="--", lw=1)
        ax.set_title(table.task)
        ax.set_xlabel("compute spent (% of the grid's CPU-seconds)")
        ax.set_ylabel("confirm score of the incumbent")
    axes[0][0].legend(loc="lower right", fontsize=8)
    fig.suptitle(
        "Best so far: median and interquartile range over search seeds;\n"
        "dot: where the median search ends",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _step(search: Search, cpu: np.ndarray) -> np.ndarray:
    """The incumbent's confirm score once ``cpu`` CPU-seconds were spent (NaN before the
    first trial ended; a search that has ended keeps its answer)."""
    spent = np.array([c for _, c, _ in search.trace])
    scores = np.array([s for _, _, s in search.trace])
    at = np.searchsorted(spent, cpu, side="right") - 1
    return np.where(at >= 0, scores[np.maximum(at, 0)], np.nan)


# ---------------------------------------------------------------- the command
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default=",".join(BENCHES))
    parser.add_argument("--search-seeds", type=int, default=50)
    parser.add_argument("--num-samples", type=int, default=16, help="random and TPE trials")
    parser.add_argument("--workers", type=int, default=4, help="trials at once in a search")
    parser.add_argument("--grace-period", type=int, default=None, help="default: the sweep's")
    parser.add_argument("--reduction-factor", type=float, default=None)
    parser.add_argument("--jobs", type=int, default=2, help="trainings at once (one thread each)")
    parser.add_argument("--tables", type=Path, default=OUT / "tables", help="the cached tables")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in tasks if t not in BENCHES]
    if unknown or args.search_seeds < 1 or args.jobs < 1 or args.workers < 1:
        print(
            f"error: unknown task(s) {unknown} (known: {', '.join(BENCHES)}), or a count below 1",
            file=sys.stderr,
        )
        sys.exit(2)
    from sweeps.bandit import SUITE
    from sweeps.cli import build_parser

    defaults = build_parser(SUITE).parse_args([])
    grace = args.grace_period or defaults.grace_period
    rf = args.reduction_factor or defaults.reduction_factor
    options = {"num_samples": args.num_samples, "workers": args.workers}
    started = time.perf_counter()
    tables, built = [], 0.0
    for task in tasks:
        table, seconds = build_table(BENCHES[task], args.tables, args.jobs)
        tables.append(table)
        built += seconds
    replay_started = time.perf_counter()
    print(
        f"\nsearches: {args.search_seeds} search seeds each; random and TPE "
        f"{args.num_samples} trials; {args.workers} trials at once; ASHA grace period "
        f"{grace}, reduction factor {rf:g} (max_t = the trial's evaluations)"
    )
    report: dict[str, Any] = {"tasks": {}}
    searches = {}
    for table in tables:
        searches[table.task] = run_searches(
            table, args.search_seeds, grace_period=grace, reduction_factor=rf, **options
        )
        report["tasks"][table.task] = print_task(table, searches[table.task])
    grids = {t: report["tasks"][t]["grid_median"] for t in report["tasks"]}
    report["asha"], pick = asha_sweep(tables, grids, args.search_seeds, **options)
    report["asha_choice"] = {"grace_period": pick[0], "reduction_factor": pick[1]}
    pair = {"grace_period": pick[0], "reduction_factor": pick[1]}
    report["samples"] = samples_sweep(tables, grids, args.search_seeds, **options, **pair)
    args.out.mkdir(parents=True, exist_ok=True)
    plot(tables, searches, args.out / "search_efficiency.png")
    replay_s = time.perf_counter() - replay_started
    measured = sum(t.info.get("build_wall_s", math.nan) for t in tables)
    seeds = {
        t.task: len(BENCHES[t.task].search_seeds) + len(BENCHES[t.task].confirm_seeds)
        for t in tables
    }
    train_cpu = sum(grid_compute(t)[1] * seeds[t.task] for t in tables)
    print(
        f"\ntraining in the tables: {train_cpu:.0f} CPU-s over all seeds, "
        f"{train_cpu / 2 / 60:.1f} minutes on 2 cores kept busy"
    )
    print(
        f"wall time: tables {built:.0f} s built in this run (when measured: {measured:.0f} s "
        f"with {args.jobs} jobs), replay and plot {replay_s:.0f} s; this run "
        f"{time.perf_counter() - started:.0f} s; from scratch {measured + replay_s:.0f} s"
    )
    report["wall"] = {
        "tables_cpu_s": train_cpu,
        "tables_built_now_s": built,
        "tables_measured_s": measured,
        "replay_s": replay_s,
    }
    (args.out / "search_efficiency.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"figure and figures: {args.out}/search_efficiency.png, .json")
    return report


if __name__ == "__main__":
    main()
