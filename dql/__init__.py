"""Diffusion-QL (Wang, Hunt & Zhou, ICLR 2023) in plain PyTorch.

Never imports ray, optuna or analysis: everything one training needs, nothing more.
"""

from dql.agent import METRIC_NAMES, DiffusionQL
from dql.checkpoint import load_checkpoint, save_checkpoint
from dql.config import ConfigError, DQLConfig
from dql.ensemble import SeedEnsemble
from dql.presets import UnknownTaskError, paper_presets, preset_config
from dql.replay import DeviceReplay, Transitions
from dql.trainer import EpochMetrics, Trainer

__all__ = [
    "METRIC_NAMES",
    "ConfigError",
    "DQLConfig",
    "DeviceReplay",
    "DiffusionQL",
    "EpochMetrics",
    "SeedEnsemble",
    "Trainer",
    "Transitions",
    "UnknownTaskError",
    "load_checkpoint",
    "paper_presets",
    "preset_config",
    "save_checkpoint",
]
