"""trial_status.json: what Ray knows about each trial's end, which rows alone cannot say."""

from __future__ import annotations

from typing import Any

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
    return next((trial_id for trial_id in known if f"_{trial_id}" in name), name)


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
