"""Walker domain with a speed limit: dm_control's planar walker walking forward (walker-walk) below V_LIMIT.

The model (`sim/walker_speed.xml`, dm_control's walker), observation and reward are dm_control's `suite.walker` walk
task; the constraint is Safety-Gymnasium's velocity constraint on the same horizontal velocity that the reward pays
for. Episodes start standing. The scripted safe controller is `sim.scripted.walker_speed.StandController`
(importable from here too).
"""

from __future__ import annotations

import collections
import math

import numpy as np
from dm_control.suite import walker as suite_walker

from sim import mjcf
from sim.base import SafeTask
from sim.registry import TASKS

V_LIMIT = 0.7  # m/s; see SafeWalk for how it was chosen
MOVE_SPEED = 1.0  # m/s at which dm_control's walker-walk move reward saturates
STAND_HEIGHT = 1.2  # m, torso height above which dm_control's stand term is 1
TORSO_Z0 = 1.3  # m, torso height at qpos = 0 (the model's torso pos)
INIT_NOISE = 0.1  # rad, half-width of the initial perturbation of torso pitch, hips and ankles (knees: 0 to -2x)
_FOOT_GEOMS = (4, 7)  # right_foot, left_foot
# dm_control's gaussian `rewards.tolerance` is exp(-0.5 * (d * scale)^2) with d = distance / margin, 0.1 at d = 1.
_TOLERANCE_SCALE = math.sqrt(-2.0 * math.log(0.1))


@TASKS.add("walker-safe_walk", "benchmark")
def safe_walk(random: np.random.RandomState | int | None = None) -> tuple[Physics, SafeWalk]:
    """Returns the physics and task of walker-walk with the speed limit V_LIMIT."""
    return Physics.from_xml_string(*get_model_and_assets()), SafeWalk(random=random)


def get_model_and_assets() -> tuple[bytes, dict[str, bytes]]:
    """Returns the walker MJCF (`sim/walker_speed.xml`, dm_control's `walker.xml`) and its assets."""
    return mjcf.load("walker_speed")


class Physics(suite_walker.Physics):
    """dm_control's walker physics with fixed-index accessors.

    qpos = qvel = [rootz, rootx, rooty, right_hip, right_knee, right_ankle, left_hip, left_knee, left_ankle],
    body 1 is the torso and sensor 0 the torso subtree's linear velocity (the walker's center of mass, as the
    whole walker hangs below the torso). Fixed indices save the `named` lookups on the per-step path;
    `tests/sim/test_walker_speed.py` checks them against the names.
    """

    def torso_upright(self) -> float:
        """zz entry of the torso's orientation: 1 upright, -1 upside down."""
        return self.data.xmat[1, 8]

    def torso_height(self) -> float:
        """Torso center height in m."""
        return self.data.xpos[1, 2]

    def horizontal_velocity(self) -> float:
        """Forward (x) velocity of the center of mass in m/s, from the `torso_subtreelinvel` sensor."""
        return self.data.sensordata[0]

    def orientations(self) -> np.ndarray:
        """(xx, xz) of each body's orientation, torso first, [14]."""
        return self.data.xmat[1:, [0, 2]].ravel()


class SafeWalk(SafeTask):
    """dm_control's walker-walk (reward for speed up to 1 m/s) under the speed limit v <= 0.7 m/s.

    Observation (`orientations` [14], `height` [1], `velocity` [9] = qvel) and reward are dm_control's:
    reward = stand * (5 * min(max(v / 1 m/s, 0), 1) + 1) / 6 in [0, 1], stand = (3 * standing + upright) / 4,
    v the center-of-mass forward velocity. Constraint "speed": g = v - v_limit on the same v; cost 1 per step
    above the limit (Safety-Gymnasium's velocity tasks, there on the root body's velocity). Action: the six joint
    torques / gear, dm_control's. No early termination: a fallen walker may get up again.

    Initial state (not dm_control's drop from a random pose, unlike its walker tasks): standing with the feet
    on the floor, torso pitch, hips and ankles uniform in +-0.1 rad, knees in [-0.2, 0] rad, at rest, as
    Safety-Gymnasium's velocity tasks start. dm_control's random drop adds a get-up phase that has nothing to do
    with the speed limit, costs learning time (with walker-run's reward SAC stood in under a quarter of its
    steps up to 30k steps) and has no scripted solution here.

    Reward and limit, chosen from short SAC runs (our `alam train`, algo sac, which ignores the cost; 60k steps at
    one thread, ~11 min; speeds of deterministic evaluation episodes of the checkpoints every 5k steps):

    - walker-run's reward (speed paid up to 8 m/s), dm_control's drop start, 3 episodes: after 60k steps SAC
      only stands (return 173, standing still earns 167; mean v 0.13 m/s, v > 1 m/s in 5 % of steps, at most
      27 % at any checkpoint): at this budget the run reward pulls too weakly for any limit above ~0.5 m/s;
    - walker-walk's reward, dm_control's drop start, 3 episodes: return 806 after 60k steps, mean v 1.59 m/s,
      v > 0.7 m/s in 92 % of steps (v > 1 m/s: 82 %);
    - this task (walker-walk's reward, standing start), 5 episodes, `benchmarks/walker_binding.py
      --checkpoints`: v > 0.7 m/s in 11-17 % of steps at 15k-20k steps, 35-49 % at 25k-40k, 67-82 % at 45k-60k;
      at 60k return 772, mean v 1.38 m/s, peaks 3.3 m/s, violation rate 0.82, every episode violating.

    So the walk reward makes SAC walk well within a benchmark budget, and it favours v >= 1 m/s while the limit
    of 0.7 m/s caps the reward of a steady walk at (5 * 0.7 + 1) / 6 = 0.75 per step: the limit is below the
    speed the reward favours, reached by SAC from ~15k steps on. Safety-Gymnasium puts its limits at about half
    of an unconstrained agent's speed (here 1.38-1.59 m/s).

    Measured with `benchmarks/walker_binding.py` (20 seeded episodes of 1000 steps; domain randomization off,
    in brackets on with the default ranges):

    - uniform random actions: violation rate 0.005 (0.014) of steps, 70 % (75 %) of episodes violating
      while falling, return 35.6 (36.7);
    - `StandController()`, standing still: no violations in either, |v| <= 0.19 m/s (0.21 m/s), return 167.2
      (164.0; 3 of 20 episodes fall, mostly with a one-step action delay and unequal legs: its LQR is designed
      for the nominal, delay-free model), min 166.7 (64.0);
    - SAC, unconstrained, as above: violation rate 0.82 and return 772 at 60k steps.

    SafeEnv.step takes ~120 us, ~88 us of it physics (10 substeps).
    """

    control_timestep = 0.025
    time_limit = 25.0
    cost_threshold = 0.05
    ros_interface = "joint"

    def __init__(self, v_limit: float = V_LIMIT, random: np.random.RandomState | int | None = None):
        """Initializes the task.

        Args:
            v_limit: Speed limit in m/s.
            random: RandomState, seed, or None (seed from the OS).
        """
        super().__init__(random=random)
        self._v_limit = v_limit

    def initialize_episode(self, physics: Physics) -> None:
        """Standing at rest in a perturbed pose, the lowest point of the feet on the floor."""
        qpos = physics.data.qpos
        qpos[:] = 0.0
        qpos[[2, 3, 5, 6, 8]] = self.random.uniform(-INIT_NOISE, INIT_NOISE, 5)
        qpos[[4, 7]] = self.random.uniform(-2.0 * INIT_NOISE, 0.0, 2)
        physics.data.qvel[:] = 0.0
        physics.forward()
        qpos[0] = -_feet_bottom(physics)
        super().initialize_episode(physics)

    def get_observation(self, physics: Physics) -> collections.OrderedDict[str, np.ndarray | float]:
        """Returns dm_control's walker observation: orientations [14], height, velocity [9]."""
        return collections.OrderedDict(
            orientations=physics.orientations(),
            height=physics.torso_height(),
            velocity=physics.data.qvel.copy(),
        )

    def get_reward(self, physics: Physics) -> float:
        """dm_control's walker-walk reward in closed form (`rewards.tolerance` costs ~35 us a call)."""
        height = physics.torso_height()
        standing = 1.0 if height >= STAND_HEIGHT else _gaussian((STAND_HEIGHT - height) / (STAND_HEIGHT / 2))
        upright = (1.0 + physics.torso_upright()) / 2.0
        move = min(max(physics.horizontal_velocity() / MOVE_SPEED, 0.0), 1.0)
        return float((3.0 * standing + upright) / 4.0 * (5.0 * move + 1.0) / 6.0)

    def get_constraints(self, physics: Physics) -> dict[str, float]:
        """Returns {"speed": v - v_limit}, v the center-of-mass forward velocity in m/s."""
        return {"speed": float(physics.horizontal_velocity() - self._v_limit)}


def _gaussian(d: float) -> float:
    return math.exp(-0.5 * (d * _TOLERANCE_SCALE) ** 2)


def _feet_bottom(physics: Physics) -> float:
    """Height of the lowest point of the two foot capsules, in m."""
    bottom = math.inf
    for geom in _FOOT_GEOMS:
        radius, half_length = physics.model.geom_size[geom, :2]
        center_z, axis_z = physics.data.geom_xpos[geom, 2], physics.data.geom_xmat[geom, 8]
        bottom = min(bottom, center_z - half_length * abs(axis_z) - radius)
    return bottom


def __getattr__(name: str) -> object:
    # The controller lives in sim/scripted/walker_speed.py (it builds on this module); still importable from here.
    if name == "StandController":
        from sim.scripted.walker_speed import StandController

        return StandController
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
