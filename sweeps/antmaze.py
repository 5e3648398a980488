"""Sweep the paper's 6 AntMaze tasks (needs gymnasium-robotics: pip install -e ".[robotics]")."""

import sys

from sweeps.runner import Suite, main
from sweeps.space import SearchRanges

SUITE = Suite(
    name="antmaze",
    tasks=tuple(
        f"antmaze-{maze}-v0"
        for maze in (
            "umaze",
            "umaze-diverse",
            "medium-play",
            "medium-diverse",
            "large-play",
            "large-diverse",
        )
    ),
    # The paper's eta runs from 0.5 to 4.5 and lr from 3e-4 to 1e-3 across the mazes.
    ranges=SearchRanges(eta=(0.1, 10.0), T=(2, 20), actor_lr=(1e-4, 3e-3)),
    description="Diffusion-QL on D4RL AntMaze (Ray Tune + Optuna + ASHA).",
)

if __name__ == "__main__":
    sys.exit(main(SUITE))
