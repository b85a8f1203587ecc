"""The SAC core: gradient routing of the one-backward update, dual_interval, acting."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from alam_control import config as config_lib
from alam_control.learn.agent import Agent
from alam_control.learn.buffer import Batch, ReplayBuffer
from alam_control.learn.networks import CriticEnsemble

OBS, ACT = 4, 2


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_agent(**sections) -> Agent:
    torch.manual_seed(0)
    cfg = config_lib.from_dict(
        {"sac": {"hidden": [16, 16], "batch_size": 8}, "multiplier": {"hidden": [16]}, **sections}
    )
    return Agent(OBS, ACT, cfg, cost_threshold=0.05, generator=torch.Generator().manual_seed(0))


def batch(n: int = 8, cost: float = 1.0) -> Batch:
    g = torch.Generator().manual_seed(1)
    return Batch(
        obs=torch.randn(n, OBS, generator=g),
        action=torch.rand(n, ACT, generator=g) * 2 - 1,
        reward=torch.rand(n, generator=g),
        cost=torch.full((n,), cost),
        next_obs=torch.randn(n, OBS, generator=g),
        terminated=torch.zeros(n),
    )


def test_detached_critic_passes_gradient_to_actions_only() -> None:
    critic = CriticEnsemble(OBS + ACT, (8,), heads=3)
    act = torch.zeros(5, ACT, requires_grad=True)
    critic(torch.randn(5, OBS), act, detach_params=True).sum().backward()
    assert act.grad is not None and act.grad.abs().sum() > 0
    assert all(p.grad is None for p in critic.parameters())


def test_update_moves_every_learner_and_multiplier_only_when_due() -> None:
    agent = make_agent(algo={"name": "sac_alam"}, multiplier={"hidden": [16], "dual_interval": 2})
    snap = {
        name: [p.detach().clone() for p in m.parameters()]
        for name, m in {"actor": agent.actor, "critic": agent.critic, "multiplier": agent.multiplier.net}.items()
    }
    alpha0 = agent.log_alpha.item()

    metrics = agent.update(batch())  # update 1: dual step not due
    assert "multiplier_loss" not in metrics
    for name in ("actor", "critic"):
        module = getattr(agent, name)
        assert any(not torch.equal(a, b) for a, b in zip(snap[name], module.parameters(), strict=True)), name
    assert all(torch.equal(a, b) for a, b in zip(snap["multiplier"], agent.multiplier.net.parameters(), strict=True))
    assert agent.log_alpha.item() != alpha0

    metrics = agent.update(batch())  # update 2: due
    assert "multiplier_loss" in metrics and "dual_target" in metrics
    assert any(
        not torch.equal(a, b) for a, b in zip(snap["multiplier"], agent.multiplier.net.parameters(), strict=True)
    )
    assert all(torch.isfinite(v).all() for v in metrics.values())


def test_reward_scale_scales_the_reward_in_the_critic_target() -> None:
    scaled = make_agent(algo={"name": "sac_alam"}, sac={"hidden": [16, 16], "batch_size": 8, "reward_scale": 3.0})
    plain = make_agent(algo={"name": "sac_alam"})
    b = batch()
    scaled.update(b)
    plain.update(b._replace(reward=b.reward * 3.0))
    for a, c in zip(scaled.critic.parameters(), plain.critic.parameters(), strict=True):
        torch.testing.assert_close(a, c)


def test_sac_has_no_cost_head_and_fixed_alpha_stays_fixed() -> None:
    agent = make_agent(algo={"name": "sac"}, sac={"hidden": [16], "batch_size": 8, "autotune_alpha": False})
    assert agent.critic.heads == 2
    alpha0 = agent.log_alpha.item()
    agent.update(batch())
    assert agent.log_alpha.item() == alpha0
    assert torch.equal(agent.lambdas(torch.zeros(3, OBS)), torch.zeros(3))


def test_act_shapes_bounds_and_determinism() -> None:
    agent = make_agent()
    obs = np.random.default_rng(0).normal(size=(5, OBS)).astype(np.float32)
    a = agent.act(obs)
    assert a.shape == (5, ACT) and np.all(np.abs(a) <= 1.0)
    assert agent.act(obs[0]).shape == (ACT,)
    np.testing.assert_array_equal(agent.act(obs, deterministic=True), agent.act(obs, deterministic=True))


def test_state_dict_round_trip() -> None:
    a = make_agent()
    b = make_agent(seed=1, sac={"hidden": [16, 16], "batch_size": 8, "init_alpha": 0.3})
    a.obs_norm.fit(torch.randn(32, OBS) * 3 + 1)
    a.update(batch())
    a.update(batch())
    buffer = io.BytesIO()  # through bytes, as a checkpoint goes (an in-memory state shares the optimizer's tensors)
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    b.load_state_dict(torch.load(buffer, weights_only=True))
    for name in ("obs_norm", "actor", "critic", "critic_target", "multiplier"):
        sa, sb = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa), name
    assert torch.equal(a.log_alpha, b.log_alpha) and b.log_alpha.requires_grad
    assert b.updates == a.updates == 2
    # the optimizer state came along: the next update is identical on both
    a.generator.manual_seed(3), b.generator.manual_seed(3)
    a.update(batch()), b.update(batch())
    for pa, pb in zip(a.actor.parameters(), b.actor.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.compile imports torch.jit
def test_init_heads_temperature_target_entropy_and_learning_rates() -> None:
    agent = make_agent(
        algo={"name": "fac"},
        sac={
            "hidden": [16],
            "batch_size": 8,
            "actor_lr": 1.5e-3,
            "critic_lr": 2e-3,
            "alpha_lr": 3e-3,
            "init_alpha": 0.2,
        },
        multiplier={"hidden": [16], "lr": 4e-3},
    )
    assert agent.critic.heads == 3 and agent.constrained
    assert agent.log_alpha.exp().item() == pytest.approx(0.2) and agent.log_alpha.requires_grad
    assert agent.target_entropy == -ACT and agent.cost_threshold == 0.05 and agent.updates == 0
    assert [g["lr"] for g in agent.optimizer.param_groups] == [1.5e-3, 2e-3, 3e-3, 4e-3]
    groups = [g["params"] for g in agent.optimizer.param_groups]
    assert groups[0] == list(agent.actor.parameters()) and groups[1] == list(agent.critic.parameters())
    assert groups[2] == [agent.log_alpha] and groups[3] == list(agent.multiplier.net.parameters())
    assert agent.optimizer.defaults["fused"] is True  # one fused kernel per step (the documented design)
    assert agent._update_fn == agent._update  # train.compile off: the plain method
    compiled = make_agent(train={"compile": True})  # torch.compile is lazy: wrapping costs nothing until a call
    assert compiled._update_fn != compiled._update and compiled._update_fn.__wrapped__ == compiled._update
    # the target critic starts as an exact, gradient-free copy
    for p, q in zip(agent.critic.parameters(), agent.critic_target.parameters(), strict=True):
        assert torch.equal(p, q) and p is not q and not q.requires_grad
    explicit = make_agent(sac={"hidden": [16], "batch_size": 8, "target_entropy": -0.5})
    assert explicit.target_entropy == -0.5


def test_lambdas_cost_values_and_act_use_the_normalized_observation() -> None:
    agent = make_agent(algo={"name": "sac_alam"}, multiplier={"hidden": [16], "init_bias": 0.0})
    agent.obs_norm.fit(torch.randn(64, OBS) * 4 + 2)
    obs = np.random.default_rng(1).normal(size=(5, OBS)).astype(np.float32) * 4 + 2
    x = agent.obs_norm(torch.as_tensor(obs))
    with torch.no_grad():
        torch.testing.assert_close(agent.lambdas(obs), agent.multiplier.net(x))
        torch.testing.assert_close(agent.cost_values(obs), agent.critic(x, agent.actor(x))[2])
        np.testing.assert_allclose(agent.act(obs, deterministic=True), agent.actor(x).numpy(), rtol=1e-6)
        gen = torch.Generator()
        gen.set_state(agent.generator.get_state())
        expected = agent.actor.sample(x, gen)[0].numpy()
    np.testing.assert_allclose(agent.act(obs), expected, rtol=1e-6)  # stochastic: the agent's own generator
    assert not np.allclose(agent.act(obs), agent.act(obs, deterministic=True))
    np.testing.assert_allclose(agent.act(obs[0], deterministic=True), agent.act(obs[:1], deterministic=True)[0])
    plain = make_agent(algo={"name": "sac"})
    assert torch.equal(plain.cost_values(obs), torch.zeros(5))


def test_replay_buffer_wraps_and_round_trips() -> None:
    buf = ReplayBuffer(3, OBS, ACT)
    for i in range(5):
        buf.add(np.full(OBS, i), np.zeros(ACT), float(i), 0.0, np.zeros(OBS), i == 4)
    assert len(buf) == 3 and sorted(buf.observations()[:, 0].tolist()) == [2.0, 3.0, 4.0]
    other = ReplayBuffer(3, OBS, ACT)
    other.load_state_dict(buf.state_dict())
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    for x, y in zip(buf.sample(4, g1), other.sample(4, g2), strict=True):
        assert torch.equal(x, y)


def test_bfloat16_precision_runs_hidden_layers_in_bf16_and_stays_close_to_float32() -> None:
    """train.precision=bfloat16 must change the update (else the flag does nothing) but only at bf16 rounding level,
    and acting stays float32 (the deployed policy is float32)."""
    results = {}
    for precision in ("float32", "bfloat16"):
        agent = make_agent(algo={"name": "sac_alam"}, train={"precision": precision})
        seen: list[torch.dtype] = []  # the actor trunk's output dtype at each call during the update
        hook = agent.actor.trunk.register_forward_hook(lambda module, args, out, seen=seen: seen.append(out.dtype))
        agent.update(batch())
        hook.remove()
        assert set(seen) == {getattr(torch, precision)}
        results[precision] = [p.detach().clone() for p in agent.critic.parameters()]
        assert agent.act(np.zeros(OBS, np.float32), deterministic=True).dtype == np.float32
    moved = [(b - a).abs().max().item() for a, b in zip(results["float32"], results["bfloat16"], strict=True)]
    assert max(moved) > 0, "bfloat16 update is bit-identical to float32: autocast is not in effect"
    assert max(moved) < 1e-3  # one Adam step moves weights by ~lr = 3e-4; bf16 may shift a step's direction, not more


def test_output_layers_stay_float32_under_autocast() -> None:
    """Q values, the actor's mean/log-std and the multiplier's logits are float32 inside a bf16 region, and equal
    the float32 output layer applied to the (bf16-computed) hidden features."""
    agent = make_agent(algo={"name": "sac_alam"})
    critic, actor, multiplier = agent.critic, agent.actor, agent.multiplier.net
    obs, act = torch.randn(5, OBS), torch.rand(5, ACT)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        q = critic(obs, act)
        a, logp = actor.sample(obs, torch.Generator().manual_seed(0))
        deterministic = actor(obs)
        hidden = actor.trunk(obs)
        logits = multiplier.logits(obs)
    assert q.dtype == a.dtype == logp.dtype == logits.dtype == torch.float32
    assert hidden.dtype == torch.bfloat16  # the trunk did run in bf16
    assert torch.equal(deterministic, torch.tanh(actor.head(hidden.float()).chunk(2, dim=-1)[0]))


def test_auto_precision_resolves_per_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """'auto' is bf16 on a CPU with native bf16 and float32 elsewhere; the agent reports what it runs."""
    from alam_control.learn import cpu

    for native, expected in ((True, "bfloat16"), (False, "float32")):
        monkeypatch.setattr(cpu, "native_bf16", lambda native=native: native)
        assert make_agent(train={"precision": "auto"}).precision == expected
