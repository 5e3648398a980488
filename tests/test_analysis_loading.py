"""Loading result folders: Tune's layout, trial_status.json, dql train runs, bad paths."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.loading import TruncatedResultsWarning, load
from analysis.storage import ResultsError
from analysis.synthetic import FakeTrial, write_sweep


def test_rows_are_one_per_evaluation_per_seed_with_flat_hyperparameters(tmp_path):
    write_sweep(
        tmp_path, "hopper-medium-v2", [FakeTrial([[10, 20], [30, 40]], hparams={"eta": 2.5})]
    )
    results = load(str(tmp_path))
    rows = results.rows
    assert len(rows) == 4  # 2 evaluations x 2 seeds
    assert list(rows["normalized_score"]) == [10, 20, 30, 40]
    assert list(rows["seed"]) == [0, 1, 0, 1]
    assert set(rows["eta"]) == {2.5} and set(rows["T"]) == {5}
    assert {
        "task",
        "domain",
        "stage",
        "status",
        "status_reason",
        "epoch",
        "gradient_steps",
        "return",
        "bc_loss",
        "actor_lr",
    } <= set(rows.columns)
    assert set(rows["domain"]) == {"locomotion"} and set(rows["stage"]) == {"search"}


def test_a_repeated_interval_keeps_the_last_row(tmp_path):
    write_sweep(tmp_path, "hopper-medium-v2", [FakeTrial([[10], [30]], repeat_last=True)])
    rows = load(str(tmp_path)).rows
    assert list(rows["epoch"]) == [50, 100]
    assert list(rows["normalized_score"]) == [10, 30]  # not the repeated -1


def test_rows_lost_from_result_json_come_back_from_the_newest_checkpoint(tmp_path):
    experiment = write_sweep(tmp_path, "hopper-medium-v2", [FakeTrial([[10], [20], [30]])])
    trial = next(experiment.glob("trial_*"))
    result = trial / "result.json"
    lines = result.read_text().splitlines()
    for number, upto in ((0, 1), (1, 3)):  # checkpoints after the 1st and the 3rd row
        folder = trial / f"checkpoint_{number:06d}"
        folder.mkdir()
        (folder / "rows.jsonl").write_text("".join(line + "\n" for line in lines[:upto]))
    result.write_text(lines[0] + "\n" + lines[2] + "\n")  # Tune lost the 2nd row
    rows = load(str(tmp_path)).rows
    assert list(rows["epoch"]) == [50, 100, 150]
    assert list(rows["normalized_score"]) == [10, 20, 30]


def test_a_trial_folder_holding_only_its_checkpoint_is_read_from_it(tmp_path):
    experiment = write_sweep(tmp_path, "hopper-medium-v2", [FakeTrial([[10], [20]])] * 2)
    trial = sorted(experiment.glob("trial_*"))[1]
    rows = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
    (trial / "checkpoint_000001").mkdir()
    (trial / "checkpoint_000001" / "rows.jsonl").write_text(
        "".join(json.dumps({k: v for k, v in r.items() if k != "trial_id"}) + "\n" for r in rows)
    )  # the trainable's rows, without the fields Tune adds
    for file in trial.iterdir():  # what a killed driver had not yet copied into storage
        if file.is_file():
            file.unlink()
    results = load(str(tmp_path))
    assert sorted(results.rows["trial_id"]) == ["00001", "00001", "00002", "00002"]
    read = results.trials.set_index("trial_id").loc["00002"]
    assert (read["task"], read["status"], read["last_epoch"]) == (
        "hopper-medium-v2",
        "finished",
        100,
    )


def test_statuses_are_inferred_and_a_failed_trial_without_rows_is_kept(tmp_path):
    write_sweep(
        tmp_path,
        "hopper-medium-v2",
        [
            FakeTrial([[10], [30]]),
            FakeTrial([[10]], finished=False),
            FakeTrial([[10]], diverged_after=True),
            FakeTrial([], error="Traceback (most recent call last):\nRuntimeError: CUDA OOM\n"),
        ],
    )
    trials = load(str(tmp_path)).trials.set_index("trial_id")
    assert list(trials["status"]) == ["finished", "running", "diverged", "failed"]
    assert trials.loc["00003", "status_reason"] == "critic_loss is nan"
    assert trials.loc["00004", "status_reason"] == "RuntimeError: CUDA OOM"
    assert trials.loc["00004", "task"] == "hopper-medium-v2"  # from params.json
    assert trials.loc["00004", "domain"] == "locomotion"


def test_trial_status_json_overrides_the_inference(tmp_path):
    experiment = write_sweep(tmp_path, "hopper-medium-v2", [FakeTrial([[10]], finished=False)])
    trial_dir = next(experiment.iterdir()).name
    status = {
        "00001": {
            "status": "stopped_early",
            "reason": "ASHA",
            "stage": "search",
            "trial_dir": trial_dir,
        }
    }
    (experiment / "trial_status.json").write_text(json.dumps(status))
    trial = load(str(tmp_path)).trials.iloc[0]
    assert (trial["status"], trial["status_reason"]) == ("stopped_early", "ASHA")


def test_a_parent_folder_with_several_experiments_and_a_train_run(tmp_path):
    write_sweep(tmp_path / "sweeps", "hopper-medium-v2", [FakeTrial([[10]])])
    write_sweep(tmp_path / "sweeps", "hopper-medium-v2", [FakeTrial([[50]])], stage="confirm")
    run = tmp_path / "runs" / "mine"
    run.mkdir(parents=True)
    row = {
        "task": "walker2d-medium-v2",
        "stage": "single",
        "seeds": [3],
        "epoch": 1,
        "normalized_scores": [7.0],
        "returns": [70.0],
        "bc_losses": [0.5],
        "status": "finished",
        "hparams": {"eta": 1.0},
    }
    (run / "results.jsonl").write_text(json.dumps(row) + "\n" + '{"torn": ')
    with pytest.warns(TruncatedResultsWarning, match="results.jsonl"):
        results = load(str(tmp_path))
    assert sorted(results.trials["stage"]) == ["confirm", "search", "single"]
    single = results.rows[results.rows["stage"] == "single"].iloc[0]
    assert (single["task"], single["seed"], single["normalized_score"]) == (
        "walker2d-medium-v2",
        3,
        7.0,
    )


def test_a_path_without_results_says_what_was_expected(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsError, match=r"no results under .*expected a Tune experiment"):
        load(str(tmp_path / "empty"))
    with pytest.raises(ResultsError, match="does not exist"):
        load(str(tmp_path / "missing"))


def test_s3_without_s3fs_names_the_install_command():
    pytest.importorskip("fsspec")
    try:
        import s3fs  # noqa: F401

        pytest.skip("s3fs is installed here; the message is for machines without it")
    except ImportError:
        pass
    with pytest.raises(ResultsError, match=r'pip install -e "\.\[aws\]"'):
        load("s3://some-bucket/dql-sweeps/locomotion")


def test_analysis_imports_neither_torch_nor_ray():
    code = (
        "import importlib, pkgutil, sys, analysis\n"
        "for m in pkgutil.iter_modules(analysis.__path__):\n"
        "    if m.name != '__main__':\n"
        "        importlib.import_module('analysis.' + m.name)\n"
        "bad = [name for name in ('torch', 'ray') if name in sys.modules]\n"
        "assert not bad, bad\n"
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def _trial_file(experiment: Path, name: str) -> Path:
    return next(experiment.glob("trial_*")) / name


def test_a_result_file_cut_short_at_its_end_is_used_with_one_warning(tmp_path):
    experiment = write_sweep(tmp_path, "hopper-medium-v2", [FakeTrial([[10], [20], [30]])])
    result = _trial_file(experiment, "result.json")
    text = result.read_text()
    result.write_text(text[: len(text) - 40])  # the last row torn mid-write
    with pytest.warns(TruncatedResultsWarning, match=r"result\.json: the last line") as caught:
        rows = load(str(tmp_path)).rows
    assert len(caught) == 1 and str(result) in str(caught[0].message)
    assert list(rows["normalized_score"]) == [10, 20]


@pytest.mark.parametrize("name", ["result.json", "params.json", "results.jsonl"])
def test_a_result_file_that_is_not_json_is_one_error_naming_it(tmp_path, name):
    if name == "results.jsonl":
        folder = tmp_path / "run"
        folder.mkdir()
        bad = folder / name
        bad.write_text('{"epoch": 1, "normalized_scores": [1.0]}\n')
    else:
        bad = _trial_file(write_sweep(tmp_path, "hopper-medium-v2", [FakeTrial([[1], [2]])]), name)
    # Damage before the last line (or anywhere in a whole-JSON file) is not a torn write.
    bad.write_text("<html>gateway timeout</html>\n" + bad.read_text())
    with pytest.raises(ResultsError, match="is not valid JSON") as error:
        load(str(tmp_path))
    assert str(bad) in str(error.value) and "\n" not in str(error.value)


def test_a_train_run_has_its_own_time_and_stage(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    rows = [
        {"task": "hopper-medium-v2", "stage": "single", "seeds": [0], "epoch": e,
         "normalized_scores": [float(e)], "status": "finished" if e == 2 else "running",
         "wall_time_s": 362.5 * e}
        for e in (1, 2)
    ]  # fmt: skip
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    from analysis.summary import summarize

    text = summarize(str(run))
    assert "Time spent training: 12.1 min" in text
    assert "[single, finished, 1 seed]" in text and "search" not in text
    from analysis.tables import score_table

    assert "Ours: single training runs" in score_table(load(str(run))).caption
