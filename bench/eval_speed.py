"""Evaluation episodes per second: K members x N episodes in one vector env, against one by one.

    python bench/eval_speed.py [--env Hopper-v5] [--k 1,4] [--episodes 10] [--rule softmax]
                               [--max-steps 200] [--json PATH]

Both ways run exactly the same episodes (``dql.evaluation`` checks this); the policy is an
untrained SeedEnsemble at paper sizes (T = 5, 3x256 networks, 50 candidates for softmax).
Episodes are cut at ``--max-steps``. Env steps per second are reported too: the vector env
steps every environment (and computes its action) until the longest episode ends, so with
episodes of very unequal length episodes per second alone can mislead.
Never part of the tests.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from train_speed import write_report  # bench/ is the script's directory

from dql.config import DQLConfig
from dql.ensemble import SeedEnsemble
from dql.envs import EnvSpec, space_dims
from dql.evaluation import agent_policy, evaluate, evaluate_one_by_one


def episodes_per_s(evaluation, policy, spec: EnvSpec, members: int, episodes: int):
    """(episodes per second, environment steps per second) of one evaluation."""
    started = time.perf_counter()
    result = evaluation(policy, spec, members, episodes, seed=0)
    elapsed = time.perf_counter() - started
    return members * episodes / elapsed, float(result.lengths.sum()) / elapsed


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--k", default="1,4", help="comma-separated numbers of members")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per member")
    parser.add_argument("--rule", default="softmax", choices=["softmax", "argmax", "sample"])
    parser.add_argument("--max-steps", type=int, default=200, help="episode length cap")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    spec = EnvSpec(args.env, {"max_episode_steps": args.max_steps})
    obs_dim, act_dim = space_dims(spec)
    print(
        f"{spec.label}, rule {args.rule}, {torch.get_num_threads()} threads, load {os.getloadavg()}"
    )
    print(
        f"{'K':>3} {'episodes':>9} {'vectorised ep/s':>16} {'one by one ep/s':>16} "
        f"{'speed-up':>9} {'env steps/s vectorised':>23} {'one by one':>11}"
    )
    results = []
    for k in (int(k) for k in args.k.split(",")):
        ensemble = SeedEnsemble(DQLConfig(), obs_dim, act_dim, list(range(k)), args.device)
        policy = agent_policy(ensemble, args.rule, seed=0)
        vector, vector_steps = episodes_per_s(evaluate, policy, spec, k, args.episodes)
        single, single_steps = episodes_per_s(evaluate_one_by_one, policy, spec, k, args.episodes)
        results.append(
            {
                "k": k,
                "episodes_per_member": args.episodes,
                "vectorised_episodes_per_s": vector,
                "one_by_one_episodes_per_s": single,
                "speedup": vector / single,
                "vectorised_env_steps_per_s": vector_steps,
                "one_by_one_env_steps_per_s": single_steps,
                "load_average": os.getloadavg(),
            }
        )
        print(
            f"{k:>3} {k * args.episodes:>9} {vector:>16.2f} {single:>16.2f} "
            f"{vector / single:>8.1f}x {vector_steps:>23.0f} {single_steps:>11.0f}"
        )
    report = {"env": spec.label, "rule": args.rule, "device": args.device, "results": results}
    write_report(report, args.json)
    return report


if __name__ == "__main__":
    main()
