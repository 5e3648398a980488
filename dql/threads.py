"""How many intra-op threads a training process uses, decided from the CPUs it may really use.

A torch parallel region waits for its slowest thread. When another process is busy on one of
the cores, the thread on that core runs only in the scheduler's time slices and every region
waits for it: on a 2-core machine with one `yes > /dev/null` neighbour a 2-thread gradient
step at Hopper sizes ran at 2.1 steps/s against 34 for one thread (idle: 55 against 35;
``bench/train_speed.py --contention 1 --threads 1,2``). One thread per core that nobody else
is using is fast both ways, so the count follows the cores left free:

    threads = min(cores this process may use, floor(those cores - cores others keep busy + 0.25))

"may use": the CPU affinity mask, a cgroup CPU quota, and the CPUs a scheduler such as Ray
assigned (``cpus``, passed in by the caller: dql never imports ray). "Others keep busy": the
busy time of the allowed cores (``/proc/stat``) minus this process's own CPU time, over the
last window. The policy is revised during training (``revise_threads``, once per
``interval_s`` at most): down at once when a neighbour appears, up only after two idle
windows in a row. Revising mid-run changes only the speed: training comes out bit for bit
the same at 1 and 2 threads (``tests/test_threads.py`` checks it at Hopper sizes). That holds
for the default eager kernels. ``kernels="compiled"`` repeats bit for bit at a fixed count
(``tests/test_kernels.py``), but inductor splits some of its reductions by the thread count,
so its rounding depends on the counts the policy chose: at Hopper sizes, 1 and 2 threads
differed by up to 2.4e-7 in the losses from the first compiled step on (6 December 2026).
A compiled run that must repeat exactly fixes the count (``--threads``).

Not touched: the OpenMP wait policy (it would have to be set before torch starts OpenMP).
``OMP_WAIT_POLICY=PASSIVE`` helped 2 threads under contention (23 against 5.7 steps/s, an
earlier measurement on this machine) but cost the idle machine two thirds of its speed
(15.5 against 51); with one thread per free core, nothing waits for a taken core anyway.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dql.config import ConfigError

SLACK = 0.25  # of a core: background noise (an editor, a shell) that still counts as idle
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def allowed_cpus(cpus: float | None = None) -> int:
    """Cores this process may run on: affinity, cgroup quota and the scheduler's ``cpus``."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        count = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        count = min(count, max(1, math.floor(quota)))
    if cpus is not None:
        count = min(count, max(1, math.floor(cpus)))
    return max(1, count)


def cgroup_cpu_quota(path: Path = Path("/sys/fs/cgroup/cpu.max")) -> float | None:
    """The cgroup v2 CPU limit in cores, or None when there is none (or no cgroup v2)."""
    try:
        quota, period = path.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def busy_seconds(cores: set[int] | None = None) -> float | None:
    """CPU-seconds all processes have spent on ``cores`` since boot (None without /proc)."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    if cores is None:
        cores = _affinity()
    busy = 0
    for line in lines:
        name, *values = line.split()
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cores:
            continue
        ticks = [int(v) for v in values[:8]]  # user nice system idle iowait irq softirq steal
        busy += sum(ticks) - ticks[3] - ticks[4]
    return busy / _CLOCK_TICKS


def _affinity() -> set[int]:
    try:
        return os.sched_getaffinity(0)
    except AttributeError:
        return set(range(os.cpu_count() or 1))


@dataclass
class LoadSample:
    """A point from which the cores kept busy by other processes can be measured."""

    wall: float = field(default_factory=time.monotonic)
    busy: float | None = field(default_factory=busy_seconds)
    own: float = field(default_factory=time.process_time)  # all of this process's threads

    def others_since(self, start: LoadSample) -> float:
        """Cores other processes kept busy, on average, between ``start`` and this sample."""
        elapsed = self.wall - start.wall
        if self.busy is None or start.busy is None or elapsed <= 0:
            return 0.0
        return max(0.0, (self.busy - start.busy - (self.own - start.own)) / elapsed)


def threads_for(allowed: int, others_busy: float) -> int:
    """One thread per allowed core that other processes leave free (at least one)."""
    return max(1, min(allowed, math.floor(allowed - others_busy + SLACK)))


class ThreadPolicy:
    """Sets torch's intra-op threads from the free cores, and revises them while training.

    ``threads`` fixes the count (``--threads``); ``cpus`` is what a scheduler assigned.
    """

    def __init__(
        self,
        threads: int | None = None,
        cpus: float | None = None,
        interval_s: float = 1.0,
        first_window_s: float = 0.2,
    ):
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ConfigError(
                f"--threads {threads}: use a positive number, or leave it out for the policy"
            )
        self.fixed = threads
        self.allowed = allowed_cpus(cpus)
        self.interval_s = interval_s
        self.idle_windows = 0  # consecutive windows that would allow more threads
        self.history: list[tuple[float, int]] = []  # (others busy, threads) per decision
        if threads is not None or self.allowed == 1:  # nothing to decide
            self.fixed = threads or 1
            self._set(self.fixed, 0.0)
            return
        start = LoadSample()
        time.sleep(first_window_s)  # this process is idle meanwhile: all busy time is others'
        self._last = LoadSample()
        others = self._last.others_since(start)
        self._set(threads_for(self.allowed, others), others)

    @property
    def threads(self) -> int:
        return torch.get_num_threads()

    def revise(self) -> None:
        """Cheap unless ``interval_s`` has passed: then measure the last window and adapt."""
        if self.fixed is not None or time.monotonic() - self._last.wall < self.interval_s:
            return
        now = LoadSample()
        others = now.others_since(self._last)
        self._last = now
        wanted = threads_for(self.allowed, others)
        if wanted < self.threads:
            self.idle_windows = 0
            self._set(wanted, others)
        elif wanted > self.threads:
            self.idle_windows += 1
            if self.idle_windows >= 2:  # a neighbour's pause is not its end
                self.idle_windows = 0
                self._set(wanted, others)
        else:
            self.idle_windows = 0

    def _set(self, threads: int, others: float) -> None:
        torch.set_num_threads(threads)
        self.history.append((others, threads))


_ACTIVE: ThreadPolicy | None = None


def use_thread_policy(
    threads: int | None = None, cpus: float | None = None, interval_s: float = 1.0
) -> ThreadPolicy:
    """Decide the thread count now and keep revising it in ``revise_threads`` (process-wide,
    as torch's thread count is)."""
    global _ACTIVE
    _ACTIVE = ThreadPolicy(threads, cpus, interval_s)
    return _ACTIVE


def revise_threads() -> None:
    """Called between gradient steps; a no-op unless a policy is in use."""
    if _ACTIVE is not None:
        _ACTIVE.revise()
