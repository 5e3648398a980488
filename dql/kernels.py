"""What ``DQLConfig.kernels="compiled"`` compiles: each half of the update step's losses as
one graph, forward and backward, with ``torch.compile`` (inductor's C++ on a CPU).

``DiffusionQL._critic_losses`` (both heads, and the target through the EMA actor's chain and
the target critic) and ``DiffusionQL._actor_losses`` (the BC loss, and the Q term through the
live actor's whole reverse chain) are the very functions the eager step calls. Compiled, the
chain is traced step by step (``DiffusionPolicy.sample`` takes that path while compiling) and
AOTAutograd derives one backward graph for each half, so a step is two forward and two
backward calls: the products stay the same library calls and what lies between them becomes
fused loops, instead of some three thousand eager operations and autograd nodes at Hopper
sizes. Optimisers, clipping, Polyak and EMA stay as they are (a few fused calls).

The formulas are the eager ones, so results agree to float rounding (a few 1e-7 relative),
not bit for bit: the option is off by default. Evaluation samples with the eager chain.

Compiling takes 20-30 s per process and setting at Hopper sizes on 2 cores (T = 50, the toy's
chain: about 100 s), then mostly comes from inductor's disk cache; ``check_compiler``
compiles a small function before training, so that a missing C++ compiler is one clear error.
"""

from __future__ import annotations

import torch

from dql.config import ConfigError
from dql.networks import mish_with_derivative

# Graphs per compiled function: one per setting that changes the graph (T, shapes, eta...).
# Dynamo's default limit is 8, past which it silently runs the function eagerly; a sweep's
# reused trial process compiles one per trial. Bounded, so a higher limit is safe.
RECOMPILE_LIMIT = 64


def compile_graph(fn):
    """``fn`` compiled whole (``fullgraph``: a graph break is an error, not a slow path)."""
    limit = torch._dynamo.config.recompile_limit
    torch._dynamo.config.recompile_limit = max(limit, RECOMPILE_LIMIT)
    # dynamic_threads: the kernel asks OpenMP for the thread count at each call, so it
    # follows dql.threads' policy (by default it would keep the count it was compiled at).
    return torch.compile(fn, fullgraph=True, options={"cpp.dynamic_threads": True})


class KernelCompileError(ConfigError):
    """torch.compile could not build the kernels (no working C++ compiler, most often): an
    input error of the set-up, shown as one line with its fix like any ``ConfigError``."""


def check_compiler(device: torch.device | str = "cpu") -> None:
    """Compile and run a small function on ``device``, so that a failure surfaces before
    training; it names the fix."""
    x = torch.linspace(-6.0, 6.0, 64, device=device)
    try:
        compile_graph(mish_with_derivative)(x)
    except Exception as error:  # any compiler failure: name the fix
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise KernelCompileError(
            f"kernels='compiled': torch.compile failed on {torch.device(device).type} "
            f"({type(error).__name__}: {first_line[:200]}); install a C++ compiler "
            "(e.g. g++) or train with --set kernels=eager"
        ) from error
