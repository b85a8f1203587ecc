"""Contract tests for every registered task (as dm_control's suite_test.py), plus cart-pole checks."""

from __future__ import annotations

import dataclasses
import io
import json
import types

import numpy as np
import pytest
import torch
from dm_control.suite import cartpole as suite_cartpole

import sim
from sim.cartpole import X_MAX
from sim.scripted.cartpole import SwingupController


@pytest.fixture(params=sim.ALL_TASKS)
def name(request: pytest.FixtureRequest) -> str:
    return request.param


def random_actions(env: sim.SafeEnv, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, *env.action_space.shape))


def run(env: sim.SafeEnv, actions: np.ndarray) -> list[tuple]:
    """Steps through `actions`; returns (obs, reward, cost, terminated, truncated, info) per step."""
    return [env.step(action) for action in actions]


def assert_same(a: list[tuple], b: list[tuple]) -> None:
    assert len(a) == len(b)
    for (obs_a, *rest_a), (obs_b, *rest_b) in zip(a, b, strict=True):
        np.testing.assert_array_equal(obs_a, obs_b)
        assert rest_a == rest_b


def test_spec_conformance(name: str) -> None:
    env = sim.load(name, seed=0)
    obs, info = env.reset()
    spec = env.spec

    assert obs.shape == env.observation_space.shape and obs.dtype == env.observation_space.dtype == np.float32
    assert env.observation_space.contains(obs)
    covered = sorted(spec.obs_layout.values())
    assert covered[0][0] == 0 and covered[-1][1] == obs.shape[0]
    assert all(stop > start for start, stop in covered)
    assert all(prev[1] == nxt[0] for prev, nxt in zip(covered, covered[1:], strict=False)), "gaps or overlaps"

    assert env.action_space.dtype == np.float32
    np.testing.assert_array_equal(env.action_space.low, -1.0)
    np.testing.assert_array_equal(env.action_space.high, 1.0)

    assert spec.name == name and spec.tags
    assert spec.constraints == tuple(info["constraints"])
    assert spec.cost_threshold > 0 and spec.control_timestep > 0 and spec.max_episode_steps > 0
    assert spec.ros_interface in ("joint", "diff_drive")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]


def test_action_for_inverts_the_action_scaling(name: str) -> None:
    env = sim.load(name, seed=0)
    env.reset()
    low, high = np.asarray(env.spec.ctrl_low), np.asarray(env.spec.ctrl_high)
    action = np.linspace(-1.0, 1.0, len(low))
    env.step(action)
    np.testing.assert_allclose(env.physics.data.ctrl, low + (high - low) * (action + 1) / 2)  # what step applied
    np.testing.assert_allclose(env.action_for(env.physics.data.ctrl), action, atol=1e-12)
    np.testing.assert_array_equal(env.action_for(high + 5.0), np.ones(len(low)))  # out of range: clipped
    np.testing.assert_array_equal(env.action_for(low - 5.0), -np.ones(len(low)))


def test_determinism_under_seed(name: str) -> None:
    env_a, env_b = sim.load(name, seed=3), sim.load(name, seed=11)
    obs_a, _ = env_a.reset()
    obs_b, _ = env_b.reset(seed=3)  # re-seeding on reset == seeding at load
    np.testing.assert_array_equal(obs_a, obs_b)
    actions = random_actions(env_a, 100, seed=0)
    assert_same(run(env_a, actions), run(env_b, actions))


def test_initial_state_differs_across_seeds(name: str) -> None:
    env = sim.load(name)
    initial = [env.reset(seed=seed)[0] for seed in range(5)]
    assert len({obs.tobytes() for obs in initial}) == len(initial)


def test_episode_contract(name: str) -> None:
    """Random rollout: finite obs, cost is the violation indicator, truncation exactly at the time limit."""
    env = sim.load(name, seed=1)
    with pytest.raises(RuntimeError):
        env.step(env.action_space.sample())
    env.reset()
    for t, action in enumerate(random_actions(env, env.spec.max_episode_steps, seed=1), start=1):
        obs, reward, cost, terminated, truncated, info = env.step(action)
        assert np.isfinite(obs).all() and np.isfinite(reward)
        assert isinstance(reward, float) and isinstance(cost, float)
        assert tuple(info["constraints"]) == env.spec.constraints
        assert cost >= 0.0 and cost == float(any(g > 0 for g in info["constraints"].values()))
        assert truncated == (t == env.spec.max_episode_steps)
        if terminated or truncated:
            break
    with pytest.raises(RuntimeError):
        env.step(action)


def test_actions_are_clipped_and_validated(name: str) -> None:
    env_a, env_b = sim.load(name, seed=0), sim.load(name, seed=0)
    env_a.reset(), env_b.reset()
    shape = env_a.action_space.shape
    assert_same(run(env_a, np.full((3, *shape), 7.0)), run(env_b, np.ones((3, *shape))))
    with pytest.raises(ValueError):
        env_a.step(np.zeros(shape[0] + 1))
    with pytest.raises(ValueError):
        env_a.step(np.full(shape, np.nan))


def test_state_roundtrip_is_exact(name: str) -> None:
    env = sim.load(name, seed=7)
    env.reset()
    run(env, random_actions(env, 37, seed=2))
    state = env.get_state()
    actions = random_actions(env, 50, seed=3)
    expected = run(env, actions)

    # A fresh env with another seed: everything must come from the state.
    restored = sim.load(name, seed=123)
    restored.set_state(state)
    assert_same(run(restored, actions), expected)
    # The task RNG was restored too: the next episodes start alike.
    np.testing.assert_array_equal(restored.reset()[0], env.reset()[0])


def test_state_is_plain_data(name: str) -> None:
    env = sim.load(name, seed=0)
    env.reset()
    run(env, random_actions(env, 10, seed=0))
    state = env.get_state()
    assert json.loads(json.dumps(state)) == state  # only plain Python types

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    actions = random_actions(env, 20, seed=1)
    restored = sim.load(name)
    restored.set_state(loaded)
    assert_same(run(restored, actions), run(env, actions))


def test_state_restores_episode_end(name: str) -> None:
    env = sim.load(name, seed=0)
    env.reset()
    run(env, np.zeros((env.spec.max_episode_steps, *env.action_space.shape)))
    restored = sim.load(name)
    restored.set_state(env.get_state())
    with pytest.raises(RuntimeError):
        restored.step(np.zeros(env.action_space.shape))
    with pytest.raises(ValueError, match="task"):
        restored.set_state({**env.get_state(), "task": "another-task"})


def test_render(name: str) -> None:
    env = sim.load(name, seed=0)
    env.reset()
    try:
        frame = env.render(height=48, width=64)
    except Exception as error:  # no OpenGL backend on this machine: nothing to test here
        pytest.skip(f"rendering unavailable: {error!r}")
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    env.close()


def test_unknown_task_lists_valid_names() -> None:
    with pytest.raises(ValueError) as error:
        sim.load("cartpole-no_such_task")
    assert all(name in str(error.value) for name in sim.ALL_TASKS)


def test_scripted_controllers_import_from_their_domain_modules_too() -> None:
    """benchmarks/ and the ROS tests import the controllers (and the lidar) from the domain modules."""
    from sim import cartpole, diffdrive, lidar, point_goal, scripted, walker_speed

    assert cartpole.SwingupController is scripted.cartpole.SwingupController is scripted.SwingupController
    assert diffdrive.NavigateController is scripted.diffdrive.NavigateController
    assert point_goal.GoalController is scripted.point_goal.GoalController
    assert walker_speed.StandController is scripted.walker_speed.StandController
    assert diffdrive.Lidar is lidar.Lidar
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchController'"):
        cartpole.NoSuchController  # noqa: B018


def test_safe_policies_register_once_for_known_tasks() -> None:
    with pytest.raises(ValueError, match="unknown task 'cartpole-no_such_task'"):
        sim.TASKS.add_safe_policy("cartpole-no_such_task", lambda env: SwingupController())
    with pytest.raises(ValueError, match="already has a safe policy"):
        sim.TASKS.add_safe_policy("cartpole-safe_swingup", lambda env: SwingupController())


def test_randomization_changes_physics_reproducibly(name: str) -> None:
    nominal = sim.load(name, seed=0)
    nominal.reset()
    env_a, env_b = sim.load(name, seed=5, randomize=True), sim.load(name, seed=5, randomize=True)
    (obs_a, info_a), (obs_b, info_b) = env_a.reset(), env_b.reset()
    params = info_a["randomization"]
    assert params == info_b["randomization"], "same seed, same draw"
    np.testing.assert_array_equal(obs_a, obs_b)
    model, base = env_a.physics.model, nominal.physics.model
    moving = base.body_mass > 0
    assert not np.allclose(model.body_mass[moving], base.body_mass[moving])
    np.testing.assert_allclose(model.body_mass, base.body_mass * params["mass_scale"])
    np.testing.assert_allclose(model.actuator_gear[:, 0], base.actuator_gear[:, 0] * params["actuator_gain_scale"])
    ranges = sim.Randomization()
    for key, (low, high) in (("mass_scale", ranges.mass), ("friction_scale", ranges.friction)):
        assert all(low <= v <= high for v in params[key])
    actions = random_actions(env_a, 30, seed=0)
    assert_same(run(env_a, actions), run(env_b, actions))
    assert env_a.reset()[1]["randomization"] != params, "a new draw every episode"
    assert sim.load(name, seed=6, randomize=True).reset()[1]["randomization"] != params


def test_randomized_state_roundtrip(name: str) -> None:
    ranges = sim.Randomization(action_delay=(2, 2), push_rate=2.0, push_duration_s=0.5)
    env = sim.load(name, seed=3, randomize=ranges)
    env.reset()
    env.push(0.5, 0.6)  # saved mid-push: the rest of it, and the random pushes after it, must replay
    run(env, random_actions(env, 3, seed=0))
    assert env.pushing
    state = env.get_state()
    actions = random_actions(env, 20, seed=1)
    expected = run(env, actions)
    restored = sim.load(name, seed=99, randomize=ranges)
    restored.set_state(state)
    assert_same(run(restored, actions), expected)
    np.testing.assert_array_equal(restored.physics.model.body_mass, env.physics.model.body_mass)
    with pytest.raises(ValueError, match="randomization"):
        sim.load(name, seed=0).set_state(state)


def test_action_delay_applies_earlier_actions(name: str) -> None:
    delayed = sim.load(name, seed=0, randomize=sim.Randomization(action_delay=(2, 2), obs_noise=0.0))
    delayed.reset()
    assert delayed.randomization["action_delay"] == 2
    shape = delayed.action_space.shape
    run(delayed, [np.ones(shape), np.ones(shape)])
    # Two steps in, the controls applied so far are the zero controls queued at reset.
    np.testing.assert_array_equal(delayed.physics.data.ctrl, 0.0)
    run(delayed, [np.zeros(shape)])
    np.testing.assert_allclose(delayed.physics.data.ctrl, delayed.physics.model.actuator_ctrlrange[:, 1])


def test_push_overrides_the_actions_for_its_duration(name: str) -> None:
    env = sim.load(name, seed=0)
    env.reset()
    steps = 4
    env.push(steps * env.task.control_timestep, 0.5)
    actions = random_actions(env, steps + 1, seed=0)
    for i, action in enumerate(actions):
        expected = env.task.push_action(env.physics, 0.5) if i < steps else np.clip(action, -1.0, 1.0)
        *_, info = env.step(action)
        assert info["push"] == (i < steps)
        ctrl_low, ctrl_high = env.physics.model.actuator_ctrlrange.T
        ctrl = (ctrl_high + ctrl_low) / 2 + (ctrl_high - ctrl_low) / 2 * expected
        np.testing.assert_allclose(env.physics.data.ctrl, ctrl)
    with pytest.raises(ValueError, match="strength"):
        env.push(1.0, 1.5)


def test_random_pushes_come_at_their_rate_and_only_when_asked(name: str) -> None:
    dt = sim.load(name, seed=1).task.control_timestep
    # A push starts with chance push_rate * dt on each step without one, and lasts round(push_duration_s / dt) steps
    # (one may follow right after another).
    env = sim.load(name, seed=1, randomize=sim.Randomization(push_rate=0.2 / dt, push_duration_s=3 * dt))
    env.reset()
    free, pushed, run_length = 0, 0, 0
    for _ in range(3000):
        *_, terminated, truncated, info = env.step(np.zeros(env.action_space.shape))
        pushed += info["push"]
        run_length = run_length + 1 if info["push"] else 0
        free += not info["push"]
        if terminated or truncated:
            env.reset()
            assert not env.pushing
            pushed -= run_length % 3  # a push cut short by the episode's end
            run_length = 0
    starts = pushed / 3
    assert starts / (free + starts) == pytest.approx(0.2, abs=0.03)  # ~470 starts: 3 standard errors
    quiet = sim.load(name, seed=1, randomize=sim.Randomization())
    quiet.reset()
    assert not any(quiet.step(np.zeros(quiet.action_space.shape))[-1]["push"] for _ in range(200))


@pytest.mark.parametrize(
    ("ranges", "key"),
    [
        ({"mass": [1.2, 0.8]}, "mass"),
        ({"friction": [0.0, 1.0]}, "friction"),
        ({"damping": [1.0]}, "damping"),
        ({"obs_noise": -0.1}, "obs_noise"),
        ({"action_delay": [2, 1]}, "action_delay"),
        ({"masses": [0.9, 1.1]}, "masses"),
        ({"push_rate": -1.0}, "push_rate"),
        ({"push_strength": 2.0}, "push_strength"),
        ({"push_duration_s": "long"}, "push_duration_s"),
    ],
)
def test_bad_randomization_ranges_are_named(ranges: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        sim.Randomization.from_mapping(ranges)


def test_gymnasium_check_env(name: str) -> None:
    from gymnasium.utils.env_checker import check_env

    env = sim.make_gymnasium(name, seed=0, render_mode=None)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=1)
    _, _, _, _, info = env.step(env.action_space.sample())
    assert info["cost"] in (0.0, 1.0) and tuple(info["constraints"]) == env.env.spec.constraints


def test_vector_env_matches_single_envs(name: str) -> None:
    vec = sim.VectorEnv(name, num_envs=3, seed=10)
    obs, _ = vec.reset()
    singles = [sim.load(name, seed=10 + i) for i in range(3)]
    np.testing.assert_array_equal(obs, np.stack([env.reset()[0] for env in singles]))
    steps = min(60, singles[0].spec.max_episode_steps + 5)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, 3, *vec.single_action_space.shape))
    for t in range(steps):
        obs, reward, cost, terminated, truncated, info = vec.step(actions[t])
        for i, env in enumerate(singles):
            o, r, c, te, tr, _ = env.step(actions[t, i])
            assert (reward[i], cost[i], terminated[i], truncated[i]) == (r, c, te, tr)
            if te or tr:
                np.testing.assert_array_equal(info["final_obs"][i], o)
                o, _ = env.reset()
            np.testing.assert_array_equal(obs[i], o)
    with pytest.raises(ValueError, match="shape"):
        vec.step(np.zeros((2, *vec.single_action_space.shape)))


# Least return of each task's registered safe policy, under the range its benchmark measured. A new task must
# add its row (a KeyError otherwise), so that no task ships without a safe behaviour that is also useful.
SAFE_RETURN_FLOOR = {
    "cartpole-safe_swingup": 350.0,  # benchmarks/cartpole_band.py: 367.1-369.7 over 20 seeds, max |x| 0.45 m
    "diffdrive-safe_navigate": 10.0,  # benchmarks/diffdrive_binding.py: 12.0-16.5 over 50 seeds
    "point-safe_goal": 20.0,  # benchmarks/point_goal_binding.py: 23.4-30 over 100 episodes
    "walker-safe_walk": 160.0,  # benchmarks/walker_binding.py: 166.7-167.5 over 20 episodes, never fell
}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_safe_policy_is_safe_and_useful(name: str, seed: int) -> None:
    env = sim.load(name, seed=seed)
    policy = sim.TASKS.safe_policy(env)
    obs, _ = env.reset()
    total_reward = total_cost = 0.0
    truncated = terminated = False
    while not (terminated or truncated):
        action = np.asarray(policy(obs))
        assert action.shape == env.action_space.shape and np.all(np.abs(action) <= 1.0)
        obs, reward, cost, terminated, truncated, _ = env.step(action)
        total_reward += reward
        total_cost += cost
    assert total_cost == 0.0
    assert total_reward > SAFE_RETURN_FLOOR[name]


# --- cartpole-safe_swingup -------------------------------------------------------------------------------


def test_cartpole_matches_dm_control() -> None:
    """Fixed-index accessors match the named ones; reward equals dm_control's swing-up reward."""
    env = sim.load("cartpole-safe_swingup", seed=0)
    env.reset()
    physics = env.physics
    # dm_control's reward code, reading our physics through array-valued accessors as its Physics has.
    view = types.SimpleNamespace(
        cart_position=physics.cart_position,
        pole_angle_cosine=lambda: np.array([physics.pole_angle_cosine()]),
        angular_vel=lambda: np.array([physics.angular_vel()]),
        control=physics.control,
    )
    reference = suite_cartpole.Balance(swing_up=True, sparse=False)
    for action in random_actions(env, 200, seed=0):
        obs, reward, _, _, _, info = env.step(action)
        named = physics.named.data
        np.testing.assert_array_equal(
            [physics.cart_position(), physics.pole_angle_cosine(), physics.pole_angle_sine()],
            [named.qpos["slider"][0], named.xmat["pole_1", "zz"], named.xmat["pole_1", "xz"]],
        )
        np.testing.assert_array_equal(obs[3:], np.float32(named.qvel[["slider", "hinge_1"]]))
        assert reward == pytest.approx(reference.get_reward(view), abs=1e-12)
        assert 0.0 <= reward <= 1.0
        assert info["constraints"]["cart_band"] == abs(named.qpos["slider"][0]) - X_MAX


def test_safe_controller_keeps_band_when_taking_over() -> None:
    # As a fallback it starts from wherever the policy left the cart: 0 of 200 such starts violated.
    env = sim.load("cartpole-safe_swingup", seed=0)
    controller = SwingupController()
    rng = np.random.default_rng(1)
    for _ in range(10):
        env.reset()
        env.physics.data.qpos[:] = rng.uniform(-0.4, 0.4), rng.uniform(-np.pi, np.pi)
        env.physics.data.qvel[:] = rng.uniform(-1.0, 1.0), rng.uniform(-3.0, 3.0)
        env.physics.forward()
        obs = np.array(list(env.task.get_observation(env.physics).values()))
        for _ in range(env.spec.max_episode_steps):
            obs, _, cost, _, _, _ = env.step(controller(obs))
            assert cost == 0.0


def test_widened_ranges_grow_around_the_nominal_model() -> None:
    wide = sim.Randomization().widened(2.0)
    assert wide.mass == pytest.approx((0.6, 1.4)) and wide.friction == pytest.approx((0.4, 1.6))
    assert wide.actuator_gain == pytest.approx((0.7, 1.3)) and wide.obs_noise == pytest.approx(0.02)
    assert wide.action_delay == (0, 2)
    assert sim.Randomization().widened(1.0) == sim.Randomization()
    assert sim.Randomization(push_rate=0.1).widened(3.0).push_rate == pytest.approx(0.3)
    assert sim.Randomization(mass=(0.5, 1.5)).widened(3.0).mass == pytest.approx((0.05, 2.5))  # floored: mass > 0
    with pytest.raises(ValueError, match="widening factor must be >= 1, got 0.5"):
        sim.Randomization().widened(0.5)


def test_run_episodes_are_the_seeded_run_episode_calls() -> None:
    # The evaluation episodes benchmarks compare on: seed, seed + 1, ... regardless of what ran before.
    env = sim.load("point-safe_goal", seed=0)
    try:
        policy = sim.TASKS.safe_policy(env)
        runs = sim.run_episodes(env, policy, 2, seed=7)
        again = [sim.run_episode(env, policy, seed=s) for s in (8, 7)][::-1]
    finally:
        env.close()
    assert [r.ret for r in runs] == [r.ret for r in again] and len(runs) == 2
    assert runs[0].ret != runs[1].ret
