"""Gradient steps per second at Hopper sizes, K seeds trained together, against matmul peak.

    python bench/train_speed.py [--k 1,2,4,8] [--seconds 5] [--max-q-backup both|on|off]
                                [--threads auto,1,2] [--contention N] [--busy yes|spin]
                                [--precision fp32,bf16] [--kernels eager,compiled]
                                [--device cpu] [--json PATH] [--sizes bandit]
                                [--authors PATH]

Hopper sizes: 11-dim states, 3-dim actions, T = 5, batch 256, 3x256 networks, with and
without max-Q backup (10 next actions per state). ``--sizes bandit``: the 2D bandit of
``python -m dql toy`` instead (T = 50, batch 100, width 128, eta 2.5, no critic target).
For each K it reports member-steps per second (gradient steps per second summed over the K
members) and the fraction of this machine's matrix-multiply peak that reaches; the peak is
measured in the same run at the thread count each row ran at, and the FLOPs of one
member-step are counted by torch's FlopCounterMode. ``--threads``: each thread setting in
turn; ``auto`` is dql's thread policy (``dql.threads``), decided on the idle machine and then
left to revise itself.

``--kernels eager,compiled``: each ``DQLConfig.kernels`` setting, timed in alternating chunks
within every row (one line each), so their ratio is taken in the same seconds; the first
compiled rows include no compilation (warm-up steps compile before the timing).

``--contention N`` measures every row twice, idle and with N busy processes that the bench
starts itself (``yes > /dev/null`` each, or a Python spin loop with ``--busy spin``; stopped
on exit, Ctrl-C and errors alike, and killed by the kernel if the bench is killed), and
prints the ratio. Run it on an otherwise idle machine:
the contention must come only from those processes. Never part of the tests.

``--authors PATH`` (a checkout of github.com/Zhendong-Wang/Diffusion-Policies-for-Offline-RL)
also times the authors' released update, ``Diffusion_QL.train``, at the same sizes (their
networks are 3x256, T = 5, batch 256, the row's max-Q setting, their own ``Data_Sampler``
over the same transitions), in about 1 s chunks alternating with ours in every row and phase,
at the thread count ours runs at (with ``auto`` the policy is revised between their steps as
between ours), and prints their steps/s and our member-steps/s over it. Their code is
imported as it is; only a missing ``tabulate`` (imported by their logger, unused by the
update) is stood in for.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from dql.config import DQLConfig
from dql.ensemble import SeedEnsemble
from dql.replay import DeviceReplay, Transitions
from dql.threads import revise_threads, use_thread_policy
from dql.toy import ToyBudget, bandit_dataset

OBS_DIM, ACT_DIM, DATASET_SIZE = 11, 3, 100_000


def hopper_sized_transitions(seed: int = 0) -> Transitions:
    """Random transitions with Hopper's dimensions (the values do not affect the speed)."""
    rng = np.random.default_rng(seed)
    n = DATASET_SIZE
    return Transitions(
        observations=rng.normal(size=(n, OBS_DIM)).astype(np.float32),
        actions=rng.uniform(-1, 1, (n, ACT_DIM)).astype(np.float32),
        next_observations=rng.normal(size=(n, OBS_DIM)).astype(np.float32),
        rewards=rng.normal(size=n).astype(np.float32),
        terminals=(rng.random(n) < 0.01).astype(np.float32),
    )


def matmul_peak_gflops(device: torch.device, seconds: float = 3.0) -> float:
    """Best sustained float32 GFLOP/s of square matrix products at torch's current thread
    count, over sizes."""
    best = 0.0
    for n in (512, 1024, 2048):
        a, b = (torch.randn(n, n, device=device) for _ in range(2))
        out = torch.empty(n, n, device=device)
        reps = max(1, int(2e9 / (2 * n**3)))  # about 2 GFLOP per timing
        torch.mm(a, b, out=out)  # warm-up
        deadline = time.perf_counter() + seconds / 3
        while time.perf_counter() < deadline:
            sync(device)
            started = time.perf_counter()
            for _ in range(reps):
                torch.mm(a, b, out=out)
            sync(device)
            best = max(best, reps * 2 * n**3 / (time.perf_counter() - started) / 1e9)
    return best


def peaks_by_threads(device: torch.device, peaks: dict[int, float], counts: list[int]) -> dict:
    """``peaks`` with the matrix peak at each of ``counts`` threads measured (again)."""
    peaks = dict(peaks)
    for count in counts:
        torch.set_num_threads(count)
        peaks[count] = max(peaks.get(count, 0.0), matmul_peak_gflops(device))
    return peaks


def replay_dims(replay: DeviceReplay) -> tuple[int, int]:
    """(state size, action size) of the replay's transitions."""
    return replay.widths[0], replay.widths[1]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def flops_per_member_step(config: DQLConfig, replay: DeviceReplay, device: torch.device) -> float:
    """Floating-point operations of one gradient step of one member, as torch counts them
    (in eager kernels: the arithmetic is the same, and the counter cannot see inside a
    compiled one)."""
    config = config.replace(kernels="eager")
    ensemble = SeedEnsemble(config, *replay_dims(replay), [0], device)
    ensemble.train_epoch(replay, 1)
    with FlopCounterMode(display=False) as counter:
        ensemble.train_epoch(replay, 1)
    return float(counter.get_total_flops())


def member_steps_per_s(
    config: DQLConfig, k: int, replay: DeviceReplay, device: torch.device, seconds: float
) -> float:
    """Gradient steps per second summed over K members: the median of about 1 s chunks.

    The median, because on a shared machine a neighbour's burst ruins single chunks.
    """
    return alternating_rates([ours_stepper(config, k, replay, device)], device, seconds)[0]


# Something to time: (run n gradient steps, members per step).
Stepper = tuple[Callable[[int], object], int]


def ours_stepper(config: DQLConfig, k: int, replay: DeviceReplay, device) -> Stepper:
    """K members of dql's SeedEnsemble; each call ends with its one host sync."""
    ensemble = SeedEnsemble(config, *replay_dims(replay), list(range(k)), device)
    if config.kernels == "compiled":
        compile_for_every_thread_count(ensemble, replay)
    return (lambda n: ensemble.train_epoch(replay, n)), k


def compile_for_every_thread_count(ensemble: SeedEnsemble, replay: DeviceReplay) -> None:
    """Compile the step's graph at every thread count the policy may choose, before timing.

    torch.compile guards on the thread count, so the first step at a new count compiles the
    graph again (once per count; seconds): were that left to the timed chunks, a policy that
    moves between 1 and 2 threads would time a compilation.
    """
    before = torch.get_num_threads()
    batch_size = ensemble.config.batch_size
    try:
        for threads in [before, *range(1, len(os.sched_getaffinity(0)) + 1)]:
            torch.set_num_threads(threads)  # the first step (eager) makes Adam's state
            for _ in range(2):
                batch = replay.sample_members(batch_size, ensemble.generators)
                ensemble.update_members(batch, ensemble.draw_step(batch_size))
    finally:
        torch.set_num_threads(before)


def alternating_rates(steppers: list[Stepper], device: torch.device, seconds: float) -> list:
    """Median member-steps/s of each stepper, timed in about 1 s chunks taken in turn.

    In turn, so that a neighbour's burst or the machine's drift falls on all of them alike;
    the median, because on a shared machine a burst ruins single chunks. ``seconds`` each.
    """
    chunks = []
    for step, _ in steppers:
        step(2)  # warm-up: allocator, kernels, compilation if any
        sync(device)
        started = time.perf_counter()
        step(2)
        sync(device)
        chunks.append(max(1, round(2 / (time.perf_counter() - started))))  # steps in about 1 s
    rates: list[list[float]] = [[] for _ in steppers]
    deadline = time.perf_counter() + seconds * len(steppers)
    while time.perf_counter() < deadline or min(map(len, rates)) < 3:
        for (step, members), chunk, out in zip(steppers, chunks, rates, strict=True):
            sync(device)
            started = time.perf_counter()
            step(chunk)
            sync(device)
            out.append(members * chunk / (time.perf_counter() - started))
    return [statistics.median(r) for r in rates]


AUTHORS_REPOSITORY = "https://github.com/Zhendong-Wang/Diffusion-Policies-for-Offline-RL"


def load_authors(path: Path) -> types.SimpleNamespace:
    """The authors' ``Diffusion_QL`` and ``Data_Sampler`` from a checkout of their repository.

    Their ``agents`` and ``utils`` packages are imported from ``path`` as they are; their
    logger imports ``tabulate``, which the update never calls, so a stand-in is put in its
    place when it is not installed.
    """
    source = path / "agents" / "ql_diffusion.py"
    if not source.is_file():
        raise FileNotFoundError(
            f"--authors {path}: no agents/ql_diffusion.py there; clone {AUTHORS_REPOSITORY} "
            "and pass its folder"
        )
    for name in ("agents", "utils"):
        if name in sys.modules:
            raise RuntimeError(f"--authors: a module named {name!r} is already imported")
    if importlib.util.find_spec("tabulate") is None:
        stand_in = types.ModuleType("tabulate")
        stand_in.__spec__ = importlib.machinery.ModuleSpec("tabulate", None)  # torch looks
        stand_in.tabulate = lambda *args, **kwargs: ""  # only their logger's tables use it
        sys.modules["tabulate"] = stand_in
    sys.path.insert(0, str(path.resolve()))
    try:
        from agents.ql_diffusion import Diffusion_QL
        from utils.data_sampler import Data_Sampler
    finally:
        sys.path.remove(str(path.resolve()))
    digest = hashlib.sha256()
    for file in sorted((path / "agents").glob("*.py")) + sorted((path / "utils").glob("*.py")):
        digest.update(file.read_bytes())
    return types.SimpleNamespace(
        Diffusion_QL=Diffusion_QL, Data_Sampler=Data_Sampler, sha256=digest.hexdigest()
    )


def authors_stepper(
    authors: types.SimpleNamespace, config: DQLConfig, data: Transitions, device
) -> Stepper:
    """One agent of the authors' code at the config's sizes; their update step by step.

    The thread policy (if any) is revised before each of their steps, as before each of ours.
    """
    agent = authors.Diffusion_QL(
        state_dim=OBS_DIM,
        action_dim=ACT_DIM,
        max_action=1.0,
        device=device,
        discount=config.discount,
        tau=config.tau,
        max_q_backup=config.max_q_backup,
        eta=config.eta,
        beta_schedule=config.beta_schedule,
        n_timesteps=config.T,
        ema_decay=config.ema_decay,
        step_start_ema=config.ema_start_step,
        update_ema_every=config.ema_every,
        lr=config.actor_lr,
        grad_norm=config.grad_norm,
    )
    sampler = authors.Data_Sampler(
        {
            "observations": data.observations,
            "actions": data.actions,
            "next_observations": data.next_observations,
            "rewards": data.rewards,
            "terminals": data.terminals,
        },
        device,
    )

    def step(n: int) -> None:
        for _ in range(n):
            revise_threads()
            agent.train(sampler, 1, batch_size=config.batch_size)  # .item()s: synced

    return step, 1


# What a busy neighbour runs. ``yes``: the issue's `yes > /dev/null`, a write system call
# after another (the harsher neighbour for a 2-thread team here); ``spin``: a pure Python loop.
BUSY_COMMANDS = {"yes": ["yes"], "spin": [sys.executable, "-c", "while True: pass"]}


def _die_with_parent() -> None:
    """In the child before exec: the kernel kills it when the bench dies, however it dies."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@contextlib.contextmanager
def busy_neighbours(count: int, kind: str = "yes") -> Iterator[list[subprocess.Popen]]:
    """``count`` processes keeping a core busy each, for as long as the block runs."""
    procs = [
        subprocess.Popen(
            BUSY_COMMANDS[kind],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        for _ in range(count)
    ]
    try:
        time.sleep(0.5)  # started and scheduled
        yield procs
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def _stop_on_sigterm() -> None:
    """SIGTERM ends the bench through the finally blocks, as Ctrl-C does."""

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def set_threads(setting: str) -> None:
    """``auto``: dql's policy, decided now; a number: that many threads, fixed."""
    use_thread_policy(None if setting == "auto" else int(setting))


def measure(
    config,
    k,
    replay,
    device,
    seconds,
    setting,
    contention,
    busy="yes",
    authors=None,
    kernels=("eager",),
) -> dict:
    """Member-steps/s idle (and, with ``contention``, with that many busy neighbours).

    One stepper of ours per ``kernels`` setting, timed in alternating chunks: ``idle`` is a
    list in that order. With ``authors`` (``(load_authors(...), transitions)``), the authors'
    update is timed alongside: ``authors_idle`` (and ``authors_contended``).
    """

    def rates(phase: str) -> None:
        steppers = [ours_stepper(config.replace(kernels=kk), k, replay, device) for kk in kernels]
        if authors is not None:
            steppers.append(authors_stepper(authors[0], config, authors[1], device))
        measured = alternating_rates(steppers, device, seconds)
        row[phase] = measured[: len(kernels)]
        row[f"{phase}_threads"] = torch.get_num_threads()
        if authors is not None:
            row[f"authors_{phase}"] = measured[-1]

    row: dict = {}
    set_threads(setting)
    rates("idle")
    if contention:
        set_threads(setting)  # decided on the idle machine: the policy must notice the change
        with busy_neighbours(contention, busy):
            rates("contended")
    return row


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", default="1,2,4,8", help="comma-separated numbers of seeds")
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per row")
    parser.add_argument("--max-q-backup", choices=["both", "on", "off"], default="both")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--threads", default="auto", help="comma-separated: auto (dql's policy) or numbers"
    )
    parser.add_argument(
        "--contention", type=int, default=0, help="also measure with N busy processes"
    )
    parser.add_argument(
        "--busy", choices=sorted(BUSY_COMMANDS), default="yes", help="what a neighbour runs"
    )
    parser.add_argument(
        "--precision", default="fp32", help="comma-separated DQLConfig precisions: fp32,bf16"
    )
    parser.add_argument(
        "--kernels", default="eager", help="comma-separated DQLConfig kernels: eager,compiled"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--sizes", choices=["hopper", "bandit"], default="hopper")
    parser.add_argument(
        "--authors",
        type=Path,
        help=f"also time the authors' code: a checkout of {AUTHORS_REPOSITORY}",
    )
    args = parser.parse_args(argv)
    if args.authors is not None and args.sizes != "hopper":
        parser.error("--authors: their networks are 3x256, so only --sizes hopper compares")
    _stop_on_sigterm()
    settings = args.threads.split(",")
    for setting in settings:
        if setting != "auto" and not (setting.isdigit() and int(setting) > 0):
            parser.error(f"--threads {setting!r}: use auto or a positive number")
    ks = [int(k) for k in args.k.split(",")]
    precisions = args.precision.split(",")
    kernels = args.kernels.split(",")
    for precision in precisions:
        DQLConfig(precision=precision)  # an unknown one fails here, before any timing
    for kk in kernels:
        DQLConfig(kernels=kk)
    backups = {"both": [False, True], "on": [True], "off": [False]}[args.max_q_backup]
    device = torch.device(args.device)
    authors = None
    if args.authors is not None:
        try:
            authors = load_authors(args.authors)
        except (OSError, RuntimeError, ImportError) as error:
            parser.error(str(error))

    if args.sizes == "bandit":  # the toy's Diffusion-QL: no critic target, so no max-Q
        replay = DeviceReplay(bandit_dataset(), device)
        base = ToyBudget().config("diffusion_ql", seed=0)
        backups = [False]
    else:
        data = hopper_sized_transitions()
        replay = DeviceReplay(data, device)
        base = DQLConfig(T=5, batch_size=256, hidden_dim=256)
        if authors is not None:
            authors = (authors, data)
    set_threads(settings[0])
    # The peak at each thread count a row ran at (a 2-thread row against the 1-thread peak
    # would read twice too high); measured before and after the rows, the larger counts.
    peaks = {torch.get_num_threads(): matmul_peak_gflops(device)}
    print(
        f"device {device}, {len(os.sched_getaffinity(0))} cores allowed, threads {settings}, "
        f"busy neighbours {args.contention} ({args.busy}), load {os.getloadavg()}"
    )
    against = f" {'authors':>8} {'ours/a':>6}" if authors else ""
    contended = f"{'with ' + str(args.contention) + ' busy':>15} {'thr':>3} {'ratio':>6}"
    print(
        f"{'K':>3} {'max-Q':>6} {'prec':>5} {'kernels':>8} {'threads':>7} "
        f"{'member-steps/s':>15} {'thr':>3} {'per member':>11} {'GFLOP/step':>11} "
        f"{'GFLOP/s':>8}{against}" + (f" {contended}{against}" if args.contention else "")
    )
    results = []
    for max_q, precision in ((m, p) for m in backups for p in precisions):
        config = base.replace(max_q_backup=max_q, precision=precision)
        flops = flops_per_member_step(config, replay, device)
        for k in ks:
            for setting in settings:
                rates = measure(
                    config,
                    k,
                    replay,
                    device,
                    args.seconds,
                    setting,
                    args.contention,
                    args.busy,
                    authors,
                    kernels,
                )
                for j, kk in enumerate(kernels):
                    row, line = result_row(rates, j, k, max_q, precision, kk, setting, flops)
                    results.append(row)
                    print(line, flush=True)
    peaks = peaks_by_threads(device, peaks, sorted({row["threads"] for row in results}))
    set_threads(settings[0])
    print(
        "\nmatmul peak: "
        + ", ".join(f"{peak:.0f} GFLOP/s on {n} thread(s)" for n, peak in sorted(peaks.items()))
        + " (best of before and after the rows)"
    )
    for row in results:
        rate = row["member_steps_per_s"] * row["gflop_per_member_step"]
        row["fraction_of_peak"] = rate / peaks[row["threads"]]
    print(
        "fraction of fp32 peak (K, max-Q, precision, kernels, threads): "
        + ", ".join(
            f"({r['k']}, {'on' if r['max_q_backup'] else 'off'}, {r['precision']}, "
            f"{r['kernels']}, {r['threads_setting']}) "
            f"{r['fraction_of_peak']:.0%}"
            for r in results
        )
    )
    if args.contention:
        print_against_single_thread(results)
    report = {
        "matmul_peak_gflops_by_threads": peaks,
        "device": str(device),
        "threads": settings,
        "contention": args.contention,
        "busy": args.busy,
        "torch": torch.__version__,
        "sizes": args.sizes,
        "precisions": precisions,
        "kernels": kernels,
        "authors": None
        if authors is None
        else {
            "path": str(args.authors),
            "sha256": authors[0].sha256,
            "repository": AUTHORS_REPOSITORY,
        },
        "results": results,
    }
    write_report(report, args.json)
    return report


def result_row(rates, j, k, max_q, precision, kernels, setting, flops) -> tuple[dict, str]:
    """The row (and printed line) of ``measure``'s j-th kernels setting."""
    rate = rates["idle"][j]
    row = {
        "k": k,
        "max_q_backup": max_q,
        "precision": precision,
        "kernels": kernels,
        "threads_setting": setting,
        "threads": rates["idle_threads"],
        "member_steps_per_s": rate,
        "steps_per_s_per_member": rate / k,
        "gflop_per_member_step": flops / 1e9,
        "load_average": os.getloadavg(),
    }
    line = (
        f"{k:>3} {'on' if max_q else 'off':>6} {precision:>5} {kernels:>8} {setting:>7} "
        f"{rate:>15.1f} {rates['idle_threads']:>3} {rate / k:>11.1f} "
        f"{flops / 1e9:>11.2f} {rate * flops / 1e9:>8.0f}"
    )
    if "authors_idle" in rates:
        row["authors_steps_per_s"] = rates["authors_idle"]
        row["over_authors"] = rate / rates["authors_idle"]
        line += f" {rates['authors_idle']:>8.1f} {row['over_authors']:>6.2f}"
    if "contended" in rates:
        contended = rates["contended"][j]
        row["contended_member_steps_per_s"] = contended
        row["contended_threads"] = rates["contended_threads"]
        row["contended_over_idle"] = contended / rate
        line += f" {contended:>15.1f} {rates['contended_threads']:>3} {contended / rate:>6.2f}"
        if "authors_contended" in rates:
            theirs = rates["authors_contended"]
            row["authors_contended_steps_per_s"] = theirs
            row["contended_over_authors"] = contended / theirs
            line += f" {theirs:>8.1f} {contended / theirs:>6.2f}"
    return row, line


def print_against_single_thread(results: list[dict]) -> None:
    """Contended speed of each setting over the idle 1-thread speed of the same K, max-Q."""
    single = {
        (r["k"], r["max_q_backup"], r["precision"], r["kernels"]): r["member_steps_per_s"]
        for r in results
        if r["threads_setting"] == "1"
    }
    lines = []
    for r in results:
        base = single.get((r["k"], r["max_q_backup"], r["precision"], r["kernels"]))
        if base is not None:
            r["contended_over_idle_single_thread"] = r["contended_member_steps_per_s"] / base
            lines.append(
                f"(K {r['k']}, max-Q {'on' if r['max_q_backup'] else 'off'}, {r['precision']}, "
                f"{r['kernels']}, {r['threads_setting']}) "
                f"{r['contended_over_idle_single_thread']:.2f}"
            )
    if lines:
        print("contended over idle 1-thread: " + ", ".join(lines))


def write_report(report: dict, path: Path | None) -> None:
    """The figures as JSON at ``path`` (nothing when None)."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
