"""The thread policy: one thread per core that no other process keeps busy."""

import subprocess
import time

import numpy as np
import pytest
import torch

from conftest import random_transitions
from dql.__main__ import main
from dql.config import DQLConfig
from dql.ensemble import SeedEnsemble
from dql.replay import DeviceReplay
from dql.threads import LoadSample, ThreadPolicy, allowed_cpus, threads_for


@pytest.fixture
def busy_neighbour():
    """A real process keeping one core busy (``yes > /dev/null``), stopped afterwards."""
    proc = subprocess.Popen(["yes"], stdout=subprocess.DEVNULL)
    time.sleep(0.2)
    yield proc
    proc.kill()
    proc.wait()


def test_one_thread_per_core_left_free():
    assert threads_for(2, others_busy=0.0) == 2
    assert threads_for(2, others_busy=0.1) == 2  # background noise is idle
    assert threads_for(2, others_busy=0.5) == 1  # a half-busy neighbour already takes a core
    assert threads_for(2, others_busy=1.0) == 1
    assert threads_for(16, others_busy=3.2) == 13
    assert threads_for(1, others_busy=5.0) == 1  # never none


def test_a_schedulers_cpus_cap_the_threads(restore_threads):
    assert allowed_cpus(cpus=1) == 1
    assert allowed_cpus(cpus=0.5) == 1
    assert allowed_cpus(cpus=10_000) == allowed_cpus()
    torch.set_num_threads(2)
    assert ThreadPolicy(cpus=1).threads == 1  # a one-CPU trial: one thread, whatever the load


def test_a_busy_neighbour_is_measured_and_this_process_is_not(busy_neighbour):
    start = LoadSample()
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:  # this process busy too: it must not count
        pass
    others = LoadSample().others_since(start)
    assert 0.3 < others < 1.5


def test_policy_gives_up_a_taken_core_and_takes_it_back(restore_threads):
    if allowed_cpus() < 2:
        pytest.skip("needs 2 cores")
    policy = ThreadPolicy(interval_s=0.0)
    proc = subprocess.Popen(["yes"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.4)
        policy.revise()
        assert policy.threads <= allowed_cpus() - 1
    finally:
        proc.kill()
        proc.wait()
    # Up after two idle windows. Processes an earlier test left winding down (a Ray
    # cluster's, in a full run) may hold a core a little longer: wait for them, boundedly.
    deadline = time.monotonic() + 15.0
    while policy.threads < allowed_cpus() and time.monotonic() < deadline:
        time.sleep(0.3)
        policy.revise()
    assert policy.threads == allowed_cpus()


def test_a_fixed_count_is_kept_and_a_bad_one_is_one_clear_line(restore_threads, capsys):
    policy = ThreadPolicy(threads=1, interval_s=0.0)
    policy.revise()
    assert torch.get_num_threads() == 1
    assert main(["train", "--task", "bandit", "--threads", "0", "--out", "unused"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "--threads 0" in error


def test_training_is_bit_identical_whatever_the_thread_count(restore_threads):
    """What lets the policy change the count mid-run: results do not depend on it."""
    data = DeviceReplay(random_transitions(n=2000, obs_dim=11, act_dim=3))
    config = DQLConfig(T=5, hidden_dim=256, batch_size=256, max_q_backup=True)
    finals = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        ensemble = SeedEnsemble(config, 11, 3, [0, 1])
        metrics = ensemble.train_epoch(data, 3)
        finals.append((metrics, [p.detach().clone() for p in ensemble.actor.parameters()]))
    (m1, p1), (m2, p2) = finals
    np.testing.assert_array_equal(m1, m2)
    for a, b in zip(p1, p2, strict=True):
        assert torch.equal(a, b)
