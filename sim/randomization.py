"""Domain randomization for sim-to-real: per-episode physics parameters, observation noise, action delay and pushes.

Generic over tasks: it scales the model's own parameters (every body's mass and inertia, every geom's sliding
friction, every joint's damping, every actuator's gain) by factors drawn per element and per episode, so a new
task gets randomization without task code. All draws come from the task's RandomState, so an episode is
reproducible under a seed and `SafeEnv.get_state` captures it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Randomization:
    """Ranges of domain randomization; each scale is drawn uniformly from [low, high] per element and episode.

    The defaults are moderate ranges for a robot whose model is roughly identified; widen them for stress tests.
    """

    mass: tuple[float, ...] = (0.8, 1.2)
    """Scale of each body's mass and rotational inertia."""
    friction: tuple[float, ...] = (0.7, 1.3)
    """Scale of each geom's sliding friction coefficient."""
    damping: tuple[float, ...] = (0.8, 1.2)
    """Scale of each joint's damping."""
    actuator_gain: tuple[float, ...] = (0.85, 1.15)
    """Scale of each actuator's gear (force or torque per unit of control)."""
    obs_noise: float = 0.01
    """Std of zero-mean Gaussian noise added to every observation entry, in the entry's own units."""
    action_delay: tuple[int, ...] = (0, 1)
    """Range (inclusive) of the number of control steps between choosing an action and applying it."""
    push_rate: float = 0.0
    """Random pushes per second of sim time (a Poisson process; 0 = none). A push overrides the agent's actions
    for `push_duration_s` with the task's disturbance (`SafeTask.push_action`: the diff drive is driven toward the
    nearest obstacle its lidar sees, joint robots get a constant action on every actuator), the disturbance the ROS
    demo applies. Training with them lets the cost critic, and so lambda(s), learn the risk of being pushed: states
    where the robot could not stop before the clearance is gone (docs/multiplier.md, "Pushes")."""
    push_duration_s: float = 1.5
    """Length of each random push in s."""
    push_strength: float = 0.6
    """Push action as a fraction of the actuator range (0.6: 0.3 m/s on the diff drive, the ROS demo's push)."""

    def __post_init__(self) -> None:
        for name in ("mass", "friction", "damping", "actuator_gain"):
            low_high = getattr(self, name)
            if len(low_high) != 2 or not 0.0 < low_high[0] <= low_high[1] or not np.isfinite(low_high).all():
                raise ValueError(f"randomization.{name} must be [low, high] with 0 < low <= high, got {list(low_high)}")
        if not (np.isfinite(self.obs_noise) and self.obs_noise >= 0.0):
            raise ValueError(f"randomization.obs_noise must be a finite std >= 0, got {self.obs_noise}")
        delay = self.action_delay
        if len(delay) != 2 or not all(isinstance(k, int) for k in delay) or not 0 <= delay[0] <= delay[1]:
            raise ValueError(
                f"randomization.action_delay must be [low, high] control steps with 0 <= low <= high, got {list(delay)}"
            )
        for name, low, high in (("push_rate", 0.0, 100.0), ("push_duration_s", 0.0, 60.0), ("push_strength", 0.0, 1.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise ValueError(f"randomization.{name} must be a number in [{low:g}, {high:g}], got {value!r}")

    def widened(self, factor: float) -> Randomization:
        """Ranges ``factor`` times as wide around the nominal model, for stress tests beyond the training ranges.

        Each scale range [low, high] becomes [1 - factor (1 - low), 1 + factor (high - 1)] (floored at 0.05 so a
        mass stays positive), obs_noise is multiplied by ``factor``, and the largest action delay is rounded up
        from ``factor`` times the old one: ``Randomization().widened(2)`` draws masses in [0.6, 1.4] and delays
        of 0-2 steps. Pushes come ``factor`` times as often (their length and strength stay).

        Raises:
            ValueError: factor < 1 would narrow the ranges (use explicit ranges for that).
        """
        if not factor >= 1.0:
            raise ValueError(f"widening factor must be >= 1, got {factor}")

        def wide(low_high: tuple[float, ...]) -> tuple[float, float]:
            low, high = low_high
            return (max(0.05, 1.0 - factor * (1.0 - low)), 1.0 + factor * (high - 1.0))

        return dataclasses.replace(
            self,
            mass=wide(self.mass),
            friction=wide(self.friction),
            damping=wide(self.damping),
            actuator_gain=wide(self.actuator_gain),
            obs_noise=self.obs_noise * factor,
            action_delay=(self.action_delay[0], int(np.ceil(self.action_delay[1] * factor))),
            push_rate=min(100.0, self.push_rate * factor),
        )

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> Randomization:
        """Builds ranges from plain data (YAML), rejecting unknown keys by name.

        Raises:
            ValueError: On an unknown key or an invalid range.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown randomization key(s) {unknown}; valid keys: {sorted(names)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class ModelRandomizer:
    """Applies `Randomization` draws to one MjModel, always relative to the nominal values read at construction.

    Attributes:
        ranges: The `Randomization` in force.
    """

    def __init__(self, model: Any, ranges: Randomization):
        """Remembers the model's nominal parameters.

        Args:
            model: A `mujoco.MjModel` (or dm_control's wrapper), modified in place by `apply`.
            ranges: What to draw.
        """
        self.ranges = ranges
        self._model = model
        self._nominal = {
            "body_mass": model.body_mass.copy(),
            "body_inertia": model.body_inertia.copy(),
            "geom_friction": model.geom_friction[:, 0].copy(),
            "dof_damping": model.dof_damping.copy(),
            "actuator_gear": model.actuator_gear[:, 0].copy(),
        }

    def sample(self, random: np.random.RandomState) -> dict[str, Any]:
        """Draws one episode's parameters as plain Python lists and ints (JSON- and checkpoint-safe).

        Returns:
            {"mass_scale": [nbody], "friction_scale": [ngeom], "damping_scale": [nv],
             "actuator_gain_scale": [nu], "action_delay": int}
        """
        r, nominal = self.ranges, self._nominal

        def draw(low_high: tuple[float, ...], size: int) -> list[float]:
            return random.uniform(low_high[0], low_high[1], size).tolist()

        return {
            "mass_scale": draw(r.mass, len(nominal["body_mass"])),
            "friction_scale": draw(r.friction, len(nominal["geom_friction"])),
            "damping_scale": draw(r.damping, len(nominal["dof_damping"])),
            "actuator_gain_scale": draw(r.actuator_gain, len(nominal["actuator_gear"])),
            "action_delay": int(random.randint(r.action_delay[0], r.action_delay[1] + 1)),
        }

    def apply(self, params: dict[str, Any] | None) -> None:
        """Writes nominal x scale into the model; None restores the nominal model."""
        model, nominal = self._model, self._nominal
        if params is None:
            params = {
                "mass_scale": 1.0,
                "friction_scale": 1.0,
                "damping_scale": 1.0,
                "actuator_gain_scale": 1.0,
            }
        mass = np.asarray(params["mass_scale"])
        model.body_mass[:] = nominal["body_mass"] * mass
        model.body_inertia[:] = nominal["body_inertia"] * np.reshape(mass, (-1, 1) if mass.ndim else ())
        model.geom_friction[:, 0] = nominal["geom_friction"] * np.asarray(params["friction_scale"])
        model.dof_damping[:] = nominal["dof_damping"] * np.asarray(params["damping_scale"])
        model.actuator_gear[:, 0] = nominal["actuator_gear"] * np.asarray(params["actuator_gain_scale"])


def summarize(params: dict[str, Any]) -> dict[str, float]:
    """Flat scalars for logs: mean of each scale vector and the delay."""
    return {
        key: float(np.mean(value)) if isinstance(value, list) and value else float(value)
        for key, value in params.items()
        if not (isinstance(value, list) and not value)
    }
