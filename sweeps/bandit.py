"""Sweep the paper's 2D bandit: a real Ray Tune + Optuna sweep in minutes on a laptop."""

import sys

from sweeps.runner import Suite, main
from sweeps.space import SearchRanges

SUITE = Suite(
    name="bandit",
    tasks=("bandit",),
    # The released toy: eta 2.5, T 50, lr 3e-4; T is searched lower to keep trials short.
    ranges=SearchRanges(eta=(0.1, 10.0), T=(2, 50), actor_lr=(1e-4, 3e-3)),
    description="Diffusion-QL on the paper's four-mode 2D bandit (Ray Tune + Optuna + ASHA).",
)

if __name__ == "__main__":
    sys.exit(main(SUITE))
