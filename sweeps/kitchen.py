"""Sweep the paper's 3 Kitchen tasks (needs gymnasium-robotics: pip install -e ".[robotics]")."""

import sys

from sweeps.runner import Suite, main
from sweeps.space import SearchRanges

SUITE = Suite(
    name="kitchen",
    tasks=("kitchen-complete-v0", "kitchen-partial-v0", "kitchen-mixed-v0"),
    # The paper: eta = 0.005 for all three, so the search is centred far lower than elsewhere.
    ranges=SearchRanges(eta=(5e-4, 0.05), T=(2, 20), actor_lr=(1e-4, 1e-3)),
    description="Diffusion-QL on D4RL Kitchen (Ray Tune + Optuna + ASHA).",
)

if __name__ == "__main__":
    sys.exit(main(SUITE))
