"""Every Diffusion-QL hyperparameter in one dataclass, with the paper's defaults.

Where the authors' released code has a quirk, the faithful behaviour is the default and the
corrected one a named option (see ``quirks``); every result records which was used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

BetaSchedule = Literal["vp", "linear", "cosine"]
EmaWarmup = Literal["released", "synced"]
LrSchedule = Literal["released_cosine", "cosine", "constant"]
ActionSelection = Literal["softmax", "argmax", "sample"]
Precision = Literal["fp32", "bf16"]
Kernels = Literal["eager", "compiled"]
RewardTune = Literal["no", "normalize", "cql_antmaze", "antmaze", "iql_antmaze", "iql_locomotion"]

BETA_SCHEDULES = ("vp", "linear", "cosine")
EMA_WARMUPS = ("released", "synced")
LR_SCHEDULES = ("released_cosine", "cosine", "constant")
ACTION_SELECTIONS = ("softmax", "argmax", "sample")
PRECISIONS = ("fp32", "bf16")
KERNELS = ("eager", "compiled")
REWARD_TUNES = ("no", "normalize", "cql_antmaze", "antmaze", "iql_antmaze", "iql_locomotion")

# The released code builds the critic optimiser with this rate whatever the actor's rate is.
RELEASED_CRITIC_LR = 3e-4


class ConfigError(ValueError):
    """A hyperparameter that cannot work; the message names the field and the fix."""


@dataclass(frozen=True)
class DQLConfig:
    """One Diffusion-QL run. Field names follow the paper (eta, T) and the released code."""

    # --- the diffusion policy ---
    T: int = 5  # number of diffusion steps; 5 in every paper result
    beta_schedule: BetaSchedule = "vp"  # vp (paper), linear or cosine
    hidden_dim: int = 256  # width of the 3 hidden layers of actor and critics
    time_dim: int = 16  # sinusoidal time-embedding size
    max_action: float = 1.0  # actions (and denoised x0) are clamped to [-max_action, max_action]

    # --- the objective ---
    eta: float = 1.0  # weight of the normalised Q term in the actor loss
    discount: float = 0.99  # gamma
    tau: float = 0.005  # Polyak rate of the target critic, every step
    max_q_backup: bool = False  # target = min over heads of the max over sampled next actions
    max_q_backup_samples: int = 10  # next actions sampled per next state for max_q_backup
    reward_tune: RewardTune = "no"  # reward transformation applied to the dataset

    # --- optimisation ---
    actor_lr: float = 3e-4  # Adam rate of the actor
    critic_lr: float | None = None  # None: released quirk, fixed 3e-4 whatever actor_lr is
    grad_norm: float = 1.0  # max gradient norm of actor and critic; 0 disables clipping
    lr_schedule: LrSchedule = "released_cosine"  # released: cosine that in effect never decays
    batch_size: int = 256  # transitions per gradient step, drawn with replacement

    # --- the EMA actor (used only for critic targets) ---
    ema_decay: float = 0.995
    ema_start_step: int = 1000  # EMA averaging starts at this gradient step
    ema_every: int = 5  # EMA update every this many steps
    ema_warmup: EmaWarmup = "released"  # released: EMA never synced before ema_start_step

    # --- schedule of one run ---
    num_epochs: int = 2000
    steps_per_epoch: int = 1000
    eval_every: int = 50  # epochs between evaluations
    eval_episodes: int = 10
    top_k: int = 1  # offline (BC-loss) model selection rank, as in the released code

    # --- evaluation-time action selection ---
    action_selection: ActionSelection = "softmax"  # softmax over candidates scored by target Q
    num_action_candidates: int = 50

    # --- number format and kernels (not the paper's: fp32, eager PyTorch) ---
    # "bf16": the hidden layers' matrix products (forward and backward) take bfloat16 inputs
    # and accumulate in fp32 (AMX on recent Intel CPUs, tensor cores on GPUs); weights,
    # activations, losses, targets and Adam stay fp32 (dql/networks.py, ``MemberLinear``).
    precision: Precision = "fp32"
    # "compiled": torch.compile makes the whole update step one graph: both losses (the
    # actor's through the whole reverse chain), their gradients, clipping, Adam, Polyak and
    # EMA (dql/kernels.py).
    # Needs a C++ compiler on CPU (checked before training); agrees with "eager" to float
    # rounding, not bit for bit.
    kernels: Kernels = "eager"

    seed: int = 0

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def effective_critic_lr(self) -> float:
        """The rate the critic optimiser really uses."""
        return RELEASED_CRITIC_LR if self.critic_lr is None else self.critic_lr

    @property
    def total_steps(self) -> int:
        return self.num_epochs * self.steps_per_epoch

    def quirks(self) -> dict[str, str]:
        """Which released-code behaviour (or its correction) this configuration uses."""
        return {
            "ema_warmup": self.ema_warmup,
            "critic_lr": "released_fixed_3e-4" if self.critic_lr is None else "own",
            "lr_schedule": self.lr_schedule,
        }

    def replace(self, **changes: Any) -> DQLConfig:
        """A validated copy with some fields changed; unknown names are an error."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(
                f"unknown hyperparameter(s) {unknown}; known: {sorted(self.to_dict())}"
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DQLConfig:
        return cls().replace(**values)


def _validate(cfg: DQLConfig) -> None:
    def fail(field: str, problem: str, fix: str) -> None:
        raise ConfigError(f"{field}={getattr(cfg, field)!r} {problem}; {fix}")

    if not isinstance(cfg.T, int) or cfg.T < 1:
        fail("T", "is not a positive integer", "use T >= 1 diffusion steps (the paper uses 5)")
    for field in ("actor_lr", "critic_lr"):
        value = getattr(cfg, field)
        if value is not None and not value > 0:
            fail(field, "must be a positive learning rate", "the paper uses 3e-4")
    if not cfg.eta >= 0:
        fail("eta", "must be >= 0", "eta = 0 is pure diffusion behaviour cloning; paper: 0.005-4.5")
    if not cfg.grad_norm >= 0:
        fail("grad_norm", "must be >= 0", "use 0 to disable clipping, or the paper's 1-10")
    choices = {
        "beta_schedule": BETA_SCHEDULES,
        "ema_warmup": EMA_WARMUPS,
        "lr_schedule": LR_SCHEDULES,
        "action_selection": ACTION_SELECTIONS,
        "reward_tune": REWARD_TUNES,
        "precision": PRECISIONS,
        "kernels": KERNELS,
    }
    for field, allowed in choices.items():
        if getattr(cfg, field) not in allowed:
            fail(field, "is unknown", f"choose one of {', '.join(allowed)}")
    if not 0 <= cfg.discount <= 1:
        fail("discount", "must lie in [0, 1]", "the paper uses 0.99")
    if not 0 < cfg.tau <= 1:
        fail("tau", "must lie in (0, 1]", "the paper uses 0.005")
    if not 0 <= cfg.ema_decay < 1:
        fail("ema_decay", "must lie in [0, 1)", "the paper uses 0.995")
    if not cfg.max_action > 0:
        fail("max_action", "must be positive", "D4RL tasks use 1.0")
    positive_ints = (
        "hidden_dim",
        "time_dim",
        "batch_size",
        "max_q_backup_samples",
        "ema_every",
        "num_epochs",
        "steps_per_epoch",
        "eval_every",
        "eval_episodes",
        "num_action_candidates",
    )
    for field in positive_ints:
        if not isinstance(getattr(cfg, field), int) or getattr(cfg, field) < 1:
            fail(field, "must be a positive integer", "see DQLConfig for the paper's value")
    if cfg.time_dim % 2 or cfg.time_dim < 4:
        fail("time_dim", "must be even and >= 4", "the paper uses 16 (8 sines, 8 cosines)")
    if cfg.ema_start_step < 0 or cfg.top_k < 0:
        fail("ema_start_step" if cfg.ema_start_step < 0 else "top_k", "must be >= 0", "see paper")
