"""What RViz / Foxglove draw of the policy node: ~/markers as a plain function of the controller's state."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from visualization_msgs.msg import Marker, MarkerArray

if TYPE_CHECKING:
    from alam_control.runtime import Controller

HULL_DIAMETER = 0.21  # m: the diff-drive robot's collision hull (sim/diffdrive.py HULL_RADIUS 0.105)


def risk_level(risk: float, risk_low: float, risk_high: float) -> float:
    """0 at or below risk_low, 1 at or above risk_high, linear between: the footprint's red share."""
    return min(1.0, max(0.0, (risk - risk_low) / max(risk_high - risk_low, 1e-9)))


def risk_markers(
    pose: tuple[float, float, float] | None,
    goal: tuple[float, float] | None,
    risk: float,
    thresholds: tuple[float, float],
    label: str,
    frame: str,
    stamp: Any,
) -> MarkerArray:
    """The robot's footprint (a cylinder at `pose`, green at risk_low to red at risk_high), the goal (a sphere), and
    the mode and risk as text above the robot; all in `frame`. Without a pose (a joint robot, or no odometry yet)
    only the text, at the origin.

    Args:
        pose: (x, y, yaw) or None; goal: (x, y) or None; thresholds: (risk_low, risk_high).
    """
    markers = []
    x, y = 0.0, 0.0
    if pose is not None and math.isfinite(pose[0]):
        x, y = pose[0], pose[1]
        level = risk_level(risk, *thresholds)
        body = Marker(ns="robot", id=0, type=Marker.CYLINDER, action=Marker.ADD)
        body.pose.position.x, body.pose.position.y, body.pose.position.z = x, y, 0.05
        body.scale.x, body.scale.y, body.scale.z = HULL_DIAMETER, HULL_DIAMETER, 0.1
        body.color.r, body.color.g, body.color.b, body.color.a = level, 1.0 - level, 0.0, 0.9
        markers.append(body)
    if goal is not None and math.isfinite(goal[0]):
        target = Marker(ns="goal", id=0, type=Marker.SPHERE, action=Marker.ADD)
        target.pose.position.x, target.pose.position.y = goal
        target.scale.x = target.scale.y = target.scale.z = 0.15
        target.color.g, target.color.b, target.color.a = 0.8, 0.2, 0.9
        markers.append(target)
    text = Marker(ns="mode", id=0, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD)
    text.pose.position.x, text.pose.position.y, text.pose.position.z = x, y, 0.4
    text.scale.z = 0.12
    text.color.r = text.color.g = text.color.b = text.color.a = 1.0
    text.text = f"{label}  risk {risk:.3g}"
    markers.append(text)
    for marker in markers:
        marker.header.stamp, marker.header.frame_id = stamp, frame
        marker.pose.orientation.w = 1.0
    return MarkerArray(markers=markers)


def controller_markers(controller: Controller, label: str, stamp: Any) -> MarkerArray:
    """`risk_markers` of a controller's latest state: a diff-drive robot's pose and goal in its odometry frame
    ("odom" before the first odometry), a joint robot's text only; `label` is the mode last published."""
    inputs, config = controller.inputs, controller.monitor.config
    mobile = controller.bundle.manifest["ros_interface"] == "diff_drive"
    return risk_markers(
        inputs.pose if mobile else None,
        inputs.goal_xy if mobile else None,
        controller.risk,
        (config.risk_low, config.risk_high),
        label,
        (inputs.odom_frame if mobile else "") or "odom",
        stamp,
    )
