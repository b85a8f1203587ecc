"""alam_policy_node's parameters: their declarations (names, defaults, descriptors) and the checks that need the
bundle (risk thresholds within its calibrated range, obs_timeout_s within a few control periods).

The node (`alam_ros.policy_node`) declares them at construction, reads them into `Settings` when it configures,
and runs `check_live_change` on every run-time change before applying it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from rclpy.node import Node
from rclpy.parameter import Parameter

from alam_control.runtime import FALLBACKS, Bundle, MonitorConfig
from alam_control.runtime.bundle import thresholds_outside
from alam_ros import common
from alam_ros.common import ConfigError

TICK_ON = ("timer", "scan", "joint_states")
STAMP_SOURCES = ("now", "scan")
# Parameters that may change while running (validated and applied at once); all others are read-only.
# The parameters that make up the MonitorConfig (the progress watch's included).
MONITOR_PARAMETERS = ("risk_high", "risk_low", "engage_ticks", "release_dwell_s", "stall_s", "recover_s",
                      "goal_tolerance_m")  # fmt: skip
LIVE = (*MONITOR_PARAMETERS, "obs_timeout_s", "max_invalid_beam_fraction")


_MONITOR_DEFAULTS = {f.name: f.default for f in fields(MonitorConfig)}  # one place for the monitor's defaults


def declare(node: Node) -> None:
    """Declares every parameter of the policy node on `node` (DESIGN.md section 6, README "ROS 2").

    Raises:
        ConfigError: A value given at start (command line or YAML) of the wrong type, out of range or not one of
            the choices.
    """
    d = common.declare
    d(node, "bundle_dir", "", "Export bundle directory (policy.onnx + manifest.json) from `alam export`.")
    d(
        node,
        "control_rate_hz",
        0.0,
        "Control ticks per second; 0 = the bundle's control period. With tick_on other than timer: the expected "
        "input rate, for the watchdog that keeps the fallback going when that input goes silent.",
        range_=(0.0, 5000.0),
    )
    d(
        node,
        "tick_on",
        "timer",
        "What triggers a tick: a timer at control_rate_hz, or each new message of an input (scan for diff-drive, "
        "joint_states for joint robots), for the least latency.",
        choices=TICK_ON,
    )
    d(
        node,
        "risk_high",
        Parameter.Type.DOUBLE,
        "Risk above which the monitor counts towards FALLBACK. Default: the bundle's calibrated value; "
        "required if the bundle has none.",
        read_only=False,
    )
    d(
        node,
        "risk_low",
        Parameter.Type.DOUBLE,
        "Risk below which the monitor counts towards POLICY (<= risk_high). Default: the bundle's calibrated "
        "value; required if the bundle has none.",
        read_only=False,
    )
    d(
        node,
        "engage_ticks",
        _MONITOR_DEFAULTS["engage_ticks"],
        "Consecutive ticks above risk_high before FALLBACK.",
        read_only=False,
        range_=(1, 1000),
    )
    d(
        node,
        "release_dwell_s",
        Parameter.Type.DOUBLE,
        "Seconds of risk below risk_low without a fault before POLICY again. Default: the dwell `alam calibrate` "
        f"picked for the bundle, else {_MONITOR_DEFAULTS['release_dwell_s']}.",
        read_only=False,
        range_=(0.0, 3600.0),
    )
    d(
        node,
        "stall_s",
        _MONITOR_DEFAULTS["stall_s"],
        "Navigation bundles: seconds of POLICY driving with under 2 cm of travel and 0.2 rad of turn, farther than "
        "goal_tolerance_m from the goal, before the recovery drives (FALLBACK:stalled); 0 turns the watch off.",
        read_only=False,
        range_=(0.0, 3600.0),
    )
    d(
        node,
        "recover_s",
        _MONITOR_DEFAULTS["recover_s"],
        "Seconds the stall recovery (turn on the spot, away from the goal's side) drives before the policy again.",
        read_only=False,
        range_=(0.0, 3600.0),
    )
    d(
        node,
        "goal_tolerance_m",
        _MONITOR_DEFAULTS["goal_tolerance_m"],
        "Distance to the goal within which standing still is arrival, not a stall.",
        read_only=False,
        range_=(0.0, 1000.0),
    )
    d(
        node,
        "obs_timeout_s",
        0.5,
        "An input older than this (node clock) is stale: immediate FALLBACK.",
        read_only=False,
        range_=(0.001, 3600.0),
    )
    d(node, "fallback", "stop", "Fallback controller.", choices=FALLBACKS)
    d(
        node,
        "allow_unsafe_parameters",
        False,
        "Lift the safety bounds on risk_high / risk_low (the bundle's calibrated risk range, and [0, lambda_max] "
        "for lambda) and on obs_timeout_s (max(0.5 s, 5 control periods)), at start and at run time. For "
        "benchmarks and experiments, never on a robot.",
    )
    d(
        node,
        "max_invalid_beam_fraction",
        0.5,
        "Largest fraction of NaN (invalid) beams tolerated in one trained sector before the scan is a fault.",
        read_only=False,
        range_=(0.0, 1.0),
    )
    d(node, "joint_states_topic", "joint_states", "Joint interface input (sensor_msgs/JointState).")
    d(node, "commands_topic", "commands", "Joint interface output (std_msgs/Float64MultiArray).")
    d(node, "odom_topic", "odom", "Diff-drive input (nav_msgs/Odometry).")
    d(node, "scan_topic", "scan", "Diff-drive input (sensor_msgs/LaserScan).")
    d(node, "goal_topic", "goal_pose", "Diff-drive goal (geometry_msgs/PoseStamped, in the odometry frame).")
    d(node, "cmd_vel_topic", "cmd_vel", "Diff-drive output (geometry_msgs/Twist or TwistStamped).")
    d(node, "cmd_vel_stamped", False, "Publish geometry_msgs/TwistStamped instead of Twist on cmd_vel.")
    d(
        node,
        "cmd_vel_stamp_source",
        "now",
        "TwistStamped header.stamp: the node clock when published, or the stamp of the newest scan the command "
        "was computed from (traces latency end to end).",
        choices=STAMP_SOURCES,
    )
    d(node, "base_frame", "base_link", "frame_id of TwistStamped commands.")
    d(node, "diagnostics_period_s", 1.0, "Period of /diagnostics (also sent on every change).", range_=(0.01, 60.0))
    d(node, "publish_observation", False, "Also publish the observation vector on ~/observation (debugging).")
    d(node, "autostart", True, "Configure and activate at start (else wait for a lifecycle manager).")
    d(
        node,
        "markers_period_s",
        0.5,
        "Period of ~/markers (visualization_msgs/MarkerArray for RViz / Foxglove: the robot's footprint coloured "
        "by risk between risk_low and risk_high, the mode as text, the goal), off the control tick; 0: off.",
        range_=(0.0, 60.0),
    )
    d(
        node,
        "record",
        "",
        "Write the run to this MCAP file (inputs, command, ~/risk, ~/mode, /diagnostics; ROS 2 schemas, opens in "
        "Foxglove / PlotJuggler, plays with `ros2 bag play`); empty: off.",
    )
    d(
        node,
        "executor",
        "single_threaded",
        "rclpy executor: single_threaded, or events (rclpy.experimental.EventsExecutor).",
        choices=("single_threaded", "events"),
    )


@dataclass(frozen=True)
class Settings:
    """The parameters as read when the node configures, checked against the bundle. Of the live ones
    (`LIVE`), the start values: a run-time change goes to the controller."""

    period_s: float
    """Control period: 1 / control_rate_hz, or the bundle's control period."""
    tick_on: str
    """What triggers a tick (timer, scan or joint_states)."""
    obs_timeout_s: float
    """Age at which an input is stale (checked by :func:`check_obs_timeout`)."""
    max_invalid_beam_fraction: float
    """Invalid beams tolerated per trained sector."""
    fallback: str
    """Fallback controller name."""
    inputs: dict[str, str]
    """Input topic per input name (odom, scan, joint_states, goal_pose)."""
    command_topic: str
    """commands_topic (joint robot) or cmd_vel_topic (diff-drive)."""
    cmd_vel_stamped: bool
    """TwistStamped instead of Twist on cmd_vel."""
    stamp_from_scan: bool
    """TwistStamped stamp from the newest scan (cmd_vel_stamp_source scan) instead of the node clock."""
    base_frame: str
    """frame_id of TwistStamped commands."""
    diagnostics_period_s: float
    """Period of /diagnostics."""
    publish_observation: bool
    """Also publish ~/observation."""
    markers_period_s: float
    """Period of ~/markers; 0: off."""
    record: str
    """MCAP file to record to; empty: off."""
    allow_unsafe_parameters: bool
    """Safety bounds lifted (read-only)."""


def read_settings(node: Node, bundle: Bundle) -> Settings:
    """The node's parameters for `bundle`.

    Raises:
        ConfigError: obs_timeout_s above its safety bound, or a tick_on that does not fit the bundle's robot.
    """
    manifest = bundle.manifest
    interface = manifest["ros_interface"]
    rate = float(common.get(node, "control_rate_hz"))
    if rate <= 0.0:
        rate = 1.0 / float(manifest["control_period_s"])
    obs_timeout = check_obs_timeout(node, bundle, float(common.get(node, "obs_timeout_s")))
    tick_on = common.get(node, "tick_on")
    wanted = {"diff_drive": "scan", "joint": "joint_states"}[interface]
    if tick_on not in ("timer", wanted):
        raise ConfigError(f"parameter tick_on: {tick_on!r} does not fit a {interface} robot")
    inputs = {name: common.get(node, f"{name}_topic") for name in ("odom", "scan", "goal", "joint_states")}
    inputs["goal_pose"] = inputs.pop("goal")
    return Settings(
        period_s=1.0 / rate,
        tick_on=tick_on,
        obs_timeout_s=obs_timeout,
        max_invalid_beam_fraction=float(common.get(node, "max_invalid_beam_fraction")),
        fallback=common.get(node, "fallback"),
        inputs=inputs,
        command_topic=common.get(node, "commands_topic" if interface == "joint" else "cmd_vel_topic"),
        cmd_vel_stamped=bool(common.get(node, "cmd_vel_stamped")),
        stamp_from_scan=common.get(node, "cmd_vel_stamp_source") == "scan",
        base_frame=common.get(node, "base_frame"),
        diagnostics_period_s=float(common.get(node, "diagnostics_period_s")),
        publish_observation=bool(common.get(node, "publish_observation")),
        markers_period_s=float(common.get(node, "markers_period_s")),
        record=common.get(node, "record"),
        allow_unsafe_parameters=bool(common.get(node, "allow_unsafe_parameters")),
    )


def monitor_config(node: Node, bundle: Bundle, overrides: dict[str, Any] | None = None) -> MonitorConfig:
    """MonitorConfig from the parameters (plus pending `overrides`), defaults from the manifest
    (`MonitorConfig.from_manifest`: the one place for that rule).

    Raises:
        ConfigError: Missing or inconsistent thresholds, naming the parameter.
    """
    values = {name: common.get(node, name) for name in MONITOR_PARAMETERS}
    values.update({k: v for k, v in (overrides or {}).items() if k in MONITOR_PARAMETERS})
    try:
        config = MonitorConfig.from_manifest(bundle.manifest, values)
    except ValueError as err:
        raise ConfigError(f"parameter {err} (bundle {bundle.path})") from None
    if not common.get(node, "allow_unsafe_parameters"):
        for problem in thresholds_outside(bundle.manifest, config.risk_high, config.risk_low):
            raise ConfigError(
                f"parameter {problem} of bundle {bundle.path}: the monitor would never (or always) engage "
                "(allow_unsafe_parameters:=true at start lifts this)"
            )
    return config


def obs_timeout_limit(node: Node, bundle: Bundle) -> float:
    """The largest obs_timeout_s allowed without allow_unsafe_parameters: max(0.5 s, 5 control periods)."""
    if common.get(node, "allow_unsafe_parameters"):
        return math.inf
    return max(0.5, 5.0 * float(bundle.manifest["control_period_s"]))


def check_obs_timeout(node: Node, bundle: Bundle, value: float) -> float:
    """`value` if it is a safe obs_timeout_s for `bundle` (:func:`obs_timeout_limit`), else ConfigError."""
    limit = obs_timeout_limit(node, bundle)
    if value > limit:
        raise ConfigError(
            f"parameter obs_timeout_s {value} is above {limit:g} s (max(0.5 s, 5 control periods)): stale inputs "
            "would drive the robot that long (allow_unsafe_parameters:=true at start lifts this)"
        )
    return value


def check_live_change(node: Node, bundle: Bundle, changes: dict[str, Any]) -> MonitorConfig:
    """The MonitorConfig that a run-time change of `LIVE` parameters makes, checked against each other and against
    the safety bounds (obs_timeout_s too).

    Raises:
        ConfigError: The change is refused; the message names the parameter.
    """
    config = monitor_config(node, bundle, changes)
    if "obs_timeout_s" in changes:
        check_obs_timeout(node, bundle, float(changes["obs_timeout_s"]))
    return config
