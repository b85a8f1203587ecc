"""Cart-pole domain: swing the pole up while the cart stays inside a band around the rail's center.

The model (`sim/cartpole.xml`) is dm_control's cart-pole (1 kg cart on a +-1.8 m rail, 0.1 kg 1 m pole, 10 N
motor) plus two visual-only posts at the band edges. Its scripted safe controller is
`sim.scripted.cartpole.SwingupController`.
"""

from __future__ import annotations

import collections
import math

import numpy as np
from dm_control import mujoco

from sim import mjcf
from sim.base import SafeTask
from sim.registry import TASKS

X_MAX = 0.6  # band half-width in m; see SafeSwingup for how it was chosen
# dm_control's gaussian `rewards.tolerance` is exp(-0.5 * (d * scale)^2) with d = |x| / margin, 0.1 at d = 1.
_TOLERANCE_SCALE = math.sqrt(-2.0 * math.log(0.1))


@TASKS.add("cartpole-safe_swingup", "benchmark", "smoke")
def safe_swingup(random: np.random.RandomState | int | None = None) -> tuple[Physics, SafeSwingup]:
    """Returns the physics and task of the cart-pole swing-up inside |x| <= X_MAX."""
    return Physics.from_xml_string(*get_model_and_assets()), SafeSwingup(random=random)


def get_model_and_assets() -> tuple[bytes, dict[str, bytes]]:
    """Returns the cart-pole MJCF (`sim/cartpole.xml`: dm_control's, band-edge posts at +-X_MAX) and its assets."""
    return mjcf.load("cartpole")


class Physics(mujoco.Physics):
    """Cart-pole physics with named accessors.

    Single-pole model: qpos = qvel = [slider, hinge_1], body 2 is the pole. Fixed indices instead of `named`
    lookups save ~1.5 us each on the per-step path; `tests/sim` checks them against the names.
    """

    def cart_position(self) -> float:
        """Cart position along the rail in m."""
        return self.data.qpos[0]

    def cart_velocity(self) -> float:
        """Cart velocity in m/s."""
        return self.data.qvel[0]

    def pole_angle_cosine(self) -> float:
        """Cosine of the pole angle from upright (1 = upright)."""
        return self.data.xmat[2, 8]

    def pole_angle_sine(self) -> float:
        """Sine of the pole angle from upright, positive with the pole's tip towards +x."""
        return self.data.xmat[2, 2]

    def angular_vel(self) -> float:
        """Pole angular velocity in rad/s."""
        return self.data.qvel[1]


class SafeSwingup(SafeTask):
    """Swing the pole up from hanging down and balance it, keeping the cart within |x| <= x_max.

    Reward: dm_control's smooth swing-up reward (upright * centered * small_control * small_velocity), in
    [0, 1] per step. Constraint "cart_band": g = |x| - x_max; cost 1 per step outside the band.

    Choice of x_max = 0.6 m (rail +-1.8 m), measured with `benchmarks/cartpole_band.py` (20 seeded episodes
    of 500 steps, so returns are out of 500):

    - uniform random actions: violation rate 0.66 of steps, return 28;
    - aggressive swing-up, standing in for an unconstrained policy (`SwingupController` with pump gain 30,
      limit 0.8, centering 0.3, no damping): violation rate 0.12, every episode leaves the band (max |x|
      1.9 m), return 428;
    - safe swing-up (`SwingupController()` defaults): no violations, max |x| 0.45 m, return 368.5 (min 367.1),
      mean reward 0.99 per step once upright.

    Its `--search 500` (random gains, band ignored) found best returns of 330 / 402 / 404 / 432 for max |x|
    below 0.5 / 0.6 / 0.7 / 1.0 m: the return-optimal swing-ups use 0.9-1.9 m of rail, so an unconstrained
    learner is pulled out of the band, while safe swing-ups exist with margin (0.45 m at 368.5).
    """

    control_timestep = 0.02
    time_limit = 10.0
    cost_threshold = 0.05
    ros_interface = "joint"

    def __init__(self, x_max: float = X_MAX, random: np.random.RandomState | int | None = None):
        """Initializes the task.

        Args:
            x_max: Band half-width in m.
            random: RandomState, seed, or None (seed from the OS).
        """
        super().__init__(random=random)
        self._x_max = x_max

    def initialize_episode(self, physics: Physics) -> None:
        """Cart near the center, pole hanging down; small noise breaks the symmetry (as dm_control's)."""
        physics.data.qpos[:] = 0.01 * self.random.randn(2) + (0.0, np.pi)
        physics.data.qvel[:] = 0.01 * self.random.randn(2)
        super().initialize_episode(physics)

    def get_observation(self, physics: Physics) -> collections.OrderedDict[str, float]:
        """Returns (x, cos, sin, x_dot, theta_dot), the order of dm_control's flat cart-pole observation."""
        return collections.OrderedDict(
            cart_position=physics.cart_position(),
            pole_angle_cosine=physics.pole_angle_cosine(),
            pole_angle_sine=physics.pole_angle_sine(),
            cart_velocity=physics.cart_velocity(),
            pole_angular_velocity=physics.angular_vel(),
        )

    def get_reward(self, physics: Physics) -> float:
        """dm_control's smooth swing-up reward in closed form (`rewards.tolerance` costs ~35 us a step)."""
        upright = (physics.pole_angle_cosine() + 1.0) / 2.0
        centered = (1.0 + _gaussian_tolerance(physics.cart_position(), margin=2.0)) / 2.0
        small_control = (4.0 + max(0.0, 1.0 - physics.data.ctrl[0] ** 2)) / 5.0
        small_velocity = (1.0 + _gaussian_tolerance(physics.angular_vel(), margin=5.0)) / 2.0
        return float(upright * centered * small_control * small_velocity)

    def deploy_spec(self, physics: Physics) -> dict:
        """Joint interface: the observation from JointState of (slider, hinge_1); one force command (N)."""
        return {
            "joints": ["slider", "hinge_1"],
            "observation": [
                ["position", "slider"],
                ["cos", "hinge_1"],
                ["sin", "hinge_1"],
                ["velocity", "slider"],
                ["velocity", "hinge_1"],
            ],
            "commands": ["slide"],
        }

    def get_constraints(self, physics: Physics) -> dict[str, float]:
        """Returns {"cart_band": |x| - x_max}."""
        return {"cart_band": float(abs(physics.cart_position()) - self._x_max)}


def _gaussian_tolerance(x: float, margin: float) -> float:
    return math.exp(-0.5 * (x * _TOLERANCE_SCALE / margin) ** 2)


def __getattr__(name: str) -> object:
    # The controller lives in sim/scripted/cartpole.py (it builds on this module); still importable from here.
    if name == "SwingupController":
        from sim.scripted.cartpole import SwingupController

        return SwingupController
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
