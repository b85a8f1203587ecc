"""One SAC core with a pluggable multiplier strategy (sac, sac_lag, sac_pid_lag, fac, sac_alam).

The agent owns its networks and optimizers; ``update(batch)`` returns metrics as detached tensors and the
trainer decides when to turn them into numbers, so the hot loop never waits on logging.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import Tensor

from alam_control.config import Config
from alam_control.learn import cpu, losses
from alam_control.learn.buffer import Batch
from alam_control.learn.multipliers import build_multiplier
from alam_control.learn.networks import Actor, CriticEnsemble, ObsNormalizer


class Agent:
    """SAC with automatic entropy tuning, a twin-Q + cost-Q critic ensemble and a multiplier strategy.

    Args:
        obs_dim, act_dim: sizes; actions live in [-1, 1]^act_dim (tasks map them to physical units).
        cfg: the run config.
        cost_threshold: d of g(s, a) = Q_c(s, a) - d.
        generator: the torch RNG for every policy sample, so training is reproducible and resumable.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        cfg: Config,
        cost_threshold: float,
        generator: torch.Generator,
        device: torch.device | str = "cpu",
    ):
        self.cfg, self.device, self.generator = cfg, torch.device(device), generator
        self.obs_dim, self.act_dim = obs_dim, act_dim
        sac = cfg.sac
        self.multiplier = build_multiplier(cfg, obs_dim, cost_threshold).to(self.device)
        self.constrained = self.multiplier.needs_cost_critic
        heads = 3 if self.constrained else 2  # reward twins (+ cost critic)
        self.obs_norm = ObsNormalizer(obs_dim).to(self.device)
        self.actor = Actor(obs_dim, act_dim, sac.hidden, (sac.log_std_min, sac.log_std_max)).to(self.device)
        self.critic = CriticEnsemble(obs_dim + act_dim, sac.hidden, heads).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.tensor(float(np.log(sac.init_alpha)), device=self.device, requires_grad=True)
        self.target_entropy = float(-act_dim if sac.target_entropy is None else sac.target_entropy)
        self.cost_threshold = float(cost_threshold)
        groups = [
            {"params": list(self.actor.parameters()), "lr": sac.actor_lr},
            {"params": list(self.critic.parameters()), "lr": sac.critic_lr},
            {"params": [self.log_alpha], "lr": sac.alpha_lr},
            *self.multiplier.param_groups(),
        ]
        # One optimizer over disjoint parameter groups: one fused kernel launch per update instead of four.
        self.optimizer = torch.optim.Adam(groups, fused=True)
        self.updates = 0
        # Hidden-layer matmuls of the update in bf16 where asked (train.precision); networks keep their output
        # layers in float32 (networks.full_precision), and acting/evaluation never enter this region.
        self.precision = cpu.resolve_precision(cfg.train.precision, cfg.train.device)
        self._autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bfloat16")
        self._update_fn = torch.compile(self._update) if cfg.train.compile else self._update

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Action(s) in [-1, 1]: ``[O] -> [A]`` or ``[N, O] -> [N, A]``."""
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        single = x.dim() == 1
        x = self.obs_norm(x.unsqueeze(0) if single else x)
        a = self.actor(x) if deterministic else self.actor.sample(x, self.generator)[0]
        a = a.cpu().numpy()
        return a[0] if single else a

    @torch.no_grad()
    def lambdas(self, obs: Tensor | np.ndarray) -> Tensor:
        """lambda(s) of the multiplier strategy: ``[N, O] -> [N]`` (zeros for plain SAC)."""
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        return self.multiplier.multipliers(self.obs_norm(x))

    @torch.no_grad()
    def cost_values(self, obs: Tensor | np.ndarray) -> Tensor:
        """Q_c(s, pi(s)) at the deterministic action: ``[N, O] -> [N]`` (zeros without a cost critic)."""
        x = self.obs_norm(torch.as_tensor(obs, dtype=torch.float32, device=self.device))
        if not self.constrained:
            return x.new_zeros(x.shape[0])
        return self.critic(x, self.actor(x))[2]

    # ---------------------------------------------------------------- learning
    def update(self, batch: Batch) -> dict[str, Tensor]:
        """One gradient step of critics, actor, temperature and (every ``dual_interval``) multiplier."""
        self.updates += 1
        # The policy noise of the next-state and the current-state samples, drawn here (in this order) so that the
        # update holds no RNG call: under train.compile its forward and losses are one graph (torch._dynamo.explain:
        # 2 graphs, the one break at optimizer.zero_grad).
        shape, dtype = (batch.obs.shape[0], self.act_dim), self.obs_norm.mean.dtype
        eps_next = torch.randn(shape, generator=self.generator, dtype=dtype, device=self.device)
        eps = torch.randn(shape, generator=self.generator, dtype=dtype, device=self.device)
        with self._autocast:
            return self._update_fn(batch, eps_next, eps, self.updates % self.cfg.multiplier.dual_interval == 0)

    def _update(self, batch: Batch, eps_next: Tensor, eps: Tensor, dual_due: bool) -> dict[str, Tensor]:
        """All losses in one backward pass.

        The losses touch disjoint parameters (TD targets, the critic's weights inside the actor loss, lambda inside
        the actor loss and g inside the dual loss are all detached), so summing them and stepping one optimizer
        equals separate steps, except that the actor sees this step's critic before its update, as in
        simultaneous-update SAC implementations. One backward instead of four saves the per-call overhead that
        dominates at these sizes on a CPU.
        """
        sac, cost_cfg = self.cfg.sac, self.cfg.cost
        obs, next_obs = self.obs_norm(batch.obs), self.obs_norm(batch.next_obs)
        alpha = self.log_alpha.detach().exp()

        # Critic ensemble: reward twins regress to the soft target, the cost head to the (clipped) cost target.
        with torch.no_grad():
            next_act, next_logp = self.actor.sample(next_obs, eps=eps_next)
            next_q = self.critic_target(next_obs, next_act)
            y = losses.soft_q_target(
                batch.reward * sac.reward_scale, batch.terminated, next_q[:2], next_logp, alpha, sac.gamma
            )
            targets = [y, y]
            if self.constrained:
                y_c = losses.cost_q_target(
                    batch.cost, batch.terminated, next_q[2], cost_cfg.gamma, cost_cfg.critic, cost_cfg.clip_target
                )
                targets.append(y_c)
            target = torch.stack(targets)
        q = self.critic(obs, batch.action)
        critic_loss = losses.critic_loss(q, target)

        # Actor: critic weights detached, so its loss reaches only the action (and through it the policy).
        act, logp = self.actor.sample(obs, eps=eps)
        q_pi = self.critic(obs, act, detach_params=True)
        metrics = {"critic_loss": critic_loss.detach(), "q": q[0].detach().mean(), "alpha": alpha}
        dual_loss = None
        if self.constrained:
            g = q_pi[2] - self.cost_threshold
            lam = self.multiplier.multipliers(obs, for_update=dual_due)
            # The penalty in units of the batch's value scale: lambda is then a price relative to |Q|, so one
            # rho / lambda_max serves tasks whose returns differ 50x, and reward_scale cannot shift the trade-off.
            q_scale = q_pi[:2].min(dim=0).values.detach().abs().mean()
            penalty = q_scale * self.multiplier.penalty(lam.detach(), g)
            if dual_due:
                dual_loss, dual_metrics = self.multiplier.dual_loss(lam, obs, g.detach())
                metrics.update(dual_metrics)
            metrics["qc"] = q[2].detach().mean()
            metrics["g_pos_frac"] = (g.detach() > 0).float().mean()
            metrics["q_scale"] = q_scale
        else:
            penalty = torch.zeros_like(logp)
        actor_loss = losses.actor_loss(logp, q_pi[:2], penalty, alpha)
        metrics["actor_loss"] = actor_loss.detach()
        metrics["entropy"] = -logp.detach().mean()

        total = critic_loss + actor_loss
        if sac.autotune_alpha:
            total = total + losses.alpha_loss(self.log_alpha, logp, self.target_entropy)
        if dual_loss is not None:
            total = total + dual_loss
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()

        with torch.no_grad():
            torch._foreach_lerp_(list(self.critic_target.parameters()), list(self.critic.parameters()), sac.tau)
        self.multiplier.after_step()
        return metrics

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """Everything learnable and every optimizer state (tensors and plain types only)."""
        return {
            "obs_norm": self.obs_norm.state_dict(),
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "multiplier": self.multiplier.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
            "optimizer": self.optimizer.state_dict(),
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict) -> None:
        self.obs_norm.load_state_dict(state["obs_norm"])
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])
        self.multiplier.load_state_dict(state["multiplier"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
