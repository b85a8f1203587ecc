"""Fallback controllers: what drives the robot while the monitor distrusts the policy or its inputs.

Each is a plain callable ``fallback(obs, action=None) -> command`` in physical units that returns a finite command
for ANY input, including NaN observations or none at all (obs None: inputs stale or faulty), because it is exactly
then that it runs. ``action`` is the policy's command for this tick [A], already computed by the controller for
the risk signal, or None where it is not to be trusted (an input fault, a non-finite action or risk); only
"throttle" reads it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

FALLBACKS = ("stop", "damping", "center", "retreat", "evade", "throttle")


class StopFallback:
    """Zero command: zero velocity for a diff-drive base, zero effort for joint actuators."""

    def __init__(self, act_dim: int):
        self._zero = np.zeros(act_dim)

    def __call__(self, obs: np.ndarray | None, action: np.ndarray | None = None) -> np.ndarray:
        return self._zero.copy()


class DampingFallback:
    """Joint robots: command_i = clip(-gain * velocity_i - position_gain * position_i) for each commanded joint i.

    ``position_gain`` 0 is pure damping toward rest ("damping"); above 0 it is a PD that also pulls each commanded
    joint back to its zero ("center": the cart-pole's cart to the middle of its band). Positions and velocities
    are read from the observation entries the deploy spec marks as ("position", joint) / ("velocity", joint); with
    no trustworthy observation it commands zero effort.

    Why "center" for the cart-pole: behind the monitor, damping alone let the cart drift out of the band once the
    pole swung (seed 0 of configs/sweeps/default_budget.yaml, 10 episodes: violation rate 0.287 at the training
    ranges, 0.478 at x2, against 0.0058 / 0.0116 with center at kp = kd = 1 and ~0.005 for the policy alone).
    """

    def __init__(
        self, deploy: dict[str, Any], low: np.ndarray, high: np.ndarray, gain: float = 1.0, position_gain: float = 0.0
    ):
        if "observation" not in deploy or "joints" not in deploy:
            raise ValueError(
                "damping fallback needs the bundle's joint observation recipe (deploy.joints / deploy.observation), "
                "which this task does not declare; use the stop fallback"
            )
        features = [tuple(f) for f in deploy["observation"]]
        joints = deploy.get("command_joints") or deploy["joints"][: len(low)]
        kinds = ("velocity", "position") if position_gain else ("velocity",)
        try:
            index = {kind: [features.index((kind, joint)) for joint in joints] for kind in kinds}
        except ValueError as err:
            raise ValueError(
                f"this fallback needs the {' and '.join(kinds)} of each commanded joint {joints}: {err}"
            ) from err
        self._velocity, self._position = index["velocity"], index.get("position")
        self._low, self._high, self._gain, self._position_gain = low, high, gain, position_gain

    def __call__(self, obs: np.ndarray | None, action: np.ndarray | None = None) -> np.ndarray:
        if obs is None:
            return np.zeros(len(self._low))
        obs = np.asarray(obs, np.float64)
        command = -self._gain * obs[self._velocity]
        if self._position is not None:
            command -= self._position_gain * obs[self._position]
        command = np.clip(command, self._low, self._high)
        return np.where(np.isfinite(command), command, 0.0)


class RetreatFallback:
    """Diff drive: move away from every obstacle inside `clear_distance`, facing away from them, then stop once clear.

    Each lidar sector i at bearing b_i (robot frame) with range r_i < `clear_distance` pushes with its depth
    w_i = (clear_distance - r_i) / clear_distance; the repulsion F = -sum_i w_i (cos b_i, sin b_i) points away from
    them all, at bearing phi. Then v = speed * cos(phi) (the part of F along the only axis a diff-drive base can
    move) and omega = turn_gain * sin(phi) (turns the robot to face phi), both scaled by min(1, 2 |F|): full speed
    for one sector half way in, none once clear or where the pushes cancel (the middle of a gap, still clear of
    the constraint there).

    Why every sector and not the nearest one (the earlier rule): in the task's 0.8 m gaps between pillars the
    nearest sector jumps from side to side, and backing away from one obstacle drove the robot toward another. On
    the same episodes behind the same monitor (2026-12-06, 30 episodes per row) the shipped bundle's fallback share
    / violation rate went 0.155 / 0.0786 -> 0.120 / 0.0731 under its training ranges (pushes included) and 0.287 /
    0.158 -> 0.232 / 0.134 at x2 (the policy alone: 0.070, 0.145), and the evidence grid's diff-drive seed 0
    bundle's 0.530 / 0.0173 -> 0.418 / 0.0168 (20 episodes), all with 3 engage ticks. On the shipped bundle's 100
    held-out episodes with pushes (`benchmarks/push_warning.py --monitor --seed 30000`) the share fell, 0.162 ->
    0.136, and the violation rate did not: 0.0764 -> 0.0803 (alone 0.0760; pushes override any command).

    Defaults (0.3 m/s to 0.6 m of range, ~0.4 m of clearance from the hull): measured for the nearest-sector rule
    behind the shipped diff-drive bundle's monitor (`benchmarks/push_warning.py --monitor --seed 30000`), where
    0.15 m/s to 0.5 m kept the robot inside the clearance longer.
    """

    def __init__(
        self,
        deploy: dict[str, Any],
        obs_layout: dict[str, list[int]],
        low: np.ndarray,
        high: np.ndarray,
        clear_distance: float = 0.6,
        speed: float = 0.3,
        turn_gain: float = 1.0,
    ):
        beams = np.asarray(deploy["beam_angles"], np.float64)
        self._cos, self._sin = np.cos(beams), np.sin(beams)
        start, stop = obs_layout["ranges"]
        self._ranges = slice(start, stop)
        self._low, self._high = low, high
        self._clear, self._speed, self._turn = clear_distance, speed, turn_gain

    def __call__(self, obs: np.ndarray | None, action: np.ndarray | None = None) -> np.ndarray:
        if obs is None:
            return np.zeros(2)
        ranges = np.asarray(obs, np.float64)[self._ranges]
        # A NaN sector pushes with nothing (np.fmax ignores NaN); with no finite sector at all the robot stops.
        depth = np.fmax((self._clear - ranges) / self._clear, 0.0)
        depth = np.where(np.isfinite(depth), depth, 0.0)
        fx, fy = -float(depth @ self._cos), -float(depth @ self._sin)
        push = math.hypot(fx, fy)
        if push < 1e-9:
            return np.zeros(2)
        # cos(phi) = fx / push, sin(phi) = fy / push.
        command = np.array([self._speed * fx, self._turn * fy]) / push * min(1.0, 2.0 * push)
        return np.clip(command, self._low, self._high)


class EvadeFallback:
    """Planar point robots (force on x and y, hazards seen as vectors): brake, and push away from the nearest hazard.

    command = clip(-brake_gain * v + strength * depth * (-h / |h|)), v the velocity and h the nearest hazard's
    center relative to the robot (observation entries "velocity" and "hazard_vectors", nearest first), depth =
    (clear_distance - |h|) / clear_distance when inside clear_distance, else 0.

    Why not "stop": the point robot coasts (1 m/s fades over 0.5 m at its damping), so zero force let it drift
    into the hazard it was heading for: behind the monitor the violation rate rose from 0.153 to 0.348 at the
    training ranges (3 seeds of configs/sweeps/default_budget.yaml).
    """

    def __init__(
        self,
        obs_layout: dict[str, list[int]],
        low: np.ndarray,
        high: np.ndarray,
        clear_distance: float = 0.8,
        strength: float = 1.0,
        brake_gain: float = 1.0,
    ):
        if "velocity" not in obs_layout or "hazard_vectors" not in obs_layout:
            raise ValueError(
                "fallback 'evade' needs the observation entries 'velocity' and 'hazard_vectors' (a planar point "
                f"robot); this bundle's are {sorted(obs_layout)}"
            )
        self._velocity = slice(*obs_layout["velocity"])
        start = obs_layout["hazard_vectors"][0]
        self._nearest = slice(start, start + 2)  # the first (x, y) pair is the nearest hazard
        self._low, self._high = low, high
        self._clear, self._strength, self._brake = clear_distance, strength, brake_gain

    def __call__(self, obs: np.ndarray | None, action: np.ndarray | None = None) -> np.ndarray:
        if obs is None:
            return np.zeros(len(self._low))
        obs = np.asarray(obs, np.float64)
        velocity, hazard = obs[self._velocity], obs[self._nearest]
        command = -self._brake * velocity if np.isfinite(velocity).all() else np.zeros(len(self._low))
        distance = math.hypot(*hazard) if np.isfinite(hazard).all() else math.inf
        if 0.0 < distance < self._clear:
            command = command - self._strength * (self._clear - distance) / self._clear * hazard / distance
        return np.clip(command, self._low, self._high)


class ThrottleFallback:
    """A governor: the policy's own command scaled down, command = scale * pi(s); zero effort when the controller
    does not trust this tick's action (an input fault, a non-finite action or risk: ``action`` None).

    It trusts the policy's direction while the monitor distrusts its magnitude, so it is for constraints that
    effort drives, such as the walker's speed limit: at half torque the gait slows instead of collapsing. Why not
    "stop" there: zero torque lets the walker fall, and the policy does not get it up again. Measured on the
    evidence grid's seed-0 walker bundles (`sac_alam`, `fac`) behind their calibrated monitors, return / violation
    rate at randomization x1 and x2, stop -> throttle 0.5: on the stress episodes (30 a cell) `sac_alam` 44.8 /
    0.0096 -> 109.2 / 0.0089 and 46.4 / 0.0136 -> 89.8 / 0.0125, `fac` 55.3 / 0.0087 -> 156.7 / 0.0051 and 56.2 /
    0.0141 -> 112.3 / 0.0140; on 40 other episodes each `sac_alam` 52.5 / 0.0092 -> 107.9 / 0.0124 and 44.8 /
    0.0108 -> 99.3 / 0.0075, `fac` 58.0 / 0.0056 -> 128.0 / 0.0039 and 55.6 / 0.0108 -> 130.1 / 0.0088. Scale 0.75
    kept more return but violated more (`sac_alam` x1 189.6 / 0.0138), 0.25 less of both (65.7 / 0.0091).
    """

    def __init__(self, low: np.ndarray, high: np.ndarray, scale: float = 0.5):
        if not 0.0 <= scale <= 1.0:
            raise ValueError(f"throttle scale must be in [0, 1], got {scale}")
        self._low, self._high, self._scale = low, high, scale

    def __call__(self, obs: np.ndarray | None, action: np.ndarray | None = None) -> np.ndarray:
        # The policy is not run again: the controller hands over the action it computed for the risk signal.
        if action is None:
            return np.zeros(len(self._low))
        return np.clip(self._scale * np.asarray(action, np.float64), self._low, self._high)


def default_fallback(manifest: dict[str, Any]) -> str:
    """The fallback that fits the bundle's robot: retreat for a diff-drive base, evade for a planar point robot
    (hazard vectors in its observation), center for a joint robot whose joint states the bundle can read, else
    throttle (the walker).

    Why not stop everywhere: a coasting point robot drifted into the hazard it was heading for (violation rate
    0.153 -> 0.348 behind the monitor, `EvadeFallback`), a cart-pole with zero force let the cart leave its band
    (`DampingFallback`), and a walker with zero torque falls (`ThrottleFallback`).
    """
    if manifest["ros_interface"] == "diff_drive":
        return "retreat"
    if "hazard_vectors" in (manifest.get("obs_layout") or {}):
        return "evade"
    return "center" if "observation" in (manifest.get("deploy") or {}) else "throttle"


def make_fallback(name: str, manifest: dict[str, Any], **params: float):
    """Builds fallback `name` (one of FALLBACKS) for the bundle described by `manifest`.

    Raises:
        ValueError: For an unknown name or one that does not fit the robot (damping or center on a diff drive,
            retreat on a joint robot, evade on a robot without hazard vectors).
    """
    low, high = np.asarray(manifest["action_low"], np.float64), np.asarray(manifest["action_high"], np.float64)
    kind = manifest["ros_interface"]
    if name == "stop":
        return StopFallback(len(low))
    if name in ("damping", "center"):
        if kind != "joint":
            raise ValueError(f"fallback {name!r} is for joint robots; this bundle's interface is {kind!r}")
        if name == "center":
            params = {"gain": 1.0, "position_gain": 1.0, **params}
        return DampingFallback(manifest["deploy"], low, high, **params)
    if name == "retreat":
        if kind != "diff_drive":
            raise ValueError(f"fallback 'retreat' is for diff-drive robots; this bundle's interface is {kind!r}")
        return RetreatFallback(manifest["deploy"], manifest["obs_layout"], low, high, **params)
    if name == "evade":
        return EvadeFallback(manifest.get("obs_layout") or {}, low, high, **params)
    if name == "throttle":
        return ThrottleFallback(low, high, **params)
    raise ValueError(f"unknown fallback {name!r}; choose one of {', '.join(FALLBACKS)}")
