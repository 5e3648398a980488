"""Sweep the paper's Adroit pen tasks (needs gymnasium-robotics: pip install -e ".[robotics]")."""

import sys

from sweeps.runner import Suite, main
from sweeps.space import SearchRanges

SUITE = Suite(
    name="adroit",
    tasks=("pen-human-v1", "pen-cloned-v1"),
    # The paper: eta 0.1-0.15 with a small learning rate, 3e-5.
    ranges=SearchRanges(eta=(0.01, 1.0), T=(2, 20), actor_lr=(1e-5, 3e-4)),
    description="Diffusion-QL on D4RL Adroit (Ray Tune + Optuna + ASHA).",
)

if __name__ == "__main__":
    sys.exit(main(SUITE))
