"""The reverse chain (fused, and step by step) against a plain autograd implementation."""

import pytest
import torch

from dql.diffusion import DiffusionPolicy
from dql.networks import linear_layers, sinusoidal_embedding


def reference_sample(policy: DiffusionPolicy, states: torch.Tensor, draws: torch.Tensor):
    """The chain written op by op from the paper, member by member, recorded by autograd."""
    c, m = policy.coef, policy.max_action
    trunk, time_layers = linear_layers(policy.model.trunk), linear_layers(policy.model.time_mlp)
    members = []
    for k in range(policy.members):

        def linear(x, layer, k=k):
            return x @ layer.weight[k] + layer.bias[k]

        mish = torch.nn.functional.mish
        x = draws[k, 0]
        for position, i in enumerate(reversed(range(policy.T))):
            temb = sinusoidal_embedding(torch.full((len(x),), i), policy.model.time_dim)
            temb = linear(mish(linear(temb, time_layers[0])), time_layers[1])
            h = torch.cat([x, temb, states[k]], dim=-1)
            for layer in trunk[:-1]:
                h = mish(linear(h, layer))
            eps = linear(h, trunk[-1])
            x0 = (c.sqrt_recip_alpha_bar[i] * x - c.sqrt_recipm1_alpha_bar[i] * eps).clamp(-m, m)
            x = c.posterior_mean_coef1[i] * x0 + c.posterior_mean_coef2[i] * x
            if i > 0:
                x = x + c.posterior_std[i] * draws[k, position + 1]
        members.append(x.clamp(-m, m))
    return torch.stack(members)


@pytest.mark.parametrize("path", ["fused", "step_by_step"])
@pytest.mark.parametrize(("members", "T"), [(1, 5), (2, 3), (1, 12)])
def test_chain_matches_autograd_in_values_and_every_gradient(members, T, path):
    """Both paths: the fused node; step by step (taken while torch.compile traces the chain,
    and when the model is compiled)."""
    torch.manual_seed(0)
    policy = DiffusionPolicy(4, 3, T=T, hidden_dim=32, members=members, max_action=0.7)
    policy.fused_chain = path != "step_by_step"
    with torch.no_grad():  # a biased head so that both clamps cut some entries
        policy.model.trunk[-1].bias.add_(torch.tensor([1.5, -1.5, 0.0]))
    states = torch.randn(members, 16, 4, requires_grad=True)
    draws = policy.chain_draws((members, 16), torch.Generator().manual_seed(1))
    weights = torch.randn(members, 16, 3)  # a loss that weighs every action entry differently

    actions = policy.sample(states, draws=draws)
    (actions * weights).sum().backward()
    grads = [p.grad.clone() for p in policy.parameters()]
    state_grad, states.grad = states.grad, None
    policy.zero_grad()
    reference = reference_sample(policy, states, draws)
    (reference * weights).sum().backward()

    clamped = (reference.abs() == 0.7).float().mean()
    assert 0.05 < clamped < 0.95, "the test must exercise the clamp"
    torch.testing.assert_close(actions, reference, rtol=1e-5, atol=1e-6)
    for (name, p), grad in zip(policy.named_parameters(), grads, strict=True):
        torch.testing.assert_close(grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)
        assert p.grad.abs().sum() > 0, name
    torch.testing.assert_close(state_grad, states.grad, rtol=1e-4, atol=1e-6)


def test_plain_batches_and_no_grad_sampling_take_the_same_path():
    torch.manual_seed(0)
    policy = DiffusionPolicy(4, 2, T=4, hidden_dim=16)
    states = torch.randn(8, 4)
    draws = policy.chain_draws((8,), torch.Generator().manual_seed(2))
    with torch.no_grad():
        quiet = policy.sample(states, draws=draws)
    recorded = policy.sample(states, draws=draws)
    assert recorded.requires_grad and not quiet.requires_grad
    assert torch.equal(quiet, recorded.detach())
    torch.testing.assert_close(quiet, reference_sample(policy, states[None], draws[None])[0])
