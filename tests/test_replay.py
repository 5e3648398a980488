"""The replayed searches of bench/search_efficiency.py: their bookkeeping of compute and choice."""

import numpy as np

from sweeps.replay import Curve, Table, grid_compute, replay

EPOCHS = 6


def table() -> Table:
    """A 2 x 2 x 2 grid whose score rises with eta, lr and T; T also costs time."""
    grid = {"eta": [0.1, 1.0], "T": [2, 8], "actor_lr": [1e-4, 1e-3]}
    rng = np.random.default_rng(0)
    curves = []
    for eta in grid["eta"]:
        for T in grid["T"]:
            for lr in grid["actor_lr"]:
                level = 40 * (eta == 1.0) + 20 * (lr == 1e-3) + 10 * (T == 8)
                ramp = level * np.arange(1, EPOCHS + 1) / EPOCHS
                cost = np.full(EPOCHS, 0.1 * T)
                search = ramp + rng.normal(0, 1, (3, EPOCHS))
                confirm = ramp + rng.normal(0, 1, (2, EPOCHS))
                curves.append(Curve({"eta": eta, "T": T, "actor_lr": lr}, search, confirm, cost))
    return Table("bandit", EPOCHS, grid, curves)


def test_grid_search_spends_the_whole_table_and_reports_its_best():
    t = table()
    search = replay(t, "grid", seed=3, workers=2)
    epochs, cpu = grid_compute(t)
    assert (search.trial_epochs, search.trials, search.stopped) == (epochs, 8, 0)
    assert np.isclose(search.cpu_s, cpu)
    assert search.chosen == {"eta": 1.0, "T": 8, "actor_lr": 1e-3}
    assert np.isclose(search.score, max(c.confirm_score(EPOCHS) for c in t.curves))


def test_a_trial_asha_stops_pays_only_the_epochs_it_ran():
    t = table()
    search = replay(
        t, "tpe+asha", seed=0, num_samples=8, workers=1, grace_period=1, reduction_factor=2
    )
    assert search.stopped > 0
    assert search.trial_epochs < search.trials * EPOCHS
    assert [e for e, _, _ in search.trace] == sorted(e for e, _, _ in search.trace)
    assert search.trace[-1][0] == search.trial_epochs


def test_a_diverged_configuration_is_never_reported():
    t = table()
    best = max(range(8), key=lambda i: t.curves[i].confirm_score(EPOCHS))
    c = t.curves[best]
    t.curves[best] = Curve(c.params, c.search[:, :3].copy(), c.confirm[:, :3], c.cpu_s[:3])
    t.curves[best].search[:, -1] = np.nan  # diverged at epoch 3
    search = replay(t, "grid", seed=0)
    assert search.chosen != c.params
    assert search.trial_epochs == grid_compute(t)[0] == 7 * EPOCHS + 3
