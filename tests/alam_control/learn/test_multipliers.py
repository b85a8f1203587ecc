"""Each multiplier strategy moves lambda in the right direction on a constructed batch."""

from __future__ import annotations

import pytest
import torch

from alam_control import config as config_lib
from alam_control.learn.multipliers import (
    NetworkMultiplier,
    NoMultiplier,
    PIDLagrange,
    ScalarLagrange,
    build_multiplier,
    constraint_range,
)

OBS_DIM = 3
D = 0.2  # cost threshold


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make(algo: str, **multiplier) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = config_lib.from_dict({"algo": {"name": algo}, "multiplier": {"hidden": [16, 16], **multiplier}})
    return build_multiplier(cfg, OBS_DIM, D)


def dual_steps(strategy, obs: torch.Tensor, g: torch.Tensor, n: int) -> None:
    """n dual steps as the agent takes them: scalar strategies step in place, networks through their loss."""
    groups = strategy.param_groups()
    optimizer = torch.optim.Adam(groups) if groups else None
    for _ in range(n):
        lam = strategy.multipliers(obs, for_update=True)
        loss, _ = strategy.dual_loss(lam, obs, g)
        assert (loss is None) == (optimizer is None)
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        strategy.after_step()


@pytest.mark.parametrize("algo", ["sac_lag", "sac_pid_lag"])
def test_scalar_multipliers_rise_on_violation_and_fall_to_zero_when_satisfied(algo: str) -> None:
    strategy = make(algo, scalar_lr=0.1, pid_kp=0.0)
    obs = torch.zeros(8, OBS_DIM)
    dual_steps(strategy, obs, torch.full((8,), 0.5), 10)
    high = strategy.multipliers(obs)[0].item()
    assert high == pytest.approx(0.5, rel=1e-5)  # 10 steps of 0.1 * 0.5
    dual_steps(strategy, obs, torch.full((8,), -0.5), 20)
    assert strategy.multipliers(obs)[0].item() == 0.0  # projected onto lambda >= 0


def test_pid_proportional_term_reacts_at_once() -> None:
    strategy = make("sac_pid_lag", scalar_lr=0.0, pid_kp=2.0)
    assert isinstance(strategy, PIDLagrange)
    obs = torch.zeros(4, OBS_DIM)
    dual_steps(strategy, obs, torch.full((4,), 0.25), 1)
    assert strategy.multipliers(obs)[0].item() == pytest.approx(0.5)


@pytest.mark.parametrize(
    "algo, ablation",
    [
        ("fac", {}),
        ("sac_alam", {}),
        ("sac_alam", {"actor_penalty": "linear"}),  # penalty off, regression on
        ("sac_alam", {"multiplier_update": "ascent"}),  # penalty on, dual ascent
    ],
)
def test_network_multiplier_is_state_wise(algo: str, ablation: dict) -> None:
    """lambda rises where g > 0 and falls where g < 0, on two clusters of states in one batch."""
    torch.manual_seed(0)
    cfg = config_lib.from_dict(
        {
            "algo": {"name": algo, **ablation},
            "multiplier": {"hidden": [32, 32], "lr": 1e-2, "init_bias": 0.0, "target_tau": 0.1},
        }
    )
    strategy = build_multiplier(cfg, OBS_DIM, D)
    assert isinstance(strategy, NetworkMultiplier)
    obs = torch.cat([torch.full((16, OBS_DIM), 1.0), torch.full((16, OBS_DIM), -1.0)])
    g = torch.cat([torch.full((16,), 0.5), torch.full((16,), -0.5)])
    before = strategy.multipliers(obs)
    dual_steps(strategy, obs, g, 30)
    after = strategy.multipliers(obs)
    assert (after[:16] > before[:16] + 0.05).all(), (before[:16].mean(), after[:16].mean())
    assert (after[16:] < before[16:] - 0.05).all(), (before[16:].mean(), after[16:].mean())
    assert (after >= 0).all()


def test_alam_regression_converges_to_the_method_of_multipliers_fixed_point() -> None:
    """With g = 0 the dual target is lambda_phibar itself; with g < 0 everywhere lambda decays to ~0."""
    torch.manual_seed(0)
    cfg = config_lib.from_dict({"multiplier": {"hidden": [16], "lr": 2e-2, "init_bias": 1.0, "target_tau": 1.0}})
    strategy = build_multiplier(cfg, OBS_DIM, D)
    obs = torch.randn(64, OBS_DIM)
    dual_steps(strategy, obs, torch.full((64,), -1.0), 300)
    assert strategy.multipliers(obs).max().item() < 0.05


def test_penalty_kinds() -> None:
    lam, g = torch.tensor([1.0, 1.0]), torch.tensor([0.5, -1.0])
    alam = make("sac_alam", penalty_coef=2.0)
    torch.testing.assert_close(alam.penalty(lam, g), torch.tensor([0.75, -0.25]))
    fac = make("fac")
    torch.testing.assert_close(fac.penalty(lam, g), torch.tensor([0.5, -1.0]))
    assert isinstance(make("sac_lag"), ScalarLagrange)
    assert not make("sac").needs_cost_critic


def test_no_multiplier_is_inert() -> None:
    strategy = make("sac")
    assert type(strategy) is NoMultiplier and not strategy.needs_cost_critic
    obs, g = torch.randn(4, OBS_DIM), torch.randn(4)
    assert torch.equal(strategy.multipliers(obs, for_update=True), torch.zeros(4))
    assert torch.equal(strategy.penalty(torch.ones(4), g), torch.zeros(4))
    assert strategy.dual_loss(torch.ones(4), obs, g) == (None, {})
    assert strategy.param_groups() == []
    strategy.after_step()


def test_scalar_step_is_projected_onto_zero_to_lambda_max_and_returns_a_copy() -> None:
    strategy = make("sac_lag", scalar_lr=1.0, scalar_init=0.5, lambda_max=2.0)
    obs = torch.zeros(4, OBS_DIM)
    lam = strategy.multipliers(obs, for_update=True)
    assert strategy.param_groups() == []
    loss, metrics = strategy.dual_loss(lam, obs, torch.tensor([0.5, 1.0, 1.5, 1.0]))  # + 1.0
    assert loss is None and metrics["lambda"].item() == pytest.approx(1.5)
    assert torch.equal(lam, torch.full((4,), 0.5))  # the lambda the actor already used is unchanged
    strategy.dual_loss(lam, obs, torch.full((4,), 3.0))
    assert strategy.multipliers(obs)[0].item() == 2.0  # capped at lambda_max
    torch.testing.assert_close(strategy.penalty(torch.tensor([2.0]), torch.tensor([-0.25])), torch.tensor([-0.5]))


def test_pid_terms_by_hand() -> None:
    """lambda = clip(Kp e + I + Kd max(0, ema_t - ema_{t-1}), 0, lambda_max), I += Ki e clipped, e = mean g."""
    strategy = make("sac_pid_lag", scalar_lr=0.5, scalar_init=0.25, pid_kp=2.0, pid_kd=4.0, pid_delta_decay=0.75)
    obs = torch.zeros(2, OBS_DIM)
    _, m = strategy.dual_loss(None, obs, torch.tensor([0.2, 0.6]))  # e = 0.4
    # I = 0.25 + 0.5 * 0.4 = 0.45; ema 0 -> 0.25 * 0.4 = 0.1; lambda = 2 * 0.4 + 0.45 + 4 * 0.1
    assert m["pid_integral"].item() == pytest.approx(0.45)
    assert m["lambda"].item() == pytest.approx(0.8 + 0.45 + 0.4)
    _, m = strategy.dual_loss(None, obs, torch.tensor([0.0, -0.1]))  # e = -0.05, ema 0.1 -> 0.0625 (falling: no D)
    assert m["pid_integral"].item() == pytest.approx(0.425)
    assert m["lambda"].item() == pytest.approx(-0.1 + 0.425)
    _, m = strategy.dual_loss(None, obs, torch.tensor([-5.0, -5.0]))  # I and lambda projected onto >= 0
    assert m["pid_integral"].item() == 0.0 and m["lambda"].item() == 0.0
    capped = make("sac_pid_lag", scalar_lr=10.0, pid_kp=1.0, lambda_max=3.0)
    _, m = capped.dual_loss(None, obs, torch.ones(2))  # I = min(10, 3); lambda = min(1 + 3, 3)
    assert m["pid_integral"].item() == 3.0 and m["lambda"].item() == 3.0


@pytest.mark.parametrize("critic, expected", [("first_violation", 1.0 - D), ("sum", 1.0 / (1.0 - 0.9) - D)])
def test_constraint_range_and_default_leak(critic: str, expected: float) -> None:
    cfg = config_lib.from_dict(
        {"cost": {"critic": critic, "gamma": 0.9}, "multiplier": {"penalty_coef": 2.0, "lambda_max": 100.0}}
    )
    assert constraint_range(cfg, D) == pytest.approx(expected)
    strategy = build_multiplier(cfg, OBS_DIM, D)
    assert strategy.decay == pytest.approx(min(2.0 * expected / 100.0, 0.5))  # eta = rho g_max / lambda_max
    capped = config_lib.from_dict({"cost": {"critic": critic}, "multiplier": {"lambda_max": 1.0}})
    assert build_multiplier(capped, OBS_DIM, D).decay == 0.5  # the default leak is capped at 0.5
    explicit = config_lib.from_dict({"multiplier": {"dual_decay": 0.0}})
    assert build_multiplier(explicit, OBS_DIM, D).decay == 0.0  # 0 = the classical method of multipliers


def test_build_multiplier_defaults_and_ablation_switches() -> None:
    fac, alam = make("fac"), make("sac_alam")
    assert (fac.penalty_kind, fac.update_kind) == ("linear", "ascent")
    assert (alam.penalty_kind, alam.update_kind) == ("phr", "regression")
    cfg = config_lib.from_dict({"algo": {"name": "sac_alam", "actor_penalty": "linear", "multiplier_update": "ascent"}})
    ablated = build_multiplier(cfg, OBS_DIM, D)
    assert (ablated.penalty_kind, ablated.update_kind) == ("linear", "ascent")
    assert type(make("sac_pid_lag")) is PIDLagrange and type(make("sac_lag")) is ScalarLagrange


def test_network_multiplier_output_range_grad_routing_and_param_group() -> None:
    strategy = make("sac_alam", lambda_max=3.0, init_bias=0.0, lr=0.123)
    obs = 10 * torch.randn(16, OBS_DIM)
    lam = strategy(obs)
    assert lam.shape == (16,) and (lam >= 0).all() and (lam <= 3.0).all()
    torch.testing.assert_close(lam, 3.0 * torch.sigmoid(strategy.net.logits(obs)))
    # regression takes its gradient through the logits: lambda itself never needs one
    assert not strategy.multipliers(obs, for_update=True).requires_grad
    assert not strategy.multipliers(obs).requires_grad
    fac = make("fac")
    assert fac.multipliers(obs, for_update=True).requires_grad and not fac.multipliers(obs).requires_grad
    (group,) = strategy.param_groups()
    assert group["lr"] == 0.123 and group["params"] == list(strategy.net.parameters())
    assert not any(p.requires_grad for p in strategy.target.parameters())  # lambda_phibar: no gradient, no graph


def test_regression_dual_loss_by_hand() -> None:
    """target = min(max(0, (1 - eta) lambda_phibar + rho g), lambda_max); d loss / d z = (sigma(z) - target/cap) / B."""
    strategy = make("sac_alam", lambda_max=2.0, init_bias=0.0, penalty_coef=2.0, dual_decay=0.5, target_tau=0.5)
    with torch.no_grad():
        for p in strategy.target.parameters():  # lambda_phibar differs from lambda_phi
            p.mul_(1.5)
    obs = torch.randn(4, OBS_DIM)
    g = torch.tensor([0.25, -1.0, 1.0, 0.0])
    lam_bar = strategy.target(obs).detach()
    target = (0.5 * lam_bar + 2.0 * g).clamp(0.0, 2.0)
    assert target[1] == 0 and target[2] == 2.0 and 0 < target[0] < 2.0  # all three branches
    lam = strategy.multipliers(obs, for_update=True)
    loss, metrics = strategy.dual_loss(lam, obs, g)
    loss.backward()
    z = strategy.net.logits(obs).detach().requires_grad_(True)
    expected_loss = torch.nn.functional.binary_cross_entropy_with_logits(z, target / 2.0)
    expected_loss.backward()
    assert metrics["dual_target"].item() == pytest.approx(target.mean().item(), abs=1e-6)
    assert metrics["multiplier_loss"].item() == pytest.approx(expected_loss.item(), abs=1e-6)
    assert metrics["lambda"].item() == pytest.approx(lam.mean().item(), abs=1e-6)
    last = strategy.net.net[-1]
    torch.testing.assert_close(last.bias.grad, z.grad.sum(0, keepdim=True))


def test_ascent_dual_loss_and_after_step() -> None:
    strategy = make("fac", target_tau=0.25)
    obs, g = torch.randn(4, OBS_DIM), torch.tensor([0.5, -0.5, 1.0, 0.0])
    lam = strategy.multipliers(obs, for_update=True)
    loss, metrics = strategy.dual_loss(lam, obs, g)
    assert loss.item() == pytest.approx(-(lam * g).mean().item())
    assert metrics["multiplier_loss"].item() == pytest.approx(loss.item())
    target0 = [p.clone() for p in strategy.target.parameters()]
    with torch.no_grad():
        for p in strategy.net.parameters():
            p.add_(1.0)
    strategy.after_step()
    for t0, t1, p in zip(target0, strategy.target.parameters(), strategy.net.parameters(), strict=True):
        torch.testing.assert_close(t1, t0 + 0.25 * (p - t0))
