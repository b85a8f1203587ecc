"""`SafeEnv`: a lean stepping loop around a suite Physics and a `SafeTask`, with exact state save/restore."""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

import gymnasium
import mujoco
import numpy as np
from dm_control import mujoco as dm_mujoco

from sim.base import SafeTask
from sim.randomization import ModelRandomizer, Randomization

# Everything mj_step reads besides the model: time, qpos, qvel, act, ctrl, warm start, mocap, applied forces.
# The warm start matters for bit-exact continuation whenever the constraint solver is active.
_PHYSICS_STATE = mujoco.mjtState.mjSTATE_INTEGRATION


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """What a task declares to trainers, the exporter and the ROS node (DESIGN.md sections 4-6).

    Attributes:
        name: Registered task name, e.g. "cartpole-safe_swingup".
        constraints: Names of the constraints reported in `info["constraints"]`.
        cost_threshold: Default bound d for a discounted cost-sum critic (`cost.critic: sum`); the
            default first_violation critic uses d = gamma_c^H instead (README, "The algorithm").
        control_timestep: Seconds per `step`.
        max_episode_steps: Steps until `truncated` is set.
        obs_layout: Observation part name -> (start, stop) into the flat observation.
        ros_interface: "joint" or "diff_drive".
        tags: Registry tags.
        deploy: What a robot-side runtime needs to rebuild observations from ROS messages (see
            `SafeTask.deploy_spec`), plain JSON data.
        ctrl_low, ctrl_high: Physical command range of each actuator; action -1 / +1 maps onto them.
    """

    name: str
    constraints: tuple[str, ...]
    cost_threshold: float
    control_timestep: float
    max_episode_steps: int
    obs_layout: dict[str, tuple[int, int]]
    ros_interface: str
    tags: tuple[str, ...] = ()
    deploy: dict[str, Any] = dataclasses.field(default_factory=dict)
    ctrl_low: tuple[float, ...] = ()
    ctrl_high: tuple[float, ...] = ()


class SafeEnv:
    """Gymnasium-style env with a per-step constraint cost: `step -> (obs, reward, cost, term, trunc, info)`.

    Owns the stepping loop instead of using dm_control's `control.Environment`: fewer layers per step, and the
    whole episode state (physics, task RNG, step counter) can be saved and restored bit-exactly.

    Attributes:
        physics: The task's `Physics`.
        task: The `SafeTask`.
        spec: The `TaskSpec`.
        observation_space: Box float32 [obs_dim], unbounded.
        action_space: Box float32 [act_dim] in [-1, 1], mapped affinely onto the actuators' ctrlrange.
    """

    def __init__(
        self,
        physics: dm_mujoco.Physics,
        task: SafeTask,
        name: str,
        tags: tuple[str, ...] = (),
        randomization: Randomization | None = None,
    ):
        """Wraps a physics/task pair.

        Args:
            physics: Physics built from the task's model.
            task: The task; its `random` is the only source of randomness.
            name: Registered task name.
            tags: Registry tags.
            randomization: Domain randomization ranges, drawn anew at every `reset`; None = nominal model.

        Raises:
            ValueError: If the control timestep is not a whole number of physics steps, or an actuator has
                no ctrlrange (actions could not be scaled from [-1, 1]).
        """
        self.physics = physics
        self.task = task
        n_sub_steps = task.control_timestep / physics.timestep()
        self._n_sub_steps = round(n_sub_steps)
        if self._n_sub_steps < 1 or abs(n_sub_steps - self._n_sub_steps) > 1e-6:
            raise ValueError(
                f"control_timestep {task.control_timestep} is not a multiple of the physics timestep "
                f"{physics.timestep()}"
            )
        if not physics.model.actuator_ctrllimited.all():
            raise ValueError("every actuator needs a ctrlrange to map actions from [-1, 1]")
        low, high = physics.model.actuator_ctrlrange.T
        self._ctrl_mid, self._ctrl_half = (high + low) / 2, (high - low) / 2

        # Read the layout and constraint names off the task's own outputs so the spec cannot drift from them.
        parts = task.get_observation(physics)
        stops = np.cumsum([np.size(v) for v in parts.values()]).tolist()
        layout = {key: (stop - np.size(v), stop) for (key, v), stop in zip(parts.items(), stops, strict=True)}
        self.spec = TaskSpec(
            name=name,
            constraints=tuple(task.get_constraints(physics)),
            cost_threshold=task.cost_threshold,
            control_timestep=task.control_timestep,
            max_episode_steps=round(task.time_limit / task.control_timestep),
            obs_layout=layout,
            ros_interface=task.ros_interface,
            tags=tuple(tags),
            deploy=task.deploy_spec(physics),
            ctrl_low=tuple(low.tolist()),
            ctrl_high=tuple(high.tolist()),
        )
        self._obs_slices = [slice(start, stop) for start, stop in layout.values()]
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (stops[-1],), np.float32)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (physics.model.nu,), np.float32)
        self._step_count = 0
        self._needs_reset = True
        self._randomizer = None if randomization is None else ModelRandomizer(physics.model, randomization)
        self._dr_params: dict[str, Any] | None = None
        self._obs_noise = 0.0 if randomization is None else randomization.obs_noise
        # Actions chosen but not yet applied (action delay); holds the controls in actuator units.
        self._pending: collections.deque[np.ndarray] = collections.deque()
        # A push in progress: control steps left and its strength (random ones from `randomization`, or `push`).
        self._push_left, self._push_strength = 0, 0.0
        self._push_p = 0.0  # chance per step that a random push starts (push_rate * control_timestep)
        if randomization is not None and randomization.push_rate > 0.0:
            self._push_p = min(1.0, randomization.push_rate * task.control_timestep)
            self._push_steps = max(1, round(randomization.push_duration_s / task.control_timestep))
            self._push_random_strength = randomization.push_strength

    @property
    def randomization(self) -> dict[str, Any] | None:
        """This episode's sampled randomization parameters (see `ModelRandomizer.sample`), or None."""
        return self._dr_params

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Starts an episode.

        Args:
            seed: If given, re-seeds the task RNG first (same as `np.random.RandomState(seed)`).

        Returns:
            obs: float32 [obs_dim].
            info: {"constraints": {name: g}} for the initial state, and "randomization" (the sampled
                parameters) when randomization is on.
        """
        if seed is not None:
            self.task.random.seed(seed)
        info: dict[str, Any] = {}
        if self._randomizer is not None:
            self._dr_params = self._randomizer.sample(self.task.random)
            self._randomizer.apply(self._dr_params)
            # The delayed actions of the first steps: zero control (rest), as a robot's driver starts.
            self._pending = collections.deque([np.zeros_like(self._ctrl_mid)] * self._dr_params["action_delay"])
            info["randomization"] = self._dr_params
        with self.physics.reset_context():
            self.task.initialize_episode(self.physics)
        self._step_count = 0
        self._push_left = 0
        self._needs_reset = False
        info["constraints"] = self.task.get_constraints(self.physics)
        return self._observation(), info

    def step(self, action: Any) -> tuple[np.ndarray, float, float, bool, bool, dict[str, Any]]:
        """Advances one control step.

        Args:
            action: array-like [act_dim], clipped to [-1, 1].

        Returns:
            obs: float32 [obs_dim].
            reward: Task reward.
            cost: 1.0 if any constraint is violated in the new state, else 0.0.
            terminated: The task ended the episode (bootstrapping must stop).
            truncated: The time limit was reached (bootstrapping continues).
            info: {"constraints": {name: g}}, g > 0 meaning violated, and "push": whether a push overrode this
                step's action (`push`, or randomization's random pushes).

        Raises:
            RuntimeError: If the episode has ended (or never started) and `reset` was not called.
            ValueError: If the action has the wrong size or is not finite.
        """
        if self._needs_reset:
            raise RuntimeError("episode is over (or not started): call reset() before step()")
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != self.action_space.shape or not np.isfinite(action).all():
            raise ValueError(f"expected a finite action of shape {self.action_space.shape}, got {action}")
        ctrl = self._ctrl_mid + self._ctrl_half * np.clip(action, -1.0, 1.0)
        if self._pending:  # action delay: apply the control chosen `action_delay` steps ago
            self._pending.append(ctrl)
            ctrl = self._pending.popleft()
        if self._push_p and not self._push_left and self.task.random.uniform() < self._push_p:
            self.push(self._push_steps * self.task.control_timestep, self._push_random_strength)
        pushed = self._push_left > 0
        if pushed:  # the disturbance drives; the agent's action (already queued above) is ignored
            self._push_left -= 1
            ctrl = self._ctrl_mid + self._ctrl_half * self.task.push_action(self.physics, self._push_strength)

        self.task.before_step(ctrl, self.physics)
        self.physics.step(self._n_sub_steps)
        self.task.after_step(self.physics)
        self._step_count += 1

        constraints = self.task.get_constraints(self.physics)
        # dm_control convention: get_termination returns None while running, a discount once it has ended.
        terminated = self.task.get_termination(self.physics) is not None
        truncated = self._step_count >= self.spec.max_episode_steps
        self._needs_reset = terminated or truncated
        return (
            self._observation(),
            float(self.task.get_reward(self.physics)),
            self.task.get_cost(constraints),
            terminated,
            truncated,
            {"constraints": constraints, "push": pushed},
        )

    def push(self, duration_s: float, strength: float) -> None:
        """Starts a push now (replacing one in progress): for the next ``duration_s`` of sim time `step` applies the
        task's disturbance (`SafeTask.push_action` at ``strength``, a fraction of the actuator range in [0, 1])
        instead of the agent's actions. The ROS sim bridge's scheduled pushes call this; randomization's random
        pushes too."""
        if not (0.0 <= strength <= 1.0 and duration_s >= 0.0):
            raise ValueError(f"push needs duration_s >= 0 and strength in [0, 1], got {duration_s}, {strength}")
        self._push_left = round(duration_s / self.task.control_timestep)
        self._push_strength = float(strength)

    @property
    def pushing(self) -> bool:
        """Whether the next `step` is pushed (a push is in progress)."""
        return self._push_left > 0

    def get_state(self) -> dict[str, Any]:
        """Returns everything needed to continue the episode bit-exactly, as plain Python types.

        The dict loads with `torch.load(..., weights_only=True)` and serializes to JSON.
        """
        _, keys, pos, has_gauss, cached_gaussian = self.task.random.get_state()
        return {
            "task": self.spec.name,
            "physics": self.physics.get_state(sig=_PHYSICS_STATE).tolist(),
            "rng": {
                "keys": keys.tolist(),
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "cached_gaussian": float(cached_gaussian),
            },
            "task_state": self.task.get_state(),
            "step_count": self._step_count,
            "needs_reset": self._needs_reset,
            "randomization": self._dr_params,
            "pending_actions": [a.tolist() for a in self._pending],
            "push": [self._push_left, self._push_strength],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores a state from `get_state`, possibly taken in another env instance of the same task.

        Raises:
            ValueError: If the state belongs to another task or its physics state has the wrong size.
        """
        if state["task"] != self.spec.name:
            raise ValueError(f"state is for task {state['task']!r}, this env runs {self.spec.name!r}")
        physics_state = np.asarray(state["physics"], dtype=np.float64)
        expected = mujoco.mj_stateSize(self.physics.model.ptr, _PHYSICS_STATE)
        if physics_state.shape != (expected,):
            raise ValueError(f"physics state has shape {physics_state.shape}, expected ({expected},)")
        self.task.set_state(state["task_state"])
        params = state.get("randomization")
        if (params is not None) != (self._randomizer is not None):
            raise ValueError("state and env disagree on whether domain randomization is on")
        if self._randomizer is not None:
            self._randomizer.apply(params)
        self._dr_params = params
        self._pending = collections.deque(np.asarray(a, dtype=np.float64) for a in state.get("pending_actions", []))
        self._push_left, self._push_strength = state.get("push", [0, 0.0])
        self.physics.set_state(physics_state, sig=_PHYSICS_STATE)
        # Recompute derived quantities (poses, xmat) that observations and rendering read.
        self.physics.forward()
        rng = state["rng"]
        keys = np.asarray(rng["keys"], dtype=np.uint32)
        self.task.random.set_state(("MT19937", keys, rng["pos"], rng["has_gauss"], rng["cached_gaussian"]))
        self._step_count = state["step_count"]
        self._needs_reset = state["needs_reset"]

    def action_for(self, ctrl: Any) -> np.ndarray:
        """The action in [-1, 1] that applies ``ctrl`` [A] (physical actuator units, e.g. a policy bundle's or a
        ROS command), clipped to the actuators' range: the inverse of the scaling `step` applies."""
        return np.clip((np.asarray(ctrl, np.float64) - self._ctrl_mid) / self._ctrl_half, -1.0, 1.0)

    def observe(self) -> np.ndarray:
        """The observation of the current physics state, float32 [obs_dim]: for probing a policy on states written
        into ``physics`` by hand (call ``physics.forward()`` first), e.g. ``alam riskmap``."""
        return self._observation()

    def render(self, height: int = 240, width: int = 320, camera_id: int | str = 0) -> np.ndarray:
        """Returns an RGB frame, uint8 [height, width, 3]."""
        return self.physics.render(height=height, width=width, camera_id=camera_id)

    def close(self) -> None:
        """Frees the MuJoCo data and rendering contexts; the env is unusable afterwards."""
        self.physics.free()

    def _observation(self) -> np.ndarray:
        # Filling preset slices is ~4 us cheaper per step than concatenating the parts.
        obs = np.empty(self.observation_space.shape, np.float32)
        parts = self.task.get_observation(self.physics)
        for part, value in zip(self._obs_slices, parts.values(), strict=True):
            obs[part] = value
        if self._obs_noise and self._dr_params is not None:
            obs += self._obs_noise * self.task.random.standard_normal(obs.shape)
        return obs
