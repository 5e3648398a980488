"""What ``DQLConfig.kernels="compiled"`` compiles with ``torch.compile`` (inductor's C++ on a
CPU): each position of the reverse chain's forward pass as one call (``CompiledChain``), and
the noise predictor, the critic and its target whole, forward and backward
(``compile_forward``).

Eager, a step at Hopper sizes is some three thousand small operations: Mish and its derivative
alone make about ten passes over every activation. Compiled, the products stay the same
library calls and what lies between them becomes a few fused loops. The formulas are the eager
ones, so results agree to float rounding (a few 1e-7 relative), not bit for bit: the option is
off by default. The chain's backward stays eager: compiled per position it measured no faster
at Hopper sizes and slower at the toy's (100 x 128), where a compiled call's own cost (dynamo's
guards and wrappers, about 100 us here) is as large as the eager work it would replace.

Each setting compiles once per process (10-20 s on 2 cores the first time, then mostly from
inductor's disk cache); ``check_compiler`` compiles a small function before training, so that a
missing C++ compiler is one clear error.
"""

from __future__ import annotations

import torch

from dql.config import ConfigError
from dql.networks import affine, mish_with_derivative

# Compiled lazily on first use: nothing is compiled unless the option is on.
_compiled: dict[object, object] = {}

# Graphs per compiled function: a chain's few variants (noise or none, kept or not) per
# dtype and shape (training batch, evaluation candidates); dynamo's default limit is 8, past
# which fullgraph fails. Bounded, so a higher limit is safe.
RECOMPILE_LIMIT = 64


def _compile(fn, dynamic: bool | None = None):
    limit = torch._dynamo.config.recompile_limit
    torch._dynamo.config.recompile_limit = max(limit, RECOMPILE_LIMIT)
    # dynamic_threads: the kernel asks OpenMP for the thread count at each call, so it
    # follows dql.threads' policy (by default it would keep the count it was compiled at).
    return torch.compile(fn, dynamic=dynamic, fullgraph=True, options={"cpp.dynamic_threads": True})


def compile_forward(module: torch.nn.Module) -> None:
    """``module.forward`` compiled whole (its products, Mish and their backward), in place.
    Call it on each network separately: a deep copy would share the compiled function."""
    module.forward = _compile(module.forward)


class KernelCompileError(ConfigError):
    """torch.compile could not build the kernels (no working C++ compiler, most often): an
    input error of the set-up, shown as one line with its fix like any ``ConfigError``."""


def check_compiler(device: torch.device | str = "cpu") -> None:
    """Compile and run a small function on ``device``, so that a failure surfaces before
    training; it names the fix."""
    x = torch.linspace(-6.0, 6.0, 64, device=device)
    try:
        _compile(mish_with_derivative)(x)
    except Exception as error:  # any compiler failure: name the fix
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise KernelCompileError(
            f"kernels='compiled': torch.compile failed on {torch.device(device).type} "
            f"({type(error).__name__}: {first_line[:200]}); install a C++ compiler "
            "(e.g. g++) or train with --set kernels=eager"
        ) from error


# ---- the reverse chain, one compiled call per chain position ----
#
# A chain position is about 25 operations (four products, three Mish with derivative, the
# reverse step) on small tensors; in eager PyTorch each costs a dispatch, and at the toy's
# T = 50 that fixed cost is most of a gradient step. Compiled, a position is one call: the
# products stay the same library calls, everything between them is three or four fused
# loops. The step's coefficients come in as a tensor row, so one compiled graph serves all
# T positions (a Python float would be specialised: one compilation per position).


def _forward_position(
    x,
    state_part,
    time_part,
    w1_x,
    b2,
    w2,
    b3,
    w3,
    b4,
    w4,
    noise,
    coef,
    kept,
    *,
    low,
    max_action: float,
):
    """One chain position x_i -> x_{i-1}, as ``chain.run_chain``'s loop body.

    ``kept``: None, or the (h1, h2, h3) buffers of this position, which receive the layers'
    outputs (h1, h2 in ``low`` where given, as the eager chain keeps them); the slopes and the
    clamp mask are returned with the new x then.
    """
    recip, recipm1, mean_x0, mean_xt, std = coef.unbind(0)
    h1, s1 = mish_with_derivative(torch.baddbmm(state_part, x, w1_x) + time_part)
    if low is not None:
        h1 = h1.to(low)
    h2, s2 = mish_with_derivative(affine(b2, h1, w2, low))
    if low is not None:
        h2 = h2.to(low)
    h3, s3 = mish_with_derivative(affine(b3, h2, w3, low))
    # The reverse step as chain.reverse_step, its coefficients tensors rather than floats.
    eps = torch.baddbmm(b4.unsqueeze(1), h3, w4)
    x0 = recip * x - recipm1 * eps
    x_prev = x0.clamp(-max_action, max_action) * mean_x0 + mean_xt * x
    if noise is not None:
        x_prev = x_prev + std * noise
    if kept is None:
        return x_prev
    for buffer, h in zip(kept, (h1, h2, h3), strict=True):
        buffer.copy_(h)
    inside = ((x0 >= -max_action) & (x0 <= max_action)).to(x.dtype)
    return x_prev, s1, s2, s3, inside


class CompiledChain:
    """The compiled position functions of one chain (its ``low`` and clamp), and the chain's
    coefficients as a (T, 5) tensor. Compiled lazily, once per process and setting."""

    def __init__(self, constants, low: torch.dtype | None, device: torch.device | str):
        c = constants
        rows = [c.recip, c.recipm1, c.mean_x0, c.mean_xt, c.std]
        self.coef = torch.tensor(rows, dtype=torch.float32, device=device).T.contiguous()
        self.low, self.max_action = low, float(c.max_action)

    def forward(self, *args, kept=None):
        key = ("forward", self.low, self.max_action)
        if key not in _compiled:
            low, max_action = self.low, self.max_action

            def forward(*args):
                return _forward_position(*args, low=low, max_action=max_action)

            _compiled[key] = _compile(forward)
        return _compiled[key](*args, kept)

    def __deepcopy__(self, memo):  # the EMA actor's copy shares the compiled functions
        return self
