"""Cart-pole domain: swing the pole up while the cart stays inside a band around the rail's center.

The model (`sim/cartpole.xml`) is dm_control's cart-pole (1 kg cart on a +-1.8 m rail, 0.1 kg 1 m pole, 10 N
motor) plus two visual-only posts at the band edges.
"""

from __future__ import annotations

import collections
import math

import numpy as np
import scipy.linalg
from dm_control import mujoco

from sim import mjcf
from sim.base import SafeTask
from sim.registry import TASKS

X_MAX = 0.6  # band half-width in m; see SafeSwingup for how it was chosen
# dm_control's gaussian `rewards.tolerance` is exp(-0.5 * (d * scale)^2) with d = |x| / margin, 0.1 at d = 1.
_TOLERANCE_SCALE = math.sqrt(-2.0 * math.log(0.1))


@TASKS.add("cartpole-safe_swingup", "benchmark", "smoke", safe_policy=lambda env: SwingupController())
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


class SwingupController:
    """Scripted swing-up: energy pumping with cart centering, an LQR catch near upright, and a band brake.

    A stateless map obs -> action, so it can take over from any state (tests, ROS fallback). With its default
    gains it is the safe controller of `SafeSwingup` (no violations of |x| <= 0.6 m, see there); taking over
    from 200 random in-band states (|x| <= 0.4, |x_dot| <= 1, any angle, |theta_dot| <= 3) it also kept the
    band in all of them and had the pole balanced after 10 s in 126 (`benchmarks/cartpole_band.py`).

    Far from upright it pumps the pole's energy E = J w^2 / 2 + m g l (cos(theta) - 1) towards 0 (upright at
    rest): dE/dt = -m l cos(theta) w a for cart acceleration a, so u = sat(k_E E w cos(theta)) raises E while
    E < 0 (Astrom & Furuta 2000), minus a PD term pulling the cart back to the center. Within the catch cone
    it applies discrete-time LQR on (x, theta, x_dot, theta_dot), linearized at upright from the model's
    masses and inertia, with zero-order hold over one control step. Overriding both, it brakes at full force
    whenever the cart moves outwards and its stopping point at `brake_decel` lies within `brake_margin` of
    the band edge: swing-up gains alone only keep the band when starting from rest.
    """

    def __init__(
        self,
        pump_gain: float = 20.0,
        pump_limit: float = 0.7,
        position_gain: float = 1.2,
        velocity_gain: float = 0.4,
        catch_cosine: float = 0.8,
        lqr_weights: tuple[float, float, float, float] = (1.0, 10.0, 1.0, 1.0),
        x_max: float | None = X_MAX,
        brake_margin: float = 0.1,
        brake_decel: float = 7.0,
    ):
        """Builds the controller for the nominal model.

        Args:
            pump_gain: k_E in action units per J*rad/s.
            pump_limit: Saturation of the pumping term; bounds how hard each swing drives the cart.
            position_gain: Centering gain on x, action per m.
            velocity_gain: Centering gain on x_dot, action per m/s.
            catch_cosine: LQR takes over where cos(theta) exceeds this.
            lqr_weights: Diagonal state cost Q for (x, theta, x_dot, theta_dot); the action cost R is 1.
            x_max: Band half-width to brake for, in m; None disables the brake.
            brake_margin: Distance from the band edge, in m, that the stopping point must keep.
            brake_decel: Deceleration assumed for the stopping point, in m/s^2; below the 9.1 m/s^2 that full
                force gives the cart and pole, leaving room for the pole's reaction.
        """
        self._pump_gain, self._pump_limit = pump_gain, pump_limit
        self._position_gain, self._velocity_gain = position_gain, velocity_gain
        self._catch_cosine = catch_cosine
        self._brake_edge = None if x_max is None else x_max - brake_margin
        self._brake_decel = brake_decel

        model = Physics.from_xml_string(*get_model_and_assets()).model
        cart_mass, pole_mass = model.body_mass[1], model.body_mass[2]
        com = model.body_ipos[2, 2]
        self._inertia = model.body_inertia[2, 1] + pole_mass * com**2  # about the hinge (parallel axis)
        self._mgl = pole_mass * -model.opt.gravity[2] * com
        # M [x_dd, theta_dd] = [gear u, m g l theta] linearized at theta = 0.
        mass_matrix = np.array([[cart_mass + pole_mass, pole_mass * com], [pole_mass * com, self._inertia]])
        a = np.zeros((4, 4))
        a[:2, 2:] = np.eye(2)
        a[2:, 1] = np.linalg.solve(mass_matrix, [0.0, self._mgl])
        b = np.zeros((4, 1))
        b[2:, 0] = np.linalg.solve(mass_matrix, [model.actuator_gear[0, 0], 0.0])
        ab = scipy.linalg.expm(np.block([[a, b], [np.zeros((1, 5))]]) * SafeSwingup.control_timestep)
        ad, bd = ab[:4, :4], ab[:4, 4:]
        q, r = np.diag(lqr_weights), np.eye(1)
        p = scipy.linalg.solve_discrete_are(ad, bd, q, r)
        self._lqr_gain = np.linalg.solve(r + bd.T @ p @ bd, bd.T @ p @ ad)[0]

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Returns the action [1] in [-1, 1] for obs [5] = (x, cos, sin, x_dot, theta_dot)."""
        x, cos, sin, x_dot, w = (float(v) for v in obs)
        stop = x + x_dot * abs(x_dot) / (2.0 * self._brake_decel)
        if self._brake_edge is not None and x * x_dot > 0.0 and abs(stop) > self._brake_edge:
            u = -math.copysign(1.0, x_dot)
        elif cos > self._catch_cosine:
            u = -self._lqr_gain @ (x, math.atan2(sin, cos), x_dot, w)
        else:
            energy = 0.5 * self._inertia * w * w + self._mgl * (cos - 1.0)
            pump = min(max(self._pump_gain * energy * w * cos, -self._pump_limit), self._pump_limit)
            u = pump - self._position_gain * x - self._velocity_gain * x_dot
        return np.array([min(max(u, -1.0), 1.0)])
