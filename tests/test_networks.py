"""Stacked member layers compute what the released code's ``nn.Linear`` layers compute."""

import pytest
import torch
from torch import nn

from dql.networks import MemberLinear


@pytest.mark.parametrize("members", [1, 2, 8])
@pytest.mark.parametrize(
    ("rows", "width_in", "width_out"),
    [(256, 256, 3), (256, 256, 1), (100, 128, 2), (256, 256, 16), (256, 30, 256)],
    ids=["action_head", "q_head", "toy_head", "wide_16", "input_layer"],
)
def test_member_layers_match_nn_linear_bit_for_bit_with_gradients(
    members, rows, width_in, width_out
):
    """Output, input gradient, weight gradient and bias gradient of every member equal an
    ``nn.Linear`` holding that member's weights, exactly: the narrow heads included, whose
    products take nn.Linear's layout (``networks.NARROW_OUTPUTS``)."""
    torch.manual_seed(0)
    layer = MemberLinear(width_in, width_out, members)
    x = torch.randn(members, rows, width_in, requires_grad=True)
    upstream = torch.randn(members, rows, width_out)
    out = layer(x)
    grad_x, grad_w, grad_b = torch.autograd.grad(out, (x, layer.weight, layer.bias), upstream)

    for k in range(members):
        linear = nn.Linear(width_in, width_out)
        with torch.no_grad():
            linear.weight.copy_(layer.weight[k].t())
            linear.bias.copy_(layer.bias[k])
        x_k = x[k].detach().requires_grad_()
        out_k = linear(x_k)
        ref_x, ref_w, ref_b = torch.autograd.grad(
            out_k, (x_k, linear.weight, linear.bias), upstream[k]
        )
        assert torch.equal(out[k], out_k)
        assert torch.equal(grad_x[k], ref_x)
        assert torch.equal(grad_w[k], ref_w.t())
        assert torch.equal(grad_b[k], ref_b)


def test_a_plain_batch_through_a_one_member_head_matches_nn_linear():
    torch.manual_seed(1)
    layer = MemberLinear(64, 3)
    linear = nn.Linear(64, 3)
    with torch.no_grad():
        linear.weight.copy_(layer.weight[0].t())
        linear.bias.copy_(layer.bias[0])
    x = torch.randn(50, 64)
    assert torch.equal(layer(x), linear(x))
