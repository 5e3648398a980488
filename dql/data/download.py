"""Download D4RL files into D4RL's own cache, resumably.

The files are 0.1-1 GB on one university server, so an interrupted download must not be
started over: bytes go to ``<name>.part``, a rerun asks for the rest with an HTTP Range
request, and the file is renamed into place only when its size is the server's total.
"""

from __future__ import annotations

import http.client
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from dql.data.errors import DatasetError
from dql.scores import MINARI_PREFIX, reference_scores

DEFAULT_BASE_URL = "http://rail.eecs.berkeley.edu/datasets/offline_rl/"
CHUNK = 1 << 20
# Sizes we know, to catch a server that serves something else under the right name.
KNOWN_SIZES = {"hopper_medium-v2.hdf5": 152_756_557}


class DownloadError(DatasetError):
    """A download that failed; any partial file is kept so that a rerun resumes."""


def d4rl_dataset_dir(dataset_dir: str | os.PathLike | None = None) -> Path:
    """Where D4RL keeps its files: ``dataset_dir``, ``$D4RL_DATASET_DIR``, ``~/.d4rl/datasets``."""
    if dataset_dir is None:
        dataset_dir = os.environ.get("D4RL_DATASET_DIR") or "~/.d4rl/datasets"
    return Path(dataset_dir).expanduser()


def d4rl_url(task: str, base_url: str | None = None) -> str:
    """The file's URL: ``base_url``, ``$D4RL_BASE_URL`` or D4RL's server, then the csv path."""
    base = base_url or os.environ.get("D4RL_BASE_URL") or DEFAULT_BASE_URL
    return base.rstrip("/") + "/" + reference_scores(task).hdf5_path


def download_d4rl(
    task: str,
    dest_dir: str | os.PathLike | None = None,
    base_url: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Fetch ``task``'s D4RL file into ``dest_dir`` (D4RL's cache) unless it is already there."""
    if task.startswith(MINARI_PREFIX):
        dataset_id = task.removeprefix(MINARI_PREFIX)
        raise DatasetError(
            f"{task} is a Minari dataset: download it with `minari download {dataset_id}` "
            "(or --download where the task is resolved)"
        )
    from dql.local_tasks import local_dataset, local_task

    if local := local_task(task):  # nothing to download: its data are collected here
        return local_dataset(local, d4rl_dataset_dir(dest_dir))
    name = reference_scores(task).file_name
    dest = d4rl_dataset_dir(dest_dir) / name
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    url = d4rl_url(task, base_url)
    part = dest.with_name(name + ".part")
    total = _fetch(url, part, progress, timeout)
    size = part.stat().st_size
    if total is not None and size != total:
        raise DownloadError(
            f"download of {url} stopped at {size:,} of {total:,} bytes; the partial file "
            f"{part} is kept and rerunning the same command resumes it"
        )
    os.replace(part, dest)
    return dest


def _fetch(url: str, part: Path, progress: bool, timeout: float) -> int | None:
    """Append the missing bytes of ``url`` to ``part``; the file's total size if known."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # asked beyond the end: the partial is whole or bad
            total = _content_range_total(error.headers.get("Content-Range"))
            if total == have:
                return total
            part.unlink()
            return _fetch(url, part, progress, timeout)
        raise DownloadError(
            f"the server answered {error.code} {error.reason} for {url}; check the task id "
            "and the base URL (--base-url or D4RL_BASE_URL)"
        ) from error
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(
            f"cannot reach {url} ({reason}); are you offline? Rerun when the server is "
            f"reachable, or put the file at {part.with_suffix('')} yourself"
            + (f" (the partial file {part} is kept and a rerun resumes it)" if have else "")
        ) from error
    with response:
        if response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != have:  # not the bytes we asked for: start over
                response.close()
                part.unlink()
                return _fetch(url, part, progress, timeout)
            mode = "ab"
        else:  # 200: the server ignored Range and sends the whole file
            length = response.headers.get("Content-Length")
            total = int(length) if length is not None else None
            have, mode = 0, "wb"
        name = part.name.removesuffix(".part")
        known = KNOWN_SIZES.get(name)
        if known is not None and total is not None and total != known:
            raise DownloadError(
                f"{url} is {total:,} bytes but {name} is known to be {known:,} bytes; the "
                "server serves another file (check --base-url)"
            )
        total = total if total is not None else known
        _stream(response, part, mode, have, total, url, progress)
    return total


def _stream(
    response, part: Path, mode: str, have: int, total: int | None, url: str, progress: bool
) -> None:
    """Copy the response body into ``part`` behind a progress bar; a break keeps the bytes."""
    bar = tqdm(
        total=total,
        initial=have,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=part.name.removesuffix(".part"),
        disable=not progress,
    )
    try:
        with open(part, mode) as out, bar:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
    except (OSError, http.client.HTTPException) as error:
        size = part.stat().st_size
        of = f"{total:,}" if total is not None else "?"
        raise DownloadError(
            f"download of {url} broke off at {size:,} of {of} bytes "
            f"({type(error).__name__}: {error}); the partial file {part} is kept and "
            "rerunning the same command resumes it"
        ) from error


def _content_range(header: str | None) -> tuple[int, int | None]:
    """``bytes START-END/TOTAL`` -> (START, TOTAL or None when ``*``)."""
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", (header or "").strip())
    if not match:
        raise DownloadError(f"the server sent a malformed Content-Range header: {header!r}")
    return int(match[1]), None if match[2] == "*" else int(match[2])


def _content_range_total(header: str | None) -> int | None:
    """``bytes */TOTAL`` (a 416 answer) -> TOTAL."""
    match = re.fullmatch(r"bytes \*/(\d+)", (header or "").strip())
    return int(match[1]) if match else None
