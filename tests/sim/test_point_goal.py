"""point-safe_goal: accessors, hazard constraint, goal reaching and resampling, safe controller, state restore."""

from __future__ import annotations

import math

import numpy as np
import pytest

import sim
from sim.point_goal import (
    ARENA,
    DAMPING,
    GOAL_BONUS,
    GOAL_CLEARANCE,
    GOAL_MIN_DISTANCE,
    GOAL_RADIUS,
    HAZARD_GAP,
    HAZARD_RADIUS,
    MAX_FORCE,
    NUM_HAZARDS,
    PLACEMENT,
    START_CLEARANCE,
)
from sim.scripted.point_goal import GoalController

TASK = "point-safe_goal"


def observe(env: sim.SafeEnv) -> np.ndarray:
    """The observation of the current physics state, after editing it by hand."""
    env.physics.forward()
    return np.concatenate([np.ravel(v) for v in env.task.get_observation(env.physics).values()]).astype(np.float32)


def test_fixed_indices_match_names() -> None:
    env = sim.load(TASK, seed=0)
    env.reset()
    physics = env.physics
    for action in np.random.default_rng(0).uniform(-1.0, 1.0, (20, 2)):
        env.step(action)
        named = physics.named.data
        np.testing.assert_array_equal(physics.robot_position(), named.qpos[["x", "y"]])
        np.testing.assert_array_equal(physics.robot_velocity(), named.qvel[["x", "y"]])
        np.testing.assert_array_equal(physics.goal_position(), named.mocap_pos["goal", ["x", "y"]])
        hazards = named.mocap_pos[[f"hazard_{i}" for i in range(NUM_HAZARDS)]][:, :2]
        np.testing.assert_array_equal(physics.hazard_positions(), hazards)
        np.testing.assert_array_equal(physics.hazard_vectors(), hazards - named.xpos["robot", ["x", "y"]])
    assert env.spec.obs_layout == {
        "velocity": (0, 2),
        "goal_vector": (2, 4),
        "hazard_vectors": (4, 4 + 2 * NUM_HAZARDS),
    }


def test_model_matches_module_constants() -> None:
    model = sim.load(TASK, seed=0).physics.model
    np.testing.assert_array_equal(model.jnt_range, [[-ARENA, ARENA]] * 2)
    np.testing.assert_array_equal(model.dof_damping, DAMPING)
    np.testing.assert_array_equal(model.actuator_gear[:, 0], MAX_FORCE)
    assert model.geom_size[model.name2id("goal", "geom"), 0] == GOAL_RADIUS
    for i in range(NUM_HAZARDS):
        assert model.geom_size[model.name2id(f"hazard_{i}", "geom"), 0] == HAZARD_RADIUS
    assert model.body_mass[model.name2id("robot", "body")] == 1.0


def test_hazard_constraint_is_depth_inside_nearest_hazard() -> None:
    env = sim.load(TASK, seed=0)
    env.reset()
    physics = env.physics
    physics.data.mocap_pos[1:, :2] = 10.0 + np.arange(NUM_HAZARDS)[:, None]  # all hazards far away...
    physics.data.mocap_pos[3, :2] = (0.5, -0.2)  # ...but hazard_2
    for robot, depth in (((0.5, -0.2), HAZARD_RADIUS), ((0.6, -0.2), HAZARD_RADIUS - 0.1), ((0.5, 0.3), -0.2)):
        physics.data.qpos[:] = robot
        assert env.task.get_constraints(physics)["hazard"] == pytest.approx(depth, abs=1e-12)
    # Stepped into the hazard at rest: the env reports g and cost 1.
    physics.data.qpos[:] = (0.6, -0.2)
    physics.data.qvel[:] = 0.0
    _, _, cost, _, _, info = env.step(np.zeros(2))
    assert info["constraints"]["hazard"] == pytest.approx(0.2, abs=1e-9) and cost == 1.0
    obs = observe(env)
    np.testing.assert_allclose(obs[4:6], (-0.1, 0.0), atol=1e-6)  # nearest hazard first


def test_observation_sorts_hazards_nearest_first() -> None:
    env = sim.load(TASK, seed=4)
    obs, _ = env.reset()
    hazards = obs[4:].reshape(NUM_HAZARDS, 2)
    distances = np.linalg.norm(hazards, axis=1)
    assert (np.diff(distances) >= 0).all()
    expected = env.physics.hazard_positions() - env.physics.robot_position()
    assert sorted(map(tuple, np.float32(expected))) == sorted(map(tuple, hazards))
    np.testing.assert_array_equal(obs[2:4], np.float32(env.physics.goal_vector()))


@pytest.mark.parametrize("seed", range(20))
def test_initial_placement_keeps_clearances(seed: int) -> None:
    env = sim.load(TASK, seed=seed)
    env.reset()
    physics = env.physics
    hazards, robot, goal = physics.hazard_positions(), physics.robot_position(), physics.goal_position()
    for point in (*hazards, robot, goal):
        assert np.abs(point).max() <= PLACEMENT
    gaps = np.linalg.norm(hazards[:, None] - hazards[None], axis=-1) + 10.0 * np.eye(NUM_HAZARDS)
    assert gaps.min() >= 2 * HAZARD_RADIUS + HAZARD_GAP - 1e-9
    assert np.linalg.norm(hazards - robot, axis=1).min() >= HAZARD_RADIUS + START_CLEARANCE - 1e-9
    assert np.linalg.norm(hazards - goal, axis=1).min() >= HAZARD_RADIUS + GOAL_CLEARANCE - 1e-9
    assert np.linalg.norm(goal - robot) >= GOAL_MIN_DISTANCE - 1e-9


def test_reaching_goal_scores_bonus_and_resamples() -> None:
    env = sim.load(TASK, seed=2)
    env.reset()
    physics = env.physics
    old_goal = physics.goal_position().copy()
    # Just outside the goal, moving into it at 1 m/s: one 0.05 s step later it is ~0.25 m from the center.
    direction = np.array([0.6, 0.8])
    physics.data.qpos[:] = old_goal - 0.3 * direction
    physics.data.qvel[:] = direction
    physics.forward()
    env.task._last_goal_distance = 0.3  # as if the last step had ended here
    obs, reward, _, _, _, _ = env.step(direction)
    robot = physics.robot_position().copy()
    new_goal = physics.goal_position().copy()
    progress = 0.3 - math.dist(old_goal, robot)
    assert math.dist(old_goal, robot) <= GOAL_RADIUS
    assert reward == pytest.approx(GOAL_BONUS + progress, abs=1e-12)
    assert math.dist(new_goal, robot) >= GOAL_MIN_DISTANCE
    assert np.linalg.norm(physics.hazard_positions() - new_goal, axis=1).min() >= HAZARD_RADIUS + GOAL_CLEARANCE
    np.testing.assert_array_equal(obs[2:4], np.float32(new_goal - robot))
    # The next step's progress is measured from the new goal.
    _, reward, _, _, _, _ = env.step(np.zeros(2))
    assert reward == pytest.approx(math.dist(new_goal, robot) - math.dist(new_goal, physics.robot_position()))


def test_greedy_controller_violates() -> None:
    env = sim.load(TASK, seed=0)
    greedy = GoalController(avoid=False)
    costs = []
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        truncated = False
        while not truncated:
            obs, _, cost, _, truncated, _ = env.step(greedy(obs))
            costs.append(cost)
    assert np.mean(costs) > 0.03


def test_state_roundtrip_across_goal_reaches() -> None:
    """Mid-episode snapshot, then steps that reach goals (RNG draws + task state): the copy continues alike."""
    env = sim.load(TASK, seed=5)
    controller = GoalController(avoid=False)
    obs, _ = env.reset()
    for _ in range(60):
        obs, *_ = env.step(controller(obs))
    state = env.get_state()
    assert state["task_state"]["last_goal_distance"] > 0.0

    def run(e: sim.SafeEnv, obs: np.ndarray) -> list[tuple]:
        out = []
        for _ in range(150):
            obs, reward, cost, terminated, truncated, info = e.step(controller(obs))
            out.append((obs.tobytes(), reward, cost, terminated, truncated, info))
        return out

    expected = run(env, obs)
    assert sum(r > GOAL_BONUS / 2 for _, r, *_ in expected) >= 2, "the continuation reaches goals"
    restored = sim.load(TASK, seed=99)
    restored.set_state(state)
    assert run(restored, obs) == expected
