"""The reverse diffusion chain as one autograd node with a hand-written backward.

The actor loss backpropagates through all T denoising steps. Recorded op by op, that is
about 25 small autograd nodes per step, and on a CPU their fixed cost rivals the arithmetic
(at T = 50 with the toy's width 128 it is most of a gradient step). Here the forward runs
without recording and keeps only what the backward needs (each layer's input, the Mish
derivatives and the clamp masks); the backward walks the chain once. Weight gradients are not
formed step by step: each layer's is one product over all T steps' rows at the end.

The mathematics is exactly the step-by-step chain (``DiffusionPolicy._sample_step_by_step``),
including the zero gradient outside a clamp that ``torch.clamp`` gives;
``tests/test_chain.py`` checks values and gradients against a plain autograd implementation.

With ``low`` (bfloat16), the products of the two hidden layers, forward and backward, and
their weight gradients take bfloat16 inputs as ``networks.affine`` does; all else is fp32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dql.networks import (
    affine,
    as_linear_weight,
    linear_rows_affine,
    linear_rows_weight_grad,
    mish_with_derivative,
)


@dataclass(frozen=True)
class ChainConstants:
    """Per-step coefficients of the reverse step x_i -> x_{i-1}, indexed by step i."""

    recip: list[float]  # x0 = recip x - recipm1 eps, then clamped
    recipm1: list[float]
    mean_x0: list[float]  # x_{i-1} = mean_x0 x0 + mean_xt x (+ std noise for i > 0)
    mean_xt: list[float]
    std: list[float]
    max_action: float


def _t(weight: torch.Tensor) -> torch.Tensor:
    return weight.transpose(-2, -1)


def reverse_step(c: ChainConstants, x, eps, i: int, noise=None, want_mask: bool = False):
    """x_i -> x_{i-1}: reconstruct x0, clamp it, take the posterior mean, add noise if i > 0.

    With ``want_mask``, also where x0 was inside the clamp (where a gradient flows through
    it), as 0/1 in x's dtype; otherwise None.
    """
    x0 = (c.recip[i] * x).sub_(eps, alpha=c.recipm1[i])
    inside = None
    if want_mask:
        inside = ((x0 >= -c.max_action) & (x0 <= c.max_action)).to(x0.dtype)
    x_prev = x0.clamp_(-c.max_action, c.max_action).mul_(c.mean_x0[i]).add_(x, alpha=c.mean_xt[i])
    if i > 0 and noise is not None:
        x_prev.add_(noise, alpha=c.std[i])
    return x_prev, inside


def _product(a, b, low, out=None, scale=None):
    """a @ b (batched), in fp32 or from ``low`` copies; times ``scale`` if given; into ``out``."""
    if low is None:
        result = torch.bmm(a, b, out=out)
        return result if scale is None else result.mul_(scale)
    product = torch.bmm(a.to(low), b.to(low))
    if scale is None:
        return product.float() if out is None else out.copy_(product)
    return torch.mul(product, scale, out=out)


def run_chain(
    c: ChainConstants,
    draws,
    states,
    time_embedding,
    weights,
    keep: bool,
    low=None,
):
    """The chain's actions (K, n, A), and with ``keep`` what its backward needs.

    draws (K, T, n, A): x_T, then one noise draw per noisy step. states (K, n, S). Time
    embeddings (K, T, D) in step order 0..T-1. ``weights``: the trunk's (w1, b1, .., w4, b4),
    weights (K, in, out), biases (K, out); w1's input rows are [noisy action, time, state].
    ``low``: the hidden layers' product dtype (None: fp32).
    """
    w1, b1, w2, b2, w3, b3, w4, b4 = weights
    if low is not None:  # cast once for the whole chain
        w2, w3 = w2.to(low), w3.to(low)
    w4_rows = as_linear_weight(w4)  # the narrow output layer as nn.Linear multiplies it
    K, T, n, A = draws.shape
    D, H = time_embedding.shape[-1], w2.shape[-1]
    w1_x, w1_t, w1_s = w1[:, :A], w1[:, A : A + D], w1[:, A + D :]
    # The state's and each step's share of the first layer, computed once for the chain.
    state_part = torch.baddbmm(b1.unsqueeze(1), states, w1_s)  # (K, n, H)
    time_part = torch.bmm(time_embedding, w1_t)  # (K, T, H)
    saved = None
    if keep:  # layer inputs by chain position, written in place: (K, T, n, features)
        saved = {"x": draws.new_empty(K, T, n, A)}
        # h1 and h2 feed only ``low`` products, forward and for the weight gradients: kept
        # in ``low`` as Mish writes them, they are the very values a cast would give.
        saved |= {name: draws.new_empty(K, T, n, H, dtype=low) for name in ("h1", "h2")}
        saved["h3"] = draws.new_empty(K, T, n, H)
        saved |= {name: [] for name in ("s1", "s2", "s3", "inside")}

    def layer(z, name, k):  # Mish, its output (and derivative) kept for the backward
        if not keep:
            return mish_with_derivative(z, need_derivative=False)[0]
        h, slope = mish_with_derivative(z, out=saved[name][:, k])
        saved["s" + name[1]].append(slope)
        return h

    x = draws[:, 0]
    for k, i in enumerate(reversed(range(T))):  # chain position k denoises step i
        if keep:
            saved["x"][:, k] = x
        h = layer(torch.baddbmm(state_part, x, w1_x).add_(time_part[:, i : i + 1]), "h1", k)
        h = layer(affine(b2, h, w2, low), "h2", k)
        h = layer(affine(b3, h, w3, low), "h3", k)
        eps = linear_rows_affine(b4, h, w4_rows)
        x, inside = reverse_step(c, x, eps, i, draws[:, k + 1] if i > 0 else None, keep)
        if keep:
            saved["inside"].append(inside)
    if keep:
        saved["final_inside"] = ((x >= -c.max_action) & (x <= c.max_action)).to(x.dtype)
        saved["w4_rows"] = w4_rows  # the backward multiplies with the same copy
    return x.clamp_(-c.max_action, c.max_action), saved


class ReverseChain(torch.autograd.Function):
    """``run_chain`` as one autograd node: gradients for the time embeddings and weights."""

    @staticmethod
    def forward(ctx, c, low, draws, states, time_embedding, *weights):
        actions, saved = run_chain(c, draws, states, time_embedding, weights, True, low)
        kept = [saved[name] for name in ("x", "h1", "h2", "h3", "final_inside")]
        per_step = [t for name in ("s1", "s2", "s3", "inside") for t in saved[name]]
        w1_to_w3 = weights[0:6:2]  # the output layer's weight is kept as its (out, in) copy
        ctx.save_for_backward(states, time_embedding, *w1_to_w3, saved["w4_rows"], *kept, *per_step)
        ctx.constants, ctx.low = c, low
        return actions

    @staticmethod
    def backward(ctx, grad_actions):
        states, time_embedding, w1, w2, w3, w4_rows, xs, h1, h2, h3, final_inside, *per_step = (
            ctx.saved_tensors
        )
        c, low = ctx.constants, ctx.low
        K, T, n, A = xs.shape
        w2t, w3t = _t(w2), _t(w3)
        if low is not None:  # cast once for the whole chain
            w2t, w3t = w2t.to(low), w3t.to(low)
        s1, s2, s3, inside = (per_step[j * T : (j + 1) * T] for j in range(4))
        D = time_embedding.shape[-1]
        w1_x, w1_t, w1_s = w1[:, :A], w1[:, A : A + D], w1[:, A + D :]
        # Gradients with respect to each layer's output before its activation, by position.
        g_z1, g_z2, g_z3 = (torch.empty_like(h3) for _ in range(3))  # fp32
        g_eps = torch.empty_like(xs)
        g = grad_actions * final_inside
        for k in reversed(range(T)):
            i = T - 1 - k
            g_x0 = (g * c.mean_x0[i]).mul_(inside[k])
            torch.mul(g_x0, -c.recipm1[i], out=g_eps[:, k])
            torch.bmm(g_eps[:, k], w4_rows, out=g_z3[:, k]).mul_(s3[k])
            _product(g_z3[:, k], w3t, low, out=g_z2[:, k], scale=s2[k])
            _product(g_z2[:, k], w2t, low, out=g_z1[:, k], scale=s1[k])
            g_x = g_x0.mul_(c.recip[i]).add_(g, alpha=c.mean_xt[i])
            g = torch.baddbmm(g_x, g_z1[:, k], _t(w1_x))

        def rows(t):  # every position's rows as one (K, T n, features) matrix
            return t.reshape(K, T * n, t.shape[-1])

        g1_by_step = g_z1.sum(dim=2).flip(1)  # (K, T, H) in step order 0..T-1
        g1_by_sample = g_z1.sum(dim=1)  # (K, n, H)
        grad_w1 = torch.cat(
            [
                torch.bmm(_t(rows(xs)), rows(g_z1)),
                torch.bmm(_t(time_embedding), g1_by_step),
                torch.bmm(_t(states), g1_by_sample),
            ],
            dim=1,
        )
        grads = [grad_w1, g1_by_sample.sum(dim=1)]
        for h, g_next, dtype in ((h1, g_z2, low), (h2, g_z3, low)):
            grads += [_product(_t(rows(h)), rows(g_next), dtype), g_next.sum(dim=(1, 2))]
        grads += [linear_rows_weight_grad(rows(g_eps), rows(h3)), g_eps.sum(dim=(1, 2))]
        grad_time = torch.bmm(g1_by_step, _t(w1_t)) if ctx.needs_input_grad[4] else None
        grad_states = torch.bmm(g1_by_sample, _t(w1_s)) if ctx.needs_input_grad[3] else None
        return None, None, None, grad_states, grad_time, *grads
