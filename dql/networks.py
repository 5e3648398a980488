"""The noise-prediction network eps(x_t, t, s) and the twin critic, as in the paper.

Every network holds ``members`` independent copies (one per seed) whose weights are stacked
on a leading axis, so K seeds train as one batched model: inputs are (K, n, features). A
single-member network also takes plain (n, features) inputs, as an ``nn.Linear`` stack would.
Each copy is initialised exactly as PyTorch initialises ``nn.Linear``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """[sin(t f_k), cos(t f_k)] with f_k = exp(-k ln(10000) / (dim/2 - 1)), k = 0..dim/2-1."""
    half = dim // 2
    freqs = torch.exp(
        torch.arange(half, device=t.device, dtype=torch.float32) * (-math.log(10000.0) / (half - 1))
    )
    angles = t.to(torch.float32)[..., None] * freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def _tanh_softplus(x: torch.Tensor):
    """tanh(softplus(x)) through one sigmoid, with the parts the derivative reuses.

    With s = sigmoid(x) and u = 1 - s: tanh(softplus(x)) = s (1 + u) / (1 + u^2), accurate in
    both tails. The same function as in ``F.mish`` to float rounding, at a fraction of its
    cost where the vectorised tanh is slow (this project's 2-core CPU).
    """
    s = torch.sigmoid(x)
    u = torch.rsub(s, 1.0)
    d = torch.addcmul(x.new_ones(()), u, u)  # 1 + u^2
    return torch.addcmul(s, s, u).div_(d), s, u, d


# Elements of one pass over a part of a batched activation: 256 KB of floats, so that the
# ten passes of Mish and its derivative over K = 8 members run from a core's L2 cache rather
# than from memory (one layer of the chain, (8, 256, 256) into its strided buffer: 3.9 ms at
# once, 1.3 ms in groups on one thread; 3.7 and 0.8 ms on two, timed here). A whole K = 8
# step gained 8% on one thread in fp32 (bench/train_speed.py), nothing measurable otherwise.
# Eager only: compiled (``dql.kernels``), Mish is plain arithmetic whose derivative the
# compiler derives, and inductor computes both in one loop over the whole activation, from
# registers (grouping split it into a loop per group: 8-10% slower at K = 8).
CHUNK_ELEMENTS = 1 << 16


def mish_with_derivative(
    x: torch.Tensor,
    need_derivative: bool = True,
    out: torch.Tensor | None = None,
):
    """(mish(x), d mish / dx), or (mish(x), None); neither records an autograd graph.

    d mish / dx = tanh(softplus(x)) + x s sech^2(softplus(x)), sech^2 = (2 u / (1 + u^2))^2.
    Intermediates are reused in place: fewer full-size tensors per activation. ``out``, where
    given, receives mish(x) (a slice of the caller's buffer: no copy afterwards). Stacked
    members (K, n, features) go through in groups of members of about ``CHUNK_ELEMENTS``;
    each element's arithmetic is the same either way.
    """
    grouped = x.dim() == 3 and x.shape[0] > 1 and x.numel() > CHUNK_ELEMENTS
    if grouped:
        group = max(1, CHUNK_ELEMENTS // x[0].numel())
        value = torch.empty_like(x) if out is None else out
        derivative = torch.empty_like(x) if need_derivative else None
        for i in range(0, x.shape[0], group):
            part = slice(i, i + group)
            parts = None if derivative is None else derivative[part]
            _mish_into(x[part], value[part], parts, need_derivative)
        return value, derivative
    return _mish_into(x, out, None, need_derivative)


def _mish_into(x, out, derivative_out, need_derivative: bool = True):
    """``mish_with_derivative`` of one part, into ``out`` and ``derivative_out`` if given."""
    tanh_sp, s, u, d = _tanh_softplus(x)
    derivative = None
    if need_derivative or derivative_out is not None:
        half_sech_sq = u.div_(d).square_()  # (u / (1 + u^2))^2 = sech^2 / 4
        derivative = torch.addcmul(tanh_sp, s.mul_(x), half_sech_sq, value=4.0, out=derivative_out)
    if out is None:
        return tanh_sp.mul_(x), derivative
    return torch.mul(tanh_sp, x, out=out), derivative


class _MishFunction(torch.autograd.Function):
    """Mish with its derivative made in the forward pass, so the backward is one product."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        value, derivative = mish_with_derivative(x)
        ctx.save_for_backward(derivative)
        return value

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (derivative,) = ctx.saved_tensors
        return grad * derivative


class Mish(nn.Module):
    """Mish, x tanh(softplus(x)). On CPU through a sigmoid (``_tanh_softplus``), with the
    autograd machinery only where a gradient is wanted; elsewhere PyTorch's own fused kernel,
    which is one memory pass on a GPU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            return F.mish(x)
        if torch.compiler.is_compiling():  # plain ops: the compiler derives and fuses the rest
            return x * _tanh_softplus(x)[0]
        if x.requires_grad and torch.is_grad_enabled():
            return _MishFunction.apply(x)
        return mish_with_derivative(x, need_derivative=False)[0]


# Output widths below this are "narrow" (the actor's action, the critics' Q value). A batched
# product with such a weight stored (in, out) takes a slow path of the CPU's BLAS: at Hopper
# sizes (256 rows, width 256, 3 actions) 79 us forward and 80 us for the weight's gradient,
# against 24 and 15 us from the (out, in) layout that ``nn.Linear`` keeps; from 16 outputs on
# both layouts run alike (timed on this project's 2-core CPU, one thread).
NARROW_OUTPUTS = 16


def as_linear_weight(weight: torch.Tensor) -> torch.Tensor:
    """A (K, out, in) copy of (K, in, out) weights: ``nn.Linear``'s layout, which narrow
    products (``NARROW_OUTPUTS``) multiply with as ``x @ copy.mT``. Always a copy with
    standard strides: for one output, ``.contiguous()`` would keep the view, whose strides
    lead the BLAS to another kernel and another rounding."""
    return weight.mT.clone(memory_format=torch.contiguous_format)


def is_narrow(weight: torch.Tensor) -> bool:
    """Whether a (K, in, out) weight's products take nn.Linear's layout (``NARROW_OUTPUTS``)."""
    return weight.shape[-1] < NARROW_OUTPUTS


def linear_rows_affine(bias: torch.Tensor, x: torch.Tensor, weight_rows: torch.Tensor):
    """bias + x @ weight_rows^T for (K, n, in) x and (K, out, in) weights (``as_linear_weight``),
    rounded as ``nn.Linear`` rounds it: one output goes through the transposed product."""
    if weight_rows.shape[-2] == 1:
        return torch.baddbmm(bias.unsqueeze(2), weight_rows, x.mT).mT
    return torch.baddbmm(bias.unsqueeze(1), x, weight_rows.mT)


def linear_rows_weight_grad(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The (K, in, out) weight gradient x^T grad, formed as (grad^T x)^T: nn.Linear's product,
    off the slow path for narrow outputs."""
    return torch.bmm(grad.mT, x).mT


class _NarrowAffine(torch.autograd.Function):
    """bias + x @ weight with a narrow weight, as ``nn.Linear`` computes it, both ways.

    Forward, input gradient and weight gradient are the products ``nn.Linear`` and its
    backward make, so they agree with a ``nn.Linear`` of the same weights bit for bit;
    autograd's own backward of ``baddbmm`` would form x^T g, the slow path. Written with
    ``setup_context``, so that ``torch.func.grad`` (the compiled step, ``dql.kernels``) can
    differentiate through it.
    """

    @staticmethod
    def forward(bias, x, weight):
        return linear_rows_affine(bias, x, as_linear_weight(weight))

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, x, weight = inputs
        ctx.save_for_backward(x, weight)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        # Traced under torch.func.grad by torch.compile, needs_input_grad reads False for the
        # weights being differentiated (torch 2.13): there every gradient is formed, and the
        # compiler drops those nobody uses.
        needed = [n or torch.compiler.is_compiling() for n in ctx.needs_input_grad]
        grad_x = torch.bmm(grad, as_linear_weight(weight)) if needed[1] else None
        grad_weight = linear_rows_weight_grad(grad, x) if needed[2] else None
        grad_bias = grad.sum(dim=1) if needed[0] else None
        return grad_bias, grad_x, grad_weight


def affine(
    bias: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, low: torch.dtype | None = None
) -> torch.Tensor:
    """bias + x @ weight for (K, n, in) x and (K, in, out) weights, biases (K, out).

    With ``low`` (bfloat16), the product takes ``low`` copies of x and the weight and
    accumulates in fp32 inside the kernel; the bias is added in fp32, so the result, like
    everything around it, is fp32. Only the product's inputs and its output are rounded.
    """
    if low is None:
        if is_narrow(weight):
            return _NarrowAffine.apply(bias, x, weight)
        return torch.baddbmm(bias.unsqueeze(1), x, weight)
    return torch.add(bias.unsqueeze(1), torch.bmm(x.to(low), weight.to(low)))


class MemberLinear(nn.Module):
    """``members`` independent Linear layers applied to (K, n, in) inputs by one batched matmul.

    ``weight[k]`` is member k's ``nn.Linear.weight`` transposed, (in, out): the layout in
    which the batched product and its backward need no transposed copies.
    ``product_dtype`` (None: fp32) is the number format of the product (``affine``); the
    owner sets it on hidden layers only (``use_low_precision``).
    """

    def __init__(self, in_features: int, out_features: int, members: int = 1, init: bool = True):
        super().__init__()
        self.in_features, self.out_features, self.members = in_features, out_features, members
        self.product_dtype: torch.dtype | None = None
        self.hidden = False  # hidden-to-hidden: where low-precision products may be used
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(members, out_features))
        if init:  # owners that must draw in another order pass init=False and reset themselves
            for k in range(members):
                self.reset_member(k)

    @torch.no_grad()
    def reset_member(self, k: int) -> None:
        """Copy k drawn from the global RNG exactly as ``nn.Linear.reset_parameters`` draws."""
        weight = torch.empty(self.out_features, self.in_features)
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
        self.weight[k].copy_(weight.t())
        bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
        nn.init.uniform_(self.bias[k], -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # a plain batch for a single-member layer
            if self.members != 1:
                raise ValueError(f"a {self.members}-member layer needs (K, n, in) inputs")
            if self.product_dtype is None and not is_narrow(self.weight):
                return torch.addmm(self.bias[0], x, self.weight[0])
            return affine(self.bias, x.unsqueeze(0), self.weight, self.product_dtype).squeeze(0)
        return affine(self.bias, x, self.weight, self.product_dtype)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, members={self.members}"


def mlp(
    in_dim: int,
    hidden_dim: int,
    out_dim: int,
    hidden_layers: int = 3,
    members: int = 1,
    init: bool = True,
) -> nn.Sequential:
    """hidden_layers x (Linear, Mish), then a Linear head with no output activation."""
    layers: list[nn.Module] = []
    for i in range(hidden_layers):
        width = in_dim if i == 0 else hidden_dim
        layers += [MemberLinear(width, hidden_dim, members, init), Mish()]
        layers[-2].hidden = i > 0
    layers.append(MemberLinear(hidden_dim, out_dim, members, init))
    return nn.Sequential(*layers)


def linear_layers(module: nn.Module) -> list[MemberLinear]:
    """The module's linear layers in construction order (the order their weights are drawn)."""
    return [m for m in module.modules() if isinstance(m, MemberLinear)]


def use_low_precision(module: nn.Module, dtype: torch.dtype | None) -> None:
    """Hidden-to-hidden products in ``dtype`` (None: fp32). The input layer and the heads
    stay fp32: they are a few percent of the products, and the heads' outputs (Q values,
    predicted noise) go straight into the losses and targets."""
    for layer in linear_layers(module):
        if layer.hidden:
            layer.product_dtype = dtype


class NoisePredictor(nn.Module):
    """eps(x_t, t, s): an MLP over [noisy action, time embedding, state]."""

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        hidden_dim: int = 256,
        time_dim: int = 16,
        members: int = 1,
    ):
        super().__init__()
        self.time_dim, self.members = time_dim, members
        self.time_mlp = nn.Sequential(
            MemberLinear(time_dim, time_dim * 2, members, init=False),
            Mish(),
            MemberLinear(time_dim * 2, time_dim, members, init=False),
        )
        in_dim = action_dim + time_dim + state_dim
        self.trunk = mlp(in_dim, hidden_dim, action_dim, members=members, init=False)
        for k in range(members):
            self.reset_member(k)

    def reset_member(self, k: int) -> None:
        """Member k's layers in construction order, as ``nn.Linear`` layers would be drawn."""
        for layer in linear_layers(self):
            layer.reset_member(k)

    def embed_time(self, t: torch.Tensor) -> torch.Tensor:
        """The learned time embedding of integer steps t: (n,) -> (n, time_dim), or per member
        (K, n) -> (K, n, time_dim)."""
        return self.time_mlp(sinusoidal_embedding(t, self.time_dim))

    def forward(self, x: torch.Tensor, time_embedding: torch.Tensor, state: torch.Tensor):
        """Predicted noise; ``time_embedding`` comes from ``embed_time`` (one row per sample)."""
        return self.trunk(torch.cat([x, time_embedding, state], dim=-1))


class TwinCritic(nn.Module):
    """Two independent Q networks over [state, action]: Linear-Mish x3, Linear(256, 1).

    Both heads of all K members run as one 2K-member MLP (head h of member k is copy h K + k).
    """

    def __init__(self, state_dim: int, action_dim: int, hidden_dim: int = 256, members: int = 1):
        super().__init__()
        self.members = members
        self.heads = mlp(state_dim + action_dim, hidden_dim, 1, members=2 * members, init=False)
        for k in range(members):
            self.reset_member(k)

    def reset_member(self, k: int) -> None:
        """Member k's Q1 then Q2, each layer by layer: the order two ``mlp``s would draw."""
        for head in range(2):
            for layer in linear_layers(self.heads):
                layer.reset_member(head * self.members + k)

    def forward(self, state: torch.Tensor, action: torch.Tensor):
        sa = torch.cat([state, action], dim=-1)  # (n, d) or (K, n, d)
        both = self.heads(sa.expand(2, *sa.shape).reshape(2 * self.members, -1, sa.shape[-1]))
        q = both.view(2, *sa.shape[:-1], 1)
        return q[0], q[1]

    def q_min(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        q1, q2 = self(state, action)
        return torch.minimum(q1, q2)
