"""Rebuilding a task's observation vector from robot-side readings, as the manifest's `deploy` spec describes.

Plain numpy, no ROS types: the ROS node unpacks messages into arrays and calls these, and the tests call them
directly. Bad input raises `InputFault` with a short machine-readable reason ("nonfinite:joint_states",
"size:joint_states", "coverage:scan", ...), which the monitor turns into an immediate FALLBACK.
"""

from __future__ import annotations

import array
import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np


class InputFault(Exception):
    """Robot input that must not reach the policy; `reason` is "<kind>:<source>"."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class JointObservation:
    """obs from joint positions and velocities (sensor_msgs/JointState), for ros_interface "joint".

    The manifest's deploy spec lists features [[kind, joint], ...] with kind in position, velocity, cos, sin.
    """

    def __init__(self, deploy: dict[str, Any], obs_dim: int):
        try:
            self.joints: list[str] = list(deploy["joints"])
            features = [(str(kind), str(joint)) for kind, joint in deploy["observation"]]
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"deploy spec lacks a joint observation recipe: {err!r}") from err
        unknown = {kind for kind, _ in features} - {"position", "velocity", "cos", "sin"}
        if unknown or any(joint not in self.joints for _, joint in features):
            raise ValueError(f"bad joint observation recipe {features}")
        if len(features) != obs_dim:
            raise ValueError(f"joint observation recipe has {len(features)} entries, the policy takes {obs_dim}")
        self._kinds = [kind for kind, _ in features]
        self._index = [self.joints.index(joint) for _, joint in features]
        self._obs = np.empty(obs_dim, np.float32)

    def __call__(
        self, names: Sequence[str], positions: Sequence[float], velocities: Sequence[float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Returns (obs float32 [O], velocities of `self.joints` float64 [J]) from one JointState.

        Raises:
            InputFault: "size:joint_states" if the arrays disagree in length or a trained joint is missing,
                "nonfinite:joint_states" if a used position or velocity is NaN/Inf.
        """
        if len(positions) != len(names) or len(velocities) != len(names):
            raise InputFault(
                "size:joint_states",
                f"{len(names)} names, {len(positions)} positions, {len(velocities)} velocities",
            )
        lookup = {name: i for i, name in enumerate(names)}
        missing = [joint for joint in self.joints if joint not in lookup]
        if missing:
            raise InputFault("size:joint_states", f"missing joint(s) {missing}")
        rows = [lookup[joint] for joint in self.joints]
        pos = np.asarray(positions, np.float64)[rows]
        vel = np.asarray(velocities, np.float64)[rows]
        if not (np.isfinite(pos).all() and np.isfinite(vel).all()):
            raise InputFault("nonfinite:joint_states", "NaN or Inf in a trained joint")
        for i, (kind, j) in enumerate(zip(self._kinds, self._index, strict=True)):
            if kind == "position":
                self._obs[i] = pos[j]
            elif kind == "velocity":
                self._obs[i] = vel[j]
            elif kind == "cos":
                self._obs[i] = math.cos(pos[j])
            else:
                self._obs[i] = math.sin(pos[j])
        return self._obs.copy(), vel


class ScanBinner:
    """Bins LaserScans onto the trained beam directions: the minimum valid range per sector.

    REP 117 readings are readings, not faults: +Inf (no return) reads `range_max`, -Inf (closer than the
    sensor's minimum) reads `range_min`, NaN is an invalid beam and is ignored. Finite values are clamped to
    [range_min, range_max] of the trained sensor.

    What depends only on the scan's geometry (angle_min, angle_increment, beam count) is computed once per
    geometry and kept: the beams of each sector as one gather index [K] (sectors concatenated, so an
    overlapping beam appears in each of its sectors) with the sector starts [N] for `ufunc.reduceat`. A lidar's
    geometry does not change per scan, so a scan costs a gather, two reductions and a clip (~10 us for 360 beams,
    against ~40 us for the [N, M] masks this replaced).
    """

    def __init__(self, beam_angles: np.ndarray, beam_width: float, range_min: float, range_max: float):
        """Args: beam_angles [N] sector centers in rad; beam_width sector width in rad; range_min/max in m."""
        self.beam_angles = np.asarray(beam_angles, np.float64)
        self.beam_width = float(beam_width)
        self.range_min, self.range_max = float(range_min), float(range_max)
        self._geometry: tuple[float, float, int] | None = None
        self._index = self._starts = self._counts = np.zeros(0, np.intp)
        self._coverage = ""  # fault detail when a sector has no beam of this geometry, else ""

    def _build(self, angle_min: float, angle_increment: float, size: int) -> None:
        angles = angle_min + angle_increment * np.arange(size)
        # Offset of each scan beam from each sector center, wrapped to (-pi, pi].
        offset = np.angle(np.exp(1j * (angles[None, :] - self.beam_angles[:, None])))
        inside = np.abs(offset) <= self.beam_width / 2 + 1e-9  # bool [N, M]
        counts = inside.sum(1)
        self._coverage = ""
        if (counts == 0).any():
            missing = np.degrees(self.beam_angles[counts == 0]).round(1).tolist()
            self._coverage = f"no scan beams near trained direction(s) {missing} deg"
        rows, cols = np.nonzero(inside)  # row-major: the beams of sector 0, then sector 1, ...
        self._index = cols.astype(np.intp)
        self._counts = counts
        self._starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp)
        self._geometry = (angle_min, angle_increment, size)

    def __call__(
        self, ranges: Sequence[float], angle_min: float, angle_increment: float, max_invalid_fraction: float = 0.5
    ) -> np.ndarray:
        """Returns float32 [N] sector ranges in m.

        Args:
            ranges: The scan's ranges [M] (any resolution, any angular span; an `array.array('f')` as rclpy
                delivers it is read without a copy).
            angle_min, angle_increment: The scan's geometry in rad, in the sensor (= robot) frame, CCW from forward.
            max_invalid_fraction: Largest fraction of NaN beams tolerated within one sector.

        Raises:
            InputFault: "coverage:scan" if a sector has no beam of this scan in it, "invalid:scan" if a sector has
                more than `max_invalid_fraction` NaN beams or none valid, "size:scan" on a malformed scan.
        """
        r = np.frombuffer(ranges, np.float32) if isinstance(ranges, array.array) and ranges.typecode == "f" else (
            np.asarray(ranges, np.float64))  # fmt: skip
        if r.ndim != 1 or r.size == 0 or not math.isfinite(angle_increment) or angle_increment == 0.0:
            raise InputFault("size:scan", f"{r.size} ranges, angle_increment {angle_increment}")
        if self._geometry != (angle_min, angle_increment, r.size):
            if not math.isfinite(angle_min):
                raise InputFault("size:scan", f"angle_min {angle_min}")
            self._build(float(angle_min), float(angle_increment), r.size)
        if self._coverage:
            raise InputFault("coverage:scan", self._coverage)
        picked = r[self._index]  # [K]
        nan = np.isnan(picked)
        if nan.any():
            invalid = np.add.reduceat(nan, self._starts) / self._counts
            if (invalid > max_invalid_fraction).any() or (invalid >= 1.0).any():
                worst = int(np.argmax(invalid))
                raise InputFault(
                    "invalid:scan",
                    f"{invalid[worst]:.0%} NaN beams in the sector at {math.degrees(self.beam_angles[worst]):.1f} deg",
                )
        # fmin skips NaN; clamping commutes with the minimum (it is monotone), so -Inf reads range_min and +Inf
        # range_max exactly as if each beam were clamped first.
        sectors = np.fmin.reduceat(picked, self._starts)
        return np.clip(sectors, self.range_min, self.range_max).astype(np.float32)


def bin_scan(
    ranges: Sequence[float],
    angle_min: float,
    angle_increment: float,
    range_min: float,
    range_max: float,
    beam_angles: np.ndarray,
    beam_width: float,
    max_invalid_fraction: float = 0.5,
) -> np.ndarray:
    """One scan through a `ScanBinner` (cached per fan): float32 [N]; see `ScanBinner` for the rules and faults."""
    binner = _binner(tuple(np.asarray(beam_angles, np.float64).tolist()), float(beam_width), range_min, range_max)
    return binner(ranges, angle_min, angle_increment, max_invalid_fraction)


@functools.lru_cache(maxsize=8)
def _binner(beam_angles: tuple[float, ...], beam_width: float, range_min: float, range_max: float) -> ScanBinner:
    return ScanBinner(np.asarray(beam_angles), beam_width, float(range_min), float(range_max))


class DiffDriveObservation:
    """obs = [goal distance, cos, sin of goal bearing, v, omega, ranges [N]] for ros_interface "diff_drive".

    Inputs are what nav_msgs/Odometry (pose x, y, yaw; body-frame twist v = linear.x, omega = angular.z),
    a goal geometry_msgs/PoseStamped (x, y in the odometry frame) and a binned sensor_msgs/LaserScan give.
    """

    def __init__(self, deploy: dict[str, Any], obs_dim: int):
        try:
            self.beam_angles = np.asarray(deploy["beam_angles"], np.float64)
            self.beam_width = float(deploy["beam_width"])
            self.range_min, self.range_max = float(deploy["range_min"]), float(deploy["range_max"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"deploy spec lacks the diff-drive range sensor fan: {err!r}") from err
        if obs_dim != 5 + len(self.beam_angles):
            raise ValueError(
                f"diff-drive observation has {5 + len(self.beam_angles)} entries, the policy takes {obs_dim}"
            )
        self._obs = np.empty(obs_dim, np.float32)
        self.bin = ScanBinner(self.beam_angles, self.beam_width, self.range_min, self.range_max)
        """A LaserScan onto this robot's trained sectors: ``bin(ranges, angle_min, angle_increment, max_invalid)``."""

    def __call__(
        self, pose: Sequence[float], twist: Sequence[float], goal: Sequence[float], binned_ranges: np.ndarray
    ) -> np.ndarray:
        """Returns obs float32 [O].

        Args:
            pose: (x, y, yaw) of the robot in the odometry frame.
            twist: (v, omega) in the robot frame.
            goal: (x, y) of the goal in the same frame as `pose`.
            binned_ranges: [N] from `bin`.

        Raises:
            InputFault: "nonfinite:odom" / "nonfinite:goal_pose" on NaN or Inf.
        """
        x, y, yaw = pose
        v, omega = twist
        # math.isfinite on the scalars: ~10x cheaper than building arrays for np.isfinite at this size.
        if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(yaw) and math.isfinite(v)
                and math.isfinite(omega)):  # fmt: skip
            raise InputFault("nonfinite:odom", "NaN or Inf in pose or twist")
        if not (math.isfinite(goal[0]) and math.isfinite(goal[1])):
            raise InputFault("nonfinite:goal_pose", "NaN or Inf in the goal")
        dx, dy = goal[0] - x, goal[1] - y
        bearing = math.atan2(dy, dx) - yaw
        obs = self._obs
        obs[0] = math.hypot(dx, dy)
        obs[1], obs[2] = math.cos(bearing), math.sin(bearing)
        obs[3], obs[4] = v, omega
        obs[5:] = binned_ranges
        return obs.copy()


def yaw_from_quaternion(x: float, y: float, z: float, w: float) -> float:
    """Yaw (rotation about +z) in rad of a unit quaternion, as geometry_msgs/Quaternion holds it."""
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
