"""The critic target (with max-Q backup) and the normalised Q loss."""

import pytest
import torch

from dql.losses import backed_up_target, critic_loss, normalised_q_loss


def test_max_q_backup_takes_the_max_per_head_then_the_min():
    # Two next states, three sampled next actions each (repeat_interleave order).
    q1 = torch.tensor([[1.0], [5.0], [2.0], [0.0], [-1.0], [3.0]])
    q2 = torch.tensor([[4.0], [1.0], [2.0], [2.5], [0.5], [-2.0]])
    reward, not_done = torch.tensor([[0.0], [1.0]]), torch.ones(2, 1)
    y = backed_up_target(reward, not_done, 0.5, q1, q2, samples_per_state=3)
    # state 0: max q1 = 5, max q2 = 4 -> 4;  state 1: max q1 = 3, max q2 = 2.5 -> 2.5
    torch.testing.assert_close(y, torch.tensor([[0.5 * 4.0], [1.0 + 0.5 * 2.5]]))
    # Taking the min per action first would give max(1, 1, 2) = 2 and max(0, -1, -2) = 0.
    assert y[0, 0] != 0.5 * 2.0


def test_single_sample_target_is_clipped_double_q_and_done_masks_it():
    q1, q2 = torch.tensor([[3.0], [7.0]]), torch.tensor([[2.0], [9.0]])
    reward, not_done = torch.tensor([[1.0], [1.0]]), torch.tensor([[1.0], [0.0]])
    y = backed_up_target(reward, not_done, 0.99, q1, q2)
    torch.testing.assert_close(y, torch.tensor([[1.0 + 0.99 * 2.0], [1.0]]))


def test_critic_loss_is_the_sum_of_both_heads_mse():
    y = torch.tensor([[1.0], [2.0]])
    loss = critic_loss(torch.tensor([[2.0], [2.0]]), torch.tensor([[1.0], [4.0]]), y)
    assert loss.item() == pytest.approx(0.5 + 2.0)


@pytest.mark.parametrize("numerator_is_q1", [True, False, torch.tensor(True), torch.tensor(False)])
def test_q_loss_divides_by_the_other_heads_detached_mean_abs(numerator_is_q1):
    q1 = torch.tensor([[2.0], [4.0]], requires_grad=True)
    q2 = torch.tensor([[-1.0], [3.0]], requires_grad=True)
    loss = normalised_q_loss(q1, q2, numerator_is_q1)
    loss.backward()
    if bool(numerator_is_q1):
        assert loss.item() == pytest.approx(-3.0 / 2.0)  # -mean(q1) / mean|q2|
        torch.testing.assert_close(q1.grad, torch.full((2, 1), -1 / (2 * 2.0)))
        assert q2.grad is None or torch.all(q2.grad == 0)  # the normaliser has no gradient
    else:
        assert loss.item() == pytest.approx(-1.0 / 3.0)  # -mean(q2) / mean|q1|
        torch.testing.assert_close(q2.grad, torch.full((2, 1), -1 / (2 * 3.0)))
        assert q1.grad is None or torch.all(q1.grad == 0)
