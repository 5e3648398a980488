"""Compiled kernels for ``DQLConfig.kernels="compiled"``: Mish and its derivative as fused
``torch.compile`` kernels, and each position of the reverse chain as one compiled call
(``CompiledChain``, below; the chain's forward only: its backward stays eager, which measured
as fast).

The eager path (``networks.mish_with_derivative``) makes about ten passes over every
activation; at Hopper sizes on a CPU that is half of a gradient step. Compiled by inductor
(C++ with a vectorising compiler), the same arithmetic is one pass that reads x and writes
the value (and the derivative). The formulas are the eager ones, so results agree to float
rounding (a few 1e-7), not bit for bit: the option is off by default.

Inputs are viewed as 2-D (rows, elements per row) and compiled with symbolic sizes, so one
kernel serves every batch and layer shape of a run: a few compilations per process (a few
seconds each, cached on disk by inductor), none per batch. ``check_compiler`` compiles and
runs them once, before training, so that a missing C++ compiler is one clear error.
"""

from __future__ import annotations

import torch

from dql.config import ConfigError
from dql.networks import mish_with_derivative


def _tanh_softplus(x: torch.Tensor):
    """tanh(softplus(x)) = s (1 + u) / (1 + u^2), s = sigmoid(x), u = 1 - s (as the eager)."""
    s = torch.sigmoid(x)
    u = 1.0 - s
    d = 1.0 + u * u
    return (s + s * u) / d, s, u, d


def _value(x: torch.Tensor) -> torch.Tensor:
    return _tanh_softplus(x)[0] * x


def _value_and_derivative_into(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """mish(x) written into ``out`` (in out's dtype); returns d mish / dx in x's dtype."""
    tanh_sp, s, u, d = _tanh_softplus(x)
    out.copy_(tanh_sp * x)
    half_sech = u / d  # sech^2(softplus(x)) = 4 (u / (1 + u^2))^2
    return tanh_sp + 4.0 * (s * x) * (half_sech * half_sech)


# Compiled lazily on first use: nothing is compiled unless the option is on.
_compiled: dict[object, object] = {}


# Compiled variants per kernel: rows 1 or more (sizes 0 and 1 are always specialised), an
# out buffer contiguous or strided, fp32 or bf16; about 8 in a bf16 run, which is dynamo's
# default limit per function (past it, fullgraph fails). Bounded, so a higher limit is safe.
RECOMPILE_LIMIT = 64


def _compile(fn, dynamic: bool | None = None):
    limit = torch._dynamo.config.recompile_limit
    torch._dynamo.config.recompile_limit = max(limit, RECOMPILE_LIMIT)
    # dynamic_threads: the kernel asks OpenMP for the thread count at each call, so it
    # follows dql.threads' policy (by default it would keep the count it was compiled at).
    return torch.compile(fn, dynamic=dynamic, fullgraph=True, options={"cpp.dynamic_threads": True})


def _kernel(name: str):
    if name not in _compiled:
        fn = {"value": _value, "into": _value_and_derivative_into}[name]
        _compiled[name] = _compile(fn, dynamic=True)
    return _compiled[name]


def _rows(t: torch.Tensor, copy: bool = True) -> torch.Tensor:
    """t as (rows, elements): members (or 1) by everything else; a view unless ``copy``
    is allowed and needed. An ``out`` buffer is contiguous, or one chain position's slice
    (K, n, H) of a (K, T, n, H) buffer: contiguous within each member, so a view either way.
    """
    rows = t.shape[0] if t.dim() == 3 else 1
    return t.reshape(rows, -1) if copy else t.view(rows, -1)


# Below this many elements the eager passes are cheaper than calling a compiled kernel: a
# call costs about 45 us here (guards, wrappers), the eager passes about 3 ns an element and
# the fused one under 2 (single thread, 2-core KVM guest). The toy's (100, 128) activations
# stay eager; Hopper's (256, 256) and larger go compiled.
COMPILED_MIN_ELEMENTS = 1 << 15


@torch.no_grad()
def compiled_mish_with_derivative(
    x: torch.Tensor, need_derivative: bool = True, out: torch.Tensor | None = None
):
    """``networks.mish_with_derivative`` through the compiled kernels: same signature.
    Small activations (under ``COMPILED_MIN_ELEMENTS``) take the eager function."""
    if x.numel() < COMPILED_MIN_ELEMENTS:
        return mish_with_derivative(x, need_derivative, out)
    x = x.detach()  # one guard fewer: the autograd Function's input may require grad
    if not need_derivative and out is None:
        return _kernel("value")(_rows(x)).view(x.shape), None
    value = x.new_empty(x.shape) if out is None else out
    derivative = _kernel("into")(_rows(x), _rows(value, copy=False)).view(x.shape)
    return value, derivative if need_derivative else None


class KernelCompileError(ConfigError):
    """torch.compile could not build the kernels (no working C++ compiler, most often): an
    input error of the set-up, shown as one line with its fix like any ``ConfigError``."""


def check_compiler(device: torch.device | str = "cpu", dtypes=(None,)) -> None:
    """Compile and run every kernel once on ``device`` (``dtypes``: the value buffers' dtypes,
    None for fp32), so that a failure surfaces before training; it names the fix."""
    x = torch.linspace(-6.0, 6.0, 2 * COMPILED_MIN_ELEMENTS, device=device).view(2, 4, -1)
    try:
        compiled_mish_with_derivative(x, need_derivative=False)
        for dtype in dtypes:
            compiled_mish_with_derivative(x, out=torch.empty_like(x, dtype=dtype))
    except Exception as error:  # any compiler failure: name the fix
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise KernelCompileError(
            f"kernels='compiled': torch.compile failed on {torch.device(device).type} "
            f"({type(error).__name__}: {first_line[:200]}); install a C++ compiler "
            "(e.g. g++) or train with --set kernels=eager"
        ) from error


def mish_function(kernels: str, device: torch.device | str = "cpu", low: torch.dtype | None = None):
    """The Mish-with-derivative function for ``DQLConfig.kernels``; "compiled" is checked
    here (``check_compiler``, for fp32 and the ``low`` activations the chain keeps)."""
    if kernels == "eager":
        return mish_with_derivative
    check_compiler(device, (None,) if low is None else (None, low))
    return compiled_mish_with_derivative


# ---- the reverse chain, one compiled call per chain position ----
#
# A chain position is about 25 operations (four products, three Mish with derivative, the
# reverse step) on small tensors; in eager PyTorch each costs a dispatch, and at the toy's
# T = 50 that fixed cost is most of a gradient step. Compiled, a position is one call: the
# products stay the same library calls, everything between them is three or four fused
# loops. The step's coefficients come in as a tensor row, so one compiled graph serves all
# T positions (a Python float would be specialised: one compilation per position).


def _mish_value_and_slope(z: torch.Tensor):
    tanh_sp, s, u, d = _tanh_softplus(z)
    half_sech = u / d
    return tanh_sp * z, tanh_sp + 4.0 * (s * z) * (half_sech * half_sech)


def _product(a, b, low):
    """a @ b (batched), from ``low`` copies if given; fp32 either way."""
    if low is None:
        return torch.bmm(a, b)
    return torch.bmm(a.to(low), b.to(low)).float()


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
    h1, s1 = _mish_value_and_slope(torch.baddbmm(state_part, x, w1_x) + time_part)
    if low is not None:
        h1 = h1.to(low)
    h2, s2 = _mish_value_and_slope(b2.unsqueeze(1) + _product(h1, w2, low))
    if low is not None:
        h2 = h2.to(low)
    h3, s3 = _mish_value_and_slope(b3.unsqueeze(1) + _product(h2, w3, low))
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
