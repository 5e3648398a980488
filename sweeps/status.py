"""trial_status.json: what Ray knows about each trial's end, which rows alone cannot say."""

from __future__ import annotations

import json
from typing import Any


def trial_status(result, stage: str, planned_epochs: int) -> dict[str, str]:
    """finished / stopped_early / diverged / failed / running for one ``tune.Result``."""
    path = result.path or ""
    entry = {"stage": stage, "trial_dir": path.rstrip("/").rsplit("/", 1)[-1], "reason": ""}
    last = result.metrics or {}
    if result.error is not None:
        entry.update(status="failed", reason=str(result.error).strip().splitlines()[-1][:300])
    elif last.get("status") == "diverged":
        entry.update(status="diverged", reason=last.get("status_reason", ""))
    elif last.get("status") == "finished" or last.get("epoch", 0) >= planned_epochs:
        entry.update(status="finished")
    elif last:
        entry.update(
            status="stopped_early",
            reason=f"stopped by the scheduler after epoch {last.get('epoch')}",
        )
    else:
        entry.update(status="running", reason="no result reported")
    return entry


def write_trial_status(results, experiment_path: str, stage: str, planned_epochs: int) -> dict:
    """Write ``experiment_path/trial_status.json`` (local or remote) and return its content."""
    import pyarrow.fs

    statuses: dict[str, Any] = {}
    for result in results:
        trial_id = (result.metrics or {}).get("trial_id") or _trial_id_from_path(result.path)
        statuses[trial_id] = trial_status(result, stage, planned_epochs)
    filesystem, root = pyarrow.fs.FileSystem.from_uri(_as_uri(experiment_path))
    with filesystem.open_output_stream(f"{root}/trial_status.json") as stream:
        stream.write(json.dumps(statuses, indent=2).encode())
    return statuses


def _trial_id_from_path(path: str | None) -> str:
    return (path or "unknown").rstrip("/").rsplit("/", 1)[-1]


def _as_uri(path: str) -> str:
    return path if "://" in path else f"file://{path}"
