"""``python -m dql train``: one run outside any sweep, with the task's paper preset.

Writes OUT/run.json (configuration and provenance), OUT/results.jsonl (one row per
evaluation, docs/RESULTS.md), OUT/checkpoints/last.pt and OUT/tensorboard/.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from dql.config import ConfigError, DQLConfig
from dql.presets import paper_presets, preset_config
from dql.provenance import provenance
from dql.run import PreparedTask, TrainingRun, prepare_task
from dql.threads import use_thread_policy


@dataclass
class TrainRequest:
    task: str
    out: Path
    data: str | None = None
    env_id: str | None = None
    seeds: list[int] = field(default_factory=lambda: [0])
    overrides: dict[str, Any] = field(default_factory=dict)  # DQLConfig fields
    device: str = "auto"
    download: bool = False
    resume: bool = False
    show_progress: bool = True
    threads: int | None = None  # fixed torch threads; None: dql.threads' policy


def task_config(task: str, **overrides: Any) -> DQLConfig:
    """The paper's preset for a task it tuned, a local task's own preset, or the paper's
    defaults for any other task."""
    if task == "bandit":  # the released toy's settings with a 2000-step budget
        from dql.toy import bandit_config

        return bandit_config(eta=2.5, steps=2000).replace(**overrides)
    if task in paper_presets():
        return preset_config(task, **overrides)
    from dql.local_tasks import local_task

    if local := local_task(task):
        return DQLConfig().replace(**{**local.config, **overrides})
    return DQLConfig().replace(**overrides)


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but torch sees no CUDA device; use cpu")
    return device


def check_out_dir(out: Path, resume: bool) -> None:
    """Never overwrite a run: continue it with --resume or pick another folder."""
    results, last = out / "results.jsonl", out / "checkpoints" / "last.pt"
    if resume and not last.is_file():
        raise FileNotFoundError(f"--resume: {last} does not exist; start without --resume")
    if not resume and (results.exists() or last.exists()):
        raise FileExistsError(
            f"{out} already holds a run; pass --resume to continue it, or choose another --out"
        )


def train(request: TrainRequest) -> list[dict[str, Any]]:
    """Validate everything, then train; returns the result rows written."""
    out = Path(request.out)
    config = task_config(request.task, **request.overrides)  # bad values fail here
    check_out_dir(out, request.resume)
    device = pick_device(request.device)
    policy = use_thread_policy(request.threads)  # a bad --threads fails here
    prepared = prepare_task(request.task, request.data, request.env_id, request.download)
    run = TrainingRun(prepared, config, request.seeds, device)
    checkpoint = out / "checkpoints" / "last.pt"
    if request.resume:
        run.load(checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    _write_run_json(out / "run.json", request, prepared, config, device, policy)
    return _train_loop(run, out, checkpoint, request.show_progress)


def _train_loop(run: TrainingRun, out: Path, checkpoint: Path, show_progress: bool):
    from tensorboardX import SummaryWriter

    rows = []
    cfg = run.config
    bar = tqdm(
        total=cfg.num_epochs,
        initial=run.epoch,
        desc=f"train {run.prepared.task}",
        unit="epoch",
        disable=not show_progress,
    )
    # Within the epoch: steps done, steps/s and time left (an epoch can take minutes).
    steps = tqdm(
        total=cfg.steps_per_epoch,
        desc=f"epoch {run.epoch + 1}",
        unit="step",
        leave=False,
        disable=not show_progress,
    )
    with SummaryWriter(str(out / "tensorboard")) as writer, open(out / "results.jsonl", "a") as f:
        for report in run.epochs(steps.update if show_progress else None):
            steps.refresh()  # the whole epoch's count and rate, then the next epoch's bar
            steps.reset()
            steps.set_description(f"epoch {report.epoch + 1}")
            for name, values in report.metrics.items():
                writer.add_scalar(f"train/{name}", sum(values) / len(values), report.step)
            writer.add_scalar("train/steps_per_s", report.steps_per_s, report.step)
            bar.update(1)
            postfix = {"steps/s": f"{report.steps_per_s:.1f}"}
            if report.row is not None:
                row = report.row
                writer.add_scalar("eval/normalized_score", row["normalized_score"], report.step)
                writer.add_scalar("eval/return_mean", row["return_mean"], report.step)
                f.write(json.dumps(row) + "\n")
                f.flush()
                run.save(checkpoint)  # after the row: a resume never repeats it
                rows.append(row)
                postfix["score"] = f"{row['normalized_score']:.1f}"
                if row["status"] == "diverged":
                    bar.write(f"diverged: {row['status_reason']}")
            bar.set_postfix(postfix)
    steps.close()
    bar.close()
    return rows


def _write_run_json(path: Path, request, prepared: PreparedTask, config, device, policy) -> None:
    record = provenance(
        task=request.task,
        dataset=prepared.dataset,
        env_id=prepared.env.label,
        seeds=request.seeds,
        device=device,
        config=config.to_dict(),
        quirks=config.quirks(),
        reference={"min": prepared.reference.ref_min, "max": prepared.reference.ref_max},
        threads={"setting": request.threads or "auto", "at_start": policy.threads},
        command=" ".join([os.path.basename(sys.executable), "-m", "dql", *sys.argv[1:]]),
    )
    path.write_text(json.dumps(record, indent=2) + "\n")


def budget_overrides(
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    eval_every: int | None = None,
    eval_episodes: int | None = None,
) -> dict[str, int]:
    """The command-line budget flags as DQLConfig overrides (None keeps the preset's)."""
    values = {
        "num_epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "eval_every": eval_every,
        "eval_episodes": eval_episodes,
    }
    return {field: value for field, value in values.items() if value is not None}


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``--set eta=0.5 --set T=10``: typed by the DQLConfig field's default."""
    defaults = DQLConfig().to_dict()
    overrides = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or key not in defaults:
            raise ConfigError(
                f"--set {pair!r}: expected FIELD=VALUE with FIELD one of {', '.join(defaults)}"
            )
        overrides[key] = _parse_like(defaults[key], text, key)
    return overrides


def _parse_like(default: Any, text: str, key: str) -> Any:
    if text.lower() == "none":
        return None
    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float) or default is None:
            return float(text)
    except ValueError:
        raise ConfigError(f"--set {key}={text}: not a valid {type(default).__name__}") from None
    return text
