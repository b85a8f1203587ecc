"""Pure loss functions of SAC-ALaM and its baselines (DESIGN.md section 3).

Every function maps tensors and floats to a tensor; nothing here owns parameters or optimizers, so each can be
checked against numbers worked out by hand. Shapes: ``B`` is the batch, ``H`` the number of critic heads.
"""

from __future__ import annotations

import torch
from torch import Tensor


def phr_penalty(lam: Tensor, g: Tensor, rho: float) -> Tensor:
    """Powell-Hestenes-Rockafellar penalty psi_rho(lam, g) = (max(0, lam + rho g)^2 - lam^2) / (2 rho).

    Its derivative in g is max(0, lam + rho g): the policy sees the multiplier after one method-of-multipliers
    step, which compensates for the multiplier network's delayed updates.

    Args:
        lam: multipliers, broadcastable to ``g`` (e.g. ``[B]``), >= 0. Pass them detached in the actor loss.
        g: constraint values ``[B]`` (g <= 0 is satisfied).
        rho: penalty coefficient, > 0.

    Returns:
        ``[B]``, elementwise penalty, same shape as ``g``.
    """
    return (torch.clamp(lam + rho * g, min=0.0).square() - lam.square()) / (2.0 * rho)


def dual_target(lam: Tensor, g: Tensor, rho: float) -> Tensor:
    """Method-of-multipliers step max(0, lam + rho g), elementwise; shape of ``g`` (``[B]``)."""
    return torch.clamp(lam + rho * g, min=0.0)


def linear_penalty(lam: Tensor, g: Tensor) -> Tensor:
    """The plain Lagrangian term lam * g (``[B]``), used by sac_lag, PID, fac and the no-penalty ablation."""
    return lam * g


def soft_q_target(
    reward: Tensor,
    terminated: Tensor,
    next_q: Tensor,
    next_logp: Tensor,
    alpha: Tensor,
    gamma: float,
) -> Tensor:
    """Soft Bellman target y = r + gamma (1 - terminated) (min_i Q_i'(s', a') - alpha log pi(a'|s')).

    Args:
        reward, terminated: ``[B]``. Truncated episodes bootstrap, so only ``terminated`` stops the sum.
        next_q: ``[2, B]`` target twin Q values at (s', a'), a' ~ pi(s').
        next_logp: ``[B]`` log pi(a'|s').
        alpha: scalar entropy temperature.
        gamma: discount.

    Returns:
        ``[B]``, no gradient.
    """
    soft_v = next_q.min(dim=0).values - alpha * next_logp
    return (reward + gamma * (1.0 - terminated) * soft_v).detach()


def cost_q_target(cost: Tensor, terminated: Tensor, next_qc: Tensor, gamma_c: float, clip: bool) -> Tensor:
    """Cost TD target y_c = c + gamma_c (1 - terminated) Q_c'(s', a'), clipped at 0 when ``clip``.

    There is no entropy bonus in the cost value. Shapes: all ``[B]``.
    """
    target = cost + gamma_c * (1.0 - terminated) * next_qc
    if clip:
        # A non-negative cost has a non-negative value; the clip stops bootstrapped negatives feeding back.
        target = target.clamp(min=0.0)
    return target.detach()


def critic_loss(q: Tensor, target: Tensor) -> Tensor:
    """Sum over heads of the mean squared TD error: ``q`` is ``[H, B]``, ``target`` ``[B]`` or ``[H, B]``."""
    return (q - target).square().mean(dim=-1).sum()


def actor_loss(logp: Tensor, q_pi: Tensor, penalty: Tensor, alpha: Tensor) -> Tensor:
    """E[alpha log pi(a|s) - min_i Q_i(s, a) + penalty(s, a)], a ~ pi(s).

    Args:
        logp: ``[B]``. q_pi: ``[2, B]`` twin Q at the policy's action. penalty: ``[B]`` constraint term
        (zeros for plain SAC). alpha: scalar temperature (detached).
    """
    return (alpha * logp - q_pi.min(dim=0).values + penalty).mean()


def alpha_loss(log_alpha: Tensor, logp: Tensor, target_entropy: float) -> Tensor:
    """Automatic entropy tuning: -log_alpha * (log pi + target_entropy), ``logp`` ``[B]`` detached."""
    return -(log_alpha * (logp.detach() + target_entropy)).mean()


def multiplier_regression_loss(lam: Tensor, target: Tensor) -> Tensor:
    """ALaM multiplier loss E[(lambda_phi(s) - lam_hat(s))^2]; ``lam`` ``[B]`` with grad, ``target`` detached."""
    return (lam - target.detach()).square().mean()


def multiplier_ascent_loss(lam: Tensor, g: Tensor) -> Tensor:
    """Dual gradient ascent on a multiplier network (fac): minimise -E[lambda_phi(s) * sg(g)]."""
    return -(lam * g.detach()).mean()
