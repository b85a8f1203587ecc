"""Test-side helpers of tests/ros2: an rclpy node in the test's domain, crafted inputs, recorders."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import rclpy
from alam_ros.common import LATCHED_GOAL_QOS as GOAL_QOS  # noqa: F401  (re-exported to the tests)
from alam_ros.common import SENSOR_QOS
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import Odometry
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState, LaserScan
from std_msgs.msg import Float32, Float32MultiArray, Float64MultiArray, String

RELIABLE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE)
OK, WARN, ERROR, STALE = 0, 1, 2, 3


# ------------------------------------------------------------------------------------------------- test-side node


class Recorder:
    """(receive time, message) of every message on one topic."""

    def __init__(self) -> None:
        self.items: list[tuple[float, Any]] = []

    def __call__(self, msg: Any) -> None:
        self.items.append((time.monotonic(), msg))

    def since(self, t: float) -> list[Any]:
        return [m for r, m in list(self.items) if r >= t]

    def timed_since(self, t: float) -> list[tuple[float, Any]]:
        return [(r, m) for r, m in list(self.items) if r >= t]

    @property
    def last(self) -> Any:
        return self.items[-1][1] if self.items else None


class Harness:
    """The test's own rclpy node in this test's domain, spun by a background thread."""

    def __init__(self, domain_id: int):
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("alam_test_harness", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._feeds: list[Any] = []
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop and self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001  (shutdown races)
                if self._stop:
                    return
                raise

    def publisher(self, msg_type: Any, topic: str, qos: QoSProfile = SENSOR_QOS):
        return self.node.create_publisher(msg_type, topic, qos)

    def listen(self, msg_type: Any, topic: str, qos: QoSProfile = RELIABLE_QOS) -> Recorder:
        recorder = Recorder()
        self.node.create_subscription(msg_type, topic, recorder, qos)
        return recorder

    def feed(self, rate_hz: float, callback: Callable[[], None]) -> None:
        """Calls `callback` (which publishes) at `rate_hz` from the spin thread."""
        self._feeds.append(self.node.create_timer(1.0 / rate_hz, callback))

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=2.0)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def wait_until(predicate: Callable[[], Any], timeout: float, poll: float = 0.02) -> Any:
    """Polls `predicate` until truthy (returned) or `timeout` s pass (returns the last falsy value)."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(poll)
        value = predicate()
    return value


# ------------------------------------------------------------------------------------------------ crafted inputs


class DiffDriveInputs:
    """Publishes odom, a 360-beam scan and a goal at `rate_hz`; tests edit the fields to inject faults."""

    def __init__(self, harness: Harness, rate_hz: float = 20.0, beams: int = 360):
        self.harness = harness
        self.odom_pub = harness.publisher(Odometry, "odom")
        self.scan_pub = harness.publisher(LaserScan, "scan")
        self.goal_pub = harness.publisher(PoseStamped, "goal_pose", GOAL_QOS)
        self.pose = [0.0, 0.0, 0.0]  # x, y, yaw
        self.twist = [0.0, 0.0]
        self.goal = [1.0, 0.5]
        self.angle_min = 0.0
        self.angle_increment = 2 * math.pi / beams
        self.ranges = np.full(beams, 1.5, np.float32)
        self.send = {"odom": True, "scan": True, "goal": True}
        self.last_good = time.monotonic()
        harness.feed(rate_hz, self.publish)

    def publish(self) -> None:
        now = self.harness.node.get_clock().now().to_msg()
        if self.send["odom"]:
            odom = Odometry()
            odom.header.stamp, odom.header.frame_id, odom.child_frame_id = now, "odom", "base_link"
            odom.pose.pose.position.x, odom.pose.pose.position.y = float(self.pose[0]), float(self.pose[1])
            odom.pose.pose.orientation.z = math.sin(self.pose[2] / 2)
            odom.pose.pose.orientation.w = math.cos(self.pose[2] / 2)
            odom.twist.twist.linear.x, odom.twist.twist.angular.z = float(self.twist[0]), float(self.twist[1])
            self.odom_pub.publish(odom)
        if self.send["scan"]:
            scan = LaserScan()
            scan.header.stamp, scan.header.frame_id = now, "base_scan"
            scan.angle_min = float(self.angle_min)
            scan.angle_increment = float(self.angle_increment)
            scan.angle_max = float(self.angle_min + self.angle_increment * (len(self.ranges) - 1))
            scan.range_min, scan.range_max = 0.12, 3.5
            scan.ranges = self.ranges.astype(np.float32).tolist()
            self.scan_pub.publish(scan)
        if self.send["goal"]:
            goal = PoseStamped()
            goal.header.stamp, goal.header.frame_id = now, "odom"
            goal.pose.position.x, goal.pose.position.y = float(self.goal[0]), float(self.goal[1])
            goal.pose.orientation.w = 1.0
            self.goal_pub.publish(goal)


class JointInputs:
    """Publishes a JointState at `rate_hz`; tests edit names/positions/velocities."""

    def __init__(self, harness: Harness, rate_hz: float = 20.0):
        self.harness = harness
        self.pub = harness.publisher(JointState, "joint_states")
        self.names = ["slider", "hinge_1"]
        self.positions = [0.0, math.pi]
        self.velocities = [0.0, 0.0]
        self.send = True
        harness.feed(rate_hz, self.publish)

    def publish(self) -> None:
        if not self.send:
            return
        msg = JointState(name=list(self.names))
        msg.header.stamp = self.harness.node.get_clock().now().to_msg()
        msg.position = [float(v) for v in self.positions]
        msg.velocity = [float(v) for v in self.velocities]
        self.pub.publish(msg)


class PolicyOutputs:
    """Recorders of everything the policy node publishes."""

    def __init__(self, harness: Harness, interface: str = "diff_drive"):
        if interface == "diff_drive":
            self.command = harness.listen(Twist, "cmd_vel")
        else:
            self.command = harness.listen(Float64MultiArray, "commands")
        self.mode = harness.listen(String, "/alam_policy_node/mode")
        self.risk = harness.listen(Float32, "/alam_policy_node/risk")
        self.diagnostics = harness.listen(DiagnosticArray, "/diagnostics")
        self.observation = harness.listen(Float32MultiArray, "/alam_policy_node/observation")

    def mode_is(self, prefix: str, since: float = 0.0) -> float | None:
        """Receive time of the first ~/mode message since `since` starting with `prefix`, or None."""
        for t, msg in self.mode.timed_since(since):
            if msg.data.startswith(prefix):
                return t
        return None

    def diagnostic_levels(self, since: float) -> list[tuple[int, str]]:
        out = []
        for msg in self.diagnostics.since(since):
            for status in msg.status:
                if status.name.endswith("risk monitor"):
                    out.append(
                        (status.level[0] if isinstance(status.level, bytes) else int(status.level), status.message)
                    )
        return out


def command_values(msg: Any) -> list[float]:
    if isinstance(msg, Twist):
        return [msg.linear.x, msg.linear.y, msg.linear.z, msg.angular.x, msg.angular.y, msg.angular.z]
    if hasattr(msg, "twist"):
        return command_values(msg.twist)
    return list(msg.data)
