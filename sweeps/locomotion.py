"""Sweep the paper's 9 Gym locomotion tasks: python sweeps/locomotion.py --help.

On a cluster: ray submit cluster/gpu.yaml sweeps/locomotion.py -- --storage s3://...
Imports only the installed package, never sibling files: ray submit copies this file alone.
"""

import sys

from sweeps.runner import Suite, main
from sweeps.space import SearchRanges

SUITE = Suite(
    name="locomotion",
    tasks=tuple(
        f"{env}-{data}-v2"
        for data in ("medium", "medium-replay", "medium-expert")
        for env in ("halfcheetah", "hopper", "walker2d")
    ),
    # The paper uses eta = 1, T = 5, lr 3e-4 for all nine; search a decade around them.
    ranges=SearchRanges(eta=(0.1, 10.0), T=(2, 20), actor_lr=(1e-4, 1e-3)),
    description="Diffusion-QL on the D4RL Gym locomotion tasks (Ray Tune + Optuna + ASHA).",
)

if __name__ == "__main__":
    sys.exit(main(SUITE))
