"""Point-goal domain: a planar point robot reaching a sequence of goals around hazard disks (Safety-Gym's Goal).

The robot is a 1 kg sphere on two damped slide joints (x, y) driven by world-frame force motors, inside a
4 x 4 m arena (joint limits at +-2 m). Goal and hazards are mocap bodies, so their per-episode positions are part
of the physics state that `SafeEnv.get_state` saves; nothing collides (hazards are costs, not obstacles).
"""

from __future__ import annotations

import collections
import math

import numpy as np
from dm_control import mujoco
from dm_control.suite import common

from sim.base import SafeTask
from sim.registry import TASKS

NUM_HAZARDS = 8
HAZARD_RADIUS = 0.3  # m; see SafeGoal for how it was chosen
GOAL_RADIUS = 0.3  # m, Safety-Gym's goal_size
ARENA = 2.0  # m, slide joint limits
PLACEMENT = 1.5  # m, hazards, goals and the start lie in [-PLACEMENT, PLACEMENT]^2 (Safety-Gym level 1)
HAZARD_GAP = 0.3  # m, least free space between two hazard disks, so a way between them always exists
START_CLEARANCE = 0.2  # m, least distance from the start (and from goals) to a hazard's edge
GOAL_MIN_DISTANCE = 0.8  # m, least distance from the robot to a new goal's center
MAX_FORCE = 2.0  # N, motor gear
DAMPING = 2.0  # N s/m: full force gives a top speed of MAX_FORCE / DAMPING = 1 m/s, time constant 0.5 s
GOAL_BONUS = 1.0  # reward for reaching a goal (Safety-Gym's reward_goal)

_XML = """
<mujoco model="safe point goal">
  <include file="./common/skybox.xml"/>
  <include file="./common/visual.xml"/>
  <include file="./common/materials.xml"/>
  <option timestep="0.01"><flag contact="disable"/></option>
  <default>
    <geom contype="0" conaffinity="0"/>
    <joint type="slide" limited="true" range="-{arena} {arena}" damping="{damping}"/>
    <motor gear="{force}" ctrlrange="-1 1" ctrllimited="true"/>
  </default>
  <worldbody>
    <light name="light" pos="0 0 5" dir="0 0 -1"/>
    <camera name="top" pos="0 0 5.6" quat="1 0 0 0"/>
    <geom name="floor" type="plane" size="{wall} {wall} .1" material="grid"/>
    <geom name="wall_px" type="box" pos="{wall} 0 .05" size=".02 {wall} .05" material="decoration"/>
    <geom name="wall_nx" type="box" pos="-{wall} 0 .05" size=".02 {wall} .05" material="decoration"/>
    <geom name="wall_py" type="box" pos="0 {wall} .05" size="{wall} .02 .05" material="decoration"/>
    <geom name="wall_ny" type="box" pos="0 -{wall} .05" size="{wall} .02 .05" material="decoration"/>
    <body name="robot" pos="0 0 .1">
      <joint name="x" axis="1 0 0"/>
      <joint name="y" axis="0 1 0"/>
      <geom name="robot" type="sphere" size=".1" mass="1" material="self"/>
    </body>
    <body name="goal" mocap="true" pos="0 0 .002">
      <geom name="goal" type="cylinder" size="{goal} .002" rgba=".2 .8 .2 .6"/>
    </body>
    {hazards}
  </worldbody>
  <actuator>
    <motor name="x" joint="x"/>
    <motor name="y" joint="y"/>
  </actuator>
</mujoco>
"""
_HAZARD = (
    '<body name="hazard_{i}" mocap="true" pos="0 0 .001">'
    '<geom name="hazard_{i}" type="cylinder" size="{radius} .001" rgba=".3 .3 .9 .6"/></body>'
)


@TASKS.add("point-safe_goal", "benchmark")
def safe_goal(
    random: np.random.RandomState | int | None = None) -> tuple[Physics, SafeGoal]:
    """Returns the physics and task of the point robot reaching goals around hazard disks."""
    return Physics.from_xml_string(*get_model_and_assets()), SafeGoal(random=random)


def get_model_and_assets(
    num_hazards: int = NUM_HAZARDS, hazard_radius: float = HAZARD_RADIUS
) -> tuple[str, dict[str, bytes]]:
    """Returns the point-goal MJCF with `num_hazards` hazard disks, and its assets."""
    hazards = "\n    ".join(_HAZARD.format(i=i, radius=hazard_radius) for i in range(num_hazards))
    xml = _XML.format(
        arena=ARENA, wall=ARENA + 0.12, damping=DAMPING, force=MAX_FORCE, goal=GOAL_RADIUS, hazards=hazards
    )
    return xml, common.ASSETS


class Physics(mujoco.Physics):
    """Point-goal physics with named accessors.

    qpos = qvel = [x, y]; mocap body 0 is the goal, mocap bodies 1.. the hazards (bodies are numbered in
    document order). Fixed indices instead of `named` lookups keep the per-step path short; `tests/sim` checks
    them against the names.
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
        return self.goal_position() - self.robot_position()

    def hazard_vectors(self) -> np.ndarray:
        """Hazard centers minus robot position, [num_hazards, 2]."""
        return self.hazard_positions() - self.robot_position()


class SafeGoal(SafeTask):
    """Reach goal after goal within the time limit without entering the hazard disks (Safety-Gym's Goal level 1).

    Each episode places 8 hazard disks of radius 0.3 m (at least 0.3 m apart), the robot and a goal disk of
    radius 0.3 m in [-1.5, 1.5]^2 via `self.random`. Reaching the goal (center within 0.3 m of the goal's
    center) scores a bonus and places a new goal at least 0.8 m away; the episode never terminates early.

    Reward (Safety-Gym's): progress towards the goal, d_{t-1} - d_t in m, plus 1 per goal reached.
    Constraint "hazard": g = max_i (r - |p - c_i|), positive inside a hazard; cost 1 per step inside one.
    Observation: `velocity` [2] (m/s), `goal_vector` [2] (goal center minus robot, m), `hazard_vectors` [16]
    (hazard centers minus robot, nearest first). The robot does not rotate, so world and robot frames differ by
    a translation only. Action: (F_x, F_y) / 2 N; top speed 1 m/s.

    Measured with `benchmarks/task_binding.py` (20 seeded episodes of 500 steps):

    - uniform random actions: violation rate 0.11 of steps, return 0.8;
    - straight to the goal, ignoring hazards (`GoalController(avoid=False)`), standing in for an
      unconstrained policy: violation rate 0.10, every episode enters a hazard, return 36.1;
    - go-to-goal with hazard avoidance (`GoalController()`): no violations, return 32.7 (min 28.3).

    Hazard radius 0.3 m (Safety-Gym: 0.2 m) makes the straight path cross a hazard on about one goal in two,
    so the constraint binds, while detours cost only ~10 % of the return.
    """

    control_timestep = 0.05
    time_limit = 25.0
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
        self._last_goal_distance = 0.0
        self._reward = 0.0

    def initialize_episode(self, physics: Physics) -> None:
        """Places hazards, then the robot, then the first goal, by rejection sampling in the placement square."""
        min_separation = 2.0 * self._hazard_radius + HAZARD_GAP
        hazards = np.zeros((self._num_hazards, 2))
        for i in range(self._num_hazards):
            hazards[i] = self._sample(lambda p, i=i: _min_distance(p, hazards[:i]) >= min_separation)
        physics.data.mocap_pos[1:, :2] = hazards
        physics.data.qpos[:] = self._sample(self._clear_of_hazards(physics))
        physics.data.qvel[:] = 0.0
        self._place_goal(physics)
        self._reward = 0.0
        super().initialize_episode(physics)

    def after_step(self, physics: Physics) -> None:
        """Computes the step's reward, and moves a reached goal (so the next observation shows the new one)."""
        distance = float(np.linalg.norm(physics.goal_vector()))
        self._reward = self._last_goal_distance - distance
        self._last_goal_distance = distance
        if distance <= GOAL_RADIUS:
            self._reward += GOAL_BONUS
            self._place_goal(physics)

    def get_observation(self, physics: Physics) -> collections.OrderedDict[str, np.ndarray]:
        """Returns velocity [2], goal_vector [2] and hazard_vectors [2 * num_hazards] (nearest hazard first)."""
        hazards = physics.hazard_vectors()
        order = np.argsort(np.einsum("ij,ij->i", hazards, hazards), kind="stable")
        return collections.OrderedDict(
            velocity=physics.robot_velocity().copy(),
            goal_vector=physics.goal_vector(),
            hazard_vectors=hazards[order].ravel(),
        )

    def get_reward(self, physics: Physics) -> float:
        """Returns the reward of the last step: progress d_{t-1} - d_t plus the goal bonus (set in `after_step`).

        Computed in `after_step` because reaching a goal moves it, which must happen before the observation.
        """
        return self._reward

    def get_constraints(self, physics: Physics) -> dict[str, float]:
        """Returns {"hazard": max_i (r - |p - c_i|)}, > 0 inside a hazard."""
        hazards = physics.hazard_vectors()
        nearest = math.sqrt(float(np.einsum("ij,ij->i", hazards, hazards).min()))
        return {"hazard": self._hazard_radius - nearest}

    def get_state(self) -> dict[str, float]:
        """Returns the goal distance that the next step's progress reward is measured from."""
        return {"last_goal_distance": self._last_goal_distance}

    def set_state(self, state: dict[str, float]) -> None:
        """Restores what `get_state` returned."""
        self._last_goal_distance = float(state["last_goal_distance"])

    def _place_goal(self, physics: Physics) -> None:
        clear = self._clear_of_hazards(physics, GOAL_RADIUS)
        robot = physics.robot_position().copy()
        goal = self._sample(lambda p: clear(p) and math.dist(p, robot) >= GOAL_MIN_DISTANCE)
        physics.data.mocap_pos[0, :2] = goal
        self._last_goal_distance = math.dist(goal, robot)

    def _clear_of_hazards(self, physics: Physics, extra: float = 0.0):
        hazards = physics.hazard_positions().copy()
        bound = self._hazard_radius + START_CLEARANCE + extra
        return lambda p: _min_distance(p, hazards) >= bound

    def _sample(self, accept) -> np.ndarray:
        for _ in range(10_000):
            p = self.random.uniform(-PLACEMENT, PLACEMENT, 2)
            if accept(p):
                return p
        raise RuntimeError("could not place an object; too many or too large hazards for the placement square")


def _min_distance(p: np.ndarray, points: np.ndarray) -> float:
    return float(np.sqrt(((points - p) ** 2).sum(axis=1)).min()) if len(points) else math.inf


class GoalController:
    """Scripted go-to-goal with optional hazard avoidance, a stateless map obs -> action.

    Commands a velocity of `speed` towards the goal and tracks it with feedforward (full force holds 1 m/s
    against the damping) plus proportional feedback. With `avoid`, each hazard whose edge is closer than
    `margin` removes the part of the commanded velocity that points into it and turns that part along the
    hazard's tangent (towards the goal's side; counter-clockwise on a tie), so the robot slides around the disk
    instead of stopping in front of it; within `buffer` of the edge it is also pushed outwards. With the
    defaults it is the safe policy of `SafeGoal`; with `avoid=False` it drives straight through hazards.
    """

    def __init__(
        self,
        avoid: bool = True,
        speed: float = 0.9,
        gain: float = 4.0,
        margin: float = 0.3,
        buffer: float = 0.1,
        push: float = 5.0,
        hazard_radius: float = HAZARD_RADIUS,
    ):
        """Sets the gains.

        Args:
            avoid: Steer around hazards.
            speed: Commanded speed in m/s (top speed 1 m/s).
            gain: Velocity feedback, action per m/s of tracking error.
            margin: Distance from a hazard's edge, in m, within which the velocity towards it is turned away.
            buffer: Distance from a hazard's edge, in m, within which the robot is pushed outwards.
            push: Outward velocity per m inside the buffer, in 1/s.
            hazard_radius: Hazard radius in m.
        """
        self._avoid, self._speed, self._gain = avoid, speed, gain
        self._margin, self._buffer, self._push = margin, buffer, push
        self._radius = hazard_radius

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Returns the action [2] in [-1, 1] for a `point-safe_goal` observation [20]."""
        velocity, goal = obs[:2].astype(np.float64), obs[2:4].astype(np.float64)
        command = self._speed * goal / max(float(np.linalg.norm(goal)), 1e-6)
        if self._avoid:
            heading = command.copy()
            hazards = obs[4:].reshape(-1, 2).astype(np.float64)
            distances = np.linalg.norm(hazards, axis=1)
            # Nearest last: it has the final say where two margins overlap (a gap between hazards).
            for hazard, distance in reversed(list(zip(hazards, distances, strict=True))):
                clearance = distance - self._radius
                if clearance >= self._margin:
                    continue
                outward = -hazard / max(distance, 1e-6)
                inward = -float(command @ outward)
                if inward > 0.0:
                    tangent = np.array([-outward[1], outward[0]])
                    if tangent @ heading < 0.0:
                        tangent = -tangent
                    command = command + inward * (outward + tangent)
                if clearance < self._buffer:
                    command = command + self._push * (self._buffer - clearance) * outward
        action = command + self._gain * (command - velocity)
        return np.clip(action, -1.0, 1.0)
