"""Each multiplier strategy moves lambda in the right direction on a constructed batch."""

from __future__ import annotations

import pytest
import torch

from alam_control import config as config_lib
from alam_control.multipliers import NetworkMultiplier, PIDLagrange, ScalarLagrange, build_multiplier

OBS_DIM = 3


def make(algo: str, **multiplier) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = config_lib.from_dict({"algo": {"name": algo}, "multiplier": {"hidden": [16, 16], **multiplier}})
    return build_multiplier(cfg, OBS_DIM)


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
    strategy = build_multiplier(cfg, OBS_DIM)
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
    strategy = build_multiplier(cfg, OBS_DIM)
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
