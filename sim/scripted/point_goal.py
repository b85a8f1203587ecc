"""Scripted safe controller of `point-safe_goal`: go-to-goal with hazard avoidance by a control barrier function."""

from __future__ import annotations

import math

import numpy as np

from sim.point_goal import HAZARD_RADIUS
from sim.registry import TASKS


class GoalController:
    """Scripted go-to-goal with optional hazard avoidance by a control barrier function; stateless obs -> action.

    Commands a velocity u of `speed` towards the goal. With `avoid`, every hazard whose edge is within `margin`
    bounds the speed towards it by a barrier condition on its clearance h = |p - c| - r: n . u >= -alpha (h -
    buffer), n the outward normal, so h decays at most exponentially towards `buffer` and never crosses 0. The
    part of u that breaks a bound is first turned along the hazard's tangent (towards the goal's side), so the
    robot slides around the disk instead of stopping in front of it; a few rounds of projections onto all active
    bounds then settle gaps between two hazards. The velocity is tracked with feedforward (full force holds 1
    m/s against the damping) plus proportional feedback, scaled down as a vector (not clipped per axis) so the
    direction survives saturation. With the defaults it is the safe policy of `SafeGoal`; `avoid=False` drives
    straight through hazards.
    """

    def __init__(
        self,
        avoid: bool = True,
        speed: float = 0.9,
        gain: float = 4.0,
        margin: float = 0.4,
        alpha: float = 2.0,
        buffer: float = 0.06,
        projections: int = 3,
        hazard_radius: float = HAZARD_RADIUS,
    ):
        """Sets the gains.

        Args:
            avoid: Steer around hazards.
            speed: Commanded speed in m/s.
            gain: Velocity feedback, action per m/s of tracking error.
            margin: Hazards whose edge is nearer than this, in m, are considered.
            alpha: Barrier rate in 1/s: the speed towards a hazard may be at most alpha * (h - buffer).
            buffer: Clearance in m that the barrier converges to.
            projections: Rounds of projection onto the active bounds.
            hazard_radius: Hazard radius in m.
        """
        self._avoid, self._speed, self._gain = avoid, speed, gain
        self._margin, self._alpha, self._buffer = margin, alpha, buffer
        self._projections = projections
        self._radius = hazard_radius

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Returns the action [2] in [-1, 1] for a `point-safe_goal` observation [4 + 2 * num_hazards]."""
        velocity, goal = obs[:2].astype(np.float64), obs[2:4].astype(np.float64)
        command = self._speed * goal / max(math.hypot(*goal), 1e-6)
        if self._avoid:
            hazards = obs[4:].reshape(-1, 2).astype(np.float64)
            distances = np.sqrt((hazards * hazards).sum(axis=1))
            near = distances - self._radius < self._margin
            if near.any():
                normals = -hazards[near] / np.maximum(distances[near], 1e-6)[:, None]  # outward, unit
                bounds = self._alpha * (distances[near] - self._radius - self._buffer)  # n . u >= -bound
                heading = command.copy()
                for n, bound in zip(normals, bounds, strict=True):
                    excess = -float(n @ command) - bound
                    if excess > 0.0:
                        tangent = np.array([-n[1], n[0]])
                        if tangent @ heading < 0.0:
                            tangent = -tangent
                        command = command + excess * (n + tangent)
                for _ in range(self._projections):
                    for n, bound in zip(normals, bounds, strict=True):
                        excess = -float(n @ command) - bound
                        if excess > 0.0:
                            command = command + excess * n
        action = command + self._gain * (command - velocity)
        peak = float(np.abs(action).max())
        return action / peak if peak > 1.0 else action


TASKS.add_safe_policy("point-safe_goal", lambda env: GoalController())
