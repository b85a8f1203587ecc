"""alam_policy_node: runs an exported policy on a robot, with lambda(s) as a live risk signal (DESIGN.md section 6).

    alam_policy_node --ros-args -p bundle_dir:=bundles/diffdrive -p risk_high:=2.0 -p risk_low:=1.0
    alam_policy_node --ros-args --params-file config/diffdrive.yaml

Every control tick (a timer at `control_rate_hz`, or each new scan / joint_states with `tick_on`) the node
runs `alam_control.runtime.Controller`, the same class that `alam calibrate` and `alam eval --monitor` run: it
rebuilds the trained observation from the latest inputs (JointObservation, or DiffDriveObservation with LaserScan
binning), runs the ONNX policy, and feeds the risk, any input fault and the inputs' staleness to the RiskMonitor.
This node only converts messages to plain arrays and back, and publishes. In POLICY it publishes the policy's
action, in FALLBACK the fallback's command; both are clipped to the actuator range and never non-finite. It
publishes `~/risk` (Float32, never NaN: the last finite value while the policy cannot run), `~/mode` ("POLICY"
or "FALLBACK:<reason>") and `/diagnostics` (OK in POLICY, WARN in FALLBACK without an input fault, ERROR for
nonfinite/size/coverage/invalid/frame faults, STALE for inputs older than `obs_timeout_s` or never received).

Start/stop: a managed (lifecycle) node. With `autostart` (default true) it configures (loads and verifies the
bundle, creates its topics) and activates (starts ticking) by itself, and exits with status 1 and the reason
logged if configuration fails (bad bundle hash, wrong dimensions, missing bundle, invalid parameter). With
`autostart:=false` it waits in `unconfigured` for a lifecycle manager (lifecycle_msgs/srv/ChangeState on
`~/change_state`: configure, activate, deactivate, cleanup, shutdown). Deactivating stops the ticks after one
last stop command (zero velocity / zero effort); so does SIGINT/SIGTERM. std_srvs is not among the pip-installed
ROS 2 wheels, hence lifecycle_msgs rather than an `~/enable` SetBool service.

Staleness uses the node clock (ROS time: sim time with use_sim_time:=true) at message receipt. The goal is a
set-point, not a sensor: it never goes stale once received, but no goal yet is "stale:goal_pose".
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, Twist, TwistStamped
from lifecycle_msgs.msg import State
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState, LaserScan
from std_msgs.msg import Float32, Float32MultiArray, Float64MultiArray, String
from visualization_msgs.msg import MarkerArray

from alam_control.runtime import (
    FALLBACKS,
    POLICY,
    BundleError,
    Controller,
    MonitorConfig,
    load_bundle,
    make_fallback,
    yaw_from_quaternion,
)
from alam_control.runtime.bundle import threshold_bounds
from alam_ros import common
from alam_ros.common import ConfigError
from alam_ros.markers import risk_markers
from alam_ros.recorder import command_message, float32_message, string_message

NODE_NAME = "alam_policy_node"
TICK_ON = ("timer", "scan", "joint_states")
STAMP_SOURCES = ("now", "scan")
# Parameters that may change while running (validated and applied at once); all others are read-only.
LIVE = ("risk_high", "risk_low", "engage_ticks", "release_dwell_s", "obs_timeout_s", "max_invalid_beam_fraction")
# The parameters that make up the MonitorConfig.
MONITOR_PARAMETERS = ("risk_high", "risk_low", "engage_ticks", "release_dwell_s")
# Diagnostic level per fault kind ("<kind>:<source>").
_ERROR_KINDS = ("nonfinite", "size", "coverage", "invalid", "frame")


def fault_level(fault: str | None, mode: str) -> bytes:
    """DiagnosticStatus level for this tick: STALE for stale inputs, ERROR for bad inputs, WARN in FALLBACK."""
    if fault is not None:
        kind = fault.split(":", 1)[0]
        if kind == "stale":
            return DiagnosticStatus.STALE
        return DiagnosticStatus.ERROR if kind in _ERROR_KINDS else DiagnosticStatus.WARN
    return DiagnosticStatus.OK if mode == POLICY else DiagnosticStatus.WARN


class PolicyNode(LifecycleNode):
    """The policy node; see the module docstring."""

    def __init__(self, **kwargs: Any):
        super().__init__(NODE_NAME, **kwargs)
        self._declare_parameters()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.bundle = None
        self._timer = None
        self._active = False
        self._subs: list[Any] = []
        self._pubs: list[Any] = []

    # ----------------------------------------------------------------------------------------------- parameters

    def _declare_parameters(self) -> None:
        d = common.declare
        d(self, "bundle_dir", "", "Export bundle directory (policy.onnx + manifest.json) from `alam export`.")
        d(
            self,
            "control_rate_hz",
            0.0,
            "Control ticks per second; 0 = the bundle's control period. With tick_on other than timer: the expected "
            "input rate, for the watchdog that keeps the fallback going when that input goes silent.",
            range_=(0.0, 5000.0),
        )
        d(
            self,
            "tick_on",
            "timer",
            "What triggers a tick: a timer at control_rate_hz, or each new message of an input (scan for diff-drive, "
            "joint_states for joint robots), for the least latency.",
            choices=TICK_ON,
        )
        d(
            self,
            "risk_high",
            Parameter.Type.DOUBLE,
            "Risk above which the monitor counts towards FALLBACK. Default: the bundle's calibrated value; "
            "required if the bundle has none.",
            read_only=False,
        )
        d(
            self,
            "risk_low",
            Parameter.Type.DOUBLE,
            "Risk below which the monitor counts towards POLICY (<= risk_high). Default: the bundle's calibrated "
            "value; required if the bundle has none.",
            read_only=False,
        )
        d(
            self,
            "engage_ticks",
            3,
            "Consecutive ticks above risk_high before FALLBACK.",
            read_only=False,
            range_=(1, 1000),
        )
        d(
            self,
            "release_dwell_s",
            1.0,
            "Seconds of risk below risk_low without a fault before POLICY again.",
            read_only=False,
            range_=(0.0, 3600.0),
        )
        d(
            self,
            "obs_timeout_s",
            0.5,
            "An input older than this (node clock) is stale: immediate FALLBACK.",
            read_only=False,
            range_=(0.001, 3600.0),
        )
        d(self, "fallback", "stop", "Fallback controller.", choices=FALLBACKS)
        d(
            self,
            "allow_unsafe_parameters",
            False,
            "Lift the safety bounds on risk_high / risk_low (the bundle's calibrated risk range, and [0, lambda_max] "
            "for lambda) and on obs_timeout_s (max(0.5 s, 5 control periods)), at start and at run time. For "
            "benchmarks and experiments, never on a robot.",
        )
        d(
            self,
            "max_invalid_beam_fraction",
            0.5,
            "Largest fraction of NaN (invalid) beams tolerated in one trained sector before the scan is a fault.",
            read_only=False,
            range_=(0.0, 1.0),
        )
        d(self, "joint_states_topic", "joint_states", "Joint interface input (sensor_msgs/JointState).")
        d(self, "commands_topic", "commands", "Joint interface output (std_msgs/Float64MultiArray).")
        d(self, "odom_topic", "odom", "Diff-drive input (nav_msgs/Odometry).")
        d(self, "scan_topic", "scan", "Diff-drive input (sensor_msgs/LaserScan).")
        d(self, "goal_topic", "goal_pose", "Diff-drive goal (geometry_msgs/PoseStamped, in the odometry frame).")
        d(self, "cmd_vel_topic", "cmd_vel", "Diff-drive output (geometry_msgs/Twist or TwistStamped).")
        d(self, "cmd_vel_stamped", False, "Publish geometry_msgs/TwistStamped instead of Twist on cmd_vel.")
        d(
            self,
            "cmd_vel_stamp_source",
            "now",
            "TwistStamped header.stamp: the node clock when published, or the stamp of the newest scan the command "
            "was computed from (traces latency end to end).",
            choices=STAMP_SOURCES,
        )
        d(self, "base_frame", "base_link", "frame_id of TwistStamped commands.")
        d(self, "diagnostics_period_s", 1.0, "Period of /diagnostics (also sent on every change).", range_=(0.01, 60.0))
        d(self, "publish_observation", False, "Also publish the observation vector on ~/observation (debugging).")
        d(self, "autostart", True, "Configure and activate at start (else wait for a lifecycle manager).")
        d(
            self,
            "markers_period_s",
            0.5,
            "Period of ~/markers (visualization_msgs/MarkerArray for RViz / Foxglove: the robot's footprint coloured "
            "by risk between risk_low and risk_high, the mode as text, the goal), off the control tick; 0: off.",
            range_=(0.0, 60.0),
        )
        d(
            self,
            "record",
            "",
            "Write the run to this MCAP file (inputs, command, ~/risk, ~/mode, /diagnostics; ROS 2 schemas, opens in "
            "Foxglove / PlotJuggler, plays with `ros2 bag play`); empty: off.",
        )
        d(
            self,
            "executor",
            "single_threaded",
            "rclpy executor: single_threaded, or events (rclpy.experimental.EventsExecutor).",
            choices=("single_threaded", "events"),
        )

    def _monitor_config(self, overrides: dict[str, Any] | None = None) -> MonitorConfig:
        """MonitorConfig from the parameters (plus pending `overrides`), defaults from the manifest
        (`MonitorConfig.from_manifest`: the one place for that rule).

        Raises:
            ConfigError: Missing or inconsistent thresholds, naming the parameter.
        """
        values = {name: common.get(self, name) for name in MONITOR_PARAMETERS}
        values.update({k: v for k, v in (overrides or {}).items() if k in MONITOR_PARAMETERS})
        try:
            config = MonitorConfig.from_manifest(self.bundle.manifest, values)
        except ValueError as err:
            raise ConfigError(f"parameter {err} (bundle {self.bundle.path})") from None
        bounds = threshold_bounds(self.bundle.manifest)
        if bounds is not None and not common.get(self, "allow_unsafe_parameters"):
            for name in ("risk_high", "risk_low"):
                value = getattr(config, name)
                if not bounds[0] <= value <= bounds[1]:
                    raise ConfigError(
                        f"parameter {name} {value} is outside {bounds[2]} of bundle {self.bundle.path}: the monitor "
                        "would never (or always) engage (allow_unsafe_parameters:=true at start lifts this)"
                    )
        return config

    def _obs_timeout_limit(self) -> float:
        """The largest obs_timeout_s allowed without allow_unsafe_parameters: max(0.5 s, 5 control periods)."""
        if common.get(self, "allow_unsafe_parameters"):
            return math.inf
        return max(0.5, 5.0 * float(self.bundle.manifest["control_period_s"]))

    def _check_obs_timeout(self, value: float) -> float:
        limit = self._obs_timeout_limit()
        if value > limit:
            raise ConfigError(
                f"parameter obs_timeout_s {value} is above {limit:g} s (max(0.5 s, 5 control periods)): stale inputs "
                "would drive the robot that long (allow_unsafe_parameters:=true at start lifts this)"
            )
        return value

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Validates live changes (cross-parameter too, and the safety bounds) and applies them to a configured node.

        Each accepted change is logged at WARN and appears on /diagnostics (parameter_changes, last_parameter_change):
        whoever changes a safety parameter from another process, the operator sees it.
        """
        changes = {p.name: p.value for p in params if p.name in LIVE}
        if not changes or self.bundle is None:
            return SetParametersResult(successful=True)
        try:
            config = self._monitor_config(changes)
            if "obs_timeout_s" in changes:
                self._check_obs_timeout(float(changes["obs_timeout_s"]))
        except ConfigError as err:
            self.get_logger().warning(f"refused a parameter change {changes}: {err}")
            return SetParametersResult(successful=False, reason=str(err))
        controller = self.controller
        controller.monitor.config = config
        if "obs_timeout_s" in changes:
            self._obs_timeout = controller.inputs.obs_timeout_s = float(changes["obs_timeout_s"])
        if "max_invalid_beam_fraction" in changes:
            controller.inputs.max_invalid_beam_fraction = float(changes["max_invalid_beam_fraction"])
        self._parameter_changes += 1
        self._last_parameter_change = ", ".join(f"{k}={v}" for k, v in changes.items())
        self._last_diag = -math.inf  # publish diagnostics at the next tick
        self.get_logger().warning(f"safety parameters changed at run time: {self._last_parameter_change}")
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------------------------------------ lifecycle

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except (BundleError, ConfigError) as err:
            self.get_logger().error(f"configuration failed: {err}")
            self._teardown()
            return TransitionCallbackReturn.FAILURE
        except Exception as err:  # noqa: BLE001  (a lifecycle callback must not raise; report what happened)
            self.get_logger().error(f"configuration failed: {type(err).__name__}: {err}")
            self._teardown()
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.controller.reset(start_in_fallback=True)
        self._last_tick = None
        self._active = True
        self._timer = self.create_timer(self._period, self._on_timer)
        if self._markers_pub is not None:
            self._markers_timer = self.create_timer(self._markers_period, self._publish_markers)
        self.get_logger().info(
            f"active: {self.manifest['task']} at {1.0 / self._period:.1f} Hz (tick_on {self._tick_on}), "
            f"{self.controller.monitor.config}, fallback {self._fallback_name}"
        )
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._active:
            self.stop_robot("inactive")
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._active:
            self.stop_robot("shutdown")
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def finalized(self) -> bool:
        """True once the lifecycle `shutdown` transition was taken (the process then exits)."""
        return self._state_machine.current_state[0] == State.PRIMARY_STATE_FINALIZED

    def stop_robot(self, reason: str) -> None:
        """Stops ticking and publishes one zero command, mode FALLBACK:<reason> and a diagnostic."""
        self._active = False
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        if getattr(self, "_markers_timer", None) is not None:
            self.destroy_timer(self._markers_timer)
            self._markers_timer = None
        if self.bundle is None:
            return
        self._publish_command(np.clip(np.zeros(self._act_dim), self._low, self._high), None)
        self._mode_pub.publish(String(data=f"FALLBACK:{reason}"))
        self._publish_diagnostics(DiagnosticStatus.WARN, f"FALLBACK:{reason}", f"node {reason}: stop command sent")

    def _configure(self) -> None:
        bundle_dir = common.get(self, "bundle_dir")
        if not bundle_dir:
            raise ConfigError("parameter bundle_dir is required (an `alam export` bundle directory)")
        self.bundle = load_bundle(Path(bundle_dir).expanduser())
        manifest = self.manifest = self.bundle.manifest
        self._interface = manifest["ros_interface"]
        self._act_dim = self.bundle.act_dim
        self._low, self._high = self.bundle.action_low, self.bundle.action_high
        rate = float(common.get(self, "control_rate_hz"))
        if rate <= 0.0:
            rate = 1.0 / float(manifest["control_period_s"])
        self._period = 1.0 / rate
        self._obs_timeout = self._check_obs_timeout(float(common.get(self, "obs_timeout_s")))
        self._tick_on = common.get(self, "tick_on")
        wanted = {"diff_drive": "scan", "joint": "joint_states"}[self._interface]
        if self._tick_on not in ("timer", wanted):
            raise ConfigError(f"parameter tick_on: {self._tick_on!r} does not fit a {self._interface} robot")
        self._fallback_name = common.get(self, "fallback")
        topics = {name: common.get(self, f"{name}_topic") for name in ("odom", "scan", "goal", "joint_states")}
        topics["goal_pose"] = topics.pop("goal")
        try:
            fallback = make_fallback(self._fallback_name, manifest)
        except (ValueError, KeyError) as err:
            raise ConfigError(f"parameter fallback: {err}") from None
        try:
            self.controller = Controller(
                self.bundle,
                self._monitor_config(),
                fallback,
                start_in_fallback=True,
                obs_timeout_s=self._obs_timeout,
                max_invalid_beam_fraction=float(common.get(self, "max_invalid_beam_fraction")),
                topics=topics,
            )
        except (ValueError, KeyError) as err:
            raise BundleError(f"{self.bundle.path}: manifest deploy spec: {err}") from None
        self._inputs = self.controller.inputs
        self._risk_signal = self.controller.risk_signal
        self._stamped = bool(common.get(self, "cmd_vel_stamped"))
        self._stamp_from_scan = common.get(self, "cmd_vel_stamp_source") == "scan"
        self._base_frame = common.get(self, "base_frame")
        self._diag_period = float(common.get(self, "diagnostics_period_s"))
        self._publish_obs = bool(common.get(self, "publish_observation"))

        # Topics.
        if self._interface == "joint":
            self._subs.append(
                self.create_subscription(JointState, topics["joint_states"], self._on_joint_states, common.SENSOR_QOS)
            )
            self._cmd_pub = self.create_publisher(
                Float64MultiArray, common.get(self, "commands_topic"), common.COMMAND_QOS
            )
        else:
            self._subs += [
                self.create_subscription(Odometry, topics["odom"], self._on_odom, common.SENSOR_QOS),
                self.create_subscription(LaserScan, topics["scan"], self._on_scan, common.SENSOR_QOS),
                self.create_subscription(PoseStamped, topics["goal_pose"], self._on_goal, common.GOAL_QOS),
            ]
            kind = TwistStamped if self._stamped else Twist
            self._cmd_pub = self.create_publisher(kind, common.get(self, "cmd_vel_topic"), common.COMMAND_QOS)
        self._risk_pub = self.create_publisher(Float32, "~/risk", common.STATUS_QOS)
        self._mode_pub = self.create_publisher(String, "~/mode", common.STATUS_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", common.STATUS_QOS)
        self._pubs += [self._cmd_pub, self._risk_pub, self._mode_pub, self._diag_pub]
        self._markers_pub = None
        markers_period = float(common.get(self, "markers_period_s"))
        if markers_period > 0.0:
            self._markers_pub = self.create_publisher(MarkerArray, "~/markers", common.STATUS_QOS)
            self._pubs.append(self._markers_pub)
            self._markers_period = markers_period
        if self._publish_obs:
            self._obs_pub = self.create_publisher(Float32MultiArray, "~/observation", common.STATUS_QOS)
            self._pubs.append(self._obs_pub)

        self._parameter_changes = 0
        self._last_parameter_change = ""
        # Tick state. Messages reused every tick (a publish copies them out).
        self._risk_msg, self._mode_msg, self._twist = Float32(), String(), Twist()
        self._twist_stamped = TwistStamped()
        self._twist_stamped.header.frame_id = self._base_frame
        self._last_label = None
        self._last_level = None
        self._last_diag = -math.inf
        self._last_tick = None
        self._ticks = 0
        self._missed = 0
        self._overruns = 0
        self._compute: list[float] = []
        self._last_compute_ms = math.nan
        self._scan_stamp = None
        record = common.get(self, "record")
        self._recorder = None
        if record:
            from alam_ros.recorder import McapRecorder

            try:
                self._recorder = McapRecorder(Path(record).expanduser())
            except OSError as err:
                raise ConfigError(f"parameter record: cannot write {record}: {err.strerror or err}") from None
        self._topic_names = {
            "odom": self.resolve_topic_name(topics["odom"]),
            "scan": self.resolve_topic_name(topics["scan"]),
            "goal": self.resolve_topic_name(topics["goal_pose"]),
            "joint_states": self.resolve_topic_name(topics["joint_states"]),
            "cmd": self._cmd_pub.topic_name,
            "risk": self._risk_pub.topic_name,
            "mode": self._mode_pub.topic_name,
            "diagnostics": self._diag_pub.topic_name,
        }
        self.get_logger().info(
            f"loaded bundle {self.bundle.path} ({manifest['task']}, {self._interface}, obs {self.bundle.obs_dim}, "
            f"act {self._act_dim}, risk signal {self._risk_signal}, config {manifest.get('config_hash', '?')})"
        )

    def _teardown(self) -> None:
        self._active = False
        if getattr(self, "_markers_timer", None) is not None:
            self.destroy_timer(self._markers_timer)
            self._markers_timer = None
        if getattr(self, "_recorder", None) is not None:
            self._recorder.close()
            self._recorder = None
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        for sub in self._subs:
            self.destroy_subscription(sub)
        for pub in self._pubs:
            self.destroy_publisher(pub)
        self._subs, self._pubs = [], []
        self.bundle = None

    # --------------------------------------------------------------------------------------------------- inputs

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _record(self, key: str, msg: Any, now: float) -> None:
        if self._recorder is not None:
            self._recorder.record(self._topic_names[key], msg, int(now * 1e9))

    def _on_joint_states(self, msg: JointState) -> None:
        now = self._now()
        self._record("joint_states", msg, now)
        self._inputs.joint_states(now, msg.name, msg.position, msg.velocity)
        if self._active and self._tick_on == "joint_states":
            self._tick(now)

    def _on_odom(self, msg: Odometry) -> None:
        p, q, t = msg.pose.pose.position, msg.pose.pose.orientation, msg.twist.twist
        pose = (p.x, p.y, yaw_from_quaternion(q.x, q.y, q.z, q.w))
        now = self._now()
        self._record("odom", msg, now)
        self._inputs.odom(now, pose, (t.linear.x, t.angular.z), msg.header.frame_id)

    def _on_scan(self, msg: LaserScan) -> None:
        now = self._now()
        self._record("scan", msg, now)
        self._inputs.scan(now, msg.ranges, msg.angle_min, msg.angle_increment)
        self._scan_stamp = msg.header.stamp
        if self._active and self._tick_on == "scan":
            self._tick(now)

    def _on_goal(self, msg: PoseStamped) -> None:
        now = self._now()
        self._record("goal", msg, now)
        self._inputs.goal(now, (msg.pose.position.x, msg.pose.position.y), msg.header.frame_id)

    def _on_timer(self) -> None:
        if not self._active:
            return
        now = self._now()
        if self._tick_on != "timer":
            # Watchdog: ticks only while the triggering input is silent, so the fallback keeps going.
            if self._last_tick is not None and now - self._last_tick < 1.5 * self._period:
                return
            self._missed += 1
        elif self._last_tick is not None:
            late = (now - self._last_tick) / self._period
            if late > 1.5:
                self._missed += int(round(late)) - 1
        self._tick(now)

    # ----------------------------------------------------------------------------------------------------- tick

    def _tick(self, now: float) -> None:
        """One control tick at node-clock time `now`: the Controller decides; this publishes the command, ~/risk,
        ~/mode and (on a change or every diagnostics_period_s) /diagnostics."""
        start = time.perf_counter()
        self._last_tick = now
        self._ticks += 1
        tick = self.controller.tick(now)
        self._publish_command(tick.command, self._scan_stamp if self._stamp_from_scan else None)
        self._risk_msg.data = float(self.controller.risk)  # never NaN: the last finite risk while the policy cannot run
        self._risk_pub.publish(self._risk_msg)
        label = tick.label
        self._mode_msg.data = label
        self._mode_pub.publish(self._mode_msg)
        if self._publish_obs and tick.obs is not None:
            self._obs_pub.publish(Float32MultiArray(data=tick.obs.tolist()))
        if self._recorder is not None:  # the messages above are reused: the writer thread builds its own copies
            t_ns = int(now * 1e9)
            cmd = self._cmd_pub.msg_type
            stamp = self._twist_stamped.header.stamp if self._stamped else None
            self._recorder.record_later(self._topic_names["cmd"], command_message,
                                        (cmd, tick.command.tolist(), stamp, self._base_frame), t_ns)  # fmt: skip
            self._recorder.record_later(self._topic_names["risk"], float32_message, (self._risk_msg.data,), t_ns)
            self._recorder.record_later(self._topic_names["mode"], string_message, (label,), t_ns)
            self._recorder.notify()
        elapsed = time.perf_counter() - start
        self._last_compute_ms = elapsed * 1e3
        self._compute.append(self._last_compute_ms)
        if elapsed > self._period:
            self._overruns += 1
        fault, mode = tick.fault, tick.mode
        level = fault_level(fault, mode)
        if label != self._last_label or level != self._last_level or now - self._last_diag >= self._diag_period:
            # Formatted only when published: not every tick.
            if fault is not None:
                detail = tick.detail if tick.detail.startswith(fault) else f"{fault}: {tick.detail}"
            elif mode != POLICY:
                detail = f"waiting for {self.controller.monitor.config.release_dwell_s} s of risk < risk_low"
            else:
                detail = "policy in control"
            if label != self._last_label:
                # rclpy's logger wants one severity per call site, hence two calls.
                if mode == POLICY:
                    self.get_logger().info(f"mode {label} ({detail})")
                else:
                    self.get_logger().warning(f"mode {label} ({detail})")
            self._publish_diagnostics(level, label, detail)
            self._last_label, self._last_level, self._last_diag = label, level, now

    def _publish_markers(self) -> None:
        """~/markers (`markers.risk_markers`), in the odometry frame, from the controller's latest state."""
        if not self._active:
            return
        controller, config = self.controller, self.controller.monitor.config
        inputs = controller.inputs
        mobile = self._interface == "diff_drive"
        array = risk_markers(
            inputs.pose if mobile else None,
            inputs.goal_xy if mobile else None,
            controller.risk,
            (config.risk_low, config.risk_high),
            self._last_label or "-",
            (inputs.odom_frame if mobile else "") or "odom",
            self.get_clock().now().to_msg(),
        )
        self._markers_pub.publish(array)

    def _publish_command(self, command: np.ndarray, stamp: Any) -> None:
        if self._interface == "joint":
            self._cmd_pub.publish(Float64MultiArray(data=command.tolist()))
            return
        if not self._stamped:
            twist = self._twist
            twist.linear.x, twist.angular.z = float(command[0]), float(command[1])
            self._cmd_pub.publish(twist)
            return
        msg = self._twist_stamped  # reused: building a nested message costs ~20 us a tick
        msg.header.stamp = stamp if stamp is not None else self.get_clock().now().to_msg()
        msg.twist.linear.x, msg.twist.angular.z = float(command[0]), float(command[1])
        self._cmd_pub.publish(msg)

    def _publish_diagnostics(self, level: bytes, label: str, message: str) -> None:
        window = len(self._compute)
        compute = np.asarray(self._compute) if self._compute else np.full(1, math.nan)
        self._compute = []
        values = {
            "mode": label,
            "lambda": f"{self.controller.lam:.6g}",
            "cost_q": f"{self.controller.cost_q:.6g}",
            "risk_signal": self._risk_signal,
            "risk": f"{self.controller.risk:.6g}",
            "risk_high": f"{self.controller.monitor.config.risk_high:.6g}",
            "risk_low": f"{self.controller.monitor.config.risk_low:.6g}",
            "tick_compute_ms": f"{self._last_compute_ms:.4f}",
            "tick_compute_ms_mean": f"{np.mean(compute):.4f}",
            "tick_compute_ms_p99": f"{np.percentile(compute, 99):.4f}",
            "tick_compute_ms_max": f"{np.max(compute):.4f}",
            "window_ticks": str(window),
            "ticks": str(self._ticks),
            "missed_ticks": str(self._missed),
            "overruns": str(self._overruns),
            "switches": str(self.controller.monitor.switches),
            "parameter_changes": str(self._parameter_changes),
            "last_parameter_change": self._last_parameter_change,
            "allow_unsafe_parameters": str(bool(common.get(self, "allow_unsafe_parameters"))).lower(),
            "control_rate_hz": f"{1.0 / self._period:.6g}",
            "tick_on": self._tick_on,
            "fallback": self._fallback_name,
            "bundle": str(self.bundle.path),
            "task": str(self.manifest["task"]),
            "config_hash": str(self.manifest.get("config_hash", "")),
        }
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_fully_qualified_name()}: risk monitor",
            message=message,
            hardware_id=str(self.manifest["task"]),
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)
        if getattr(self, "_recorder", None) is not None:
            self._recorder.record(self._topic_names["diagnostics"], array, self.get_clock().now().nanoseconds)


def _run(node: PolicyNode, spinner: common.Spinner) -> int:
    if common.get(node, "autostart"):
        if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return 1  # the reason was logged by on_configure
        node.trigger_activate()
    spinner.spin(node, common.get(node, "executor"), until=node.finalized)
    if node._active:
        node.stop_robot("shutdown")  # a last stop command: the robot must not keep the policy's last one
        time.sleep(0.1)  # let DDS deliver it before the process goes
    if not node.finalized():
        node.trigger_shutdown()
    return 0


def main(args: list[str] | None = None) -> int:
    """Console entry point `alam_policy_node`: returns 1 if the node cannot be configured."""
    return common.run_node(NODE_NAME, PolicyNode, _run, args)


if __name__ == "__main__":
    sys.exit(main())
