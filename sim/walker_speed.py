"""Walker domain with a speed limit: dm_control's planar walker running forward (walker-run) below V_LIMIT.

The model, initial states, observation and reward are dm_control's `suite.walker` run task; the constraint is
Safety-Gymnasium's velocity constraint on the same horizontal velocity that the reward pays for.
"""

from __future__ import annotations

import collections
import math

import numpy as np
from dm_control.suite import walker as suite_walker
from dm_control.suite.utils import randomizers

from sim.base import SafeTask
from sim.registry import TASKS

V_LIMIT = 2.5  # m/s; see SafeRun for how it was chosen
RUN_SPEED = 8.0  # m/s at which dm_control's walker-run move reward saturates
STAND_HEIGHT = 1.2  # m, torso height above which dm_control's stand term is 1
# dm_control's gaussian `rewards.tolerance` is exp(-0.5 * (d * scale)^2) with d = distance / margin, 0.1 at d = 1.
_TOLERANCE_SCALE = math.sqrt(-2.0 * math.log(0.1))


@TASKS.add("walker-safe_run", "benchmark")
def safe_run(random: np.random.RandomState | int | None = None) -> tuple[Physics, SafeRun]:
    """Returns the physics and task of walker-run with the speed limit V_LIMIT."""
    return Physics.from_xml_string(*suite_walker.get_model_and_assets()), SafeRun(random=random)


class Physics(suite_walker.Physics):
    """dm_control's walker physics with fixed-index accessors.

    qpos = qvel = [rootz, rootx, rooty, right_hip, right_knee, right_ankle, left_hip, left_knee, left_ankle],
    body 1 is the torso and sensor 0 the torso subtree's linear velocity (the walker's center of mass, as the
    whole walker hangs below the torso). Fixed indices save the `named` lookups on the per-step path;
    `tests/sim` checks them against the names.
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


class SafeRun(SafeTask):
    """dm_control's walker-run (reward for speed up to 8 m/s) under the speed limit v <= 2.5 m/s.

    Initial state, observation (`orientations` [14], `height` [1], `velocity` [9] = qvel) and reward are
    dm_control's: reward = stand * (5 * min(max(v / 8, 0), 1) + 1) / 6 in [0, 1], stand = (3 * standing +
    upright) / 4, with v the center-of-mass forward velocity. Constraint "speed": g = v - v_limit, the same v;
    cost 1 per step above the limit (Safety-Gymnasium's velocity tasks, there on the root body's velocity).
    Action: the six joint torques / gear, dm_control's.

    Choice of v_limit = 2.5 m/s: Safety-Gymnasium sets its limits at half the speed an unconstrained PPO
    agent reaches (Walker2d: 2.34 m/s). On walker-run, the reward gives v = 8 (6 R - 1) / 5 for a per-step
    reward R while upright, so the 700-800 returns reported for state-based SAC mean 5.1-6.1 m/s; half of that
    is ~2.5-3 m/s, and the best return under the limit is at most 1000 * (5 * 2.5 / 8 + 1) / 6 = 427.
    The unconstrained speed on this implementation remains to be measured with a SAC run (`sac` on
    walker-safe_run: mean |v| and violation rate of its evaluation episodes).

    Measured with `benchmarks/task_binding.py` (MEASURED BELOW).
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
        """dm_control's: random joint angles (torso pitch included), at rest, dropped from 1.3 m."""
        randomizers.randomize_limited_and_rotational_joints(physics, self.random)
        super().initialize_episode(physics)

    def get_observation(self, physics: Physics) -> collections.OrderedDict[str, np.ndarray | float]:
        """Returns dm_control's walker observation: orientations [14], height, velocity [9]."""
        return collections.OrderedDict(
            orientations=physics.orientations(),
            height=physics.torso_height(),
            velocity=physics.data.qvel.copy(),
        )

    def get_reward(self, physics: Physics) -> float:
        """dm_control's walker-run reward in closed form (`rewards.tolerance` costs ~35 us a call)."""
        height = physics.torso_height()
        standing = 1.0 if height >= STAND_HEIGHT else _gaussian((STAND_HEIGHT - height) / (STAND_HEIGHT / 2))
        upright = (1.0 + physics.torso_upright()) / 2.0
        move = min(max(physics.horizontal_velocity() / RUN_SPEED, 0.0), 1.0)
        return float((3.0 * standing + upright) / 4.0 * (5.0 * move + 1.0) / 6.0)

    def get_constraints(self, physics: Physics) -> dict[str, float]:
        """Returns {"speed": v - v_limit}, v the center-of-mass forward velocity in m/s."""
        return {"speed": float(physics.horizontal_velocity() - self._v_limit)}


def _gaussian(d: float) -> float:
    return math.exp(-0.5 * (d * _TOLERANCE_SCALE) ** 2)
