"""Checks of `diffdrive-safe_navigate` beyond the contract tests: model, lidar, constraint, drive, controller."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

import sim
from sim import diffdrive
from sim.diffdrive import (
    ARENA,
    BEAM_ANGLES,
    BEAM_WIDTH,
    CLEARANCE,
    HULL_RADIUS,
    NUM_BEAMS,
    OMEGA_MAX,
    PILLAR_RADIUS,
    RANGE_MAX,
    RANGE_MIN,
    RAY_ANGLES,
    V_MAX,
    push_command,
)
from sim.lidar import Lidar
from sim.scripted.diffdrive import NavigateController

TASK = "diffdrive-safe_navigate"
FAR = 50.0  # m; pillars parked here are out of the way


def make_env(seed: int = 0) -> sim.SafeEnv:
    env = sim.load(TASK, seed=seed)
    env.reset()
    return env


def place(env: sim.SafeEnv, x: float, y: float, yaw: float, pillars=(), goal=(FAR, FAR)) -> None:
    """Puts the robot at rest at (x, y, yaw), the given pillars (the others parked far away) and the goal."""
    data = env.physics.data
    data.qpos[:] = (x, y, 0.0, yaw, 0.0, 0.0)
    data.qvel[:] = 0.0
    data.mocap_pos[1:, :2] = [(FAR + 2.0 * i, FAR) for i in range(len(data.mocap_pos) - 1)]
    for i, pillar in enumerate(pillars):
        data.mocap_pos[1 + i, :2] = pillar
    data.mocap_pos[0, :2] = goal
    env.physics.forward()
    env.task.set_state({"last_goal_distance": env.physics.goal_distance(), "reward": 0.0})


def observe(env: sim.SafeEnv) -> dict[str, np.ndarray]:
    return {key: np.asarray(value, np.float64) for key, value in env.task.get_observation(env.physics).items()}


def drive(env: sim.SafeEnv, v: float, omega: float, seconds: float) -> None:
    action = np.array([v / V_MAX, omega / OMEGA_MAX])
    for _ in range(round(seconds / env.spec.control_timestep)):
        env.step(action)


def test_spec() -> None:
    env = make_env()
    assert env.spec.obs_layout == {"goal": (0, 3), "velocity": (3, 5), "ranges": (5, 5 + NUM_BEAMS)}
    assert env.spec.constraints == ("clearance",)
    assert env.spec.ros_interface == "diff_drive"
    assert env.spec.control_timestep == 0.1 and env.spec.max_episode_steps == 300
    assert "benchmark" in env.spec.tags


def test_fixed_indices_match_names() -> None:
    env = make_env()
    physics, model = env.physics, env.physics.model
    for i, joint in enumerate(("x", "y", "z", "yaw", "wheel_left", "wheel_right")):
        assert model.jnt_qposadr[model.name2id(joint, "joint")] == i
        assert model.jnt_dofadr[model.name2id(joint, "joint")] == i
    assert model.body_mocapid[model.name2id("goal", "body")] == 0
    for i in range(diffdrive.NUM_PILLARS):
        assert model.body_mocapid[model.name2id(f"pillar_{i}", "body")] == 1 + i
    assert model.nsensordata == len(RAY_ANGLES)
    robot = model.name2id("robot", "body")
    for i in range(len(RAY_ANGLES)):
        sensor = model.name2id(f"ray_{i:02d}", "sensor")
        assert model.sensor_adr[sensor] == i and model.sensor_type[sensor] == mujoco.mjtSensor.mjSENS_RANGEFINDER
        site = model.sensor_objid[sensor]
        assert model.site_bodyid[site] == robot
    # A rangefinder looks along its site's z-axis: horizontal, at RAY_ANGLES[i] from the robot's heading.
    place(env, 0.0, 0.0, 0.0)
    named = physics.named.data
    for i, angle in enumerate(RAY_ANGLES):
        np.testing.assert_allclose(named.site_xmat[f"ray_{i:02d}"].reshape(3, 3)[:, 2], [*_unit(angle), 0.0], atol=1e-9)
        assert named.site_xpos[f"ray_{i:02d}", "z"] == pytest.approx(diffdrive.LIDAR_HEIGHT)
    np.testing.assert_array_equal(physics.robot_position(), named.qpos[["x", "y"]])
    assert physics.heading() == named.qpos["yaw"]
    np.testing.assert_array_equal(physics.goal_position(), named.mocap_pos["goal", ["x", "y"]])
    np.testing.assert_array_equal(physics.pillar_positions()[0], named.mocap_pos["pillar_0", ["x", "y"]])


def test_model_matches_module_constants() -> None:
    model = make_env().physics.model
    geom = lambda name: model.name2id(name, "geom")  # noqa: E731
    assert model.geom_size[geom("hull"), 0] == HULL_RADIUS
    assert model.geom_size[geom("pillar_0"), 0] == PILLAR_RADIUS
    assert model.geom_size[geom("wheel_left"), 0] == diffdrive.WHEEL_RADIUS
    assert model.body_pos[model.name2id("wheel_left", "body"), 1] * 2 == pytest.approx(diffdrive.TRACK_WIDTH)
    wall = geom("wall_px")
    assert model.geom_pos[wall, 0] - model.geom_size[wall, 0] == pytest.approx(ARENA)
    np.testing.assert_allclose(model.actuator_ctrlrange, [[-V_MAX, V_MAX], [-OMEGA_MAX, OMEGA_MAX]])
    r, w = diffdrive.WHEEL_RADIUS, diffdrive.TRACK_WIDTH
    np.testing.assert_allclose(model.wrap_prm[:4], [r / 2, r / 2, -r / w, r / w])
    assert model.opt.disableflags & mujoco.mjtDisableBit.mjDSBL_SENSOR  # evaluated on demand by Physics.ranges
    np.testing.assert_allclose(np.diff(BEAM_ANGLES), BEAM_WIDTH)
    assert BEAM_ANGLES[0] == 0.0 and BEAM_ANGLES[-1] < 2 * math.pi


@pytest.mark.parametrize("yaw", [0.0, 1.0, -2.5])
@pytest.mark.parametrize("bearing_deg", [0.0, 37.0, 90.0, 200.0])
def test_lidar_sees_pillar_at_its_distance(yaw: float, bearing_deg: float) -> None:
    env = make_env()
    distance = 0.8  # from the robot's center to the pillar's center
    bearing = math.radians(bearing_deg)
    pillar = distance * np.array(_unit(yaw + bearing))
    place(env, 0.0, 0.0, yaw, pillars=[pillar])
    ranges = observe(env)["ranges"]
    sector = round(bearing / BEAM_WIDTH) % NUM_BEAMS
    # The sector reading is its rays' minimum; a ray at angle a from the pillar's direction hits the cylinder at
    # d cos(a) - sqrt(R^2 - d^2 sin(a)^2).
    rays = RAY_ANGLES.reshape(NUM_BEAMS, -1)[sector] - bearing
    rays = np.angle(np.exp(1j * rays))
    hit = np.abs(distance * np.sin(rays)) < PILLAR_RADIUS
    expected = (distance * np.cos(rays) - np.sqrt(np.maximum(PILLAR_RADIUS**2 - (distance * np.sin(rays)) ** 2, 0)))[
        hit
    ]
    assert ranges[sector] == pytest.approx(expected.min(), abs=1e-6)
    assert ranges.argmin() == sector
    # The walls (2 m from the center) are at or beyond RANGE_MAX: every other sector reads RANGE_MAX.
    others = np.delete(ranges, [(sector - 1) % NUM_BEAMS, sector, (sector + 1) % NUM_BEAMS])
    np.testing.assert_array_equal(others, RANGE_MAX)


def test_lidar_no_hit_and_too_close() -> None:
    env = make_env()
    place(env, 10.0, 0.0, 0.0)  # outside the arena, facing away from it: most rays hit nothing
    raw = env.physics.ray_ranges()
    assert (raw == -1.0).sum() > len(raw) // 2
    np.testing.assert_array_equal(observe(env)["ranges"], RANGE_MAX)
    # Hull pressed into a pillar: the return is closer than RANGE_MIN and reads RANGE_MIN.
    place(env, 0.0, 0.0, 0.0, pillars=[(PILLAR_RADIUS + 0.1, 0.0)])
    ranges = observe(env)["ranges"]
    assert ranges[0] == RANGE_MIN and ranges.min() == RANGE_MIN


def bin_sectors(ranges: np.ndarray, angle_min: float, angle_increment: float) -> np.ndarray:
    """A scan binned onto the sectors by the module's contract: each sector's minimum over the beams within
    BEAM_WIDTH / 2 of its center, -Inf reading RANGE_MIN and +Inf RANGE_MAX; [NUM_BEAMS]."""
    angles = angle_min + angle_increment * np.arange(len(ranges))
    offset = np.angle(np.exp(1j * (angles[None, :] - BEAM_ANGLES[:, None])))  # [NUM_BEAMS, M], wrapped
    inside = np.abs(offset) <= BEAM_WIDTH / 2 + 1e-9
    return np.where(inside, np.clip(ranges, RANGE_MIN, RANGE_MAX), np.inf).min(axis=1)


def test_lidar_scan_binned_matches_the_sector_readings() -> None:
    """A 360-beam scan binned onto the sectors (as the policy node bins a LaserScan) reads like the trained
    observation's sectors (never farther; nearer where a sector's edge sees an obstacle that the sim's 2 rays per
    sector pass by)."""
    env = make_env(seed=3)
    lidar = Lidar(env.physics, 360, RANGE_MIN, RANGE_MAX)
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(100):
        env.step(rng.uniform(-1, 1, 2))
        ranges = lidar.scan(float(env.physics.heading()))
        assert ranges.shape == (360,) and ranges.dtype == np.float32
        finite = ranges[np.isfinite(ranges)]
        assert ((finite >= RANGE_MIN) & (finite <= RANGE_MAX)).all()
        assert not np.isnan(ranges).any()
        diffs.append(bin_sectors(ranges, lidar.angle_min, lidar.angle_increment) - env.physics.ranges())
    diffs = np.concatenate(diffs)
    assert diffs.max() < 2e-3  # never farther than the sim's own sector reading
    assert np.median(np.abs(diffs)) < 0.05


def test_lidar_reports_rep117_infinities_and_needs_its_site() -> None:
    env = make_env()
    lidar = Lidar(env.physics, 360, RANGE_MIN, RANGE_MAX)
    place(env, 10.0, 0.0, 0.0)  # outside the arena, facing away from it: most beams see nothing within range
    ranges = lidar.scan(0.0)
    assert np.isposinf(ranges).sum() > 180 and not np.isneginf(ranges).any()
    place(env, 0.0, 0.0, 0.0, pillars=[(PILLAR_RADIUS + 0.1, 0.0)])  # hull pressed into a pillar ahead
    ranges = lidar.scan(0.0)
    assert np.isneginf(ranges[0]) and np.isneginf(ranges[-1])  # closer than RANGE_MIN
    with pytest.raises(ValueError, match="no lidar site 'nope'"):
        Lidar(env.physics, 360, RANGE_MIN, RANGE_MAX, site="nope")


@pytest.mark.parametrize(
    "pose, pillars",
    [
        ((0.0, 0.0, 0.3), [(0.5, 0.2), (-0.9, 0.4)]),  # nearest: the first pillar
        ((1.55, -0.2, 2.0), [(0.3, 0.3)]),  # nearest: the +x wall
        ((-0.4, -1.62, -1.0), [(0.0, -1.0)]),  # wall and pillar both close
        ((0.62, 0.0, 0.0), [(0.9, 0.1)]),  # hull inside the pillar: negative distance
    ],
)
def test_constraint_is_geometric_clearance(pose: tuple[float, float, float], pillars: list) -> None:
    env = make_env()
    place(env, *pose, pillars=pillars)
    physics, model = env.physics, env.physics.model
    hull = model.name2id("hull", "geom")
    obstacles = [model.name2id(name, "geom") for name in ("wall_px", "wall_nx", "wall_py", "wall_ny")]
    obstacles += [model.name2id(f"pillar_{i}", "geom") for i in range(len(pillars))]
    fromto = np.zeros(6)
    nearest = min(mujoco.mj_geomDistance(model.ptr, physics.data.ptr, hull, g, 10.0, fromto) for g in obstacles)
    if nearest < 0:  # penetration: mj_geomDistance is exact only without it; use the circle geometry
        x, y = pose[:2]
        nearest = min(math.dist((x, y), p) - PILLAR_RADIUS - HULL_RADIUS for p in pillars)
    g = env.task.get_constraints(physics)["clearance"]
    assert isinstance(g, float)
    assert g == pytest.approx(CLEARANCE - nearest, abs=1e-6)
    assert env.task.get_cost({"clearance": g}) == float(nearest < CLEARANCE)


def test_robot_cannot_move_sideways() -> None:
    """A 3 N sideways push (well within the wheels' grip) barely moves the robot; without wheel friction it slides."""

    def push(friction: float) -> float:
        env = make_env()
        model = env.physics.model
        if friction != 1.0:
            model.geom_friction[[model.name2id(g, "geom") for g in ("floor", "wheel_left", "wheel_right")], 0] = (
                friction
            )
        place(env, 0.0, 0.0, 0.7)
        left = np.array(_unit(0.7 + math.pi / 2))
        env.physics.data.xfrc_applied[model.name2id("robot", "body"), :2] = 3.0 * left
        drive(env, 0.0, 0.0, 1.0)
        return float(env.physics.robot_position() @ left)

    assert abs(push(1.0)) < 0.003  # the soft contacts' give: ~1.3 mm, then a creep of ~0.2 mm/s
    assert push(0.0) > 0.5


def test_drives_arcs_of_radius_v_over_omega() -> None:
    env = make_env()
    place(env, -0.5, -0.5, 0.0)
    v, omega = 0.4, 1.6
    drive(env, v, omega, 1.0)  # settle
    points = []
    for _ in range(30):
        drive(env, v, omega, 0.1)
        points.append(env.physics.robot_position().copy())
        # Sideways velocity: only the integrator's one-sub-step lag between heading and velocity, v omega dt.
        assert abs(env.physics.lateral_velocity()) < 1.2 * v * omega * env.physics.timestep()
    # Least-squares circle: x^2 + y^2 = 2 c . p + (r^2 - |c|^2).
    points = np.array(points)
    solution = np.linalg.lstsq(np.c_[2 * points, np.ones(len(points))], (points**2).sum(axis=1), rcond=None)[0]
    center = solution[:2]
    radii = np.linalg.norm(points - center, axis=1)
    measured = observe(env)["velocity"]
    assert radii.mean() == pytest.approx(measured[0] / measured[1], rel=0.01)
    assert radii.mean() == pytest.approx(v / omega, rel=0.03)
    assert radii.std() < 0.002


@pytest.mark.parametrize("v, omega", [(0.5, 0.0), (-0.25, 1.0), (0.0, -2.0), (0.3, 1.5)])
def test_velocity_commands_are_tracked(v: float, omega: float) -> None:
    env = make_env()
    place(env, -1.0, 0.0, 0.0)
    drive(env, v, omega, 0.8)
    measured = observe(env)["velocity"]
    assert measured[0] == pytest.approx(v, abs=0.01)
    assert measured[1] == pytest.approx(omega, abs=0.03)


def test_velocity_step_response() -> None:
    env = make_env()
    place(env, -1.0, 0.0, 0.0)
    speeds = []
    for _ in range(4):
        drive(env, 0.5, 0.0, 0.1)
        speeds.append(observe(env)["velocity"][0] / 0.5)
    # About half way after one control step, ~90 % after two, settled after four.
    assert 0.35 < speeds[0] < 0.65 and speeds[1] > 0.85 and speeds[3] == pytest.approx(1.0, abs=0.01)


def test_actuator_gain_randomization_scales_velocity() -> None:
    """Domain randomization scales the servos' gear g; a velocity servo then settles at ctrl / g."""
    env = make_env()
    env.physics.model.actuator_gear[:, 0] *= 1.1
    place(env, -1.0, 0.0, 0.0)
    drive(env, 0.4, 1.0, 1.0)
    measured = observe(env)["velocity"]
    np.testing.assert_allclose(measured, np.array([0.4, 1.0]) / 1.1, rtol=0.03)


@pytest.mark.parametrize("yaw", [0.0, 0.5, math.pi / 2, -2.0, 7.0])
def test_goal_and_velocity_are_in_robot_frame(yaw: float) -> None:
    env = make_env()
    place(env, 0.5, -0.3, yaw, goal=(1.5, 0.7))
    physics = env.physics
    physics.data.qvel[:2] = 0.3 * np.array(_unit(yaw)) + 0.01 * np.array(_unit(yaw + math.pi / 2))
    physics.data.qvel[3] = -0.7
    obs = observe(env)
    bearing = math.pi / 4 - yaw
    np.testing.assert_allclose(obs["goal"], [math.sqrt(2.0), math.cos(bearing), math.sin(bearing)], atol=1e-12)
    np.testing.assert_allclose(obs["velocity"], [0.3, -0.7], atol=1e-12)
    assert physics.lateral_velocity() == pytest.approx(0.01)


def test_reaching_a_goal_pays_the_bonus_and_moves_it() -> None:
    env = make_env(seed=4)
    physics = env.physics
    pillars = physics.pillar_positions().copy()
    x, y = physics.robot_position()  # the episode's start: clear of the pillars
    yaw = physics.heading()
    goal = (x + (diffdrive.GOAL_RADIUS + 0.02) * math.cos(yaw), y + (diffdrive.GOAL_RADIUS + 0.02) * math.sin(yaw))
    place(env, x, y, yaw, pillars=pillars, goal=goal)
    _, reward, *_ = env.step(np.array([1.0, 0.0]))  # 0.012 m closer
    assert 0.0 < reward < 0.05
    _, reward, *_ = env.step(np.array([1.0, 0.0]))
    assert reward > diffdrive.GOAL_BONUS
    goal = physics.goal_position()
    assert math.dist(goal, physics.robot_position()) >= diffdrive.GOAL_MIN_DISTANCE
    clear = PILLAR_RADIUS + HULL_RADIUS + CLEARANCE
    assert np.linalg.norm(pillars - goal, axis=1).min() >= clear
    _, reward, *_ = env.step(np.zeros(2))
    assert abs(reward) < 0.05  # progress only, measured from the new goal


def test_episodes_start_clear_of_obstacles() -> None:
    env = sim.load(TASK)
    for seed in range(20):
        _, info = env.reset(seed=seed)
        assert info["constraints"]["clearance"] < -diffdrive.START_MARGIN + 1e-9
        pillars = env.physics.pillar_positions()
        gaps = np.linalg.norm(pillars[:, None] - pillars[None], axis=2) + 10 * np.eye(len(pillars))
        assert gaps.min() - 2 * PILLAR_RADIUS >= diffdrive.PILLAR_GAP
        assert np.abs(pillars).max() + PILLAR_RADIUS <= ARENA - diffdrive.PILLAR_GAP + 1e-9


def test_controller_avoids_a_pillar_on_the_way() -> None:
    env = make_env()
    controller = NavigateController()
    place(env, -1.2, 0.0, 0.0, pillars=[(0.0, 0.02)], goal=(1.2, 0.0))
    obs = env.task.get_observation(env.physics)
    obs = np.concatenate([np.atleast_1d(v) for v in obs.values()])
    for _ in range(100):
        obs, reward, cost, *_ = env.step(controller(obs))
        assert cost == 0.0
        if reward > 0.5:
            break
    else:
        pytest.fail("goal not reached in 10 s")


def _unit(angle: float) -> tuple[float, float]:
    return math.cos(angle), math.sin(angle)


def test_push_command_heads_for_the_nearest_return():
    angles = np.radians(np.arange(360.0))
    ranges = np.full(360, np.inf, np.float32)
    ranges[30] = 0.5  # ahead-left
    v, omega = push_command(angles, ranges, 0.3, 2.0)
    assert v == 0.3 and omega > 0
    ranges[200] = -np.inf  # behind-right, closer than range_min: nearest
    v, omega = push_command(angles, ranges, 0.3, 2.0)
    assert v == -0.3 and omega > 0  # backs up, turning its rear toward 200 degrees
    v, omega = push_command(angles, np.full(360, np.inf), 0.3, 2.0)
    assert (v, omega) == (0.3, 0.0)
    far = np.full(4, 3.5)
    assert push_command(np.radians([0.0, 90.0, 180.0, 270.0]), far, 0.3, 2.0) == (0.3, 0.0), "no hit: straight on"


def test_push_drives_toward_the_nearest_obstacle() -> None:
    env = make_env()
    place(env, 0.0, 0.0, 0.0, pillars=[(0.0, 0.7)])  # a pillar to the left, 0.7 m away
    clearance = env.physics.obstacle_clearance()
    env.push(1.5, 0.6)
    for _ in range(15):
        *_, info = env.step(np.zeros(2))
        assert info["push"]
    x, y = env.physics.robot_position()[:2]
    assert y > 0.2 and abs(x) < 0.15, "turned toward the pillar and drove at it"
    assert env.physics.obstacle_clearance() < clearance - 0.2
