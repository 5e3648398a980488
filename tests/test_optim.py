"""Learning-rate schedules, the EMA schedule, Polyak averaging and gradient clipping."""

import math

import pytest
import torch

from dql.optim import (
    adam_step,
    adam_update_,
    clip_grad_norm,
    ema_action,
    forget_gradients,
    lr_factor,
    polyak_,
)


def test_released_cosine_in_effect_never_decays():
    # 2000 epochs of 1000 steps, evaluated (and the scheduler stepped) every 50 epochs.
    args = dict(num_epochs=2000, steps_per_epoch=1000, eval_every=50)
    assert lr_factor("released_cosine", 0, **args) == 1.0
    assert lr_factor("released_cosine", 49_999, **args) == 1.0
    last = lr_factor("released_cosine", 2_000_000 - 1, **args)  # 39 scheduler steps
    assert last == pytest.approx(0.5 * (1 + math.cos(math.pi * 39 / 2000)))
    assert last > 0.998


def test_true_cosine_decays_per_step_to_zero():
    args = dict(num_epochs=10, steps_per_epoch=100, eval_every=5)
    assert lr_factor("cosine", 0, **args) == 1.0
    assert lr_factor("cosine", 500, **args) == pytest.approx(0.5)
    assert lr_factor("cosine", 1, **args) < 1.0
    assert lr_factor("cosine", 1000, **args) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor("constant", 999, **args) == 1.0


def test_released_ema_schedule_never_touches_the_copy_before_step_1000():
    actions = [ema_action(s, 1000, 5, "released") for s in range(0, 1011)]
    assert set(actions[:1000]) == {"skip"}
    assert [s for s in range(1000, 1011) if actions[s] == "average"] == [1000, 1005, 1010]


def test_synced_ema_schedule_copies_the_actor_every_5_steps_before_1000():
    actions = {s: ema_action(s, 1000, 5, "synced") for s in range(0, 1011)}
    assert [s for s, a in actions.items() if a == "sync"] == list(range(0, 1000, 5))
    assert [s for s, a in actions.items() if a == "average"] == [1000, 1005, 1010]


def test_polyak_moves_the_target_by_rate():
    target, source = [torch.tensor([1.0, 2.0])], [torch.tensor([3.0, 6.0])]
    polyak_(target, source, 0.25)
    torch.testing.assert_close(target[0], torch.tensor([1.5, 3.0]))


def test_grad_clipping_returns_the_norm_before_clipping():
    p = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.tensor([3.0, 4.0])
    assert clip_grad_norm([p], 1.0).item() == pytest.approx(5.0)
    torch.testing.assert_close(p.grad, torch.tensor([0.6, 0.8]), atol=1e-6, rtol=0)
    p.grad = torch.tensor([3.0, 4.0])
    assert clip_grad_norm([p], 0.0).item() == pytest.approx(5.0)  # 0 disables clipping
    torch.testing.assert_close(p.grad, torch.tensor([3.0, 4.0]))


@pytest.mark.parametrize("fused", [True, False])
def test_adam_step_is_adam_step_bit_for_bit_as_the_rate_changes(fused):
    """The direct fused call updates weights, moments and step counts exactly as
    ``Adam.step`` does, from the first step (which creates the state) on, with the learning
    rate changed between steps as the agent's schedule changes it."""
    torch.manual_seed(0)
    shapes = [(2, 30, 256), (2, 256), (2, 256, 1), (2, 1)]
    initial = [torch.randn(s) for s in shapes]
    copies = [[torch.nn.Parameter(t.clone()) for t in initial] for _ in range(2)]
    optimizers = [torch.optim.Adam(ps, lr=3e-4, fused=fused, foreach=not fused) for ps in copies]
    for step in range(6):
        grads = [torch.randn(s) for s in shapes]
        for params, optimizer, take_step in zip(
            copies, optimizers, (lambda o: o.step(), adam_step), strict=True
        ):
            forget_gradients(params)
            assert all(p.grad is None for p in params)
            for p, g in zip(params, grads, strict=True):
                p.grad = g.clone()
            optimizer.param_groups[0]["lr"] = 3e-4 * (1 - step / 10)
            take_step(optimizer)
    for reference, direct in zip(*copies, strict=True):
        assert torch.equal(reference, direct)
        ref_state, direct_state = optimizers[0].state[reference], optimizers[1].state[direct]
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(ref_state[key], direct_state[key])
    assert not torch.equal(copies[1][0], initial[0])  # it did move the weights


@pytest.mark.parametrize("compiled", [False, True])
def test_adam_update_is_adam_to_float_rounding_as_the_rate_changes(compiled):
    """The compiled step's Adam (tensor arithmetic, rate as a tensor) carries on from the
    state a fused ``Adam.step`` made, and keeps weights, moments and step counts within
    float rounding of ``Adam.step`` for 6 steps of a changing rate, eagerly and compiled."""
    torch.manual_seed(0)
    shapes = [(2, 30, 256), (2, 256), (2, 256, 1), (2, 1)]
    initial = [torch.randn(s) for s in shapes]
    copies = [[torch.nn.Parameter(t.clone()) for t in initial] for _ in range(2)]
    optimizers = [torch.optim.Adam(ps, lr=3e-4, fused=True) for ps in copies]
    update = torch.compile(adam_update_, fullgraph=True) if compiled else adam_update_
    lr = torch.zeros(())
    for step in range(6):
        grads = [torch.randn(s) for s in shapes]
        rate = 3e-4 * (1 - step / 10)
        for p, q, g in zip(*copies, grads, strict=True):
            p.grad, q.grad = g.clone(), g.clone()
        optimizers[0].param_groups[0]["lr"] = rate
        optimizers[0].step()
        if step == 0:  # the first step makes the state, as the agent's eager first step does
            optimizers[1].step()
            continue
        lr.fill_(rate)
        with torch.no_grad():
            state = [optimizers[1].state[p] for p in copies[1]]
            update(copies[1], grads, state, lr, optimizers[1])
    for reference, tensor_adam in zip(*copies, strict=True):
        torch.testing.assert_close(tensor_adam, reference, rtol=1e-6, atol=1e-7)
        ref_state, state = optimizers[0].state[reference], optimizers[1].state[tensor_adam]
        assert state["step"].item() == ref_state["step"].item() == 6
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(state[key], ref_state[key], rtol=1e-6, atol=1e-7)
    assert not torch.equal(copies[1][0], initial[0])  # it did move the weights
