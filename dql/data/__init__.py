"""Offline datasets: D4RL files and Minari datasets -> transitions with D4RL's semantics.

Importable without minari installed: ``load_minari`` imports it when called.
"""

from dql.data.d4rl import load_d4rl, read_d4rl
from dql.data.download import download_d4rl
from dql.data.errors import DatasetError
from dql.data.minari_data import MinariInfo, load_minari
from dql.data.resolve import DatasetSource, load_dataset, resolve_dataset

__all__ = [
    "DatasetError",
    "DatasetSource",
    "MinariInfo",
    "download_d4rl",
    "load_d4rl",
    "load_dataset",
    "load_minari",
    "read_d4rl",
    "resolve_dataset",
]
