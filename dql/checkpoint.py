"""Checkpoints that hold everything a bit-identical continuation needs.

Networks, EMA actor, targets, optimisers, step counter, the training generator, and the
global Python / NumPy / torch RNG states. Written to a temporary file and renamed, so a crash
mid-write never destroys the previous checkpoint.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dql.agent import DiffusionQL
from dql.config import DQLConfig

FORMAT_VERSION = 2  # 2: networks stack K members, (K, in, out) weights; per-member generators


def global_rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_global_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_save(payload: dict, path: Path) -> None:
    """torch.save to a temporary name, then rename: a crash mid-write leaves the old file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    os.replace(partial, path)


def save_checkpoint(agent: DiffusionQL, path: str | os.PathLike, extra: dict | None = None):
    """Atomically write the agent, all RNG states and ``extra`` (e.g. history) to ``path``."""
    payload = {
        "format_version": FORMAT_VERSION,
        "config": agent.config.to_dict(),
        "state_dim": agent.state_dim,
        "action_dim": agent.action_dim,
        "agent": agent.state_dict(),
        "rng": global_rng_state(),
        "torch_version": torch.__version__,
        "extra": extra or {},
    }
    atomic_save(payload, Path(path))


def load_checkpoint(
    path: str | os.PathLike, device: torch.device | str = "cpu", restore_rng: bool = True
) -> tuple[DiffusionQL, dict]:
    """The agent saved at ``path`` on ``device``, and the ``extra`` dict saved with it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; pass the file save_checkpoint wrote")
    payload = torch.load(path, map_location="cpu", weights_only=False)  # moved on load
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} is not a dql checkpoint of format {FORMAT_VERSION}")
    agent = DiffusionQL(
        DQLConfig.from_dict(payload["config"]),
        payload["state_dim"],
        payload["action_dim"],
        device=device,
    )
    agent.load_state_dict(payload["agent"])
    if restore_rng:
        set_global_rng_state(payload["rng"])
    return agent, payload["extra"]
