"""The deployed control tick (DESIGN.md section 6): one plain class that the ROS node, `alam calibrate`,
`alam eval --bundle --monitor`, the stress test and the benchmarks all run, so what is measured in simulation is
the controller the robot runs.

    controller = Controller(bundle, MonitorConfig.from_manifest(bundle.manifest), fallback="retreat")
    controller.inputs.odom(now, (x, y, yaw), (v, omega))          # robot readings, as plain numbers/arrays
    controller.inputs.scan(now, ranges, angle_min, angle_increment)
    controller.inputs.goal(now, (gx, gy))
    tick = controller.tick(now)                                   # command, risk, mode, label, fault, detail
    tick = controller.step(now, obs)                              # or from an observation (simulation)

Torch-free and ROS-free; the clock is explicit (`now` in seconds, one clock throughout: sim time in a rollout, the
node clock on a robot). A tick never raises on bad input and always returns a finite command inside the
actuators' range: bad input is a fault, which the monitor turns into FALLBACK at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from alam_control.runtime.bundle import Bundle
from alam_control.runtime.fallback import make_fallback
from alam_control.runtime.monitor import FALLBACK, POLICY, STALLED_LABEL, MonitorConfig, ProgressWatch, RiskMonitor
from alam_control.runtime.observation import DiffDriveObservation, InputFault, JointObservation


class Tick(NamedTuple):
    """What one control tick decided.

    Attributes:
        command: float64 [A] in physical units, finite and inside [action_low, action_high].
        risk: The bundle's risk signal this tick (its manifest's `risk_signal`), NaN when the policy did not run.
        mode: POLICY or FALLBACK.
        label: "POLICY" or "FALLBACK:<reason>", as published on ~/mode.
        fault: "<kind>:<source>" when the inputs (or the policy's outputs) could not be trusted, else None.
        detail: A human-readable line for diagnostics ("" when nothing is wrong).
        obs: float32 [O], the observation the policy saw (None on an input fault).
    """

    command: np.ndarray
    risk: float
    mode: str
    label: str
    fault: str | None
    detail: str
    obs: np.ndarray | None


class DiffDriveInputs:
    """The latest odometry, scan and goal of a diff-drive robot, and when each arrived.

    Staleness is judged at tick time: an input older than `obs_timeout_s` (or never received) is the fault
    "stale:<topic>". The goal is a set-point, not a sensor: it never goes stale once received. A scan is binned
    lazily, once, at the first tick that uses it (a lidar may publish faster than the control rate).
    """

    def __init__(
        self,
        manifest: dict[str, Any],
        obs_timeout_s: float = 0.5,
        max_invalid_beam_fraction: float = 0.5,
        topics: tuple[str, str, str] = ("odom", "scan", "goal_pose"),
    ):
        """Args:
        manifest: The bundle's manifest (its `deploy` fan and `obs_layout`).
        obs_timeout_s: Age in s beyond which odometry or a scan is stale.
        max_invalid_beam_fraction: Largest fraction of NaN beams tolerated in one trained sector.
        topics: Names of the odometry, scan and goal inputs, for fault reasons ("stale:<name>").

        Raises:
            ValueError: If the manifest's deploy spec does not describe a range sensor fan.
        """
        self.observer = DiffDriveObservation(manifest.get("deploy") or {}, int(manifest["obs_dim"]))
        start, stop = manifest["obs_layout"]["ranges"]
        self._ranges = slice(start, stop)
        self.obs_timeout_s = float(obs_timeout_s)
        self.max_invalid_beam_fraction = float(max_invalid_beam_fraction)
        self._odom_topic, self._scan_topic, self._goal_topic = topics
        self._pose: tuple[float, float, float] = (math.nan, math.nan, math.nan)
        self._twist: tuple[float, float] = (math.nan, math.nan)
        self._odom_frame = ""
        self._odom_at: float | None = None
        self._scan: tuple[Any, float, float] | None = None  # raw (ranges, angle_min, angle_increment)
        self._scan_at: float | None = None
        self._binned: tuple[np.ndarray | None, str | None, str] = (None, "size:scan", "no scan binned")
        self._goal: tuple[float, float] = (math.nan, math.nan)
        self._goal_frame = ""
        self._goal_at: float | None = None
        # The fallback's observation on a fault: zeros but for the latest trusted ranges (the retreat fallback
        # needs nothing else); one buffer, refilled.
        self._fallback_obs = np.zeros(int(manifest["obs_dim"]), np.float32)

    @property
    def pose(self) -> tuple[float, float, float]:
        """The latest odometry pose (x, y, yaw), NaN before the first."""
        return tuple(self._pose)

    @property
    def odom_frame(self) -> str:
        """The latest odometry's frame_id ("" before the first, or when the robot sends none)."""
        return self._odom_frame

    @property
    def goal_xy(self) -> tuple[float, float]:
        """The latest goal (x, y), NaN before the first."""
        return tuple(self._goal)

    def odom(self, now: float, pose: Sequence[float], twist: Sequence[float], frame: str = "") -> None:
        """Odometry: pose (x, y, yaw) in the odometry frame, twist (v, omega) in the robot frame."""
        self._pose, self._twist, self._odom_frame, self._odom_at = pose, twist, frame, now

    def scan(self, now: float, ranges: Any, angle_min: float, angle_increment: float) -> None:
        """A LaserScan's ranges [M] and geometry (rad, robot frame, CCW from forward); binned at the next tick."""
        self._scan, self._scan_at = (ranges, angle_min, angle_increment), now

    def goal(self, now: float, xy: Sequence[float], frame: str = "") -> None:
        """The goal (x, y) in the odometry frame."""
        self._goal, self._goal_frame, self._goal_at = xy, frame, now

    def _stale(self, now: float) -> tuple[str | None, str]:
        for topic, at in ((self._odom_topic, self._odom_at), (self._scan_topic, self._scan_at)):
            if at is None:
                return f"stale:{topic}", f"no {topic} message received yet"
            if now - at > self.obs_timeout_s:
                age = now - at
                return f"stale:{topic}", f"last {topic} message {age:.3f} s ago (obs_timeout_s {self.obs_timeout_s})"
        if self._goal_at is None:
            return f"stale:{self._goal_topic}", f"no goal received yet on {self._goal_topic}"
        return None, ""

    def observe(self, now: float) -> tuple[np.ndarray | None, np.ndarray | None, str | None, str]:
        """(obs for the policy or None, obs for the fallback or None, fault or None, detail)."""
        fault, detail = self._stale(now)
        ranges = None
        scan_fresh = self._scan_at is not None and now - self._scan_at <= self.obs_timeout_s
        if scan_fresh:
            if self._scan is not None:  # a new scan since the last tick: bin it once
                raw, self._scan = self._scan, None
                try:
                    self._binned = (self.observer.bin(*raw, self.max_invalid_beam_fraction), None, "")
                except InputFault as err:
                    self._binned = (None, err.reason, str(err))
            ranges, scan_fault, scan_detail = self._binned
            if fault is None and scan_fault is not None:
                fault, detail = scan_fault, scan_detail
        fallback_obs = None
        if ranges is not None:  # enough for the retreat fallback, whatever else is wrong
            fallback_obs = self._fallback_obs
            fallback_obs[self._ranges] = ranges
        if fault is not None:
            return None, fallback_obs, fault, detail
        if self._odom_frame and self._goal_frame and self._odom_frame != self._goal_frame:
            return (
                None,
                fallback_obs,
                f"frame:{self._goal_topic}",
                f"goal in frame {self._goal_frame!r}, odometry in {self._odom_frame!r} (no tf here)",
            )
        try:
            obs = self.observer(self._pose, self._twist, self._goal, ranges)
        except InputFault as err:
            return None, fallback_obs, err.reason, str(err)
        return obs, obs, None, ""


class JointInputs:
    """The latest joint states of a joint robot (sensor_msgs/JointState as plain arrays) and when they arrived."""

    def __init__(self, manifest: dict[str, Any], obs_timeout_s: float = 0.5, topic: str = "joint_states"):
        """Raises: ValueError if the manifest's deploy spec lacks a joint observation recipe."""
        self.observer = JointObservation(manifest.get("deploy") or {}, int(manifest["obs_dim"]))
        self.obs_timeout_s = float(obs_timeout_s)
        self.max_invalid_beam_fraction = 0.5  # no scan; kept so the live parameter applies uniformly
        self._topic = topic
        self._state: tuple[Sequence[str], Sequence[float], Sequence[float]] | None = None
        self._at: float | None = None

    def joint_states(
        self, now: float, names: Sequence[str], positions: Sequence[float], velocities: Sequence[float]
    ) -> None:
        """One JointState: names [J'], positions [J'], velocities [J'] (any joint order, extra joints ignored)."""
        self._state, self._at = (names, positions, velocities), now

    def observe(self, now: float) -> tuple[np.ndarray | None, np.ndarray | None, str | None, str]:
        """(obs for the policy or None, obs for the fallback or None, fault or None, detail)."""
        if self._at is None:
            return None, None, f"stale:{self._topic}", f"no {self._topic} message received yet"
        if now - self._at > self.obs_timeout_s:
            age = now - self._at
            return None, None, f"stale:{self._topic}", (
                f"last {self._topic} message {age:.3f} s ago (obs_timeout_s {self.obs_timeout_s})")  # fmt: skip
        try:
            obs, _ = self.observer(*self._state)
        except InputFault as err:
            return None, None, err.reason, str(err)
        return obs, obs, None, ""


def make_inputs(manifest: dict[str, Any], obs_timeout_s: float = 0.5, max_invalid_beam_fraction: float = 0.5,
                topics: dict[str, str] | None = None) -> DiffDriveInputs | JointInputs:  # fmt: skip
    """The input holder for the bundle's `ros_interface`; `topics` renames inputs in fault reasons
    (keys odom, scan, goal_pose, joint_states)."""
    topics = topics or {}
    if manifest["ros_interface"] == "diff_drive":
        names = (topics.get("odom", "odom"), topics.get("scan", "scan"), topics.get("goal_pose", "goal_pose"))
        return DiffDriveInputs(manifest, obs_timeout_s, max_invalid_beam_fraction, names)
    return JointInputs(manifest, obs_timeout_s, topics.get("joint_states", "joint_states"))


class Controller:
    """The deployed tick: inputs -> observation -> policy -> risk monitor -> policy action or fallback -> clip.

    Attributes:
        bundle: The loaded bundle.
        risk_signal: "lambda" or "cost_q": which policy output is the risk (the bundle's choice).
        monitor: The RiskMonitor, or None for the policy alone (then only faults hand control to the fallback).
        watch: The ProgressWatch of a navigation bundle behind a monitor (its settings are the monitor's), else None.
        inputs: DiffDriveInputs or JointInputs, for `tick`.
        fallback: The fallback controller: obs [O] or None -> command [A].
        lam, cost_q: The policy's latest finite outputs (NaN before the first).
        risk: The latest finite risk (0.0 before the first), what ~/risk carries while the policy cannot run.
    """

    def __init__(
        self,
        bundle: Bundle,
        monitor: MonitorConfig | None,
        fallback: str | Callable[[np.ndarray | None, np.ndarray | None], np.ndarray] = "stop",
        *,
        start_in_fallback: bool = True,
        obs_timeout_s: float = 0.5,
        max_invalid_beam_fraction: float = 0.5,
        topics: dict[str, str] | None = None,
    ):
        """Args:
        bundle: A verified bundle (`load_bundle`).
        monitor: Thresholds (`MonitorConfig.from_manifest`), or None for the policy alone.
        fallback: Fallback controller name (see `make_fallback`), or one already built.
        start_in_fallback: Start in FALLBACK:startup until a dwell of calm, good inputs (a robot); a simulated
            rollout, whose inputs are sane from the first step, starts in POLICY.
        obs_timeout_s, max_invalid_beam_fraction, topics: See `DiffDriveInputs` / `JointInputs`.

        Raises:
            ValueError: A fallback that does not fit the robot.

        A bundle whose deploy spec cannot rebuild its observation from robot readings (the point robot, the
        walker) still runs in simulation through `step`; `inputs` is then None and `tick` raises.
        """
        self.bundle = bundle
        manifest = bundle.manifest
        self.risk_signal = bundle.risk_signal
        self._use_lambda = self.risk_signal == "lambda"
        self.monitor = RiskMonitor(monitor, start_in_fallback) if monitor is not None else None
        self.watch = ProgressWatch.for_bundle(manifest) if monitor is not None else None
        self.fallback = make_fallback(fallback, manifest) if isinstance(fallback, str) else fallback
        self.inputs: DiffDriveInputs | JointInputs | None = None
        self.inputs_error = ""
        try:
            self.inputs = make_inputs(manifest, obs_timeout_s, max_invalid_beam_fraction, topics)
        except (ValueError, KeyError) as err:
            self.inputs_error = f"{err}"
        self._low, self._high = bundle.action_low, bundle.action_high
        self._obs_dim = bundle.obs_dim
        self.lam = self.cost_q = math.nan
        self.risk = 0.0

    def tick(self, now: float) -> Tick:
        """One tick from the latest robot readings (`inputs`).

        Raises:
            ValueError: The bundle cannot be driven from robot readings (`inputs` is None; `inputs_error` says why).
        """
        if self.inputs is None:
            raise ValueError(f"this bundle cannot be driven from robot readings: {self.inputs_error}")
        obs, fallback_obs, fault, detail = self.inputs.observe(now)
        return self._decide(now, obs, fallback_obs, fault, detail)

    def step(self, now: float, obs: np.ndarray) -> Tick:
        """One tick from an observation [O] (a simulated robot): checked for size and finiteness like robot input."""
        obs = np.asarray(obs, np.float32)
        if obs.shape != (self._obs_dim,):
            return self._decide(now, None, None, "size:obs", f"observation of shape {obs.shape}, the policy takes "
                                f"({self._obs_dim},)")  # fmt: skip
        if not np.isfinite(obs).all():
            return self._decide(now, None, None, "nonfinite:obs", "NaN or Inf in the observation")
        return self._decide(now, obs, obs, None, "")

    def _decide(
        self, now: float, obs: np.ndarray | None, fallback_obs: np.ndarray | None, fault: str | None, detail: str
    ) -> Tick:
        risk = math.nan
        action = None
        if fault is None:
            action, lam, cost_q = self.bundle.policy(obs)
            risk = lam if self._use_lambda else cost_q
            if not np.isfinite(action).all():
                fault, detail = "nonfinite:action", f"the policy returned {action}"
            elif not math.isfinite(risk):
                fault, detail = f"nonfinite:{self.risk_signal}", f"the policy returned {self.risk_signal} {risk}"
            else:
                self.lam, self.cost_q, self.risk = lam, cost_q, risk
        if self.monitor is not None:
            mode = self.monitor.update(now, risk, fault)  # a fault wins over the risk
            label = self.monitor.label()
        else:
            mode, label = (FALLBACK, f"{FALLBACK}:{fault}") if fault is not None else (POLICY, POLICY)
        if mode == POLICY:
            command = action
            # Only the policy's own driving can stall; a hand-over for risk or a fault pre-empts the recovery.
            if self.watch is not None and self.watch.update(now, obs, self.monitor.config):
                mode, label, command = FALLBACK, STALLED_LABEL, self.watch.command(obs)
        else:
            if self.watch is not None:
                self.watch.reset()
            command = self.fallback(fallback_obs, action if fault is None else None)
        # Finite by construction: whatever the policy or fallback returned, the robot gets a bounded command.
        command = np.asarray(command, np.float64)
        if not np.isfinite(command).all():
            command = np.nan_to_num(command, nan=0.0, posinf=0.0, neginf=0.0)
        command = np.minimum(np.maximum(command, self._low), self._high)
        return Tick(command, risk, mode, label, fault, detail, obs)

    def reset(self, start_in_fallback: bool = True) -> None:
        """A fresh monitor (same thresholds), e.g. at activation or at the start of an episode."""
        if self.monitor is not None:
            self.monitor = RiskMonitor(self.monitor.config, start_in_fallback)
        if self.watch is not None:
            self.watch.reset()
