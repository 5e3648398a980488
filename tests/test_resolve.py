"""Task id -> dataset: explicit files, D4RL's cache folder, downloads, and `data info`."""

import argparse
import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import h5py
import numpy as np
import pytest

from dql.data import DatasetError, DatasetSource, load_dataset, resolve_dataset
from dql.data.cli import add_data_commands, run_data_command
from dql.presets import UnknownTaskError
from dql.scores import reference_scores


def write_file(path, rows=10, terminals=(), timeouts=None):
    """A small D4RL-format file (no timeouts key when ``timeouts`` is None: v0 style)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f["observations"] = np.arange(rows * 2, dtype=np.float32).reshape(rows, 2)
        f["actions"] = np.zeros((rows, 1), np.float32)
        f["rewards"] = np.ones(rows, np.float32)
        f["terminals"] = np.isin(np.arange(rows), terminals)
        if timeouts is not None:
            f["timeouts"] = np.isin(np.arange(rows), timeouts)
    return path


def test_an_explicit_file_is_used_with_the_tasks_reference(tmp_path):
    path = write_file(tmp_path / "collected.hdf5")
    source = resolve_dataset("hopper-medium-v2", data=path)
    assert source == DatasetSource("d4rl", path, "hopper-medium-v2", reference_scores(source.task))
    assert len(load_dataset(source)) == 9


def test_a_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        resolve_dataset("hopper-medium-v2", data=tmp_path / "nope.hdf5")


def test_the_d4rl_folder_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("D4RL_DATASET_DIR", str(tmp_path))
    path = write_file(tmp_path / "hopper_medium-v2.hdf5")  # D4RL's own file name
    assert resolve_dataset("hopper-medium-v2").location == path


def test_an_explicit_folder_wins_over_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("D4RL_DATASET_DIR", str(tmp_path / "elsewhere"))
    path = write_file(tmp_path / "mine" / "walker2d_medium_replay-v2.hdf5")
    source = resolve_dataset("walker2d-medium-replay-v2", dataset_dir=tmp_path / "mine")
    assert source.location == path


def test_a_missing_file_names_the_path_searched_and_the_download_command(tmp_path, monkeypatch):
    monkeypatch.setenv("D4RL_DATASET_DIR", str(tmp_path))
    with pytest.raises(DatasetError) as error:
        resolve_dataset("hopper-medium-v2")
    message = str(error.value)
    assert str(tmp_path / "hopper_medium-v2.hdf5") in message
    assert "`python -m dql data download hopper-medium-v2`" in message
    assert "--download" in message and "\n" not in message


def test_a_missing_file_with_a_partial_download_says_it_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("D4RL_DATASET_DIR", str(tmp_path))
    (tmp_path / "hopper_medium-v2.hdf5.part").write_bytes(b"12345")
    with pytest.raises(DatasetError, match=r"partial download .*resumes"):
        resolve_dataset("hopper-medium-v2")


def test_an_unknown_task_fails_before_any_search(tmp_path):
    with pytest.raises(UnknownTaskError, match="Did you mean hopper-medium-v2"):
        resolve_dataset("hopper-medum-v2", data=write_file(tmp_path / "x.hdf5"))


def test_data_is_not_combined_with_a_minari_task(tmp_path):
    with pytest.raises(DatasetError, match="Minari"):
        resolve_dataset("minari:mujoco/hopper/medium-v0", data=write_file(tmp_path / "x.hdf5"))


def test_download_fetches_a_missing_file_then_loads_it(tmp_path, monkeypatch):
    served = tmp_path / "server"
    write_file(served / "gym_mujoco_v2" / "hopper_medium_replay-v2.hdf5", terminals=[4])
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True).start()
    try:
        monkeypatch.setenv("D4RL_BASE_URL", f"http://127.0.0.1:{httpd.server_address[1]}")
        source = resolve_dataset("hopper-medium-replay-v2", download=True, dataset_dir=tmp_path)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert source.location == tmp_path / "hopper_medium_replay-v2.hdf5"
    assert load_dataset(source).terminals.sum() == 1


def test_a_v0_file_uses_the_tasks_time_limit(tmp_path):
    # pen-human-v0 episodes last 100 steps: without timeouts D4RL skips rows 99, 199, 299
    # and 399 of the first 449 (with the 1000-step default it would skip none).
    source = resolve_dataset("pen-human-v0", data=write_file(tmp_path / "pen.hdf5", rows=450))
    assert source.reference.max_episode_steps == 100
    assert len(load_dataset(source)) == 449 - 4
    assert len(load_dataset(source, terminate_on_end=True)) == 449


def data_info(argv, capsys):
    parser = argparse.ArgumentParser()
    add_data_commands(parser.add_subparsers(dest="command"))
    assert run_data_command(parser.parse_args(["data", "info", *argv])) == 0
    return dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())


def test_data_info_describes_a_file(tmp_path, capsys):
    path = write_file(tmp_path / "f.hdf5", rows=10, terminals=[2], timeouts=[5])
    info = data_info([str(path)], capsys)
    assert info["rows"] == "10" and info["terminals"] == "1" and info["timeouts"] == "1"
    assert info["episodes"] == "3 (the last one unfinished)"
    assert info["transitions"].startswith("8 ")  # 9 rows minus one time limit


def test_data_info_describes_a_task(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("D4RL_DATASET_DIR", str(tmp_path))
    write_file(tmp_path / "hopper_medium-v2.hdf5")
    info = data_info(["hopper-medium-v2"], capsys)
    assert info["task"] == "hopper-medium-v2" and info["rows"] == "10"
