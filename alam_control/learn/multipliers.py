"""Pluggable Lagrange-multiplier strategies for the one SAC core (DESIGN.md section 3).

Every strategy answers three questions for a batch of (normalized) states ``obs`` ``[B, O]`` and constraint values
``g = Q_c(s, a_pi) - d`` ``[B]``:

- ``multipliers(obs, for_update)``: lambda for each state, ``[B]`` (carries grad when a network is about to be
  updated, so the update reuses this forward pass);
- ``penalty(lam, g)``: the actor's constraint term per sample, ``[B]`` (``lam`` detached; the agent multiplies it
  by the batch's mean |Q|, so lambda is a price in units of the task's value scale);
- ``dual_loss(lam, obs, g)``: the multiplier network's loss (the agent adds it to its one backward pass), or
  ``None`` for scalar multipliers, which take their projected step in place right here;
- ``after_step()``: Polyak update of a target copy, once the optimizer has stepped.

| algo        | strategy                                     |
|-------------|----------------------------------------------|
| sac         | NoMultiplier                                 |
| sac_lag     | ScalarLagrange (dual ascent, clamp >= 0)     |
| sac_pid_lag | PIDLagrange (Stooke et al. 2020)             |
| fac         | NetworkMultiplier(penalty=linear, ascent)    |
| sac_alam    | NetworkMultiplier(penalty=phr, regression)   |
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from alam_control.config import Config, MultiplierConfig
from alam_control.learn import losses
from alam_control.learn.networks import MultiplierNet


class NoMultiplier(nn.Module):
    """Unconstrained SAC: no cost critic, no penalty."""

    needs_cost_critic = False

    def multipliers(self, obs: Tensor, for_update: bool = False) -> Tensor:
        return obs.new_zeros(obs.shape[0])

    def penalty(self, lam: Tensor, g: Tensor) -> Tensor:
        return torch.zeros_like(g)

    def dual_loss(self, lam: Tensor, obs: Tensor, g: Tensor) -> tuple[Tensor | None, dict[str, Tensor]]:
        return None, {}

    def after_step(self) -> None:
        pass

    def param_groups(self) -> list[dict]:
        """Optimizer parameter groups of learnable multipliers (none for scalars, which step in place)."""
        return []


class ScalarLagrange(NoMultiplier):
    """One lambda for all states, moved by projected gradient ascent on the mean constraint value.

    lambda <- max(0, lambda + lr * mean_B(g)): the expectation-level relaxation of the state-wise constraint.
    """

    needs_cost_critic = True

    def __init__(self, cfg: MultiplierConfig):
        super().__init__()
        self.lr, self.lambda_max = cfg.scalar_lr, cfg.lambda_max
        self.register_buffer("lam", torch.tensor(float(cfg.scalar_init)))

    def multipliers(self, obs: Tensor, for_update: bool = False) -> Tensor:
        # A copy: the in-place dual step must not change the lambda the actor loss already used.
        return self.lam.expand(obs.shape[0]).clone()

    def penalty(self, lam: Tensor, g: Tensor) -> Tensor:
        return losses.linear_penalty(lam, g)

    @torch.no_grad()
    def dual_loss(self, lam: Tensor, obs: Tensor, g: Tensor) -> tuple[Tensor | None, dict[str, Tensor]]:
        self.lam.add_(self.lr * g.mean()).clamp_(0.0, self.lambda_max)
        return None, {"lambda": self.lam.clone()}


class PIDLagrange(ScalarLagrange):
    """PID Lagrangian (Stooke, Achiam, Abbeel 2020): lambda = max(0, Kp e + I + Kd max(0, de)), e = mean(g).

    The integral is the sac_lag multiplier (I gain = ``scalar_lr``); P reacts to the current violation and D to its
    rise, which damps the overshoot that pure integral control shows.
    """

    def __init__(self, cfg: MultiplierConfig):
        super().__init__(cfg)
        self.kp, self.kd, self.decay = cfg.pid_kp, cfg.pid_kd, cfg.pid_delta_decay
        self.register_buffer("integral", torch.tensor(float(cfg.scalar_init)))
        self.register_buffer("err_ema", torch.tensor(0.0))

    @torch.no_grad()
    def dual_loss(self, lam: Tensor, obs: Tensor, g: Tensor) -> tuple[Tensor | None, dict[str, Tensor]]:
        err = g.mean()
        self.integral.add_(self.lr * err).clamp_(0.0, self.lambda_max)
        prev = self.err_ema.clone()
        self.err_ema.mul_(self.decay).add_((1.0 - self.decay) * err)
        derivative = (self.err_ema - prev).clamp(min=0.0)
        self.lam.copy_((self.kp * err + self.integral + self.kd * derivative).clamp(0.0, self.lambda_max))
        return None, {"lambda": self.lam.clone(), "pid_integral": self.integral.clone()}


class NetworkMultiplier(NoMultiplier):
    """State-wise multiplier network lambda_phi(s) in [0, lambda_max].

    Args:
        obs_dim: observation size.
        cfg: multiplier settings.
        penalty: 'phr' uses psi_rho(lam, g) in the actor (ALaM); 'linear' uses lam * g (fac).
        update: 'regression' fits lambda_phi to the leaky dual target
            clip(max(0, (1 - eta) lambda_phibar + rho g), lambda_max) (ALaM); 'ascent' is dual gradient ascent,
            loss -E[lambda_phi(s) sg(g)] (fac).
        g_max: the largest constraint value the cost critic can produce (1 - d for the 'first_violation' critic);
            sets the default leak eta = rho g_max / lambda_max.
    """

    needs_cost_critic = True

    def __init__(self, obs_dim: int, cfg: MultiplierConfig, penalty: str, update: str, g_max: float):
        super().__init__()
        self.net = MultiplierNet(obs_dim, cfg.hidden, cfg.init_bias, cfg.lambda_max)
        # lambda_phibar: a Polyak copy, so the regression target does not chase its own fresh updates.
        self.target = copy.deepcopy(self.net).requires_grad_(False) if cfg.target_tau < 1.0 else None
        self.rho, self.tau, self.lambda_max = cfg.penalty_coef, cfg.target_tau, cfg.lambda_max
        default_decay = min(self.rho * g_max / self.lambda_max, 0.5)
        self.decay = default_decay if cfg.dual_decay is None else cfg.dual_decay
        self.penalty_kind, self.update_kind, self.lr = penalty, update, cfg.lr

    def forward(self, obs: Tensor) -> Tensor:
        """lambda_phi(s): ``[B, O] -> [B]``."""
        return self.net(obs)

    def multipliers(self, obs: Tensor, for_update: bool = False) -> Tensor:
        if for_update and self.update_kind == "ascent":  # regression takes its gradient through the logits
            return self.net(obs)
        with torch.no_grad():
            return self.net(obs)

    def penalty(self, lam: Tensor, g: Tensor) -> Tensor:
        if self.penalty_kind == "phr":
            return losses.phr_penalty(lam, g, self.rho)
        return losses.linear_penalty(lam, g)

    def dual_loss(self, lam: Tensor, obs: Tensor, g: Tensor) -> tuple[Tensor | None, dict[str, Tensor]]:
        """Loss of lambda_phi from ``lam = multipliers(obs, for_update=True)`` ``[B]`` and ``g`` ``[B]`` (detached)."""
        metrics: dict[str, Tensor] = {"lambda": lam.detach().mean()}
        if self.update_kind == "regression":
            with torch.no_grad():
                lam_bar = self.target(obs) if self.target is not None else lam.detach()
                # The leak (1 - eta) makes the fixed point rho max(0, g) / eta: graded in g, and falling as fast
                # as it rises, instead of 0 / the cap by the sign of g.
                target = losses.dual_target((1.0 - self.decay) * lam_bar, g, self.rho).clamp(max=self.lambda_max)
            # The loss needs the logits (its gradient must not vanish where the sigmoid saturates): one more
            # forward of the small multiplier network, only on updates where the dual is due.
            loss = losses.multiplier_regression_loss(self.net.logits(obs), target, self.lambda_max)
            metrics["dual_target"] = target.mean()
        else:
            loss = losses.multiplier_ascent_loss(lam, g)
        metrics["multiplier_loss"] = loss.detach()
        return loss, metrics

    def param_groups(self) -> list[dict]:
        return [{"params": list(self.net.parameters()), "lr": self.lr}]

    @torch.no_grad()
    def after_step(self) -> None:
        if self.target is not None:
            torch._foreach_lerp_(list(self.target.parameters()), list(self.net.parameters()), self.tau)


def constraint_range(cfg: Config, cost_threshold: float) -> float:
    """g_max: the largest g = Q_c - d the cost critic can produce (its value range minus d)."""
    q_max = 1.0 if cfg.cost.critic == "first_violation" else 1.0 / (1.0 - cfg.cost.gamma)
    return q_max - cost_threshold


def build_multiplier(cfg: Config, obs_dim: int, cost_threshold: float) -> NoMultiplier:
    """The strategy for ``cfg.algo`` (with the ALaM ablation switches applied to network multipliers)."""
    name = cfg.algo.name
    if name == "sac":
        return NoMultiplier()
    if name == "sac_lag":
        return ScalarLagrange(cfg.multiplier)
    if name == "sac_pid_lag":
        return PIDLagrange(cfg.multiplier)
    defaults = {"fac": ("linear", "ascent"), "sac_alam": ("phr", "regression")}[name]
    penalty = cfg.algo.actor_penalty or defaults[0]
    update = cfg.algo.multiplier_update or defaults[1]
    return NetworkMultiplier(obs_dim, cfg.multiplier, penalty, update, constraint_range(cfg, cost_threshold))
