"""Pure loss functions of SAC-ALaM and its baselines (DESIGN.md section 3).

Every function maps tensors and floats to a tensor; nothing here owns parameters or optimizers, so each can be
checked against numbers worked out by hand. Shapes: ``B`` is the batch, ``H`` the number of critic heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
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


def cost_q_target(
    cost: Tensor, terminated: Tensor, next_qc: Tensor, gamma_c: float, kind: str = "first_violation", clip: bool = True
) -> Tensor:
    """TD target of the cost critic. There is no entropy bonus in a cost value. Shapes: all ``[B]``.

    ``kind``:

    - ``"first_violation"``: y_c = c + (1 - c) gamma_c (1 - terminated) Q_c'(s', a'), with c clipped to [0, 1].
      For an indicator cost its fixed point is E[gamma_c^T], T the number of steps to the next violation (0 when
      violating now): a discounted probability of violation in [0, 1], whatever the task's episode length or how
      long a violation lasts. ``clip`` keeps the target in [0, 1].
    - ``"sum"``: y_c = c + gamma_c (1 - terminated) Q_c'(s', a'), the discounted cost sum (up to
      1 / (1 - gamma_c)); ``clip`` clips it at 0, as a non-negative cost cannot have a negative value.
    """
    if kind == "first_violation":
        c = cost.clamp(0.0, 1.0)
        target = c + (1.0 - c) * gamma_c * (1.0 - terminated) * next_qc
        if clip:  # bootstrapped values outside [0, 1] must not feed back
            target = target.clamp(0.0, 1.0)
    elif kind == "sum":
        target = cost + gamma_c * (1.0 - terminated) * next_qc
        if clip:
            target = target.clamp(min=0.0)
    else:
        raise ValueError(f"unknown cost critic kind {kind!r}; expected 'first_violation' or 'sum'")
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


def multiplier_regression_loss(logit: Tensor, target: Tensor, lambda_max: float) -> Tensor:
    """ALaM multiplier loss for lambda_phi(s) = lambda_max sigmoid(z(s)): the cross-entropy between
    lambda_phi / lambda_max and lam_hat / lambda_max, both in [0, 1].

    It has the same minimiser as E[(lambda_phi(s) - lam_hat(s))^2] (lambda_phi = lam_hat), but its gradient in the
    logit, (lambda_phi - lam_hat) / lambda_max, does not vanish where the sigmoid saturates: with the squared
    error, a multiplier pushed to ~0 on safe states (z ~ -50, measured on the diff-drive robot) never rose again.

    Args:
        logit: ``[B]`` z(s), with grad. target: ``[B]`` lam_hat(s) in [0, lambda_max] (detached here).
        lambda_max: the multiplier's cap.

    Returns:
        Scalar loss (the cross-entropy's constant entropy term of the target is not subtracted).
    """
    frac = (target.detach() / lambda_max).clamp(0.0, 1.0)
    return F.binary_cross_entropy_with_logits(logit, frac)


def multiplier_ascent_loss(lam: Tensor, g: Tensor) -> Tensor:
    """Dual gradient ascent on a multiplier network (fac): minimise -E[lambda_phi(s) * sg(g)].

    Through the sigmoid head (`networks.MultiplierNet`) its gradient in the logit is lambda (1 - lambda /
    lambda_max) g: a multiplier driven to ~0 where the constraint held cannot rise again once it is violated there
    (the walker's `alam_ascent`, docs/results.md). That is dual ascent's own behaviour, kept for the baselines;
    `multiplier_regression_loss` has no such dead zone.
    """
    return -(lam * g.detach()).mean()
