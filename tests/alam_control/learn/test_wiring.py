"""The agent's update checked against the algorithm written out by hand (DESIGN.md section 3).

These tests catch wiring mistakes that still train: a flipped sign, a missing detach, a target network bypassed,
a discount or mask dropped. Each builds a tiny agent in float64 and compares what ``Agent.update`` computes (its TD
targets, the gradient it sends to every parameter, its metrics, its Polyak steps) with a reference written here from
the equations, not from ``alam_control.learn.losses``. Every setup asserts that the branches it relies on are exercised
(both twins win the min somewhere, both sides of the PHR kink, targets on both sides of every clip).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from alam_control import config as config_lib
from alam_control.learn import losses
from alam_control.learn.agent import Agent
from alam_control.learn.buffer import Batch

OBS, ACT, B = 3, 1, 8
D = 0.3  # cost threshold d
GAMMA, GAMMA_C, ALPHA0, TAU = 0.8, 0.9, 0.5, 0.25  # sac.gamma != cost.gamma on purpose
RHO, ETA, LAMBDA_MAX, TARGET_TAU, SCALAR_LR = 2.0, 0.25, 1.0, 0.3, 0.5
F64 = torch.float64

# Per-sample design of the hand-made batch (see test_critic_targets_match_hand_computation).
V = (0.0, 0.3, 0.2, 0.45, 0.6, 0.7, 0.95, 1.0)  # next_obs[:, 0], drives the controlled target critic
COST = (0.0, 0.0, 1.0, 0.5, 0.0, 0.25, 0.5, 0.0)
TERMINATED = (0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_agent(algo: str = "sac_alam", sac: dict | None = None, cost: dict | None = None, **multiplier) -> Agent:
    """A tiny agent in float64 with distinct gamma / gamma_c / tau / target_tau, so that a swap shows."""
    torch.manual_seed(0)
    cfg = {
        "algo": {"name": algo},
        "sac": {"hidden": [8], "batch_size": B, "gamma": GAMMA, "init_alpha": ALPHA0, "tau": TAU, **(sac or {})},
        "cost": {"gamma": GAMMA_C, **(cost or {})},
    }
    if algo != "sac":
        cfg["multiplier"] = {
            "hidden": [8],
            "lambda_max": LAMBDA_MAX,
            "init_bias": 0.0,
            "penalty_coef": RHO,
            "dual_decay": ETA,
            "target_tau": TARGET_TAU,
            "scalar_lr": SCALAR_LR,
            **multiplier,
        }
    agent = Agent(OBS, ACT, config_lib.from_dict(cfg), cost_threshold=D, generator=torch.Generator().manual_seed(0))
    for module in (agent.obs_norm, agent.actor, agent.critic, agent.critic_target, agent.multiplier):
        module.double()  # in place: the optimizer keeps the same Parameter objects
    agent.log_alpha.data = agent.log_alpha.data.double()
    # The online networks and their targets must differ, or using one for the other would go unnoticed.
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        # Twin 1 = twin 0 plus noise on its output layer: close values, so each twin is the min on part of a batch.
        for w, bias in zip(agent.critic.weights, agent.critic.biases, strict=True):
            w[1].copy_(w[0])
            bias[1].copy_(bias[0])
        agent.critic.weights[-1][1].add_(0.5 * torch.randn(agent.critic.weights[-1][1].shape, generator=gen, dtype=F64))
        if agent.critic.heads == 3:  # spread Q_c over about [-0.2, 0.8], so that g = Q_c - d takes both signs
            agent.critic.weights[-1][2].mul_(6.0)
            agent.critic.biases[-1][2].mul_(6.0).add_(1.1)
        for p in agent.critic_target.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=F64))
        target = getattr(agent.multiplier, "target", None)
        if target is not None:
            for p in target.parameters():
                p.add_(0.5 * torch.randn(p.shape, generator=gen, dtype=F64))
    return agent


def make_batch() -> Batch:
    gen = torch.Generator().manual_seed(1)
    next_obs = torch.randn(B, OBS, generator=gen, dtype=F64)
    next_obs[:, 0] = torch.tensor(V, dtype=F64)
    return Batch(
        obs=torch.randn(B, OBS, generator=gen, dtype=F64),
        action=torch.rand(B, ACT, generator=gen, dtype=F64) * 2 - 1,
        reward=torch.rand(B, generator=gen, dtype=F64) - 0.5,
        cost=torch.tensor(COST, dtype=F64),
        next_obs=next_obs,
        terminated=torch.tensor(TERMINATED, dtype=F64),
    )


def generator_copy(agent: Agent) -> torch.Generator:
    gen = torch.Generator()
    gen.set_state(agent.generator.get_state())
    return gen


def sample(actor, obs: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """a = tanh(mu + sigma eps) and log pi(a|s) from the Gaussian density and the tanh Jacobian, written out."""
    mu, log_std = actor._dist_params(obs)
    u = mu + log_std.exp() * eps
    logp = torch.distributions.Normal(mu, log_std.exp()).log_prob(u).sum(-1)
    return torch.tanh(u), logp - torch.log(1.0 - torch.tanh(u).square()).sum(-1)


def no_step(agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the gradients of the update and leave the parameters where they are."""
    monkeypatch.setattr(agent.optimizer, "step", lambda *args, **kwargs: None)


def spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[tuple]:
    """Record the arguments of every call of ``losses.<name>`` (still calling it)."""
    calls: list[tuple] = []
    original = getattr(losses, name)

    def wrapper(*args, **kwargs):
        calls.append(tuple(a.detach().clone() if isinstance(a, torch.Tensor) else a for a in args))
        return original(*args, **kwargs)

    monkeypatch.setattr(losses, name, wrapper)
    return calls


# ---------------------------------------------------------------------------------------------- TD targets
def control_target_critic(agent: Agent) -> None:
    """Make critic_target(s', a') = (v, 1 - v, 1.5 v - 0.2) per head, v = s'[0] >= 0, whatever a' is."""
    slopes, offsets = (1.0, -1.0, 1.5), (0.0, 1.0, -0.2)
    (w1, w2), (b1, b2) = agent.critic_target.weights, agent.critic_target.biases
    with torch.no_grad():
        for p in (w1, w2, b1, b2):
            p.zero_()
        for h in range(agent.critic_target.heads):
            w1[h, 0, 0] = 1.0  # hidden unit 0 = relu(s'[0]) = v
            w2[h, 0, 0] = slopes[h]
            b2[h, 0, 0] = offsets[h]


V_T = torch.tensor(V, dtype=F64)
QC_NEXT = 1.5 * V_T - 0.2  # (-0.2, 0.25, 0.1, 0.475, 0.7, 0.85, 1.225, 1.3)
# y_c by hand, gamma_c = 0.9; "first_violation": c + (1 - c) gamma_c (1 - t) Q_c', clipped to [0, 1].
FIRST_VIOLATION_UNCLIPPED = (-0.18, 0.225, 1.0, 0.71375, 0.0, 0.82375, 1.05125, 1.17)
FIRST_VIOLATION = (0.0, 0.225, 1.0, 0.71375, 0.0, 0.82375, 1.0, 1.0)
# "sum": c + gamma_c (1 - t) Q_c', clipped at 0.
SUM_UNCLIPPED = (-0.18, 0.225, 1.09, 0.9275, 0.0, 1.015, 1.6025, 1.17)
SUM = (0.0, 0.225, 1.09, 0.9275, 0.0, 1.015, 1.6025, 1.17)


@pytest.mark.parametrize(
    "cost, expected_yc",
    [
        ({}, FIRST_VIOLATION),
        ({"clip_target": False}, FIRST_VIOLATION_UNCLIPPED),
        ({"critic": "sum"}, SUM),
        ({"critic": "sum", "clip_target": False}, SUM_UNCLIPPED),
    ],
)
def test_critic_targets_match_hand_computation(monkeypatch, cost: dict, expected_yc: tuple) -> None:
    """Reward twins: 3 r + gamma (1 - t) (min(Q1', Q2') - alpha log pi'); cost head: its own target, with gamma_c,
    the terminal mask, the (1 - c) factor and the clip; all from critic_target, not the online critic."""
    agent = make_agent(sac={"reward_scale": 3.0}, cost=cost)
    control_target_critic(agent)
    b = make_batch()
    with torch.no_grad():
        _, next_logp = sample(agent.actor, b.next_obs, torch.randn(B, ACT, generator=generator_copy(agent), dtype=F64))
    calls = spy(monkeypatch, "critic_loss")
    agent.update(b)

    ((q, target),) = calls
    assert target.shape == (3, B) and q.shape == (3, B)
    soft_v = torch.minimum(V_T, 1.0 - V_T) - ALPHA0 * next_logp  # both twins win the min on half the batch
    y = 3.0 * b.reward + GAMMA * (1.0 - b.terminated) * soft_v
    torch.testing.assert_close(target[0], y, rtol=1e-7, atol=1e-8)
    torch.testing.assert_close(target[1], y, rtol=1e-7, atol=1e-8)
    torch.testing.assert_close(target[2], torch.tensor(expected_yc, dtype=F64), rtol=1e-7, atol=1e-8)


def test_plain_sac_targets_have_no_cost_head(monkeypatch) -> None:
    agent = make_agent("sac")
    b = make_batch()
    calls = spy(monkeypatch, "critic_loss")
    metrics = agent.update(b)
    ((q, target),) = calls
    assert q.shape == (2, B) and target.shape == (2, B)
    assert "qc" not in metrics and "multiplier_loss" not in metrics


# ---------------------------------------------------------------------------- gradients of the one backward
def reference(agent: Agent, b: Batch, dual_due: bool) -> dict:
    """The losses of one update from the equations, on the agent's networks before its update.

    Returns the expected gradient of every parameter group, the expected metrics and (scalar multipliers) the
    expected lambda after the in-place dual step.
    """
    m = agent.multiplier
    gen = generator_copy(agent)
    eps_next = torch.randn(B, ACT, generator=gen, dtype=F64)
    eps_now = torch.randn(B, ACT, generator=gen, dtype=F64)
    obs, next_obs = agent.obs_norm(b.obs), agent.obs_norm(b.next_obs)
    log_alpha = agent.log_alpha.detach().clone().requires_grad_(True)
    alpha = log_alpha.detach().exp()
    assert alpha.item() == pytest.approx(ALPHA0)

    with torch.no_grad():
        a2, logp2 = sample(agent.actor, next_obs, eps_next)
        qt = agent.critic_target(next_obs, a2)
        y = b.reward + GAMMA * (1.0 - b.terminated) * (torch.minimum(qt[0], qt[1]) - alpha * logp2)
        if m.needs_cost_critic:
            c = b.cost.clamp(0.0, 1.0)
            yc = (c + (1.0 - c) * GAMMA_C * (1.0 - b.terminated) * qt[2]).clamp(0.0, 1.0)
    critic_params = list(agent.critic.parameters())
    q = agent.critic(obs, b.action)
    critic_loss = ((q[0] - y) ** 2).mean() + ((q[1] - y) ** 2).mean()
    if m.needs_cost_critic:
        critic_loss = critic_loss + ((q[2] - yc) ** 2).mean()

    actor_params = list(agent.actor.parameters())
    a, logp = sample(agent.actor, obs, eps_now)
    q_pi = agent.critic(obs, a)
    q_min = torch.minimum(q_pi[0], q_pi[1])
    out: dict = {"checks": {}}
    # Both twins must win the min somewhere, or min -> one head would go unnoticed.
    out["checks"]["twin0_wins"] = bool((q_pi[0] < q_pi[1]).any())
    out["checks"]["twin1_wins"] = bool((q_pi[1] < q_pi[0]).any())
    q_scale = q_min.detach().abs().mean()
    metrics = {
        "critic_loss": critic_loss.detach(),
        "q": q[0].detach().mean(),
        "alpha": alpha,
        "entropy": -logp.detach().mean(),
    }
    if m.needs_cost_critic:
        g = q_pi[2] - D
        metrics.update(qc=q[2].detach().mean(), g_pos_frac=(g.detach() > 0).double().mean(), q_scale=q_scale)
    mult_params = list(m.net.parameters()) if hasattr(m, "net") else []
    dual_loss = None
    if hasattr(m, "net"):
        with torch.no_grad():
            lam = m.net(obs)
        if m.penalty_kind == "phr":
            kink = lam + RHO * g.detach()
            out["checks"]["phr_active"] = bool((kink > 0).any())
            out["checks"]["phr_inactive"] = bool((kink < 0).any())
            penalty = (F.relu(lam + RHO * g) ** 2 - lam**2) / (2 * RHO)
        else:
            penalty = lam * g
        metrics["lambda"] = lam.mean()
        if dual_due and m.update_kind == "regression":
            with torch.no_grad():
                lam_bar = m.target(obs)
                step = (1.0 - ETA) * lam_bar + RHO * g.detach()
                out["checks"]["target_capped"] = bool((step > LAMBDA_MAX).any())
                out["checks"]["target_at_zero"] = bool((step < 0).any())
                out["checks"]["target_inside"] = bool(((step > 0) & (step < LAMBDA_MAX)).any())
                lam_hat = step.clamp(0.0, LAMBDA_MAX)
            z = m.net.logits(obs)
            frac = lam_hat / LAMBDA_MAX
            dual_loss = (frac * F.softplus(-z) + (1.0 - frac) * F.softplus(z)).mean()  # BCE(sigmoid(z), frac)
            metrics["dual_target"] = lam_hat.mean()
        elif dual_due:
            dual_loss = -(m.net(obs) * g.detach()).mean()
        if dual_loss is not None:
            metrics["multiplier_loss"] = dual_loss.detach()
    elif m.needs_cost_critic:  # scalar
        lam = m.lam.clone()
        penalty = lam * g
        if dual_due:
            out["lam_after"] = (lam + SCALAR_LR * g.detach().mean()).clamp(0.0, LAMBDA_MAX)
            metrics["lambda"] = out["lam_after"]
    else:
        penalty = torch.zeros_like(logp)
    actor_loss = (alpha * logp - q_min + q_scale * penalty).mean()
    metrics["actor_loss"] = actor_loss.detach()
    alpha_loss = -(log_alpha * (logp.detach() - ACT)).mean()  # target entropy -|A|

    out["critic"] = torch.autograd.grad(critic_loss, critic_params)
    out["actor"] = torch.autograd.grad(actor_loss, actor_params)
    out["log_alpha"] = torch.autograd.grad(alpha_loss, log_alpha)[0]
    out["multiplier"] = torch.autograd.grad(dual_loss, mult_params) if dual_loss is not None else None
    out["metrics"] = metrics
    return out


def assert_grads(params, expected, what: str) -> None:
    for i, (p, e) in enumerate(zip(params, expected, strict=True)):
        assert p.grad is not None, f"{what}[{i}] got no gradient"
        torch.testing.assert_close(p.grad, e, rtol=1e-7, atol=1e-8, msg=lambda s, i=i: f"{what}[{i}]: {s}")


ALGOS = [
    ("sac_alam", {}),  # PHR penalty, regression to the leaky dual target
    ("sac_alam", {"init_bias": 2.0}),  # lambda near its cap: the cap of the dual target binds
    ("fac", {}),  # linear penalty, dual ascent (lambda carries grad into the dual loss)
    ("sac_lag", {"scalar_init": 0.4}),  # scalar lambda, in-place projected step
    ("sac", {}),
]


@pytest.mark.parametrize("algo, multiplier", ALGOS)
def test_update_gradients_and_metrics_match_hand_computation(monkeypatch, algo: str, multiplier: dict) -> None:
    """Every gradient of the single backward pass, and every metric, equal the reference computation: catches g's
    sign, d, a detached g or an undetached lambda in the penalty, q_scale dropped or not detached, the twin min,
    alpha, the critic's detach in the actor loss, rho / eta / the cap in the dual target, a bypassed target net,
    and a multiplier whose gradient does not reach its parameters."""
    agent = make_agent(algo, **multiplier)
    b = make_batch()
    ref = reference(agent, b, dual_due=True)
    no_step(agent, monkeypatch)
    metrics = agent.update(b)

    assert ref["checks"].pop("twin0_wins") and ref["checks"].pop("twin1_wins")
    if algo == "sac_alam" and not multiplier:
        assert all(ref["checks"].pop(k) for k in ("phr_active", "phr_inactive", "target_at_zero", "target_inside"))
    if multiplier.get("init_bias") == 2.0:
        assert ref["checks"].pop("target_capped")
    assert_grads(agent.critic.parameters(), ref["critic"], "critic")
    assert_grads(agent.actor.parameters(), ref["actor"], "actor")
    torch.testing.assert_close(agent.log_alpha.grad, ref["log_alpha"], rtol=1e-7, atol=1e-8)
    if ref["multiplier"] is not None:
        assert_grads(agent.multiplier.net.parameters(), ref["multiplier"], "multiplier")
    if "lam_after" in ref:
        torch.testing.assert_close(agent.multiplier.lam, ref["lam_after"], rtol=1e-7, atol=1e-8)
    assert set(metrics) == set(ref["metrics"])
    for key, value in ref["metrics"].items():
        torch.testing.assert_close(metrics[key].double(), value.double(), rtol=1e-7, atol=1e-8, msg=key)


def test_dual_step_not_due_leaves_the_multiplier_without_gradient(monkeypatch) -> None:
    agent = make_agent(dual_interval=2)
    b = make_batch()
    ref = reference(agent, b, dual_due=False)
    no_step(agent, monkeypatch)
    metrics = agent.update(b)  # update 1 of an interval of 2
    assert all(p.grad is None or not p.grad.any() for p in agent.multiplier.net.parameters())
    assert_grads(agent.actor.parameters(), ref["actor"], "actor")  # the penalty still acts
    assert "multiplier_loss" not in metrics and "dual_target" not in metrics


@pytest.mark.parametrize("algo, interval", [("sac_alam", 3), ("fac", 1), ("sac_lag", 2), ("sac_pid_lag", 3)])
def test_dual_interval_schedules_the_dual_step(algo: str, interval: int) -> None:
    agent = make_agent(algo, dual_interval=interval, scalar_init=0.4)
    b = make_batch()
    net = getattr(agent.multiplier, "net", None)
    for k in range(1, 7):
        before = [p.clone() for p in net.parameters()] if net is not None else [agent.multiplier.lam.clone()]
        metrics = agent.update(b)
        after = list(net.parameters()) if net is not None else [agent.multiplier.lam]
        due = k % interval == 0
        assert agent.updates == k
        assert ("lambda" in metrics) == due, k
        if net is not None:
            assert ("multiplier_loss" in metrics) == due, k
        moved = any(not torch.equal(x, y) for x, y in zip(before, after, strict=True))
        assert moved == due, f"update {k}: multiplier moved={moved}, due={due}"


# ------------------------------------------------------------------------------------------ Polyak targets
def test_polyak_moves_each_target_a_fraction_tau_toward_its_online_net() -> None:
    """target <- target + tau (online - target) after the optimizer step: critic with sac.tau, lambda_phibar with
    multiplier.target_tau (reversed lerp, a wrong tau or a step before the optimizer's all fail this)."""
    agent = make_agent()
    critic_t0 = [p.clone() for p in agent.critic_target.parameters()]
    critic0 = [p.clone() for p in agent.critic.parameters()]
    mult_t0 = [p.clone() for p in agent.multiplier.target.parameters()]
    agent.update(make_batch())
    for t0, t1, online, online0 in zip(
        critic_t0, agent.critic_target.parameters(), agent.critic.parameters(), critic0, strict=True
    ):
        assert not torch.equal(online, online0)  # the online net stepped (and was not pulled to the target)
        torch.testing.assert_close(t1, t0 + TAU * (online - t0), rtol=1e-12, atol=1e-12)
    for t0, t1, online in zip(
        mult_t0, agent.multiplier.target.parameters(), agent.multiplier.net.parameters(), strict=True
    ):
        torch.testing.assert_close(t1, t0 + TARGET_TAU * (online - t0), rtol=1e-12, atol=1e-12)


def test_target_tau_one_means_no_multiplier_copy(monkeypatch) -> None:
    """multiplier.target_tau = 1: lambda_phibar is the online lambda itself."""
    agent = make_agent(target_tau=1.0)
    assert agent.multiplier.target is None
    b = make_batch()
    ref_agent = make_agent(target_tau=0.5)  # same init (same seed); make its target equal its online net
    ref_agent.multiplier.target.load_state_dict(ref_agent.multiplier.net.state_dict())
    agent.multiplier.net.load_state_dict(ref_agent.multiplier.net.state_dict())
    for a in (agent, ref_agent):
        no_step(a, monkeypatch)
    m1, m2 = agent.update(b), ref_agent.update(b)
    torch.testing.assert_close(m1["dual_target"], m2["dual_target"], rtol=1e-7, atol=1e-8)
    for p, q in zip(agent.multiplier.net.parameters(), ref_agent.multiplier.net.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-7, atol=1e-8)
