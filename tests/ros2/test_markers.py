"""~/markers as a plain function: the footprint's colour follows risk between the monitor's thresholds."""

from __future__ import annotations

import pytest
from alam_ros.markers import risk_level, risk_markers
from builtin_interfaces.msg import Time
from visualization_msgs.msg import Marker


def test_risk_level_spans_the_thresholds() -> None:
    assert [risk_level(r, 0.1, 0.9) for r in (0.0, 0.1, 0.5, 0.9, 5.0)] == pytest.approx([0, 0, 0.5, 1, 1])
    assert risk_level(1.0, 1.0, 1.0) == 0.0 and risk_level(1.1, 1.0, 1.0) == 1.0  # no hysteresis band


def test_markers_of_a_mobile_robot_and_of_a_joint_robot() -> None:
    stamp = Time(sec=3, nanosec=5)
    shown = {m.ns: m for m in risk_markers((0.4, -0.3, 1.0), (1.0, 0.5), 0.7, (0.1, 0.9), "FALLBACK:risk", "odom",
                                           stamp).markers}  # fmt: skip
    robot, goal, text = shown["robot"], shown["goal"], shown["mode"]
    assert robot.type == Marker.CYLINDER and (robot.pose.position.x, robot.pose.position.y) == pytest.approx(
        (0.4, -0.3)
    )
    assert (robot.color.r, robot.color.g) == pytest.approx((0.75, 0.25))  # 3/4 of the way to risk_high
    assert (goal.pose.position.x, goal.pose.position.y) == pytest.approx((1.0, 0.5))
    assert text.text == "FALLBACK:risk  risk 0.7" and all(m.header.frame_id == "odom" for m in shown.values())
    assert all(m.header.stamp == stamp and m.pose.orientation.w == 1.0 for m in shown.values())
    joint = risk_markers(None, None, 0.01, (0.1, 0.9), "POLICY", "odom", stamp).markers
    assert [m.ns for m in joint] == ["mode"]
