"""Scripted safe controller of `cartpole-safe_swingup`: energy-pumping swing-up, LQR catch and a band brake."""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg

from sim.cartpole import X_MAX, Physics, SafeSwingup, get_model_and_assets
from sim.registry import TASKS


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


TASKS.add_safe_policy("cartpole-safe_swingup", lambda env: SwingupController())
