"""What Optuna searches: eta (log), diffusion steps T (integers), actor learning rate (log)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


class SweepInputError(ValueError):
    """Bad sweep input, reported in one line before any trial starts."""


@dataclass(frozen=True)
class SearchRanges:
    """Closed ranges of the three searched hyperparameters."""

    eta: tuple[float, float] = (0.1, 10.0)
    T: tuple[int, int] = (2, 20)
    actor_lr: tuple[float, float] = (1e-4, 1e-3)

    def __post_init__(self) -> None:
        for name in ("eta", "T", "actor_lr"):
            low, high = getattr(self, name)
            flag = {"actor_lr": "lr"}.get(name, name)
            smallest = "1 (T counts diffusion steps)" if name == "T" else "above 0"
            if min(low, high) <= 0 or (name == "T" and min(low, high) < 1):
                raise SweepInputError(f"--{flag}-range {low},{high}: both ends must be {smallest}")
            if low > high:
                raise SweepInputError(
                    f"--{flag}-range {low},{high}: LOW exceeds HIGH; "
                    f"did you mean --{flag}-range {high},{low}?"
                )

    def with_overrides(self, **ranges: str | None) -> SearchRanges:
        """Apply ``--eta-range 0.5,5`` style strings (None leaves a range as it is)."""
        changes = {}
        for name, text in ranges.items():
            if text is None:
                continue
            parse = int if name == "T" else float
            try:
                low, high = (parse(part) for part in text.split(","))
            except ValueError:
                raise SweepInputError(
                    f"--{name}-range {text!r}: expected two numbers LOW,HIGH"
                ) from None
            changes[name] = (low, high)
        return replace(self, **changes)

    def optuna_space(self) -> dict[str, Any]:
        import optuna.distributions as d

        return {
            "eta": d.FloatDistribution(*self.eta, log=True),
            "T": d.IntDistribution(*self.T),
            "actor_lr": d.FloatDistribution(*self.actor_lr, log=True),
        }

    def contains(self, point: dict[str, float]) -> bool:
        return all(
            getattr(self, name)[0] <= point[name] <= getattr(self, name)[1]
            for name in ("eta", "T", "actor_lr")
        )
