"""walker-safe_walk: accessors and reward against dm_control, speed constraint, initial state, safe controller."""

from __future__ import annotations

import numpy as np
import pytest
from dm_control.suite import walker as suite_walker

import sim
from sim.scripted.walker_speed import StandController, _joint_angles
from sim.walker_speed import INIT_NOISE, MOVE_SPEED, TORSO_Z0, V_LIMIT, _feet_bottom

TASK = "walker-safe_walk"


def random_actions(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, 6))


def test_matches_dm_control_walker_walk() -> None:
    """Fixed-index accessors equal dm_control's named ones; observation and reward equal walker-walk's."""
    env = sim.load(TASK, seed=0)
    env.reset()
    physics = env.physics
    reference = suite_walker.PlanarWalker(move_speed=suite_walker._WALK_SPEED, random=0)
    assert MOVE_SPEED == suite_walker._WALK_SPEED
    for action in random_actions(200, seed=0):
        obs, reward, _, _, _, info = env.step(action)
        base = suite_walker.Physics
        assert physics.torso_upright() == base.torso_upright(physics)
        assert physics.torso_height() == base.torso_height(physics)
        assert physics.horizontal_velocity() == base.horizontal_velocity(physics)
        assert physics.horizontal_velocity() == physics.named.data.sensordata["torso_subtreelinvel"][0]
        np.testing.assert_array_equal(physics.orientations(), base.orientations(physics))
        expected_obs = np.concatenate([np.ravel(v) for v in reference.get_observation(physics).values()])
        np.testing.assert_array_equal(obs, np.float32(expected_obs))
        assert reward == pytest.approx(reference.get_reward(physics), abs=1e-12)
        assert info["constraints"]["speed"] == physics.named.data.sensordata["torso_subtreelinvel"][0] - V_LIMIT
    assert env.spec.obs_layout == {"orientations": (0, 14), "height": (14, 15), "velocity": (15, 24)}
    assert physics.model.body_pos[physics.model.name2id("torso", "body"), 2] == TORSO_Z0  # StandController's z0


def test_joint_angles_from_observation() -> None:
    env = sim.load(TASK, seed=1)
    env.reset()
    for action in random_actions(100, seed=1):
        obs, *_ = env.step(action)
        pitch, joints = _joint_angles(obs.astype(np.float64))
        qpos = env.physics.named.data.qpos
        wrapped = (qpos["rooty"][0] + np.pi) % (2 * np.pi) - np.pi  # the hinge is unlimited
        assert pitch == pytest.approx(wrapped, abs=1e-5)  # float32 observation
        np.testing.assert_allclose(joints, qpos[3:], atol=1e-5)


@pytest.mark.parametrize("speed", [-0.5, 0.0, 0.69, 0.71, 1.3])
def test_speed_constraint_from_set_velocity(speed: float) -> None:
    env = sim.load(TASK, seed=0)
    env.reset()
    physics = env.physics
    physics.data.qvel[:] = 0.0
    physics.named.data.qvel["rootx"] = speed  # the whole walker translates: its center of mass moves at `speed`
    physics.forward()
    g = env.task.get_constraints(physics)["speed"]
    assert g == pytest.approx(speed - V_LIMIT, abs=1e-12)
    assert env.task.get_cost({"speed": g}) == float(speed > V_LIMIT)
    # A pure pitch rate about the torso center moves the legs, hence the center of mass, backwards.
    physics.data.qvel[:] = 0.0
    physics.named.data.qvel["rooty"] = 1.0
    physics.forward()
    com_height = physics.named.data.subtree_com["torso", "z"] - physics.named.data.xpos["torso", "z"]
    assert env.task.get_constraints(physics)["speed"] == pytest.approx(com_height * 1.0 - V_LIMIT, abs=1e-9)


@pytest.mark.parametrize("seed", range(10))
def test_initial_state_stands_on_the_floor(seed: int) -> None:
    env = sim.load(TASK, seed=seed)
    obs, info = env.reset()
    physics = env.physics
    qpos = physics.named.data.qpos
    assert _feet_bottom(physics) == pytest.approx(0.0, abs=1e-9)
    assert np.all(np.abs(qpos[["rooty", "right_hip", "right_ankle", "left_hip", "left_ankle"]]) <= INIT_NOISE)
    assert np.all((qpos[["right_knee", "left_knee"]] <= 0.0) & (qpos[["right_knee", "left_knee"]] >= -2 * INIT_NOISE))
    np.testing.assert_array_equal(physics.data.qvel, 0.0)
    assert physics.torso_height() > 1.2 and info["constraints"]["speed"] == -V_LIMIT


def test_state_roundtrip_while_balancing() -> None:
    """Mid-episode snapshot under feet contact (warm start matters): the copy continues bit-exactly."""
    env = sim.load(TASK, seed=5)
    controller = StandController()
    obs, _ = env.reset()
    for _ in range(50):
        obs, *_ = env.step(controller(obs))
    state = env.get_state()

    def run(e: sim.SafeEnv, obs: np.ndarray) -> list[tuple]:
        out = []
        for _ in range(100):
            obs, *rest = e.step(controller(obs))
            out.append((obs.tobytes(), *rest))
        return out

    expected = run(env, obs)
    restored = sim.load(TASK, seed=99)
    restored.set_state(state)
    assert run(restored, obs) == expected
