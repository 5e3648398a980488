"""Result folders (Tune sweeps, ``python -m dql train`` runs) into tidy pandas frames.

The contract is docs/RESULTS.md. ``load`` returns two frames: ``rows``, one row per
evaluation per seed (the per-seed lists exploded, ``hparams`` flattened into columns), and
``trials``, one row per trial folder, so that a trial that failed before reporting anything
still shows up in the status summary.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from analysis.references import domain_of
from analysis.storage import ResultsError, filesystem, join, read_text, unstrip
from analysis.wording import count

TUNE_ROWS = "result.json"
TRAIN_ROWS = "results.jsonl"
CHECKPOINT_ROWS = "rows.jsonl"  # the sweep trainable's exactly-once copy of a trial's rows
STATUS_FILE = "trial_status.json"
STATUSES = ("finished", "stopped_early", "diverged", "failed", "interrupted", "running")
# Per-seed lists of a result row and the column each becomes once exploded.
PER_SEED = {"seeds": "seed", "normalized_scores": "normalized_score", "returns": "return"}
ROW_FIELDS = (
    "task",
    "domain",
    "env_id",
    "mujoco_version",
    "dataset",
    "stage",
    "eval_episodes",
    "epoch",
    "gradient_steps",
    "q_loss",
    "critic_loss",
    "mean_q",
    "wall_time_s",
)
TRIAL_KEYS = ("experiment", "trial_id")


class TruncatedResultsWarning(UserWarning):
    """A result file whose last line was cut short (a trial killed mid-write): the readable
    rows are used, and the file is named once."""


EXPECTED = (
    "a Tune experiment folder (one sub-folder per trial with params.json and result.json), "
    "a folder of such experiments, or a `python -m dql train --out DIR` folder (results.jsonl)"
)


@dataclass
class Results:
    """Everything read from the given paths."""

    rows: pd.DataFrame  # one row per (trial, epoch, seed)
    trials: pd.DataFrame  # one row per trial, rows or not
    hparams: list[str]  # the hyperparameter columns (DQLConfig fields) present in ``rows``


def load(paths: str | Sequence[str]) -> Results:
    """Read every experiment and run folder found under ``paths`` (searched recursively)."""
    if isinstance(paths, str):
        paths = [paths]
    rows: list[dict[str, Any]] = []
    trials: list[dict[str, Any]] = []
    for path in paths:
        found = _read_path(str(path))
        if not found:
            raise ResultsError(f"no results under {path}: expected {EXPECTED}")
        for trial_rows, trial in found:
            rows.extend(trial_rows)
            trials.append(trial)
    hparams = sorted({key for trial in trials for key in trial.get("_hparams", ())})
    for trial in trials:
        trial.update({name: trial["_hparams"].get(name) for name in hparams})
        del trial["_hparams"]
    trials_frame = pd.DataFrame(trials)
    rows_frame = pd.DataFrame(rows)
    if rows_frame.empty:
        rows_frame = pd.DataFrame(columns=[*TRIAL_KEYS, "epoch", "seed", "normalized_score"])
    rows_frame = rows_frame.merge(
        trials_frame[[*TRIAL_KEYS, "status", "status_reason"]], on=list(TRIAL_KEYS), how="left"
    )
    return Results(rows_frame, trials_frame, hparams)


def load_rows(paths: str | Sequence[str]) -> pd.DataFrame:
    """Only the tidy evaluation rows (a notebook's usual starting point)."""
    return load(paths).rows


# ---------------------------------------------------------------- folders
def _read_path(path: str) -> list[tuple[list[dict], dict]]:
    fs, root = filesystem(path)
    try:
        if not fs.exists(root):
            raise ResultsError(f"{path} does not exist: expected {EXPECTED}")
        files = [root] if fs.isfile(root) else fs.find(root)
    except (PermissionError, OSError) as error:
        raise ResultsError(f"cannot read {path}: {error}") from None
    checkpoint_rows = _newest_checkpoint_rows(files)
    files = [f for f in files if "/checkpoint_" not in f and "/checkpoints/" not in f]
    folders: dict[str, set[str]] = {}
    for file in files:
        folder, _, name = file.rpartition("/")
        folders.setdefault(folder, set()).add(name)
    for folder in checkpoint_rows:  # a trial whose only record is its checkpoint: the
        folders.setdefault(folder, set())  # driver died before Tune copied its other files
    out = []
    for folder in sorted(folders):
        names = folders[folder]
        if TRAIN_ROWS in names:
            out.append(_read_train_run(fs, folder, unstrip(path, fs, folder)))
        elif TUNE_ROWS in names or "params.json" in names or folder in checkpoint_rows:
            experiment = folder.rpartition("/")[0]
            statuses = _status_file(fs, experiment, folders.get(experiment, set()))
            trial = _read_tune_trial(
                fs, folder, names, unstrip(path, fs, experiment), statuses, checkpoint_rows
            )
            out.append(trial)
    return out


def _status_file(fs, experiment: str, names: set[str]) -> dict[str, dict]:
    if STATUS_FILE not in names:
        return {}
    try:
        return json.loads(read_text(fs, join(fs, experiment, STATUS_FILE)))
    except (ValueError, OSError):
        return {}


def _newest_checkpoint_rows(files: list[str]) -> dict[str, str]:
    """Trial folder -> its newest ``checkpoint_*/rows.jsonl`` (every row the trial made)."""
    newest: dict[str, str] = {}
    for file in files:
        match = re.search(r"^(.*)/checkpoint_(\d+)/" + CHECKPOINT_ROWS + "$", file)
        if match and file > newest.get(match.group(1), ""):
            newest[match.group(1)] = file
    return newest


def _read_tune_trial(
    fs, folder: str, names: set[str], experiment: str, statuses: dict, checkpoint_rows: dict
) -> tuple:
    trial_dir = folder.rpartition("/")[2]
    records = []
    if TUNE_ROWS in names:
        path = join(fs, folder, TUNE_ROWS)
        records = _json_lines(read_text(fs, path), unstrip(experiment, fs, path))
    if folder in checkpoint_rows:  # fills rows Tune's result.json lost (a node died)
        path = checkpoint_rows[folder]
        saved = _json_lines(read_text(fs, path), unstrip(experiment, fs, path))
        tune_fields = {k: v for k, v in (records[-1] if records else {}).items() if k == "trial_id"}
        records = [{**tune_fields, **row} for row in saved] + records
    params = {}
    if "params.json" in names:
        path = join(fs, folder, "params.json")
        params = _json_file(fs, path, unstrip(experiment, fs, path))
    error = read_text(fs, join(fs, folder, "error.txt")) if "error.txt" in names else None
    trial_id = next((r["trial_id"] for r in records if r.get("trial_id")), None)
    listed = {v.get("trial_dir"): k for k, v in statuses.items() if isinstance(v, dict)}
    trial_id = trial_id or listed.get(trial_dir) or _trial_id_from_dirname(trial_dir)
    return _trial(records, params, error, statuses.get(trial_id), experiment, trial_id, trial_dir)


def _read_train_run(fs, folder: str, shown: str) -> tuple:
    path = join(fs, folder, TRAIN_ROWS)
    records = _json_lines(read_text(fs, path), unstrip(shown, fs, path))
    name = folder.rpartition("/")[2]
    return _trial(records, {}, None, None, shown, name, name)


def _trial_id_from_dirname(name: str) -> str:
    """``trial_001_<id>_eta=..`` (the sweeps' names) or Tune's ``<fn>_<id>_<n>_...``."""
    ours = re.match(r"trial_(?:\d{3}_)?([0-9a-f]{5,}(?:_\d{5})?)(?:_|$)", name)
    if ours:
        return ours.group(1)
    tune = re.search(r"_([0-9a-f]{5}_\d{5})", name)
    return tune.group(1) if tune else name


def _json_lines(text: str, name: str) -> list[dict]:
    """Rows of a JSON-lines file (``name`` is the path shown in messages).

    A last line that does not parse is a write cut short (a trial killed mid-write, a full
    disk): the rows before it are used and a ``TruncatedResultsWarning`` names the file.
    Any other line that is not a JSON object means the file was damaged or is not a result
    file at all: ``ResultsError``, since silently dropping rows inside a curve would change
    the scores.
    """
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    records = []
    for position, (number, line) in enumerate(lines):
        try:
            record = json.loads(line)
        except ValueError as error:
            if position == len(lines) - 1:
                warnings.warn(
                    f"{name}: the last line (line {number}) is cut short; using the "
                    f"{count(len(records), 'complete row')} before it",
                    TruncatedResultsWarning,
                    stacklevel=2,
                )
                break
            raise ResultsError(
                f"{name} line {number} is not valid JSON ({error.msg}); the file is damaged: "
                "restore it from a copy or move it out of the results folder"
            ) from None
        if not isinstance(record, dict):
            raise ResultsError(
                f"{name} line {number} is not a JSON object; the file is damaged: restore it "
                "from a copy or move it out of the results folder"
            )
        records.append(record)
    return records


def _json_file(fs, path: str, shown: str) -> Any:
    """A whole JSON file (params.json); invalid JSON is one ``ResultsError`` line."""
    try:
        return json.loads(read_text(fs, path))
    except ValueError as error:
        raise ResultsError(
            f"{shown} is not valid JSON ({error}); the file is damaged: restore it from a "
            "copy or move its trial folder out of the results folder"
        ) from None


# ---------------------------------------------------------------- one trial
def _trial(records, params, error, listed, experiment, trial_id, trial_dir) -> tuple:
    by_epoch: dict[Any, dict] = {}
    for record in records:  # a restored trial may repeat an interval: keep the last row
        if "epoch" in record:
            by_epoch[record["epoch"]] = record
    kept = sorted(by_epoch.values(), key=lambda r: r["epoch"])
    last = kept[-1] if kept else {}
    config = params if isinstance(params, dict) else {}
    hparams = {**config.get("fixed", {}), **_searched(config), **last.get("hparams", {})}
    status, reason = _status(last, error, listed)
    trial = {
        "experiment": experiment,
        "trial_id": trial_id,
        "trial_dir": trial_dir,
        "task": last.get("task", config.get("task")),
        "domain": last.get("domain") or domain_of(str(last.get("task", config.get("task")))),
        "stage": (listed or {}).get("stage") or last.get("stage") or config.get("stage"),
        "status": status,
        "status_reason": reason,
        "evaluations": sum(1 for r in kept if _finite_scores(r)),
        "last_epoch": last.get("epoch"),
        "num_seeds": len(last.get("seeds") or config.get("seeds") or []) or None,
        "eval_episodes": last.get("eval_episodes", hparams.get("eval_episodes")),
        "env_id": last.get("env_id"),
        "mujoco_version": last.get("mujoco_version"),
        "wall_time_s": last.get("wall_time_s"),
        # Tune's own clock; a `python -m dql train` run has only wall_time_s (NaN here).
        "time_total_s": max(
            (r["time_total_s"] for r in records if _finite(r.get("time_total_s"))),
            default=math.nan,
        ),
        # What the trial held and for how long (sweep rows; absent in older results).
        "cpus": last.get("cpus"),
        "gpus": last.get("gpus"),
        "cpu_seconds": last.get("cpu_seconds"),
        "gpu_seconds": last.get("gpu_seconds"),
        "_hparams": hparams,
    }
    rows = [_explode(record, trial, hparams) for record in kept]
    return [row for group in rows for row in group], trial


def _searched(config: dict) -> dict:
    return {k: v for k, v in config.items() if k in ("eta", "T", "actor_lr")}


def _status(last: dict, error: str | None, listed: dict | None) -> tuple[str, str]:
    """trial_status.json when the driver wrote it, otherwise docs/RESULTS.md's inference."""
    if listed and listed.get("status") in STATUSES:
        return listed["status"], listed.get("reason", "") or ""
    if error is not None:
        lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
        return "failed", (lines[-1] if lines else "error.txt is empty")[:300]
    if last.get("status") == "diverged":
        return "diverged", last.get("status_reason", "")
    if last.get("status") == "finished":
        return "finished", ""
    return "running", "" if last else "no result reported"


def _finite_scores(record: dict) -> bool:
    scores = record.get("normalized_scores") or [record.get("normalized_score")]
    return any(_finite(s) for s in scores)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _explode(record: dict, trial: dict, hparams: dict) -> list[dict]:
    seeds = record.get("seeds") or [None]
    scores = _per_seed(record, "normalized_scores", "normalized_score", len(seeds))
    returns = _per_seed(record, "returns", "return_mean", len(seeds))
    bc = _per_seed(record, "bc_losses", "bc_loss", len(seeds))
    shared = {name: record.get(name) for name in ROW_FIELDS}
    shared.update(
        experiment=trial["experiment"],
        trial_id=trial["trial_id"],
        row_status=record.get("status"),
        bc_loss_mean=_number(record.get("bc_loss")),
        **hparams,
    )
    shared["task"] = shared["task"] or trial["task"]
    shared["stage"] = trial["stage"] or shared["stage"]
    return [
        {**shared, "seed": seed, "normalized_score": s, "return": r, "bc_loss": b}
        for seed, s, r, b in zip(seeds, scores, returns, bc, strict=True)
    ]


def _per_seed(record: dict, many: str, mean: str, count: int) -> list[float]:
    values = record.get(many)
    if isinstance(values, list) and len(values) == count:
        return [_number(v) for v in values]
    return [_number(record.get(mean))] * count


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def experiments(frame: pd.DataFrame) -> Iterable[str]:
    """The experiment folders a frame was read from, in order."""
    return list(dict.fromkeys(frame["experiment"]))
