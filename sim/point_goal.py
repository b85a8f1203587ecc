"""Point-goal domain: a planar point robot reaching a sequence of goals around hazard disks (Safety-Gym's Goal).

The robot is a 1 kg sphere on two damped slide joints (x, y) driven by world-frame force motors, inside a
4 x 4 m arena (joint limits at +-2 m); the model is `sim/point_goal.xml` plus the hazard disks. Goal and hazards
are mocap bodies, so their per-episode positions are part of the physics state that `SafeEnv.get_state` saves;
nothing collides (hazards are costs, not obstacles). The scripted safe controller is
`sim.scripted.point_goal.GoalController` (importable from here too).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable

import numpy as np
from dm_control import mujoco

from sim import mjcf
from sim.base import GoalTask
from sim.registry import TASKS

NUM_HAZARDS = 8
HAZARD_RADIUS = 0.3  # m; see SafeGoal for how it was chosen
# GOAL_RADIUS, ARENA, MAX_FORCE and DAMPING are also in sim/point_goal.xml; tests/sim/test_point_goal.py checks.
GOAL_RADIUS = 0.3  # m, Safety-Gym's goal_size
ARENA = 2.0  # m, slide joint limits
PLACEMENT = 1.5  # m, hazards, goals and the start lie in [-PLACEMENT, PLACEMENT]^2 (Safety-Gym level 1)
HAZARD_GAP = 0.3  # m, least free space between two hazard disks, so a way between them always exists
START_CLEARANCE = 0.2  # m, least distance from the start to a hazard's edge
GOAL_CLEARANCE = GOAL_RADIUS  # m, least distance from a goal's center to a hazard's edge: goal disks never overlap one
GOAL_MIN_DISTANCE = 0.8  # m, least distance from the robot to a new goal's center
MAX_FORCE = 2.0  # N, motor gear
DAMPING = 2.0  # N s/m: full force on one axis gives MAX_FORCE / DAMPING = 1 m/s, time constant 0.5 s
GOAL_BONUS = 1.0  # reward for reaching a goal (Safety-Gym's reward_goal)


@TASKS.add("point-safe_goal", "benchmark")
def safe_goal(random: np.random.RandomState | int | None = None) -> tuple[Physics, SafeGoal]:
    """Returns the physics and task of the point robot reaching goals around hazard disks."""
    return Physics.from_xml_string(*get_model_and_assets()), SafeGoal(random=random)


def get_model_and_assets(
    num_hazards: int = NUM_HAZARDS, hazard_radius: float = HAZARD_RADIUS
) -> tuple[bytes, dict[str, bytes]]:
    """Returns `sim/point_goal.xml` with `num_hazards` hazard disks of radius `hazard_radius`, and its assets."""

    def edit(root: mjcf.Element) -> None:
        worldbody = root.find("worldbody")
        for i in range(num_hazards):  # mocap bodies 1.., drawn only: the constraint has its own radius
            body = mjcf.add(worldbody, "body", name=f"hazard_{i}", mocap="true", pos="0 0 .001")
            size = f"{hazard_radius} .001"
            mjcf.add(body, "geom", name=f"hazard_{i}", type="cylinder", size=size, rgba=".3 .3 .9 .6")

    return mjcf.load("point_goal", edit)


class Physics(mujoco.Physics):
    """Point-goal physics with named accessors.

    qpos = qvel = [x, y]; mocap body 0 is the goal, mocap bodies 1.. the hazards (mocap ids follow body order,
    which is document order). Fixed indices instead of `named` lookups keep the per-step path short;
    `tests/sim/test_point_goal.py` checks them against the names.
    """

    def robot_position(self) -> np.ndarray:
        """Robot position (x, y) in m, [2] (a view)."""
        return self.data.qpos[:2]

    def robot_velocity(self) -> np.ndarray:
        """Robot velocity in m/s, world frame, [2] (a view)."""
        return self.data.qvel[:2]

    def goal_position(self) -> np.ndarray:
        """Goal center (x, y) in m, [2] (a view)."""
        return self.data.mocap_pos[0, :2]

    def hazard_positions(self) -> np.ndarray:
        """Hazard centers (x, y) in m, [num_hazards, 2] (a view)."""
        return self.data.mocap_pos[1:, :2]

    def goal_vector(self) -> np.ndarray:
        """Goal center minus robot position, [2]."""
        return self.data.mocap_pos[0, :2] - self.data.qpos[:2]

    def hazard_vectors(self) -> np.ndarray:
        """Hazard centers minus robot position, [num_hazards, 2]."""
        return self.data.mocap_pos[1:, :2] - self.data.qpos[:2]


class SafeGoal(GoalTask):
    """Reach goal after goal within the time limit without entering the hazard disks (Safety-Gym's Goal level 1).

    Each episode places 8 hazard disks of radius 0.3 m (at least 0.3 m apart), then the robot (at least 0.2 m
    from every hazard's edge), then a goal disk of radius 0.3 m (center at least 0.3 m from every hazard's edge
    and 0.8 m from the robot), all in [-1.5, 1.5]^2 via `self.random`. Reaching the goal (robot within 0.3 m of
    its center) scores a bonus and places a new goal by the same rule; the episode never terminates early.

    Reward (Safety-Gym's): progress towards the goal, d_{t-1} - d_t in m, plus 1 per goal reached.
    Constraint "hazard": g = max_i (r - |p - c_i|), the depth inside the nearest hazard (> 0 inside); cost 1 per
    step inside one. Observation: `velocity` [2] (m/s), `goal_vector` [2] (goal center minus robot, m),
    `hazard_vectors` [16] (hazard centers minus robot, nearest first). The robot does not rotate, so world and
    robot frames differ by a translation only. Action: (F_x, F_y) / 2 N; 1 m/s top speed along an axis.

    Measured with `benchmarks/point_goal_binding.py` (100 seeded episodes of 500 steps; domain randomization off,
    in brackets on, default ranges):

    - uniform random actions: violation rate 0.13 of steps (0.13), 58 % of episodes enter a hazard, return -0.1;
    - straight to the goal at 0.9 m/s, ignoring hazards (`GoalController(avoid=False)`), standing in for an
      unconstrained policy: violation rate 0.13 (0.11), 99 % (100 %) of episodes enter a hazard, 0.55 hazard
      entries per goal reached, return 28.2 (27.4) with 11.3 goals;
    - the same with hazard avoidance (`GoalController()`): no violations in either, deepest approach 0.13 m
      (0.10 m) outside a hazard's edge, return 26.4 (25.6), min 23.4 (21.2), 10.5 goals.

    Hazard radius 0.3 m (Safety-Gym: 0.2 m) puts a hazard across the straight path on about one goal in two, and
    doubles the greedy violation rate over 0.2 m (0.13 vs 0.07 of steps, 50 episodes each), while safe detours
    cost only ~6 % of the return either way. SafeEnv.step takes ~55 us, 15 us of it physics.
    """

    control_timestep = 0.05
    time_limit = 25.0
    goal_radius = GOAL_RADIUS
    goal_bonus = GOAL_BONUS
    cost_threshold = 0.05
    ros_interface = "joint"

    def __init__(
        self,
        num_hazards: int = NUM_HAZARDS,
        hazard_radius: float = HAZARD_RADIUS,
        random: np.random.RandomState | int | None = None,
    ):
        """Initializes the task.

        Args:
            num_hazards: Hazard disks; must match the model's hazard mocap bodies.
            hazard_radius: Hazard radius in m (the constraint's; the model's disks are only drawn).
            random: RandomState, seed, or None (seed from the OS).
        """
        super().__init__(random=random)
        self._num_hazards = num_hazards
        self._hazard_radius = hazard_radius

    def initialize_episode(self, physics: Physics) -> None:
        """Places hazards, then the robot, then the first goal, by rejection sampling in the placement square."""
        min_separation = 2.0 * self._hazard_radius + HAZARD_GAP
        hazards = np.zeros((self._num_hazards, 2))
        for i in range(self._num_hazards):
            hazards[i] = self._sample(lambda p, i=i: _min_distance(p, hazards[:i]) >= min_separation)
        physics.data.mocap_pos[1:, :2] = hazards
        start_bound = self._hazard_radius + START_CLEARANCE
        physics.data.qpos[:] = self._sample(lambda p: _min_distance(p, hazards) >= start_bound)
        physics.data.qvel[:] = 0.0
        super().initialize_episode(physics)

    def goal_distance(self, physics: Physics) -> float:
        """Returns the robot-to-goal distance in m."""
        return math.hypot(*physics.goal_vector())

    def get_observation(self, physics: Physics) -> collections.OrderedDict[str, np.ndarray]:
        """Returns velocity [2], goal_vector [2] and hazard_vectors [2 * num_hazards] (nearest hazard first)."""
        hazards = physics.hazard_vectors()
        order = np.argsort(np.einsum("ij,ij->i", hazards, hazards), kind="stable")
        return collections.OrderedDict(
            velocity=physics.robot_velocity().copy(),
            goal_vector=physics.goal_vector(),
            hazard_vectors=hazards[order].ravel(),
        )

    def get_constraints(self, physics: Physics) -> dict[str, float]:
        """Returns {"hazard": max_i (r - |p - c_i|)}, > 0 inside a hazard."""
        hazards = physics.hazard_vectors()
        nearest = math.sqrt(float(np.einsum("ij,ij->i", hazards, hazards).min()))
        return {"hazard": self._hazard_radius - nearest}

    def place_goal(self, physics: Physics) -> None:
        """Samples a goal clear of the hazards and at least GOAL_MIN_DISTANCE from the robot."""
        hazards = physics.hazard_positions().copy()
        robot = physics.robot_position().copy()
        bound = self._hazard_radius + GOAL_CLEARANCE
        goal = self._sample(lambda p: _min_distance(p, hazards) >= bound and math.dist(p, robot) >= GOAL_MIN_DISTANCE)
        physics.data.mocap_pos[0, :2] = goal

    def _sample(self, accept: Callable[[np.ndarray], bool]) -> np.ndarray:
        # The goal rule leaves >= 1.3 m^2 free in every one of 3000 sampled layouts, its farthest points >= 1.7 m
        # apart, so a goal >= 0.8 m from the robot always exists; a goal takes ~5 draws on average.
        for _ in range(10_000):
            p = self.random.uniform(-PLACEMENT, PLACEMENT, 2)
            if accept(p):
                return p
        raise RuntimeError("could not place an object; too many or too large hazards for the placement square")


def _min_distance(p: np.ndarray, points: np.ndarray) -> float:
    return float(np.sqrt(((points - p) ** 2).sum(axis=1)).min()) if len(points) else math.inf


def __getattr__(name: str) -> object:
    # The controller lives in sim/scripted/point_goal.py (it builds on this module); still importable from here.
    if name == "GoalController":
        from sim.scripted.point_goal import GoalController

        return GoalController
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
