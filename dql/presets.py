"""The paper's per-task hyperparameters, as data (resources/paper_hyperparameters.csv)."""

from __future__ import annotations

import csv
import difflib
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

from dql.config import ConfigError, DQLConfig

# CSV column -> DQLConfig field, with the parser for its text.
_COLUMNS = {
    "actor_lr": ("actor_lr", float),
    "eta": ("eta", float),
    "max_q_backup": ("max_q_backup", lambda text: text.strip().lower() == "true"),
    "reward_tune": ("reward_tune", str),
    "eval_every_epochs": ("eval_every", int),
    "num_epochs": ("num_epochs", int),
    "grad_norm": ("grad_norm", float),
    "top_k": ("top_k", int),
    "eval_episodes": ("eval_episodes", int),
}


class UnknownTaskError(ConfigError, KeyError):
    """A task id with no paper preset; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` Did you mean a, b?`` for ids close to ``name`` (typos are the usual cause), or ""."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    return f" Did you mean {', '.join(close)}?" if close else ""


@cache
def paper_presets() -> dict[str, dict[str, Any]]:
    """Task id -> the DQLConfig fields the paper sets for it (20 tasks)."""
    text = resources.files("dql").joinpath("resources/paper_hyperparameters.csv").read_text()
    presets = {}
    for row in csv.DictReader(text.splitlines()):
        presets[row["task"]] = {field: parse(row[col]) for col, (field, parse) in _COLUMNS.items()}
    return presets


def preset_config(task: str, **overrides: Any) -> DQLConfig:
    """The paper's configuration for ``task``, with ``overrides`` applied and validated."""
    presets = paper_presets()
    if task not in presets:
        hint = did_you_mean(task, presets)
        raise UnknownTaskError(
            f"no paper preset for task {task!r}.{hint} Known tasks: {', '.join(presets)}. "
            "For another task build DQLConfig(...) directly."
        )
    return DQLConfig().replace(**{**presets[task], **overrides})
