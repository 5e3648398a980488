"""trial_status.json: what Ray knows about each trial's end, which rows alone cannot say."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pyarrow.fs

from sweeps import layout

STATUS_FILE = "trial_status.json"


def trial_status(result, planned_epochs: int, interrupted: bool = False) -> dict[str, str]:
    """finished / stopped_early / diverged / failed / interrupted for one ``tune.Result``."""
    path = result.path or ""
    config = result.config or {}
    entry = {
        "task": config.get("task", ""),
        "stage": config.get("stage", "search"),
        "trial_dir": path.rstrip("/").rsplit("/", 1)[-1],
        "reason": "",
    }
    last = result.metrics or {}
    if result.error is not None:
        entry.update(status="failed", reason=str(result.error).strip().splitlines()[-1][:300])
    elif last.get("status") == "diverged":
        entry.update(status="diverged", reason=last.get("status_reason", ""))
    elif last.get("status") == "finished" or last.get("epoch", 0) >= planned_epochs:
        entry.update(status="finished")
    elif interrupted:
        epoch = last.get("epoch")
        done = f"after epoch {epoch}" if epoch else "before its first evaluation"
        entry.update(status="interrupted", reason=f"the sweep was interrupted {done}")
    else:
        entry.update(
            status="stopped_early",
            reason=f"stopped by the scheduler after epoch {last.get('epoch')}",
        )
    return entry


def statuses_of(results, experiment_path: str, planned_epochs: int) -> tuple[dict[str, Any], int]:
    """Every trial of a round by Tune trial id, and how many Tune had not ended (cut off by
    an interruption: they run again on --resume)."""
    from ray.tune import ExperimentAnalysis

    # The saved experiment state, not the ResultGrid: after Ctrl-C Tune saves the trials as
    # RUNNING (so that a restore continues them) and then stops them, which marks them
    # TERMINATED in memory, exactly as a trial that ended on its own.
    saved = {t.trial_id: t.status for t in ExperimentAnalysis(experiment_path).trials}
    out: dict[str, Any] = {}
    cut_off = 0
    for result in results:
        trial_id = (result.metrics or {}).get("trial_id") or _id_from_path(result.path, saved)
        unfinished = saved.get(trial_id) not in ("TERMINATED", "ERROR")
        cut_off += unfinished
        out[trial_id] = trial_status(result, planned_epochs, unfinished)
    return out, cut_off


def _id_from_path(path: str | None, known: dict[str, str]) -> str:
    """A trial that never reported: its id is part of its folder name."""
    name = (path or "").rstrip("/").rsplit("/", 1)[-1]
    return next((trial_id for trial_id in known if _names(name, trial_id)), name)


def _names(folder: str, trial_id: str) -> bool:
    """Whether a trial folder's name (``trial_007_<id>_...``) is that of this trial."""
    return f"_{trial_id}_" in f"{folder}_"


def ended_after_snapshot(
    experiment_path: str,
    ended: dict[str, dict[str, Any]],
    known: dict[str, Any],
    planned_epochs: int,
) -> dict[str, Any]:
    """Entries for the trials whose end their study recorded (``ended``: Tune trial id ->
    task, stage, failed, tagged; ``studies.ended_in_round``) but that Tune's restored
    experiment does not hold (``known``).

    The driver was killed between a trial's end, told to its study, and Tune's next
    snapshot: the study counts the trial, so the searcher asks nothing in its place, and
    Tune neither reruns nor lists it. The trial did run to its end, and its folder holds
    every row it made (each checkpoint's rows.jsonl), so it is recorded from that folder,
    once, rather than rerun: a replacement would cost a trial's compute and leave the study
    with a finished trial it could not un-count. A trial from before trials carried their
    round is taken only if its folder is in this experiment (it may be an earlier round's).
    """
    folders = {info.base_name for info in layout.trial_folders(experiment_path)}
    out: dict[str, Any] = {}
    for trial_id, trial in ended.items():
        folder = next((name for name in sorted(folders) if _names(name, trial_id)), None)
        if trial_id in known or (folder is None and not trial["tagged"]):
            continue
        path = f"{experiment_path}/{folder}" if folder else ""
        last = last_row(path) if folder else {}
        config = {"task": trial["task"], "stage": trial["stage"]}
        result = SimpleNamespace(path=path, config=config, metrics=last, error=None)
        entry = trial_status(result, planned_epochs)
        if trial["failed"] or not last:
            error = layout.read_text(f"{path}/error.txt") if folder else None
            lines = (error or "").strip().splitlines() or [
                "its error was lost: the driver was killed before Tune recorded the trial"
            ]
            entry.update(status="failed", reason=lines[-1][:300])
        out[trial_id] = entry
    return out


def last_row(trial_path: str) -> dict[str, Any]:
    """A trial's last row: from its newest checkpoint's rows.jsonl (every row it made, which
    reaches storage with each report), else from Tune's result.json."""
    from sweeps.trainable import ROWS_FILE

    fs, root = layout.filesystem(trial_path)
    found = fs.get_file_info(pyarrow.fs.FileSelector(root))
    checkpoints = sorted(i.base_name for i in found if i.base_name.startswith("checkpoint_"))
    for name in [f"{c}/{ROWS_FILE}" for c in reversed(checkpoints)] + ["result.json"]:
        lines = (layout.read_text(f"{trial_path}/{name}") or "").strip().splitlines()
        try:
            return json.loads(lines[-1])
        except (IndexError, ValueError):
            continue  # no such file, or a write cut short by the kill
    return {}


def write_trial_status(experiment_path: str, statuses: dict[str, Any]) -> bool:
    """Write ``experiment_path/trial_status.json`` unless the file there already knows more
    trials (a failed restore must never replace a fuller record). Returns whether written."""
    path = f"{experiment_path}/{STATUS_FILE}"
    before = read_trial_status(experiment_path)
    if len(before) > len(statuses):
        return False
    layout.write_json(path, statuses)
    return True


def read_trial_status(experiment_path: str) -> dict[str, Any]:
    try:
        return layout.read_json(f"{experiment_path}/{STATUS_FILE}") or {}
    except ValueError:
        return {}
