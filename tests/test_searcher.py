"""The sweep's searcher against a real Optuna journal, as a resumed driver finds it."""

from __future__ import annotations

import pytest

pytest.importorskip("ray")
optuna = pytest.importorskip("optuna")

from sweeps import studies  # noqa: E402
from sweeps.searcher import TaskSearch, TaskSearcher  # noqa: E402
from sweeps.space import SearchRanges  # noqa: E402

TASK = "hopper-medium-v2"
RANGES = SearchRanges(eta=(0.1, 10.0), T=(2, 8), actor_lr=(1e-4, 1e-3))


def _searcher(store: studies.StudyStore) -> TaskSearcher:
    task = TaskSearch(
        task=TASK,
        study_name=studies.study_name("s", TASK),
        search_config={"task": TASK, "stage": "search", "seeds": [0]},
        confirm_config={"task": TASK, "stage": "confirm", "seeds": [1]},
        confirm=0,
    )
    return TaskSearcher([task], store, RANGES.optuna_space(), seed=0, round_name="sweep")


@pytest.mark.parametrize("enqueued", [False, True], ids=["asked", "enqueued preset"])
def test_a_trial_whose_driver_died_inside_ask_is_handed_out_with_every_value(tmp_path, enqueued):
    # study.ask creates the trial, then writes its values one by one: a driver killed in
    # between leaves a RUNNING trial holding eta only (seen in CI as KeyError: 'T').
    store = studies.StudyStore(str(tmp_path / studies.JOURNAL))
    study = store.study(studies.study_name("s", TASK), seed=0)
    study.set_user_attr(studies.PLANNED, 3)
    preset = {"eta": 1.0, "T": 5, "actor_lr": 3e-4}
    if enqueued:
        study.enqueue_trial(preset)
    cut = study.ask()  # as the killed driver did, up to its first value
    eta = cut.suggest_float("eta", *RANGES.eta, log=True)
    assert set(study.trials[0].params) == {"eta"}

    config = _searcher(store).suggest("resumed-trial")

    assert {"eta", "T", "actor_lr"} <= config.keys() and config["eta"] == eta
    assert RANGES.contains(config) and isinstance(config["T"], int)
    if enqueued:
        assert {name: config[name] for name in preset} == preset
    backend = optuna.storages.journal.JournalFileBackend(store.url)  # read afresh from disk
    stored = optuna.storages.JournalStorage(backend)
    trial = optuna.load_study(study_name=study.study_name, storage=stored).trials[0]
    assert len(study.trials) == 1 and trial.state.name == "RUNNING"
    assert trial.params == {k: config[k] for k in ("eta", "T", "actor_lr")}
    assert trial.user_attrs["tune_trial_id"] == "resumed-trial"
