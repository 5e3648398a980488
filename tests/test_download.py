"""Resumable D4RL downloads against a real HTTP server on 127.0.0.1 (never the internet)."""

import argparse
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from dql.data import DatasetError
from dql.data.cli import add_data_commands, run_data_command
from dql.data.download import DownloadError, download_d4rl

TASK = "hopper-random-v2"
URL_PATH = "/gym_mujoco_v2/hopper_random-v2.hdf5"
NAME = "hopper_random-v2.hdf5"
BODY = np.random.default_rng(0).bytes(300_000)


class Handler(BaseHTTPRequestHandler):
    """Serves ``server.files`` with Range support, unless told to ignore Range or to drop."""

    def do_GET(self):
        server = self.server
        server.ranges.append(self.headers.get("Range"))
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        asked = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if asked and server.honour_range:
            start = int(asked[1])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if server.drop_after is not None:  # promise the rest, then hang up
            self.wfile.write(body[start : start + server.drop_after])
            server.drop_after = None
            return
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files = {URL_PATH: BODY}
    httpd.ranges, httpd.honour_range, httpd.drop_after = [], True, None
    httpd.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def fetch(server, tmp_path, task=TASK):
    return download_d4rl(task, tmp_path, base_url=server.base_url, progress=False)


def test_a_full_download_lands_under_d4rls_file_name(server, tmp_path):
    path = download_d4rl(TASK, tmp_path, base_url=server.base_url, progress=True)
    assert path == tmp_path / NAME
    assert path.read_bytes() == BODY
    assert not (tmp_path / (NAME + ".part")).exists()
    assert server.ranges == [None]


def test_a_partial_file_is_resumed_with_a_range_request(server, tmp_path):
    (tmp_path / (NAME + ".part")).write_bytes(BODY[:1000])
    assert fetch(server, tmp_path).read_bytes() == BODY
    assert server.ranges == ["bytes=1000-"]


def test_a_server_that_ignores_range_gets_a_fresh_start(server, tmp_path):
    server.honour_range = False
    (tmp_path / (NAME + ".part")).write_bytes(b"x" * 1000)  # would corrupt if appended to
    assert fetch(server, tmp_path).read_bytes() == BODY


def test_a_dropped_connection_keeps_the_partial_and_the_next_call_completes(server, tmp_path):
    server.drop_after = 120_000
    with pytest.raises(DownloadError, match=r"120,000 of 300,000 bytes.*kept.*resumes") as err:
        fetch(server, tmp_path)
    assert "\n" not in str(err.value)
    assert not (tmp_path / NAME).exists()  # nothing at the final path until whole
    assert (tmp_path / (NAME + ".part")).stat().st_size == 120_000
    assert fetch(server, tmp_path).read_bytes() == BODY
    assert server.ranges == [None, "bytes=120000-"]


def test_a_partial_that_is_already_whole_is_renamed(server, tmp_path):
    (tmp_path / (NAME + ".part")).write_bytes(BODY)
    assert fetch(server, tmp_path).read_bytes() == BODY  # the server answered 416


def test_an_existing_file_is_not_downloaded_again(server, tmp_path):
    (tmp_path / NAME).write_bytes(b"already here")
    assert fetch(server, tmp_path).read_bytes() == b"already here"
    assert server.ranges == []


def test_404_names_the_url(server, tmp_path):
    with pytest.raises(DownloadError, match=r"404 .*hopper_expert-v2\.hdf5"):
        fetch(server, tmp_path, "hopper-expert-v2")
    assert not (tmp_path / "hopper_expert-v2.hdf5").exists()


def test_a_refused_connection_says_offline(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match=r"cannot reach http://127\.0\.0\.1.*offline"):
        download_d4rl(TASK, tmp_path, base_url=f"http://127.0.0.1:{port}/", progress=False)


def test_a_file_of_the_wrong_known_size_is_refused(server, tmp_path):
    server.files["/gym_mujoco_v2/hopper_medium-v2.hdf5"] = BODY
    with pytest.raises(DownloadError, match="known to be 152,756,557 bytes"):
        fetch(server, tmp_path, "hopper-medium-v2")
    assert not (tmp_path / "hopper_medium-v2.hdf5").exists()


def test_the_base_url_and_folder_come_from_the_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv("D4RL_BASE_URL", server.base_url)
    monkeypatch.setenv("D4RL_DATASET_DIR", str(tmp_path))
    assert download_d4rl(TASK, progress=False).read_bytes() == BODY


def test_data_download_command(server, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_data_commands(parser.add_subparsers(dest="command"))
    argv = ["data", "download", TASK, "--dir", str(tmp_path), "--base-url", server.base_url]
    assert run_data_command(parser.parse_args([*argv, "--no-progress"])) == 0
    assert (tmp_path / NAME).read_bytes() == BODY
    assert str(tmp_path / NAME) in capsys.readouterr().out


def test_a_minari_task_is_pointed_to_minaris_own_download(tmp_path):
    with pytest.raises(DatasetError, match="minari download mujoco/hopper/medium-v0"):
        download_d4rl("minari:mujoco/hopper/medium-v0", tmp_path)
