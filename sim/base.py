"""Base class for safe tasks: a dm_control suite `Task` that also declares its state constraints."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

import numpy as np
from dm_control import mujoco
from dm_control.suite import base


class SafeTask(base.Task, abc.ABC):
    """A suite task with per-step constraints, episode timing and deployment metadata.

    Subclasses set the class attributes below and implement `get_constraints` right beside `get_reward`,
    so each constraint is defined in exactly one place. `get_observation` returns an ordered mapping of
    scalars or 1-D arrays; the env flattens it in that order. All randomness goes through `self.random`.

    Attributes:
        control_timestep: Seconds per agent step; a whole multiple of the model's physics timestep.
        time_limit: Episode length in seconds; the env truncates after `time_limit / control_timestep` steps.
        cost_threshold: Default bound d for a discounted cost-sum critic (`cost.critic: sum`); the
            default first_violation critic uses d = gamma_c^H instead (README, "The algorithm") (DESIGN.md section 3).
        ros_interface: How the ROS node talks to the robot: "joint" or "diff_drive" (DESIGN.md section 6).
    """

    control_timestep: float
    time_limit: float
    cost_threshold: float
    ros_interface: str

    @abc.abstractmethod
    def get_constraints(self, physics: mujoco.Physics) -> dict[str, float]:
        """Returns the signed constraint values g_i(s): <= 0 satisfied, > 0 violated."""

    def get_cost(self, constraints: Mapping[str, float]) -> float:
        """Returns the per-step cost c_t: the indicator that any constraint is violated.

        Args:
            constraints: The output of `get_constraints` for the current state.
        """
        return float(any(g > 0.0 for g in constraints.values()))

    def deploy_spec(self, physics: mujoco.Physics) -> dict[str, Any]:
        """Returns what a robot-side runtime needs to rebuild this task's observation from ROS messages.

        Plain JSON data, copied into the export bundle's manifest. For ros_interface "joint": {"joints": names
        in JointState order of use, "observation": [[feature, joint], ...] with feature one of "position",
        "velocity", "cos", "sin" (of the joint position), in observation order, "commands": actuator names}.
        For "diff_drive": the range sensor fan and the command limits (see sim/diffdrive.py). An empty dict
        (the default) means the task cannot be driven through ROS; export still works.
        """
        return {}

    def push_action(self, physics: mujoco.Physics, strength: float) -> np.ndarray:
        """The action in [-1, 1] [act_dim] a push applies in this state (`SafeEnv.push`, randomization's pushes).

        Default: ``strength`` on every actuator (a constant shove of the joints); tasks with a more meaningful
        disturbance override it (the diff drive drives toward the nearest obstacle).
        """
        return np.full(physics.model.nu, strength)

    def get_state(self) -> dict[str, Any]:
        """Returns per-episode task state that lives outside the physics state, as plain Python types.

        Physics state (incl. mocap bodies) and `self.random` are saved by the env; override this only for
        state kept elsewhere, e.g. model parameters changed by domain randomization.
        """
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores what `get_state` returned."""


class GoalTask(SafeTask):
    """A safe task whose reward is progress toward a goal plus a bonus for reaching it (Safety-Gym's Goal reward).

    r_t = d_{t-1} - d_t (+ `goal_bonus` when d_t <= `goal_radius`, and the goal moves), d the robot-to-goal distance
    in m. Subclasses implement `goal_distance` and `place_goal`; the reward is computed in `after_step` because
    reaching a goal moves it, which must happen before the observation is taken.
    """

    goal_radius: float
    goal_bonus: float

    def __init__(self, random=None):
        super().__init__(random=random)
        self._last_goal_distance = 0.0
        self._reward = 0.0

    @abc.abstractmethod
    def goal_distance(self, physics: mujoco.Physics) -> float:
        """Returns the robot-to-goal distance in m."""

    @abc.abstractmethod
    def place_goal(self, physics: mujoco.Physics) -> None:
        """Moves the goal to a newly sampled position."""

    def initialize_episode(self, physics: mujoco.Physics) -> None:
        """Places the first goal; subclasses place everything else first, then call this."""
        self.place_goal(physics)
        self._last_goal_distance = self.goal_distance(physics)
        self._reward = 0.0
        super().initialize_episode(physics)

    def after_step(self, physics: mujoco.Physics) -> None:
        """Computes the step's reward, and moves a reached goal (so the next observation shows the new one)."""
        distance = self.goal_distance(physics)
        self._reward = self._last_goal_distance - distance
        if distance <= self.goal_radius:
            self._reward += self.goal_bonus
            self.place_goal(physics)
            distance = self.goal_distance(physics)
        self._last_goal_distance = distance

    def get_reward(self, physics: mujoco.Physics) -> float:
        """Returns the reward of the last step (set in `after_step`)."""
        return self._reward

    def get_state(self) -> dict[str, float]:
        """Returns the goal distance that the next step's progress is measured from, and the last reward."""
        return {"last_goal_distance": self._last_goal_distance, "reward": self._reward}

    def set_state(self, state: dict[str, float]) -> None:
        """Restores what `get_state` returned."""
        self._last_goal_distance = float(state["last_goal_distance"])
        self._reward = float(state["reward"])
