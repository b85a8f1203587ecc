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

This module is the ROS wiring (lifecycle, topics, the tick); the parameters' declarations and checks are in
`policy_parameters`, what /diagnostics reports and when in `policy_diagnostics`, the recording in `recorder`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
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
    POLICY,
    BundleError,
    Controller,
    load_bundle,
    make_fallback,
    yaw_from_quaternion,
)
from alam_ros import common
from alam_ros import policy_parameters as parameters
from alam_ros.common import ConfigError
from alam_ros.markers import controller_markers
from alam_ros.policy_diagnostics import Diagnostics, describe, fault_level
from alam_ros.policy_parameters import LIVE
from alam_ros.recorder import NodeRecording

NODE_NAME = "alam_policy_node"


class PolicyNode(LifecycleNode):
    """The policy node; see the module docstring."""

    def __init__(self, **kwargs: Any):
        super().__init__(NODE_NAME, **kwargs)
        parameters.declare(self)  # policy_parameters: names, defaults, descriptors
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.bundle = None
        self._timer = None
        self._active = False
        self._subs: list[Any] = []
        self._pubs: list[Any] = []

    # ----------------------------------------------------------------------------------------------- parameters

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Validates live changes (cross-parameter too, and the safety bounds) and applies them to a configured node.

        Each accepted change is logged at WARN and appears on /diagnostics (parameter_changes, last_parameter_change):
        whoever changes a safety parameter from another process, the operator sees it.
        """
        changes = {p.name: p.value for p in params if p.name in LIVE}
        if not changes or self.bundle is None:
            return SetParametersResult(successful=True)
        try:
            config = parameters.check_live_change(self, self.bundle, changes)
        except ConfigError as err:
            self.get_logger().warning(f"refused a parameter change {changes}: {err}")
            return SetParametersResult(successful=False, reason=str(err))
        controller = self.controller
        controller.monitor.config = config
        if "obs_timeout_s" in changes:
            controller.inputs.obs_timeout_s = float(changes["obs_timeout_s"])
        if "max_invalid_beam_fraction" in changes:
            controller.inputs.max_invalid_beam_fraction = float(changes["max_invalid_beam_fraction"])
        text = self._diag.parameters_changed(changes)  # on /diagnostics at the next tick
        self.get_logger().warning(f"safety parameters changed at run time: {text}")
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
        s = self._settings
        self._timer = self.create_timer(s.period_s, self._on_timer)
        if self._markers_pub is not None:
            self._markers_timer = self.create_timer(s.markers_period_s, self._publish_markers)
        self.get_logger().info(
            f"active: {self.manifest['task']} at {1.0 / s.period_s:.1f} Hz (tick_on {s.tick_on}), "
            f"{self.controller.monitor.config}, fallback {s.fallback}"
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
        s = self._settings = parameters.read_settings(self, self.bundle)
        try:
            fallback = make_fallback(s.fallback, manifest)
        except (ValueError, KeyError) as err:
            raise ConfigError(f"parameter fallback: {err}") from None
        try:
            self.controller = Controller(
                self.bundle,
                parameters.monitor_config(self, self.bundle),
                fallback,
                start_in_fallback=True,
                obs_timeout_s=s.obs_timeout_s,
                max_invalid_beam_fraction=s.max_invalid_beam_fraction,
                topics=s.inputs,
            )
        except (ValueError, KeyError) as err:
            raise BundleError(f"{self.bundle.path}: manifest deploy spec: {err}") from None
        if self.controller.inputs is None:
            raise BundleError(f"{self.bundle.path}: manifest deploy spec: {self.controller.inputs_error}")
        self._inputs = self.controller.inputs

        # Topics.
        if self._interface == "joint":
            self._subs.append(
                self.create_subscription(JointState, s.inputs["joint_states"], self._on_joint_states, common.SENSOR_QOS)
            )
            self._cmd_pub = self.create_publisher(Float64MultiArray, s.command_topic, common.COMMAND_QOS)
        else:
            self._subs += [
                self.create_subscription(Odometry, s.inputs["odom"], self._on_odom, common.SENSOR_QOS),
                self.create_subscription(LaserScan, s.inputs["scan"], self._on_scan, common.SENSOR_QOS),
                self.create_subscription(PoseStamped, s.inputs["goal_pose"], self._on_goal, common.GOAL_QOS),
            ]
            kind = TwistStamped if s.cmd_vel_stamped else Twist
            self._cmd_pub = self.create_publisher(kind, s.command_topic, common.COMMAND_QOS)
        self._risk_pub = self.create_publisher(Float32, "~/risk", common.STATUS_QOS)
        self._mode_pub = self.create_publisher(String, "~/mode", common.STATUS_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", common.STATUS_QOS)
        self._pubs += [self._cmd_pub, self._risk_pub, self._mode_pub, self._diag_pub]
        self._markers_pub = None
        if s.markers_period_s > 0.0:
            self._markers_pub = self.create_publisher(MarkerArray, "~/markers", common.STATUS_QOS)
            self._pubs.append(self._markers_pub)
        if s.publish_observation:
            self._obs_pub = self.create_publisher(Float32MultiArray, "~/observation", common.STATUS_QOS)
            self._pubs.append(self._obs_pub)

        self._diag = Diagnostics(f"{self.get_fully_qualified_name()}: risk monitor", s, self.bundle)
        # Tick state. Messages reused every tick (a publish copies them out).
        self._risk_msg, self._mode_msg, self._twist = Float32(), String(), Twist()
        self._twist_stamped = TwistStamped()
        self._twist_stamped.header.frame_id = s.base_frame
        self._last_tick = None
        self._scan_stamp = None
        self._recorder = None
        if s.record:
            names = {key: self.resolve_topic_name(topic) for key, topic in s.inputs.items()}
            names.update(cmd=self._cmd_pub.topic_name, risk=self._risk_pub.topic_name,
                         mode=self._mode_pub.topic_name, diagnostics=self._diag_pub.topic_name)  # fmt: skip
            try:
                self._recorder = NodeRecording(Path(s.record).expanduser(), names)
            except OSError as err:
                raise ConfigError(f"parameter record: cannot write {s.record}: {err.strerror or err}") from None
        self.get_logger().info(
            f"loaded bundle {self.bundle.path} ({manifest['task']}, {self._interface}, obs {self.bundle.obs_dim}, act "
            f"{self._act_dim}, risk signal {self.controller.risk_signal}, config {manifest.get('config_hash', '?')})"
        )
        m = self.controller.monitor.config  # what the operator gets: parameters, else the bundle's calibration
        self.get_logger().info(
            f"monitor: FALLBACK above {m.risk_high:.4g} for {m.engage_ticks} tick(s), POLICY again after "
            f"{m.release_dwell_s:g} s below {m.risk_low:.4g}"
            + (
                f"; progress watch: {m.recover_s:g} s of recovery after {m.stall_s:g} s without progress"
                if self.controller.watch is not None and m.stall_s > 0
                else ""
            )
        )
        for caveat in self._diag.caveats:  # the bundle loads, but its monitor may not protect the robot
            self.get_logger().warning(f"bundle calibration: {caveat}")

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
            self._recorder.input(key, msg, now)

    def _on_joint_states(self, msg: JointState) -> None:
        now = self._now()
        self._record("joint_states", msg, now)
        self._inputs.joint_states(now, msg.name, msg.position, msg.velocity)
        if self._active and self._settings.tick_on == "joint_states":
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
        if self._active and self._settings.tick_on == "scan":
            self._tick(now)

    def _on_goal(self, msg: PoseStamped) -> None:
        now = self._now()
        self._record("goal_pose", msg, now)
        self._inputs.goal(now, (msg.pose.position.x, msg.pose.position.y), msg.header.frame_id)

    def _on_timer(self) -> None:
        if not self._active:
            return
        now, period, stats = self._now(), self._settings.period_s, self._diag.stats
        if self._settings.tick_on != "timer":
            # Watchdog: ticks only while the triggering input is silent, so the fallback keeps going.
            if self._last_tick is not None and now - self._last_tick < 1.5 * period:
                return
            stats.missed += 1
        elif self._last_tick is not None:
            late = (now - self._last_tick) / period
            if late > 1.5:
                stats.missed += int(round(late)) - 1
        self._tick(now)

    # ----------------------------------------------------------------------------------------------------- tick

    def _tick(self, now: float) -> None:
        """One control tick at node-clock time `now`: the Controller decides; this publishes the command, ~/risk,
        ~/mode and (on a change or every diagnostics_period_s) /diagnostics."""
        start, s, diag = time.perf_counter(), self._settings, self._diag
        self._last_tick = now
        diag.stats.ticks += 1
        tick = self.controller.tick(now)
        self._publish_command(tick.command, self._scan_stamp if s.stamp_from_scan else None)
        self._risk_msg.data = float(self.controller.risk)  # never NaN: the last finite risk while the policy cannot run
        self._risk_pub.publish(self._risk_msg)
        label = tick.label
        self._mode_msg.data = label
        self._mode_pub.publish(self._mode_msg)
        if s.publish_observation and tick.obs is not None:
            self._obs_pub.publish(Float32MultiArray(data=tick.obs.tolist()))
        if self._recorder is not None:  # the messages above are reused: the writer thread builds its own copies
            stamp = self._twist_stamped.header.stamp if s.cmd_vel_stamped else None
            command = (self._cmd_pub.msg_type, tick.command.tolist(), stamp, s.base_frame)
            self._recorder.tick(now, command, self._risk_msg.data, label)
        diag.stats.computed(time.perf_counter() - start, s.period_s)
        level = fault_level(tick.fault, tick.mode)
        if diag.due(label, level, now):
            detail = describe(tick, self.controller.monitor.config.release_dwell_s)  # formatted only when published
            if label != diag.last_label:
                # rclpy's logger wants one severity per call site, hence two calls.
                if tick.mode == POLICY:
                    self.get_logger().info(f"mode {label} ({detail})")
                else:
                    self.get_logger().warning(f"mode {label} ({detail})")
            self._publish_diagnostics(level, label, detail)
            diag.published(label, level, now)

    def _publish_markers(self) -> None:
        """~/markers (`markers.controller_markers`) from the controller's latest state."""
        if self._active:
            stamp = self.get_clock().now().to_msg()
            self._markers_pub.publish(controller_markers(self.controller, self._diag.last_label or "-", stamp))

    def _publish_command(self, command: np.ndarray, stamp: Any) -> None:
        if self._interface == "joint":
            self._cmd_pub.publish(Float64MultiArray(data=command.tolist()))
            return
        if not self._settings.cmd_vel_stamped:
            twist = self._twist
            twist.linear.x, twist.angular.z = float(command[0]), float(command[1])
            self._cmd_pub.publish(twist)
            return
        msg = self._twist_stamped  # reused: building a nested message costs ~20 us a tick
        msg.header.stamp = stamp if stamp is not None else self.get_clock().now().to_msg()
        msg.twist.linear.x, msg.twist.angular.z = float(command[0]), float(command[1])
        self._cmd_pub.publish(msg)

    def _publish_diagnostics(self, level: bytes, label: str, message: str) -> None:
        array = self._diag.array(level, label, message, self.controller, self.get_clock().now().to_msg())
        self._diag_pub.publish(array)
        if getattr(self, "_recorder", None) is not None:
            self._recorder.diagnostics(array, self.get_clock().now().nanoseconds)


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
