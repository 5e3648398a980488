"""Published numbers to compare against, the paper's task order and domain names.

The CSVs in ``analysis/resources`` are copies of the project's reference files, shipped as
package data so that analysis runs where only the results folder and this package exist.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import pandas as pd

PAPER = "paper"  # the Diffusion-QL column of the paper's Table 1
DOMAIN_ORDER = ("locomotion", "antmaze", "adroit", "kitchen", "bandit", "local")
LOCAL = "local"  # tasks collected here and scored against local reference returns
DOMAIN_LABELS = {
    "locomotion": "Gym locomotion",
    "antmaze": "AntMaze",
    "adroit": "Adroit",
    "kitchen": "Kitchen",
    "bandit": "Bandit",
    LOCAL: "Local (local refs.)",
}
LOCAL_REFERENCES = (
    "Local tasks are scored against local reference returns (0 = the mean return of the "
    "task's own collected data, 100 = the most its environment pays within the time limit; "
    "dql/local_tasks.py), comparable with nothing published."
)
_PREFIXES = {
    "locomotion": ("halfcheetah", "hopper", "walker2d", "ant-", "ant_"),
    "antmaze": ("antmaze",),
    "adroit": ("pen", "hammer", "door", "relocate"),
    "kitchen": ("kitchen",),
    "bandit": ("bandit",),
}


def _csv(name: str) -> pd.DataFrame:
    """Read a reference CSV whose last column (a free-text source) may hold unquoted commas,
    as paper_results.csv does: every field but the last is split off the left."""
    text = resources.files("analysis").joinpath("resources", name).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip()]
    header = lines[0].split(",")
    rows = [line.split(",", len(header) - 1) for line in lines[1:]]
    frame = pd.DataFrame(rows, columns=header)
    for column in header[:-1]:
        numeric = pd.to_numeric(frame[column], errors="coerce")
        if numeric.notna().all():
            frame[column] = numeric
    return frame


@cache
def paper_results() -> pd.DataFrame:
    """task, domain, diffusion_ql_mean, diffusion_ql_std, source (domain ``gym`` renamed)."""
    frame = _csv("paper_results.csv")
    frame["domain"] = frame["domain"].replace({"gym": "locomotion"})
    return frame


@cache
def published_baselines() -> pd.DataFrame:
    """task, method, score, source: one published number per (task, method)."""
    return _csv("published_baselines.csv")


def available_references() -> list[str]:
    """Names accepted by ``reference_scores``: ``paper`` and every baseline method."""
    return [PAPER, *dict.fromkeys(published_baselines()["method"])]


def reference_scores(name: str) -> pd.DataFrame:
    """One reference column: task -> mean (and std where published)."""
    if name == PAPER:
        frame = paper_results().rename(
            columns={"diffusion_ql_mean": "mean", "diffusion_ql_std": "std"}
        )
        return frame.set_index("task")[["mean", "std"]]
    baselines = published_baselines()
    chosen = baselines[baselines["method"].str.lower() == name.lower()]
    if chosen.empty:
        raise ValueError(
            f"unknown reference {name!r}; choose from {', '.join(available_references())}"
        )
    frame = chosen.set_index("task").rename(columns={"score": "mean"})
    frame["std"] = float("nan")
    return frame[["mean", "std"]]


def reference_label(name: str) -> str:
    return "Diffusion-QL (paper)" if name == PAPER else name


def domain_of(task: str) -> str:
    """A task's domain from its id (for trials that failed before writing a row)."""
    known = paper_results().set_index("task")["domain"]
    if task in known.index:
        return str(known[task])
    if task.endswith("-local"):
        return LOCAL
    name = task.split(":", 1)[-1].split("/")[-2:][0] if task.startswith("minari:") else task
    for domain, prefixes in _PREFIXES.items():
        if name.startswith(prefixes) or f"/{domain}/" in task:
            return domain
    return "other"


def task_sort_key(task: str, domain: str | None = None) -> tuple:
    """The paper's order: its domains, then its task order inside a domain, then the rest."""
    domain = domain or domain_of(task)
    order = list(paper_results()["task"])
    rank = DOMAIN_ORDER.index(domain) if domain in DOMAIN_ORDER else len(DOMAIN_ORDER)
    position = order.index(task) if task in order else len(order)
    return (rank, domain, position, task)
