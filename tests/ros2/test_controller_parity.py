"""The node runs the controller that calibration measures: one recorded trace, fed to both, gives the same
command / risk / mode sequence.

`calibration.rollout` drives the simulator through `runtime.Controller` and records what it observed and decided.
The same observations, turned back into the robot messages a real robot would send (Odometry, a goal
PoseStamped, a LaserScan whose beams sit on the trained sector centres), go through alam_policy_node's own
callbacks in this process (no DDS in between: the DDS paths are in test_ros_policy_node.py), with the node clock
set to the same sim time. Any behaviour the node adds or drops around the controller shows up as a difference.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from rclpy.parameter import Parameter
from sensor_msgs.msg import LaserScan

from alam_control.deploy import calibration
from alam_control.runtime import MonitorConfig, load_bundle

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "bundles" / "diffdrive"


class Recorder:
    """Stands in for a publisher: keeps what would have been published."""

    def __init__(self, convert):
        self.convert, self.values = convert, []

    def publish(self, msg) -> None:
        self.values.append(self.convert(msg))


def messages(obs: np.ndarray, fan: dict) -> tuple[Odometry, PoseStamped, LaserScan]:
    """Robot messages whose rebuilt observation is `obs` [29]: robot at the origin facing +x, goal at its polar
    coordinates, one scan beam per trained sector."""
    odom = Odometry()
    odom.header.frame_id = "odom"
    odom.pose.pose.orientation.w = 1.0
    odom.twist.twist.linear.x, odom.twist.twist.angular.z = float(obs[3]), float(obs[4])
    goal = PoseStamped()
    goal.header.frame_id = "odom"
    goal.pose.position.x, goal.pose.position.y = float(obs[0] * obs[1]), float(obs[0] * obs[2])
    scan = LaserScan()
    scan.angle_min = float(fan["beam_angles"][0])
    scan.angle_increment = float(fan["beam_angles"][1] - fan["beam_angles"][0])
    scan.range_min, scan.range_max = float(fan["range_min"]), float(fan["range_max"])
    scan.ranges = obs[5:].astype(np.float32).tolist()
    return odom, goal, scan


def test_node_and_calibration_run_the_same_controller(monkeypatch) -> None:
    bundle = load_bundle(SHIPPED)
    # Thresholds under the calibrated ones, so two nominal episodes hand over and back several times (measured:
    # 92 FALLBACK:risk ticks of 600 at seed 3).
    monitor = MonitorConfig.from_manifest(bundle.manifest, {"risk_high": 0.3, "risk_low": 0.075})
    data = calibration.rollout(bundle, 2, seed=3, monitor=monitor, fallback="retreat", start_in_fallback=True)
    period = bundle.manifest["control_period_s"]
    assert {"POLICY", "FALLBACK:startup", "FALLBACK:risk"} <= set(data.modes), set(data.modes)

    monkeypatch.setenv("ROS_DOMAIN_ID", str(150 + __import__("os").getpid() % 80))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    from alam_ros.policy_node import PolicyNode

    context = rclpy.Context()
    rclpy.init(context=context)
    node = None
    try:
        params = {"bundle_dir": str(SHIPPED), "tick_on": "scan", "fallback": "retreat", "obs_timeout_s": 0.5,
                  "risk_high": 0.3, "risk_low": 0.075}  # fmt: skip
        node = PolicyNode(context=context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
        node.trigger_configure()
        node.trigger_activate()
        clock = [0.0]
        node._now = lambda: clock[0]
        commands = Recorder(lambda m: (m.linear.x, m.angular.z))
        risks, modes = Recorder(lambda m: m.data), Recorder(lambda m: m.data)
        node._cmd_pub, node._risk_pub, node._mode_pub = commands, risks, modes
        node._diag_pub = Recorder(lambda m: None)
        episode_start = 0
        fan = bundle.manifest["deploy"]
        for k, obs in enumerate(data.obs):
            if k > 0 and k % 300 == 0:  # a new episode: calibration starts a fresh monitor, so does activation
                node.trigger_deactivate()
                node.trigger_activate()
                node._cmd_pub, node._mode_pub = commands, modes  # deactivate sent its stop command
                commands.values.pop(), modes.values.pop()
                episode_start = k
            clock[0] = (k - episode_start) * period
            odom, goal, scan = messages(obs, fan)
            node._on_odom(odom)
            node._on_goal(goal)
            node._on_scan(scan)  # tick_on scan: one tick
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.shutdown(context=context)

    assert len(modes.values) == len(data.modes) == 600
    assert modes.values == data.modes
    np.testing.assert_allclose(np.asarray(commands.values), data.commands, atol=1e-4)
    # ~/risk: the controller's risk where the policy ran (the node publishes the last finite value otherwise).
    np.testing.assert_allclose(risks.values, data.risk, rtol=1e-4, atol=1e-5)  # float32 round trip of obs
    assert not any(math.isnan(r) for r in risks.values)
