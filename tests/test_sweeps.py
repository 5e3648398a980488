"""Sweeps on a real Ray cluster (a head without GPUs and two workers declaring one GPU each),
real Optuna and real MuJoCo evaluation, with tiny budgets."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # behave the same with or without a token
ray = pytest.importorskip("ray")
from analysis.loading import load_rows  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LOCOMOTION = ROOT / "sweeps" / "locomotion.py"
# A budget of seconds per trial: tiny networks, 10 steps an epoch, evaluation every epoch.
TINY = [
    "--set",
    "hidden_dim=16",
    "--set",
    "batch_size=32",
    "--steps-per-epoch",
    "10",
    "--eval-every",
    "1",
    "--eval-episodes",
    "2",
    "--cpus-per-trial",
    "1",
]
# For the tests that kill the driver in a race window: a window is one trial or one epoch
# long, about 0.2 s with TINY's 10 steps (CI's 0.2 s poll missed one), about 3 s with
# these; few diffusion steps keep every trial near that length.
WIDE_WINDOW = ["--steps-per-epoch", "600", "--T-range", "2,3"]


def sweep_args(hopper_file, storage, name, *extra):
    return [
        "--tasks",
        "hopper-medium-v2",
        "--data",
        f"hopper-medium-v2={hopper_file}",
        "--storage",
        str(storage),
        "--name",
        name,
        *TINY,
        *extra,
    ]


def rows_of(experiment: Path) -> list[dict]:
    rows = []
    for result in sorted(experiment.glob("*/result.json")):
        rows += [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
    return rows


def rows_of_trial(trial: Path) -> list[dict]:
    return [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]


def statuses_of(experiment: Path) -> dict:
    return json.loads((experiment / "trial_status.json").read_text())


def test_optuna_asha_sweep_starts_at_the_preset_and_stops_weak_trials(
    cluster, hopper_file, tmp_path
):
    from sweeps.locomotion import SUITE
    from sweeps.runner import main

    code = main(
        SUITE,
        sweep_args(
            hopper_file,
            tmp_path,
            "asha",
            "--num-samples",
            "6",
            "--seeds",
            "1",
            "--epochs",
            "6",
            "--max-concurrent",
            "3",
            "--grace-period",
            "1",
            "--reduction-factor",
            "2",
            "--T-range",
            "2,5",
            "--eta-range",
            "0.1,10",
            "--lr-range",
            "1e-4,1e-3",
            "--address",
            cluster[0].address,
        ),
    )
    assert code == 0
    experiment = tmp_path / "asha" / "sweep"
    statuses = statuses_of(experiment)
    assert len(statuses) == 6
    assert sum(s["status"] == "stopped_early" for s in statuses.values()) >= 1
    trials = [t for t in experiment.glob("trial_*") if t.is_dir()]
    assert len(trials) == 6 and all(list(t.glob("events.out.tfevents.*")) for t in trials)
    rows = rows_of(experiment)
    for row in rows:
        assert {"eta", "T", "actor_lr"} <= row["config"].keys()
        assert row["hparams"]["eta"] == row["config"]["eta"]
        assert row["hparams"]["T"] == row["config"]["T"]
        assert row["env_id"] == "Hopper-v5" and row["stage"] == "search"
        assert len(row["normalized_scores"]) == 1
    first_trial = sorted(experiment.glob("trial_*"))[0]  # folders are numbered in order
    assert first_trial.name.startswith("trial_001_") and "_hopper-medium-v2_" in first_trial.name
    first = rows_of_trial(first_trial)[0]
    assert (first["hparams"]["eta"], first["hparams"]["T"], first["hparams"]["actor_lr"]) == (
        1.0,
        5,
        3e-4,
    )  # the paper's hopper-medium-v2 preset, evaluated first


def test_fractional_gpu_trials_run_on_both_workers_never_on_the_head(
    cluster, hopper_file, tmp_path
):
    from sweeps.locomotion import SUITE
    from sweeps.runner import main

    head_cluster, workers = cluster
    code = main(
        SUITE,
        sweep_args(
            hopper_file,
            tmp_path,
            "gpu",
            "--num-samples",
            "4",
            "--seeds",
            "1",
            "--epochs",
            "2",
            "--max-concurrent",
            "4",
            "--gpus-per-trial",
            "0.5",
            "--address",
            head_cluster.address,
        ),
    )
    assert code == 0
    rows = rows_of(tmp_path / "gpu" / "sweep")
    nodes = {row["node_id"] for row in rows}
    assert nodes == {worker.node_id for worker in workers}
    assert head_cluster.head_node.node_id not in nodes
    assert all(row["device"] == "cpu" for row in rows)  # no CUDA here: the CPU fallback


def _driver(args, cwd=ROOT, script=LOCOMOTION, log: Path | None = None, **environment):
    """The sweep script in its own process; its output goes to ``log`` when given (a pipe
    nobody reads until the end could fill and stall it), else to a pipe."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", **environment}
    output = log.open("w") if log else subprocess.PIPE
    try:
        return subprocess.Popen(
            [sys.executable, str(script), *args],
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    finally:
        if log:
            output.close()  # the child holds its own copy


def _wait_for_rows(experiment: Path, count: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if experiment.exists() and len(rows_of(experiment)) >= count:
            return
        time.sleep(0.5)
    raise AssertionError(f"no {count} rows in {experiment} after {timeout} s")


def test_a_trial_on_a_killed_node_resumes_from_its_checkpoint(cluster, hopper_file, tmp_path):
    head_cluster, _ = cluster
    spare = head_cluster.add_node(num_cpus=2, num_gpus=1)  # so two workers remain after the kill
    args = sweep_args(
        hopper_file,
        tmp_path,
        "fault",
        "--num-samples",
        "1",
        "--seeds",
        "1",
        "--epochs",
        "8",
        "--steps-per-epoch",
        "40",
        "--gpus-per-trial",
        "1",
        "--max-failures",
        "3",
        "--address",
        head_cluster.address,
    )
    driver = _driver(args)
    experiment = tmp_path / "fault" / "sweep"
    _wait_for_rows(experiment, 2)
    victim_id = rows_of(experiment)[-1]["node_id"]
    victim = next(node for node in head_cluster.worker_nodes if node.node_id == victim_id)
    head_cluster.remove_node(victim, allow_graceful=False)
    output, _ = driver.communicate(timeout=300)
    assert driver.returncode == 0, output
    # The newest checkpoint holds every row exactly once, and analysis reads them all.
    newest = sorted(experiment.glob("*/checkpoint_*/rows.jsonl"))[-1]
    rows = [json.loads(line) for line in newest.read_text().splitlines()]
    assert [row["epoch"] for row in rows] == list(range(1, 9))  # none lost, none repeated
    assert len({row["node_id"] for row in rows}) == 2  # it moved to another node
    loaded = load_rows([str(experiment)])
    assert sorted(loaded["epoch"]) == list(range(1, 9))
    assert loaded["trial_id"].nunique() == 1
    assert statuses_of(experiment).popitem()[1]["status"] == "finished"
    if spare.node_id == victim_id:  # keep two GPU workers for the tests after this one
        head_cluster.add_node(num_cpus=2, num_gpus=1)


def test_an_interrupted_sweep_resumes_to_the_planned_number_of_trials(
    cluster, hopper_file, tmp_path
):
    head_cluster, _ = cluster
    # The script copied alone into an empty folder runs from there (as ray submit does).
    alone = tmp_path / "alone"
    alone.mkdir()
    script = Path(shutil.copy(LOCOMOTION, alone / "locomotion.py"))
    args = sweep_args(
        hopper_file,
        tmp_path,
        "resume",
        "--num-samples",
        "4",
        "--seeds",
        "1",
        "--epochs",
        "4",
        "--max-concurrent",
        "1",
        "--address",
        head_cluster.address,
    )
    driver = _driver(args, cwd=alone, script=script)
    experiment = tmp_path / "resume" / "sweep"
    _wait_for_rows(experiment, 3)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert not (experiment / "trial_status.json").exists()
    resumed = _driver([*args, "--resume"], cwd=alone, script=script)
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    statuses = statuses_of(experiment)
    assert len(statuses) == 4
    assert all(s["status"] in ("finished", "stopped_early") for s in statuses.values())
    # A trial restored from Tune's last snapshot may recompute one interval (result.json
    # then repeats that epoch, docs/RESULTS.md); the analysis and each newest checkpoint's
    # rows.jsonl hold every epoch exactly once.
    loaded = load_rows([str(tmp_path / "resume")])
    assert loaded["trial_id"].nunique() == 4
    for _, epochs in loaded.groupby("trial_id")["epoch"]:
        assert sorted(epochs) == list(range(1, epochs.max() + 1))
    for rows in experiment.glob("*/checkpoint_*/rows.jsonl"):
        epochs = [json.loads(line)["epoch"] for line in rows.read_text().splitlines()]
        assert epochs == list(range(1, len(epochs) + 1))
    params = [json.loads(p.read_text()) for p in experiment.glob("*/params.json")]
    searched = {(p["eta"], p["T"], p["actor_lr"]) for p in params}
    assert len(params) == len(searched) == 4  # no configuration run twice


def stored_study(sweep: Path, name: str):
    """A sweep's study, read afresh from its Optuna journal."""
    import optuna

    backend = optuna.storages.journal.JournalFileBackend(str(sweep / "optuna.journal"))
    return optuna.load_study(study_name=name, storage=optuna.storages.JournalStorage(backend))


def _wait_for_a_trial_unknown_to_the_snapshot(
    driver: subprocess.Popen, log: Path, sweep: Path, study: str, state: str
) -> str:
    """The Tune id of a trial in ``state`` (a study trial COMPLETE, or RUNNING with a
    checkpoint in storage; or a confirm trial the study records as CONFIRMED) that Tune's
    saved experiment state, what a restore reads, does not name."""
    deadline = time.time() + 120
    while time.time() < deadline:
        if driver.poll() is not None:
            raise AssertionError(
                f"the sweep ended (exit {driver.returncode}) before a {state} trial of "
                f"{study} unknown to Tune's snapshot was seen; its output:\n{log.read_text()}"
            )
        saved = "".join(p.read_text() for p in (sweep / "sweep").glob("experiment_state-*.json"))
        if saved and (sweep / "optuna.journal").is_file():
            found = stored_study(sweep, study)
            trials = [(t.user_attrs.get("tune_trial_id"), t.state.name) for t in found.trials]
            trials += [
                (key.removeprefix("confirm_trial:"), "CONFIRMED")
                for key in found.user_attrs
                if key.startswith("confirm_trial:")
            ]
            for trial_id, now in trials:
                if trial_id is None:  # asked of the study, its Tune id not yet recorded
                    continue
                checkpoint = f"sweep/trial_*_{trial_id}_*/checkpoint_*/rows.jsonl"
                if (
                    now == state
                    and trial_id not in saved
                    and (state != "RUNNING" or any(sweep.glob(checkpoint)))
                ):
                    return trial_id
        time.sleep(0.2)
    raise AssertionError(
        f"no {state} trial of {study} unknown to Tune's snapshot after 120 s; the sweep's "
        f"output:\n{log.read_text()}"
    )


def _kill_at_a_trial_unknown_to_the_snapshot(args, head_cluster, sweep: Path, state: str) -> str:
    """Run the driver until a trial of hopper-medium-v2 is in ``state`` but unknown to
    Tune's saved state, SIGKILL it there, and return that trial's Tune id.

    Tune snapshots the experiment at its first step, then once an hour (set here) or after
    a trial's second checkpoint: trials asked after the first run unknown to the snapshot,
    so the race of a kill in the second after a trial's end is as wide as a trial. What the
    driver staged for storage but had not copied there (at its next snapshot) is deleted: a
    driver resumed on a new Ray session, as after a local Ray that died with it, finds none
    of it, only what reached storage."""
    log = sweep.parent / f"{sweep.name}-killed-driver.log"
    driver = _driver(args, log=log, TUNE_GLOBAL_CHECKPOINT_S="3600")
    trial_id = _wait_for_a_trial_unknown_to_the_snapshot(
        driver, log, sweep, f"{sweep.name}/hopper-medium-v2", state
    )
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    artifacts = Path(head_cluster.head_node.get_session_dir_path()) / "artifacts"
    for staged in artifacts.glob(f"*/sweep/driver_artifacts/trial_*_{trial_id}_*"):
        shutil.rmtree(staged.parents[1])
    return trial_id


def _resume(args) -> None:
    resumed = _driver([*args, "--resume"])
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output


def test_a_trial_that_ended_after_tunes_last_snapshot_is_recorded_once_on_resume(
    cluster, hopper_file, tmp_path
):
    head_cluster, _ = cluster
    args = sweep_args(
        hopper_file, tmp_path, "race",
        "--num-samples", "3", "--seeds", "1", "--epochs", "1", "--max-concurrent", "1",
        "--address", head_cluster.address, *WIDE_WINDOW,
    )  # fmt: skip
    stray = _kill_at_a_trial_unknown_to_the_snapshot(
        args, head_cluster, tmp_path / "race", "COMPLETE"
    )
    experiment = tmp_path / "race" / "sweep"
    folder = next(experiment.glob(f"trial_*_{stray}_*"))  # only its checkpoint reached storage
    assert [f.name for f in folder.iterdir()] == ["checkpoint_000000"]
    _resume(args)

    trials = stored_study(tmp_path / "race", "race/hopper-medium-v2").trials
    assert len(trials) == 3 and all(t.state.name == "COMPLETE" for t in trials)
    statuses = statuses_of(experiment)
    assert set(statuses) == {t.user_attrs["tune_trial_id"] for t in trials}  # stray included
    assert statuses[stray]["trial_dir"] == folder.name
    assert all(s["status"] == "finished" for s in statuses.values())
    # Its folder is kept and read once: one row per trial, the stray's the score its study has.
    loaded = load_rows([str(tmp_path / "race")])
    assert sorted(loaded["trial_id"]) == sorted(statuses) and list(loaded["epoch"]) == [1, 1, 1]
    value = next(t.value for t in trials if t.user_attrs["tune_trial_id"] == stray)
    assert loaded.set_index("trial_id").loc[stray, "normalized_score"] == pytest.approx(value)
    assert folder.is_dir() and len([t for t in experiment.glob("trial_*") if t.is_dir()]) == 3


def test_a_trial_cut_off_before_tunes_first_snapshot_of_it_is_rerun_and_counted_once(
    cluster, hopper_file, tmp_path
):
    head_cluster, _ = cluster
    args = sweep_args(
        hopper_file, tmp_path, "cut",
        "--num-samples", "2", "--seeds", "1", "--epochs", "2", "--grace-period", "2",
        "--max-concurrent", "1", "--address", head_cluster.address, *WIDE_WINDOW,
    )  # fmt: skip
    cut = _kill_at_a_trial_unknown_to_the_snapshot(args, head_cluster, tmp_path / "cut", "RUNNING")
    experiment = tmp_path / "cut" / "sweep"
    first = next(experiment.glob(f"trial_*_{cut}_*"))
    _resume(args)

    # Its study trial was handed out again and rerun under a new Tune id; the first copy,
    # which holds only checkpoints, is removed, so the analysis counts each trial once.
    trials = stored_study(tmp_path / "cut", "cut/hopper-medium-v2").trials
    assert len(trials) == 2 and all(t.state.name == "COMPLETE" for t in trials)
    statuses = statuses_of(experiment)
    assert set(statuses) == {t.user_attrs["tune_trial_id"] for t in trials} and cut not in statuses
    assert not first.exists()
    loaded = load_rows([str(tmp_path / "cut")])
    assert sorted(loaded["trial_id"].unique()) == sorted(statuses)
    epochs = loaded.groupby("trial_id")["epoch"].apply(list).to_dict()
    assert epochs == {trial_id: [1, 2] for trial_id in statuses}


def test_a_confirm_trial_that_ended_after_tunes_last_snapshot_is_recorded_once(
    cluster, hopper_file, tmp_path
):
    head_cluster, _ = cluster
    args = sweep_args(
        hopper_file, tmp_path, "conf",
        "--num-samples", "1", "--seeds", "1", "--epochs", "1", "--confirm", "1",
        "--max-concurrent", "1", "--address", head_cluster.address, *WIDE_WINDOW,
    )  # fmt: skip
    # A second task keeps the sweep going after the first task's confirm trial (the end of
    # the sweep snapshots Tune's state at once).
    tasks = ["--tasks", ",".join(THREE_TASKS[:2]), "--data", f"{THREE_TASKS[1]}={hopper_file}"]
    args = [*args, *tasks]
    stray = _kill_at_a_trial_unknown_to_the_snapshot(
        args, head_cluster, tmp_path / "conf", "CONFIRMED"
    )
    _resume(args)

    experiment = tmp_path / "conf" / "sweep"
    statuses = statuses_of(experiment)
    assert sorted(s["stage"] for s in statuses.values()) == [
        "confirm",
        "confirm",
        "search",
        "search",
    ]
    assert statuses[stray]["stage"] == "confirm" and statuses[stray]["status"] == "finished"
    assert len(list(experiment.glob("trial_*-confirm*"))) == 2  # none confirmed twice
    loaded = load_rows([str(tmp_path / "conf")])
    assert sorted(loaded["trial_id"]) == sorted(statuses)
    assert set(loaded.loc[loaded["trial_id"] == stray, "seed"]) == {1000}
    assert (tmp_path / "conf" / "results_table.tex").is_file()


def test_a_diverging_trial_is_labelled_and_the_sweep_finishes(cluster, hopper_file, tmp_path):
    from sweeps.locomotion import SUITE
    from sweeps.runner import main

    code = main(
        SUITE,
        sweep_args(
            hopper_file,
            tmp_path,
            "diverge",
            "--num-samples",
            "2",
            "--seeds",
            "1",
            "--epochs",
            "3",
            "--lr-range",
            "1e3,1e4",
            "--set",
            "critic_lr=1e4",
            "--set",
            "grad_norm=0",
            "--address",
            cluster[0].address,
        ),
    )
    assert code == 0
    statuses = statuses_of(tmp_path / "diverge" / "sweep")
    assert [s["status"] for s in statuses.values()] == ["diverged", "diverged"]
    assert all(s["reason"] for s in statuses.values())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tasks", "hopper-medium-v3"], "hopper-medium-v2"),
        (["--tasks", "hopper-medium-v2"], "python -m dql data download hopper-medium-v2"),
        (["--eta-range", "5,0.5"], "--eta-range 5.0,0.5"),
    ],
)
def test_bad_input_fails_in_one_line_before_any_trial(
    args, message, tmp_path, hopper_file, monkeypatch, capsys
):
    from sweeps.locomotion import SUITE
    from sweeps.runner import main

    monkeypatch.setenv("D4RL_DATASET_DIR", str(tmp_path / "empty"))
    if "--tasks" not in args:
        args = [*args, "--tasks", "hopper-medium-v2", "--data", f"hopper-medium-v2={hopper_file}"]
    assert main(SUITE, [*args, "--storage", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and message in error
    assert not (tmp_path / "out" / "locomotion").exists()


def test_more_gpus_per_trial_than_any_node_has_fails_before_any_trial(tmp_path, hopper_file):
    result = subprocess.run(
        [
            sys.executable,
            str(LOCOMOTION),
            *sweep_args(hopper_file, tmp_path, "g"),
            "--gpus-per-trial",
            "2",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "RAY_AUTH_MODE": "disabled"},
        timeout=180,
    )
    assert result.returncode == 2
    # It joins the running test cluster (whose nodes have at most 1 GPU) or starts its own.
    assert "--gpus-per-trial 2" in result.stderr and "largest node has" in result.stderr
    assert not (tmp_path / "g" / "sweep").exists()


def test_confirm_reruns_the_best_configuration_with_fresh_seeds(cluster, hopper_file, tmp_path):
    from sweeps.locomotion import SUITE
    from sweeps.runner import main

    code = main(
        SUITE,
        sweep_args(
            hopper_file,
            tmp_path,
            "confirm",
            "--num-samples",
            "2",
            "--seeds",
            "1",
            "--epochs",
            "2",
            "--confirm",
            "2",
            "--address",
            cluster[0].address,
        ),
    )
    assert code == 0
    experiment = tmp_path / "confirm" / "sweep"
    search = [row for row in rows_of(experiment) if row["stage"] == "search"]
    finals = [row for row in search if row["status"] == "finished"]
    best = max(finals, key=lambda row: row["normalized_score"])["hparams"]
    confirmed = [row for row in rows_of(experiment) if row["stage"] == "confirm"]
    assert [row["epoch"] for row in confirmed] == [1, 2]
    for row in confirmed:
        assert row["stage"] == "confirm" and row["seeds"] == [1000, 1001]
        assert len(row["normalized_scores"]) == 2
        assert {k: row["hparams"][k] for k in ("eta", "T", "actor_lr")} == {
            k: best[k] for k in ("eta", "T", "actor_lr")
        }
    assert not {1000, 1001} & {seed for row in search for seed in row["seeds"]}
    stages = sorted(s["stage"] for s in statuses_of(experiment).values())
    assert stages == ["confirm", "search", "search"]
    assert (tmp_path / "confirm" / "results_table.tex").is_file()


# ---------------------------------------------------------------- every task at once
THREE_TASKS = ("hopper-medium-v2", "hopper-medium-replay-v2", "hopper-medium-expert-v2")


def three_task_args(hopper_file, storage, name, *extra):
    data = [arg for task in THREE_TASKS for arg in ("--data", f"{task}={hopper_file}")]
    return ["--tasks", ",".join(THREE_TASKS), *data, "--storage", str(storage), "--name", name,
            *TINY, *extra]  # fmt: skip


def trial_spans(experiment: Path) -> dict[str, tuple[str, float, float]]:
    """Tune trial id -> (task, start, end) in seconds since the epoch, from its rows."""
    spans = {}
    for row in rows_of(experiment):
        start = row["timestamp"] - row["time_total_s"]
        task, first, last = spans.get(row["trial_id"], (row["task"], start, row["timestamp"]))
        spans[row["trial_id"]] = (task, min(first, start), max(last, row["timestamp"]))
    return spans


def test_every_task_is_searched_at_once_with_its_own_study_resumed_and_extended(
    cluster, hopper_file, tmp_path
):
    import optuna

    head_cluster, _ = cluster
    args = three_task_args(
        hopper_file, tmp_path, "all",
        "--num-samples", "4", "--seeds", "1", "--epochs", "4", "--grace-period", "1",
        "--reduction-factor", "2", "--T-range", "2,5", "--address", head_cluster.address,
    )  # fmt: skip
    experiment = tmp_path / "all" / "sweep"
    driver = _driver(args)
    _wait_for_rows(experiment, 6)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    resumed = _driver([*args, "--resume"])
    output, _ = resumed.communicate(timeout=400)
    assert resumed.returncode == 0, output
    for task in THREE_TASKS:  # a progress line per task, and the cost in the summary
        assert re.search(rf"^{re.escape(task)} +search done \(4/4\)", output, re.M), output
    assert re.search(r"^Compute: [0-9.e-]+ CPU-h in all \(search", output, re.M), output
    for row in rows_of(experiment):
        assert (row["cpus"], row["gpus"]) == (1.0, 0.0)
        assert row["cpu_seconds"] == pytest.approx(row["wall_time_s"]) and row["gpu_seconds"] == 0

    # Trials of different tasks overlapped in time.
    spans = trial_spans(experiment)
    assert any(
        a[0] != b[0] and a[1] < b[2] and b[1] < a[2] for a in spans.values() for b in spans.values()
    )
    # No row lost or repeated: every trial's rows are epochs 1..last, each once, and the
    # analysis reads the same.
    per_trial: dict[str, list[int]] = {}
    for row in rows_of(experiment):
        per_trial.setdefault(row["trial_id"], []).append(row["epoch"])
    assert len(per_trial) == 12
    for epochs in per_trial.values():
        assert sorted(set(epochs)) == list(range(1, max(epochs) + 1))
    loaded = load_rows([str(tmp_path / "all")])
    assert loaded.groupby("trial_id")["epoch"].apply(lambda e: e.is_unique).all()
    assert loaded["trial_id"].nunique() == 12
    statuses = statuses_of(experiment)
    assert sum(s["status"] == "stopped_early" for s in statuses.values()) >= 1
    assert all(s["status"] in ("finished", "stopped_early") for s in statuses.values())

    # Each task's stored study holds exactly that task's trials, values and parameters.
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "all" / "optuna.journal"))
    )
    last_rows = {}
    for row in sorted(rows_of(experiment), key=lambda r: r["epoch"]):
        last_rows[row["trial_id"]] = row
    for task in THREE_TASKS:
        study = optuna.load_study(study_name=f"all/{task}", storage=storage)
        trials = study.get_trials()
        assert len(trials) == 4 and all(t.state.name == "COMPLETE" for t in trials)
        for trial in trials:
            row = last_rows[trial.user_attrs["tune_trial_id"]]
            assert row["task"] == task
            assert trial.value == pytest.approx(row["normalized_score"])
            assert trial.params == {k: row["config"][k] for k in ("eta", "T", "actor_lr")}

    # --extend 2 adds two trials per task to the same studies.
    extended = _driver([*args, "--extend", "2"])
    output, _ = extended.communicate(timeout=400)
    assert extended.returncode == 0, output
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "all" / "optuna.journal"))
    )
    for task in THREE_TASKS:
        study = optuna.load_study(study_name=f"all/{task}", storage=storage)
        assert len(study.get_trials(states=[optuna.trial.TrialState.COMPLETE])) == 6
    new_rows = rows_of(tmp_path / "all" / "extend-1")
    assert {row["task"] for row in new_rows} == set(THREE_TASKS)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--extend", "2"], "there is no sweep 'none' under"),
        (["--resume"], "there is no sweep 'none' under"),
        (["--optuna-storage", "sqlite:////no/such/folder/studies.db"], "--optuna-storage"),
        (["--max-concurrent", "0"], "--max-concurrent must be at least 1"),
    ],
)
def test_bad_sweep_options_fail_in_one_line_before_ray_starts(
    extra, message, hopper_file, tmp_path, capsys
):
    from sweeps.locomotion import SUITE
    from sweeps.runner import main

    (tmp_path / "out" / "other").mkdir(parents=True)
    (tmp_path / "out" / "other" / "sweep.json").write_text("{}")
    args = [*sweep_args(hopper_file, tmp_path / "out", "none"), *extra]
    assert main(SUITE, args) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and message in error, error
    if "there is no sweep" in message:
        assert "sweeps there: other" in error
    assert not (tmp_path / "out" / "none").exists()


def test_ctrl_c_exits_130_and_a_failed_restore_changes_nothing(cluster, hopper_file, tmp_path):
    head_cluster, _ = cluster
    args = sweep_args(
        hopper_file, tmp_path, "int",
        "--num-samples", "3", "--seeds", "1", "--epochs", "10", "--max-concurrent", "1",
        "--address", head_cluster.address,
    )  # fmt: skip
    experiment = tmp_path / "int" / "sweep"
    driver = _driver(args)
    _wait_for_rows(experiment, 2)
    driver.send_signal(signal.SIGINT)
    output, _ = driver.communicate(timeout=120)
    assert driver.returncode == 130, output
    assert "--resume" in output and "python sweeps/locomotion.py" in output
    statuses = statuses_of(experiment)
    interrupted = [s for s in statuses.values() if s["status"] == "interrupted"]
    assert interrupted and all("interrupted" in s["reason"] for s in interrupted)
    assert not (tmp_path / "int" / "results_table.tex").exists()

    # Tune cannot restore: say why, exit non-zero, leave every file as it was.
    recorded = (experiment / "trial_status.json").read_bytes()
    tuner_state = experiment / "tuner.pkl"
    saved = tuner_state.read_bytes()
    tuner_state.write_bytes(b"not a pickle")
    broken = _driver([*args, "--resume"])
    output, _ = broken.communicate(timeout=120)
    assert broken.returncode == 1, output
    assert "could not restore" in output
    assert (experiment / "trial_status.json").read_bytes() == recorded
    assert not (tmp_path / "int" / "results_table.tex").exists()

    tuner_state.write_bytes(saved)
    resumed = _driver([*args, "--resume"])
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    statuses = statuses_of(experiment)
    assert len(statuses) == 3 and "interrupted" not in {s["status"] for s in statuses.values()}
    assert (tmp_path / "int" / "results_table.tex").is_file()


def test_trial_status_is_never_replaced_by_a_record_of_fewer_trials(tmp_path):
    from sweeps.status import write_trial_status

    full = {"a": {"status": "finished"}, "b": {"status": "stopped_early"}}
    assert write_trial_status(str(tmp_path), full)
    assert not write_trial_status(str(tmp_path), {"c": {"status": "failed"}})
    assert json.loads((tmp_path / "trial_status.json").read_text()) == full


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--T-range", "0,5", "both ends must be 1"),
        ("--lr-range", "-1e-3,1e-3", "both ends must be above 0"),
        ("--T-range", "9,3", "did you mean --T-range 3,9?"),
    ],
)
def test_range_errors_suggest_a_swap_only_when_the_ends_are_swapped(flag, value, message):
    from sweeps.space import SearchRanges, SweepInputError

    with pytest.raises(SweepInputError) as error:
        SearchRanges().with_overrides(**{flag[2:].split("-")[0].replace("lr", "actor_lr"): value})
    assert message in str(error.value)
    assert ("did you mean" in str(error.value)) == ("did you mean" in message)


def test_a_storage_that_cannot_be_written_fails_in_one_line(hopper_file, tmp_path, capsys):
    from sweeps.locomotion import SUITE
    from sweeps.runner import main

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(SUITE, sweep_args(hopper_file, blocker / "inside", "x")) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "cannot be written" in error and "a-file" in error
