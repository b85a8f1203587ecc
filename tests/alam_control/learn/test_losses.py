"""Hand-computed checks of the loss functions (DESIGN.md section 3)."""

from __future__ import annotations

import pytest
import torch

from alam_control.learn import losses

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


@pytest.mark.parametrize(
    "lam, g, rho, expected",
    [
        # (max(0, 1 + 2*0.5)^2 - 1^2) / (2*2) = (4 - 1) / 4
        (1.0, 0.5, 2.0, 0.75),
        # lam + rho g = -1 < 0: (0 - 1) / 4
        (1.0, -1.0, 2.0, -0.25),
        # (0.7^2 - 0.5^2) / 2
        (0.5, 0.2, 1.0, 0.12),
        # lam = 0, satisfied constraint: no penalty at all
        (0.0, -1.0, 1.0, 0.0),
        # lam = 0, violated: the pure quadratic penalty rho g^2 / 2 = 3 * 0.25 / 2
        (0.0, 0.5, 3.0, 0.375),
    ],
)
def test_phr_penalty_values(lam: float, g: float, rho: float, expected: float) -> None:
    assert losses.phr_penalty(t(lam), t(g), rho).item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    "lam, g, rho, expected",
    [(1.0, 0.5, 2.0, 2.0), (1.0, -1.0, 2.0, 0.0), (0.5, 0.2, 1.0, 0.7), (0.3, -0.1, 1.0, 0.2)],
)
def test_dual_target_values(lam: float, g: float, rho: float, expected: float) -> None:
    assert losses.dual_target(t(lam), t(g), rho).item() == pytest.approx(expected, abs=1e-12)


def test_phr_penalty_is_elementwise_and_keeps_shape() -> None:
    lam = torch.tensor([[0.0, 1.0], [2.0, 0.5]])
    g = torch.tensor([[0.5, -2.0], [0.1, 0.0]])
    out = losses.phr_penalty(lam, g, 1.5)
    assert out.shape == g.shape
    for i in range(2):
        for j in range(2):
            assert out[i, j] == pytest.approx(losses.phr_penalty(lam[i, j], g[i, j], 1.5).item())


def test_actor_penalty_gradient_is_dual_target_times_dg() -> None:
    """d psi_rho(lam, g(a)) / da = max(0, lam + rho g) * dg/da: the policy sees the updated multiplier."""
    torch.manual_seed(0)
    rho = 2.0
    lam = torch.tensor([0.0, 0.3, 1.0, 2.0], dtype=torch.float64)
    w = 0.1 * torch.randn(4, 3, dtype=torch.float64)
    a = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    # Offsets put samples 0 and 2 past the kink (lam + rho g > 0) and 1 and 3 before it (gradient 0).
    g = (w * a).sum(-1) + torch.tensor([1.0, -2.0, 0.5, -3.0], dtype=torch.float64)  # dg/da = w
    losses.phr_penalty(lam, g, rho).sum().backward()
    expected = losses.dual_target(lam, g.detach(), rho)[:, None] * w
    torch.testing.assert_close(a.grad, expected)
    kink = lam + rho * g.detach()
    assert (kink[[0, 2]] > 0).all() and (kink[[1, 3]] < 0).all()  # both branches exercised


def test_phr_penalty_gradient_in_g_on_both_sides_of_the_kink() -> None:
    lam = torch.tensor([1.0, 1.0], dtype=torch.float64)
    g = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
    losses.phr_penalty(lam, g, 2.0).sum().backward()
    torch.testing.assert_close(g.grad, t(2.0, 0.0))


def test_soft_q_target_bootstraps_on_truncation_not_termination() -> None:
    reward, next_logp = t(1.0, 1.0), t(-1.0, -1.0)
    next_q = torch.stack([t(10.0, 10.0), t(8.0, 12.0)])  # min = (8, 10)
    y = losses.soft_q_target(reward, t(0.0, 1.0), next_q, next_logp, torch.tensor(0.5, dtype=torch.float64), 0.9)
    # r + 0.9 * (8 + 0.5) for the live sample; r only for the terminated one
    torch.testing.assert_close(y, t(1.0 + 0.9 * 8.5, 1.0))


def test_soft_q_target_takes_the_min_twin_and_is_detached() -> None:
    next_q = torch.stack([t(1.0, 5.0, 2.0), t(3.0, 4.0, -1.0)]).requires_grad_(True)  # min = (1, 4, -1)
    y = losses.soft_q_target(t(0.5, 0.0, -1.0), t(0.0, 0.0, 0.0), next_q, t(2.0, -2.0, 0.0), t(0.25), 0.5)
    # r + 0.5 * (min - 0.25 * logp)
    torch.testing.assert_close(y, t(0.5 + 0.5 * 0.5, 0.5 * 4.5, -1.0 - 0.5))
    assert not y.requires_grad


def test_cost_q_target_first_violation_by_hand() -> None:
    """Default kind: y_c = c + (1 - c) gamma_c (1 - t) Q_c', c clamped to [0, 1], target clipped to [0, 1]."""
    cost = t(0.0, 1.0, 0.5, 0.5, 1.5, -0.5, 0.0, 0.0, 0.25)
    terminated = t(0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    next_qc = t(0.4, 0.9, 0.6, 0.6, 0.2, 0.4, 2.5, -1.0, 0.8).requires_grad_(True)
    expected = t(0.2, 1.0, 0.65, 0.5, 1.0, 0.2, 1.0, 0.0, 0.25 + 0.75 * 0.5 * 0.8)
    y = losses.cost_q_target(cost, terminated, next_qc, 0.5)
    torch.testing.assert_close(y, expected)
    assert not y.requires_grad
    unclipped = losses.cost_q_target(cost, terminated, next_qc, 0.5, "first_violation", clip=False)
    torch.testing.assert_close(unclipped[6:8], t(1.25, -0.5))
    torch.testing.assert_close(unclipped[:6], expected[:6])


def test_cost_q_target_sum_is_clipped_at_zero_only() -> None:
    y = losses.cost_q_target(t(0.0, 1.0, 0.5), t(0.0, 0.0, 1.0), t(-0.5, 2.0, 3.0), 0.5, "sum", clip=True)
    torch.testing.assert_close(y, t(0.0, 2.0, 0.5))
    y = losses.cost_q_target(t(0.0, 1.0, 0.5), t(0.0, 0.0, 1.0), t(-0.5, 2.0, 3.0), 0.5, "sum", clip=False)
    torch.testing.assert_close(y, t(-0.25, 2.0, 0.5))


def test_cost_q_target_rejects_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown cost critic kind 'max'"):
        losses.cost_q_target(t(0.0), t(0.0), t(0.0), 0.5, "max")


def test_critic_actor_alpha_losses() -> None:
    q = torch.stack([t(1.0, 2.0), t(3.0, 4.0)])
    assert losses.critic_loss(q, t(1.0, 1.0)).item() == pytest.approx((0 + 1) / 2 + (4 + 9) / 2)
    loss = losses.actor_loss(t(-1.0, -2.0), q, t(0.5, 0.0), torch.tensor(0.1, dtype=torch.float64))
    # mean(0.1*logp - min(q) + penalty) = mean(-0.1 - 1 + 0.5, -0.2 - 2 + 0)
    assert loss.item() == pytest.approx(((-0.6) + (-2.2)) / 2)
    log_alpha = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    losses.alpha_loss(log_alpha, t(-0.5, -1.5), target_entropy=-1.0).backward()
    # d/dlog_alpha = -mean(logp + target_entropy) = -mean(-1.5, -2.5) = 2: entropy above target -> lower alpha
    assert log_alpha.grad.item() == pytest.approx(2.0)


def test_critic_loss_sums_heads_of_per_head_mean_squared_error() -> None:
    q = torch.stack([t(1.0, 2.0), t(3.0, 4.0), t(0.0, 0.5)])
    target = torch.stack([t(1.0, 1.0), t(1.0, 1.0), t(1.0, 0.0)])
    assert losses.critic_loss(q, target).item() == pytest.approx(0.5 + 6.5 + (1.0 + 0.25) / 2)


def test_linear_penalty() -> None:
    torch.testing.assert_close(losses.linear_penalty(t(2.0, 0.5), t(-1.0, 3.0)), t(-2.0, 1.5))


def test_multiplier_regression_loss_is_the_cross_entropy_of_lambda_over_its_cap() -> None:
    """BCE(sigmoid(z), clamp(target / lambda_max, 0, 1)): value, logit grad (sigma(z) - frac) / B, no target grad."""
    z = t(0.0, 2.0, -1.0, 0.0).requires_grad_(True)
    target = t(1.5, 1.0, 5.0, -1.0).requires_grad_(True)
    frac = t(0.5, 1.0 / 3.0, 1.0, 0.0)  # lambda_max = 3; targets outside [0, 3] clamp
    loss = losses.multiplier_regression_loss(z, target, 3.0)
    p = torch.sigmoid(z.detach())
    expected = -(frac * p.log() + (1 - frac) * (1 - p).log()).mean()
    assert loss.item() == pytest.approx(expected.item(), abs=1e-12)
    loss.backward()
    torch.testing.assert_close(z.grad, (p - frac) / 4)
    assert target.grad is None


def test_multiplier_ascent_loss() -> None:
    lam = t(1.0, 2.0).requires_grad_(True)
    g = t(0.4, -0.2).requires_grad_(True)
    loss = losses.multiplier_ascent_loss(lam, g)
    assert loss.item() == pytest.approx(-(0.4 - 0.4) / 2)
    loss.backward()
    torch.testing.assert_close(lam.grad, t(-0.2, 0.1))  # descent raises lam where g > 0
    assert g.grad is None


def test_only_the_regression_can_raise_a_multiplier_from_zero() -> None:
    """At lambda ~0 (logit -30, cap 10) on a violating state (g = 1, dual target 1): the ascent's gradient in the
    logit is lambda (1 - lambda / cap) g ~ 1e-12, the regression's (lambda - target) / cap = -0.1. This is the
    walker's `alam_ascent` in docs/results.md: its multiplier fell to ~0 early and never rose again."""
    cap, z = 10.0, t(-30.0).requires_grad_(True)
    losses.multiplier_ascent_loss(cap * torch.sigmoid(z), t(1.0)).backward()
    assert 0.0 < -z.grad.item() < 1e-11
    z.grad = None
    losses.multiplier_regression_loss(z, t(1.0), cap).backward()
    assert z.grad.item() == pytest.approx(-0.1, rel=1e-6)


def test_the_design_name_is_this_module() -> None:
    # DESIGN.md section 3 fixes `alam_control.losses.phr_penalty` / `.dual_target` for acceptance checks.
    import alam_control.losses
    from alam_control.losses import dual_target, phr_penalty

    assert alam_control.losses is losses
    assert (phr_penalty, dual_target) == (losses.phr_penalty, losses.dual_target)
