"""Local folders and remote URIs (s3://, gs://) behind one fsspec interface.

Local paths never need the cloud extras; a remote path without its filesystem package fails
with the install command instead of fsspec's generic ImportError.
"""

from __future__ import annotations

import fsspec

REMOTE_EXTRAS = {"s3": 'pip install -e ".[aws]"', "s3a": 'pip install -e ".[aws]"'}


class ResultsError(ValueError):
    """Bad input to analysis: a path without results, an unreachable bucket, a missing extra."""


def filesystem(path: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem holding ``path`` and the path as that filesystem names it."""
    try:
        fs, root = fsspec.core.url_to_fs(str(path))
    except ImportError as error:
        protocol = str(path).split("://", 1)[0]
        fix = REMOTE_EXTRAS.get(protocol, f"install the fsspec backend for {protocol}://")
        raise ResultsError(
            f"reading {path} needs the {protocol}:// filesystem, which is not installed "
            f"({error}); install it with: {fix}"
        ) from None
    return fs, root.rstrip("/") or root


def join(fs: fsspec.AbstractFileSystem, *parts: str) -> str:
    """Join path parts with the filesystem's separator ('/' for every backend fsspec has)."""
    return "/".join(part.rstrip("/") for part in parts)


def unstrip(original: str, fs: fsspec.AbstractFileSystem, path: str) -> str:
    """A path as the user would type it: the protocol prefix back on remote paths."""
    if "://" in str(original) and "://" not in path:
        return f"{str(original).split('://', 1)[0]}://{path}"
    return path


def read_text(fs: fsspec.AbstractFileSystem, path: str) -> str:
    with fs.open(path, "rb") as stream:
        return stream.read().decode("utf-8", errors="replace")


def write_text(path: str, text: str) -> str:
    """Write ``text`` to a local path or URI; returns the path written."""
    fs, root = filesystem(path)
    parent = root.rsplit("/", 1)[0]
    if parent and parent != root:
        fs.makedirs(parent, exist_ok=True)
    with fs.open(root, "wb") as stream:
        stream.write(text.encode("utf-8"))
    return unstrip(path, fs, root)
