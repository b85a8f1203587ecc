"""Differential-drive domain: a wheeled mobile robot driven by (v, omega) reaching goals among pillars (ROS demo robot).

The robot is TurtleBot3-Burger-sized: 1 kg, hull radius 0.105 m, wheels of radius 0.033 m on a 0.16 m track, a
360-degree lidar 0.17 m above the floor. It drives in a walled 4 x 4 m arena among NUM_PILLARS pillars.

Model (`sim/diffdrive.xml`): the base is free in the plane (world-frame slides x, y, a vertical slide z carrying its
weight, a yaw hinge) and stands on two wheels, spheres on hinge joints that roll on the floor with friction. Two
velocity servos act on fixed tendons that combine the wheel angles into the body's forward travel and its yaw
angle, so the actuators take (v in m/s, omega in rad/s) as a base controller executing `cmd_vel` does (gains for
a 0.1 s time constant: a speed step is about half done after one 0.1 s control step, 90 % after two, settled
after four). Nothing but the wheels' rolling contact keeps the base from moving sideways: the robot is
nonholonomic as a real one is. It drives arcs of radius v / omega, and a sideways push of 3 N (the grip is about
10 N) moves it ~1.3 mm, then creeps 0.2 mm/s (elliptic friction cones with impratio 10; the default pyramidal
cones creep 5 mm/s).
The hull is a frictionless sphere that collides with walls and pillars only, so the robot slides along what it
bumps into. Pillars and the goal are mocap bodies, so their per-episode positions are part of the physics state
that `SafeEnv.get_state` saves.

Range sensor contract (for the ROS node's LaserScan binning, DESIGN.md section 6): the observation's `ranges` are
NUM_BEAMS sector readings. Reading i is the minimum range, in m, over the sector of width BEAM_WIDTH centred on
BEAM_ANGLES[i] (radians in the robot frame, counter-clockwise from forward, ascending in [0, 2 pi), sector 0
straight ahead), clipped to [RANGE_MIN, RANGE_MAX]: no return within RANGE_MAX reads RANGE_MAX (REP 117's +Inf),
a return closer than RANGE_MIN reads RANGE_MIN (-Inf). The simulator measures each sector with RAYS_PER_BEAM
MuJoCo rangefinders at RAY_ANGLES (uniform, 7.5 degrees apart; a rangefinder's -1 for no hit maps to RANGE_MAX);
a real scan is binned onto the same sectors by angle, minimum valid range per sector. The lidar sits at the
robot's center (the midpoint of the wheel axle, which is also its turning center).
`sim.lidar.Lidar` (importable from here too) simulates a real lidar's full scan instead: MuJoCo ray casts of any
resolution over 360 degrees from the lidar's position (the ROS sim bridge publishes them as LaserScan).

Domain randomization (generic, `sim.randomization`): masses scale the robot's inertia and so its acceleration;
friction scales the wheels' grip; there is no joint damping to scale; actuator gain scales the servos' gear, and
a velocity servo with gear g settles at ctrl / g, so v and omega are off by a factor 1/g (0.87-1.18 with the
default ranges), as with a wheel radius or encoder calibration error, while its time constant scales by 1/g^2.

Cost per step: `SafeEnv.step` takes 120 us (up to ~190 us under load from other jobs) on this project's shared
2-core machine: 5 physics sub-steps 60 us, the 48 rangefinders 13-20 us once per step, the rest Python
(`benchmarks/diffdrive_binding.py`).

The scripted safe controller is `sim.scripted.diffdrive.NavigateController` (importable from here too).
"""

from __future__ import annotations

import collections
import math

import mujoco as mj
import numpy as np
from dm_control import mujoco

from sim import mjcf
from sim.base import GoalTask
from sim.lidar import Lidar as Lidar  # re-exported: the ROS sim bridge imports it from here
from sim.registry import TASKS

# Robot (must match sim/diffdrive.xml; tests/sim/test_diffdrive.py checks).
HULL_RADIUS = 0.105  # m, collision hull and constraint geometry
WHEEL_RADIUS = 0.033  # m
TRACK_WIDTH = 0.16  # m, distance between the wheels
LIDAR_HEIGHT = 0.17  # m above the floor
V_MAX = 0.5  # m/s, forward and backward speed limit (the actuator's ctrlrange)
OMEGA_MAX = 2.0  # rad/s, yaw rate limit

# Lidar fan.
NUM_BEAMS = 24
BEAM_WIDTH = 2.0 * math.pi / NUM_BEAMS  # rad, width of each sector
BEAM_ANGLES = np.arange(NUM_BEAMS) * BEAM_WIDTH  # rad, sector centers, CCW from forward, ascending in [0, 2 pi)
RAYS_PER_BEAM = 2
# The simulated lidar: a uniform fan of rays 7.5 degrees apart, RAYS_PER_BEAM per sector, sector by sector
# (rays 2i and 2i + 1 at BEAM_ANGLES[i] -+ 3.75 degrees). A pillar subtends more than 7.5 degrees out to RANGE_MAX,
# so it is never missed. [NUM_BEAMS * RAYS_PER_BEAM]
RAY_ANGLES = (BEAM_ANGLES[:, None] + BEAM_WIDTH * ((np.arange(RAYS_PER_BEAM) + 0.5) / RAYS_PER_BEAM - 0.5)).ravel()
RANGE_MIN = 0.12  # m, as a TurtleBot3's LDS-01
RANGE_MAX = 2.0  # m; farther returns read RANGE_MAX

# Arena and task.
ARENA = 2.0  # m, inner faces of the walls at +-ARENA
NUM_PILLARS = 5
PILLAR_RADIUS = 0.15  # m
PILLAR_SPREAD = 1.05  # m, pillar centers lie in [-PILLAR_SPREAD, PILLAR_SPREAD]^2: wall gaps >= 0.8 m
PILLAR_GAP = 0.8  # m, least free space between two pillars; the robot needs 2 (0.105 + 0.2) = 0.61 m to pass
PLACEMENT = 1.6  # m, the start and goals lie in [-PLACEMENT, PLACEMENT]^2
CLEARANCE = 0.2  # m, least distance from the hull to any obstacle; see SafeNavigate for how it was chosen
START_MARGIN = 0.1  # m, the start and goal centers keep CLEARANCE + START_MARGIN from obstacles
GOAL_RADIUS = 0.3  # m, Safety-Gym's goal_size
GOAL_MIN_DISTANCE = 1.0  # m, least distance from the robot to a new goal
GOAL_BONUS = 1.0  # reward for reaching a goal (Safety-Gym's reward_goal)

_SENSOR_FLAG = int(mj.mjtDisableBit.mjDSBL_SENSOR)
_BATCH = 32  # candidates drawn at once by the rejection samplers


@TASKS.add("diffdrive-safe_navigate", "benchmark")
def safe_navigate(random: np.random.RandomState | int | None = None) -> tuple[Physics, SafeNavigate]:
    """Returns the physics and task of the differential-drive robot reaching goals among pillars."""
    return Physics.from_xml_string(*get_model_and_assets()), SafeNavigate(random=random)


def get_model_and_assets(num_pillars: int = NUM_PILLARS) -> tuple[bytes, dict[str, bytes]]:
    """Returns `sim/diffdrive.xml` with the lidar's rangefinders (RAY_ANGLES) and `num_pillars` pillars, and its
    assets."""

    def edit(root: mjcf.Element) -> None:
        robot = root.find("./worldbody/body[@name='robot']")
        sensor = mjcf.add(root, "sensor")
        lidar_z = LIDAR_HEIGHT - WHEEL_RADIUS
        for i, angle in enumerate(RAY_ANGLES):
            zaxis = f"{math.cos(angle):.9f} {math.sin(angle):.9f} 0"  # a rangefinder looks along its site's z-axis
            mjcf.add(robot, "site", name=f"ray_{i:02d}", pos=f"0 0 {lidar_z}", zaxis=zaxis, class_="ray")
            mjcf.add(sensor, "rangefinder", name=f"ray_{i:02d}", site=f"ray_{i:02d}")
        worldbody = root.find("worldbody")
        for i in range(num_pillars):
            # Parked in a row outside the arena until the task places them. The cylinder part spans the hull's and
            # the lidar's heights, so there the capsule is a cylinder of radius PILLAR_RADIUS.
            body = mjcf.add(worldbody, "body", name=f"pillar_{i}", mocap="true", pos=f"{3 + 0.5 * i} 3 0")
            mjcf.add(
                body,
                "geom",
                name=f"pillar_{i}",
                type="capsule",
                fromto="0 0 -.2 0 0 .35",
                size=PILLAR_RADIUS,
                class_="obstacle",
            )

    return mjcf.load("diffdrive", edit)


class Physics(mujoco.Physics):
    """Differential-drive physics with named accessors.

    qpos = qvel = [x, y, z, yaw, wheel_left, wheel_right]; mocap body 0 is the goal, mocap bodies 1.. the pillars;
    sensordata = the NUM_BEAMS * RAYS_PER_BEAM rangefinders in RAY_ANGLES order. Fixed indices instead of `named`
    lookups keep the per-step path short; `tests/sim/test_diffdrive.py` checks them against the names.

    MuJoCo's sensor stage is disabled in the model (`<flag sensor="disable"/>`): nothing reads the rangefinders
    during the physics sub-steps, so `ray_ranges` evaluates them once, when asked (saves ~10 us per sub-step).
    Read them through `ray_ranges` or `ranges`, not `data.sensordata`.
    """

    def robot_position(self) -> np.ndarray:
        """Position (x, y) of the robot's center in m, world frame, [2] (a view)."""
        return self.data.qpos[:2]

    def heading(self) -> float:
        """Yaw angle in rad, counter-clockwise from the world x-axis (not wrapped)."""
        return self.data.qpos[3]

    def body_velocity(self) -> tuple[float, float]:
        """(v, omega): forward speed in m/s and yaw rate in rad/s, as an Odometry twist in the robot frame."""
        qvel = self.data.qvel
        heading = self.data.qpos[3]
        return math.cos(heading) * qvel[0] + math.sin(heading) * qvel[1], float(qvel[3])

    def lateral_velocity(self) -> float:
        """Sideways velocity in m/s (positive to the left), robot frame."""
        qvel = self.data.qvel
        heading = self.data.qpos[3]
        return -math.sin(heading) * qvel[0] + math.cos(heading) * qvel[1]

    def goal_position(self) -> np.ndarray:
        """Goal center (x, y) in m, world frame, [2] (a view)."""
        return self.data.mocap_pos[0, :2]

    def pillar_positions(self) -> np.ndarray:
        """Pillar centers (x, y) in m, world frame, [num_pillars, 2] (a view)."""
        return self.data.mocap_pos[1:, :2]

    def goal_polar(self) -> tuple[float, float, float]:
        """The goal in the robot frame: (distance in m, cos and sin of its bearing from the robot's heading)."""
        qpos, goal = self.data.qpos, self.data.mocap_pos[0]
        dx, dy = goal[0] - qpos[0], goal[1] - qpos[1]
        distance = math.hypot(dx, dy)
        if distance < 1e-9:
            return 0.0, 1.0, 0.0
        bearing = math.atan2(dy, dx) - qpos[3]
        return distance, math.cos(bearing), math.sin(bearing)

    def goal_distance(self) -> float:
        """Distance from the robot's center to the goal's center in m."""
        qpos, goal = self.data.qpos, self.data.mocap_pos[0]
        return math.hypot(goal[0] - qpos[0], goal[1] - qpos[1])

    def ray_ranges(self) -> np.ndarray:
        """Raw rangefinder readings in m, -1 for no hit, [NUM_BEAMS * RAYS_PER_BEAM] in RAY_ANGLES order.

        Evaluates the rangefinders for the current kinematics (up to date after `step`, `forward` or
        `reset_context`).
        """
        model, data = self.model.ptr, self.data.ptr
        model.opt.disableflags &= ~_SENSOR_FLAG
        try:
            mj.mj_sensorPos(model, data)
        finally:
            model.opt.disableflags |= _SENSOR_FLAG
        return data.sensordata

    def ranges(self) -> np.ndarray:
        """Lidar sector readings in m: the minimum over each sector, no hit = RANGE_MAX, clipped, [NUM_BEAMS]."""
        rays = self.ray_ranges().reshape(NUM_BEAMS, RAYS_PER_BEAM)
        # min(RANGE_MAX, r) for hits, RANGE_MAX for no hit (-1): the -1s become RANGE_MAX + 1 before the min.
        sectors = np.minimum.reduce(np.where(rays < 0.0, RANGE_MAX + 1.0, rays), axis=1)
        np.minimum(sectors, RANGE_MAX, out=sectors)
        return np.maximum(sectors, RANGE_MIN, out=sectors)

    def obstacle_clearance(self) -> float:
        """Least distance in m from the hull (a circle of HULL_RADIUS) to any pillar or wall surface.

        Exact for the model's geometry at the hull's height; negative when the hull penetrates an obstacle.
        """
        x, y = self.data.qpos[:2].tolist()
        nearest = ARENA - max(abs(x), abs(y))  # walls
        for px, py, _ in self.data.mocap_pos[1:].tolist():  # pillars; a Python loop beats numpy at this size
            nearest = min(nearest, math.hypot(px - x, py - y) - PILLAR_RADIUS)
        return nearest - HULL_RADIUS


def push_command(angles: np.ndarray, ranges: np.ndarray, speed: float, omega_max: float) -> tuple[float, float]:
    """(v, omega) that drives a diff-drive base toward the nearest return of a scan (forward or backward): the
    push disturbance of randomization and of the ROS demo (`SafeNavigate.push_action`).

    Args:
        angles: [N] beam angles in rad (robot frame, CCW from forward).
        ranges: [N] ranges in m; -inf (closer than the minimum) counts as 0, NaN as no return.
        speed: forward speed of the push in m/s.
        omega_max: yaw-rate limit in rad/s of the turn toward the return.
    """
    readings = np.where(np.isneginf(ranges), 0.0, ranges)
    readings = np.where(np.isnan(readings), np.inf, readings)
    if not np.isfinite(readings).any():
        return speed, 0.0
    bearing = float(angles[int(np.argmin(readings))])
    bearing = math.atan2(math.sin(bearing), math.cos(bearing))
    if math.cos(bearing) >= 0.0:  # ahead: turn toward it and drive forward
        return speed, float(np.clip(3.0 * bearing, -omega_max, omega_max))
    rear = math.atan2(math.sin(bearing - math.pi), math.cos(bearing - math.pi))
    return -speed, float(np.clip(3.0 * rear, -omega_max, omega_max))


class SafeNavigate(GoalTask):
    """Reach goal after goal among pillars, keeping CLEARANCE from every obstacle (Safety-Gym's Goal, with a lidar).

    Each episode places NUM_PILLARS = 5 pillars (radius 0.15 m, centers in [-1.05, 1.05]^2, at least 0.8 m of free
    space between any two and from each to the walls, where the robot needs 0.61 m to pass with clearance),
    the robot (random heading) and a goal disk of radius 0.3 m in [-1.6, 1.6]^2, the robot and goal keeping
    0.3 m of clearance from obstacles, via `self.random`. Reaching the goal (center within 0.3 m of the goal's
    center) scores a bonus and places a new goal at least 1 m away; the episode never terminates early.

    Reward (Safety-Gym's): progress towards the goal, d_{t-1} - d_t in m, plus 1 per goal reached.
    Constraint "clearance": g = CLEARANCE - (least distance from the hull to a pillar or wall surface), computed
    from the true geometry; cost 1 per step closer than CLEARANCE = 0.2 m.
    Observation, all computable from nav_msgs/Odometry, sensor_msgs/LaserScan and a goal pose: `goal` [3] =
    (distance in m, cos, sin of the goal's bearing in the robot frame), `velocity` [2] = (v in m/s, omega in
    rad/s) as Odometry's twist.linear.x and twist.angular.z, `ranges` [24] = lidar sector minima in m (see the
    module docstring for the sector contract). Action: (v, omega) / (0.5 m/s, 2 rad/s). Control at 10 Hz, 30 s
    episodes (300 steps).

    Measured with `benchmarks/diffdrive_binding.py` (50 seeded episodes, seeds 0-49, of 300 steps):

    - uniform random actions: violation rate 0.20 of steps (0.76 of episodes), return -0.1;
    - greedy go-to-goal ignoring obstacles (`NavigateController(avoid=False)`): violation rate 0.74, return 5.8
      (it drives into pillars and stays pressed against them);
    - obstacle-hugging navigator (`NavigateController(clearance=0)`, the shortest-path behaviour that an
      unconstrained learner is pulled to), standing in for an unconstrained policy: violation rate 0.36, every
      episode violates, closest approach 0.045 m, return 16.6 (5.9 goals);
    - safe navigator (`NavigateController()`): no violations, closest approach 0.268 m, return 14.5 (min 12.1,
      5.2 goals), i.e. keeping the clearance costs ~13 % of the return.

    Under the default domain randomization (`--randomize`, same seeds): hugging 0.33 violation rate, return 16.2;
    safe navigator no violations, closest approach 0.259 m, return 13.9 (min 11.5).

    Choice of CLEARANCE = 0.2 m (a typical costmap inflation for a robot this size): the hugging navigator's
    violation rate would be 0.16 / 0.27 / 0.36 / 0.45 for clearances of 0.1 / 0.15 / 0.2 / 0.25 m, so 0.2 m binds
    on a third of the steps of the shortest paths while gaps of 0.8 m leave safe routes everywhere.
    """

    control_timestep = 0.1
    time_limit = 30.0
    goal_radius = GOAL_RADIUS
    goal_bonus = GOAL_BONUS
    cost_threshold = 0.05
    ros_interface = "diff_drive"

    def __init__(
        self,
        num_pillars: int = NUM_PILLARS,
        clearance: float = CLEARANCE,
        random: np.random.RandomState | int | None = None,
    ):
        """Initializes the task.

        Args:
            num_pillars: Pillars to place; must match the model's pillar mocap bodies.
            clearance: Least distance in m from the hull to any obstacle (the constraint's bound).
            random: RandomState, seed, or None (seed from the OS).
        """
        super().__init__(random=random)
        self._num_pillars = num_pillars
        self._clearance = clearance

    def initialize_episode(self, physics: Physics) -> None:
        """Places the pillars, then the robot, then the first goal, by rejection sampling."""
        physics.data.mocap_pos[1:, :2] = self._sample_pillars()
        data = physics.data
        data.qpos[:] = 0.0
        data.qpos[:2] = self._sample(physics)
        data.qpos[3] = self.random.uniform(-math.pi, math.pi)
        data.qvel[:] = 0.0
        super().initialize_episode(physics)

    def push_action(self, physics: Physics, strength: float) -> np.ndarray:
        """Drive toward the nearest obstacle in the lidar's sectors at ``strength`` V_MAX (`push_command`)."""
        v, omega = push_command(BEAM_ANGLES, physics.ranges(), strength * V_MAX, OMEGA_MAX)
        return np.array([v / V_MAX, omega / OMEGA_MAX])

    def goal_distance(self, physics: Physics) -> float:
        """Returns the robot-to-goal distance in m."""
        return physics.goal_distance()

    def get_observation(self, physics: Physics) -> collections.OrderedDict[str, np.ndarray]:
        """Returns goal [3] (distance, cos, sin of bearing), velocity [2] (v, omega) and ranges [NUM_BEAMS]."""
        return collections.OrderedDict(
            goal=physics.goal_polar(),
            velocity=physics.body_velocity(),
            ranges=physics.ranges(),
        )

    def deploy_spec(self, physics: Physics) -> dict:
        """Diff-drive interface: the lidar sector fan the observation's `ranges` were trained on (see the module
        docstring's range sensor contract), so a robot's LaserScan can be binned onto it."""
        return {
            "beam_angles": BEAM_ANGLES.tolist(),
            "beam_width": BEAM_WIDTH,
            "range_min": RANGE_MIN,
            "range_max": RANGE_MAX,
        }

    def get_constraints(self, physics: Physics) -> dict[str, float]:
        """Returns {"clearance": CLEARANCE - least hull-to-obstacle distance}, > 0 when closer than CLEARANCE."""
        return {"clearance": self._clearance - physics.obstacle_clearance()}

    def _sample_pillars(self) -> np.ndarray:
        separation = 2.0 * PILLAR_RADIUS + PILLAR_GAP
        for _ in range(1000):  # restart the layout when the pillars placed so far leave no room for the next
            pillars = np.zeros((0, 2))
            while len(pillars) < self._num_pillars:
                candidates = self.random.uniform(-PILLAR_SPREAD, PILLAR_SPREAD, (_BATCH, 2))
                distances = np.linalg.norm(candidates[:, None] - pillars[None], axis=2).min(axis=1, initial=np.inf)
                accepted = np.flatnonzero(distances >= separation)
                if not len(accepted):
                    break
                pillars = np.concatenate([pillars, candidates[accepted[:1]]])
            else:
                return pillars
        raise RuntimeError("could not place the pillars; too many or too large for the arena")

    def place_goal(self, physics: Physics) -> None:
        """Samples a goal clear of the pillars and at least GOAL_MIN_DISTANCE from the robot."""
        robot = physics.robot_position().copy()
        goal = self._sample(physics, lambda p: np.linalg.norm(p - robot, axis=1) >= GOAL_MIN_DISTANCE)
        physics.data.mocap_pos[0, :2] = goal

    def _sample(self, physics: Physics, accept=None) -> np.ndarray:
        """Samples a point of [-PLACEMENT, PLACEMENT]^2 clear of the pillars (and accepted by `accept`)."""
        pillars = physics.pillar_positions().copy()
        bound = PILLAR_RADIUS + HULL_RADIUS + self._clearance + START_MARGIN
        for _ in range(100):
            candidates = self.random.uniform(-PLACEMENT, PLACEMENT, (_BATCH, 2))
            ok = np.linalg.norm(candidates[:, None] - pillars[None], axis=2).min(axis=1, initial=np.inf) >= bound
            if accept is not None:
                ok &= accept(candidates)
            accepted = np.flatnonzero(ok)
            if len(accepted):
                return candidates[accepted[0]]
        raise RuntimeError("could not place the robot or a goal; too many or too large pillars for the arena")


def __getattr__(name: str) -> object:
    # The controller lives in sim/scripted/diffdrive.py (it builds on this module); still importable from here.
    if name == "NavigateController":
        from sim.scripted.diffdrive import NavigateController

        return NavigateController
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
