"""alam_sim_bridge: its command mapping, disturbance, and topics (DESIGN.md section 6); its lidar,
`sim.diffdrive.Lidar`, is tested in tests/sim/test_diffdrive.py."""

from __future__ import annotations

import math
import time

import numpy as np
from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import Odometry
from ros_harness import GOAL_QOS, SENSOR_QOS, wait_until
from sensor_msgs.msg import JointState, LaserScan
from std_msgs.msg import Bool, Float32, Float64MultiArray

import sim
from sim import diffdrive

STARTUP_S = 20.0


def test_bridge_publishes_applies_cmd_vel_and_pushes(start_node, harness):
    odom = harness.listen(Odometry, "odom", SENSOR_QOS)
    scan = harness.listen(LaserScan, "scan", SENSOR_QOS)
    goal = harness.listen(PoseStamped, "goal_pose", GOAL_QOS)
    cost = harness.listen(Float32, "/alam_sim_bridge/cost")
    constraints = harness.listen(Float64MultiArray, "/alam_sim_bridge/constraints")
    push = harness.listen(Bool, "/alam_sim_bridge/disturbance")
    cmd = harness.publisher(Twist, "cmd_vel")
    forward = {"v": 0.0}

    def send():
        if forward["v"] is not None:
            msg = Twist()
            msg.linear.x = forward["v"]
            cmd.publish(msg)

    harness.feed(20.0, send)
    start_node(
        "sim_bridge", task="diffdrive-safe_navigate", seed=2, push_times_s=[2.5], push_duration_s=1.0, cmd_timeout_s=0.3
    )
    assert wait_until(lambda: len(odom.items) >= 3 and goal.items, STARTUP_S)
    msg = scan.last
    assert len(msg.ranges) == 360 and math.isclose(msg.angle_increment, 2 * math.pi / 360, rel_tol=1e-6)
    assert math.isclose(msg.range_min, diffdrive.RANGE_MIN, rel_tol=1e-6)
    assert math.isclose(msg.range_max, diffdrive.RANGE_MAX, rel_tol=1e-6)
    assert goal.last.header.frame_id == odom.last.header.frame_id == "odom"
    assert cost.items and constraints.items
    assert constraints.last.layout.dim[0].label == "clearance"

    # cmd_vel in physical units drives the robot at that speed (the inverse of the env's ctrl mapping).
    forward["v"] = 0.2
    time.sleep(1.0)
    assert abs(odom.last.twist.twist.linear.x - 0.2) < 0.05, odom.last.twist.twist
    # Without commands for cmd_timeout_s the bridge applies zero.
    forward["v"] = None
    time.sleep(0.8)
    assert abs(odom.last.twist.twist.linear.x) < 0.05, odom.last.twist.twist

    # The push drives the robot toward the nearest obstacle, whatever the commands say.
    assert wait_until(lambda: any(m.data for m in push.since(0.0)), 5.0)
    t_push = next(t for t, m in push.items if m.data)
    time.sleep(0.6)
    speeds = [abs(m.twist.twist.linear.x) for m in odom.since(t_push + 0.3)]
    assert speeds and max(speeds) > 0.15, speeds


def test_bridge_joint_task(start_node, harness):
    states = harness.listen(JointState, "joint_states", SENSOR_QOS)
    cmd = harness.publisher(Float64MultiArray, "commands")
    harness.feed(20.0, lambda: cmd.publish(Float64MultiArray(data=[10.0])))  # full force to +x
    start_node("sim_bridge", task="cartpole-safe_swingup", seed=0)
    assert wait_until(lambda: len(states.items) >= 10, STARTUP_S)
    msg = states.last
    assert list(msg.name) == ["slider", "hinge_1"] and len(msg.position) == len(msg.velocity) == 2
    assert wait_until(lambda: states.last.velocity[0] > 0.3, 3.0), states.last


def test_scripted_navigator_over_ros_reaches_goals(start_node, harness):
    """The sim's safe scripted navigator, fed observations rebuilt from the bridge's ROS topics exactly as the
    policy node rebuilds them (360-beam scan binned onto the trained sectors), reaches goals without violations:
    the bridge's topics carry what a policy trained on the sim needs."""
    from std_msgs.msg import Int32

    from alam_control.runtime import DiffDriveObservation, yaw_from_quaternion

    deploy = sim.load("diffdrive-safe_navigate").spec.deploy
    observe = DiffDriveObservation(deploy, 5 + diffdrive.NUM_BEAMS)
    controller = diffdrive.NavigateController()
    latest: dict[str, object] = {}
    harness.node.create_subscription(Odometry, "odom", lambda m: latest.__setitem__("odom", m), SENSOR_QOS)
    harness.node.create_subscription(PoseStamped, "goal_pose", lambda m: latest.__setitem__("goal", m), GOAL_QOS)
    goals = harness.listen(Int32, "/alam_sim_bridge/goals_reached")
    cost = harness.listen(Float32, "/alam_sim_bridge/cost")
    cmd = harness.publisher(Twist, "cmd_vel")

    def on_scan(scan: LaserScan) -> None:
        odom, goal = latest.get("odom"), latest.get("goal")
        if odom is None or goal is None:
            return
        p, q, t = odom.pose.pose.position, odom.pose.pose.orientation, odom.twist.twist
        ranges = observe.bin(scan.ranges, scan.angle_min, scan.angle_increment, 0.5)
        obs = observe(
            (p.x, p.y, yaw_from_quaternion(q.x, q.y, q.z, q.w)),
            (t.linear.x, t.angular.z),
            (goal.pose.position.x, goal.pose.position.y),
            ranges,
        )
        action = controller(obs)
        msg = Twist()
        msg.linear.x, msg.angular.z = float(action[0] * diffdrive.V_MAX), float(action[1] * diffdrive.OMEGA_MAX)
        cmd.publish(msg)

    harness.node.create_subscription(LaserScan, "scan", on_scan, SENSOR_QOS)
    start_node("sim_bridge", task="diffdrive-safe_navigate", seed=0, real_time_factor=3.0)
    assert wait_until(lambda: goals.items and goals.last.data >= 2, STARTUP_S), "fewer than 2 goals in ~45 s sim"
    assert sum(m.data for m in cost.since(0.0)) == 0.0


def test_bridge_publishes_the_episodes_obstacles_for_viewers(start_node, harness):
    from alam_ros.common import LATCHED_GOAL_QOS
    from visualization_msgs.msg import Marker, MarkerArray

    start_node("sim_bridge", task="diffdrive-safe_navigate", seed=3)
    time.sleep(1.0)  # published at start: a late, transient-local subscriber still gets it
    obstacles = harness.listen(MarkerArray, "/alam_sim_bridge/obstacles", LATCHED_GOAL_QOS)
    assert wait_until(lambda: obstacles.items, 15.0)
    markers = obstacles.last.markers
    assert markers[0].action == Marker.DELETEALL and markers[1].ns == "walls"
    pillars = [m for m in markers if m.type == Marker.CYLINDER]
    env = sim.load("diffdrive-safe_navigate", seed=3)
    env.reset()  # the bridge's first episode: same seed, same draws
    expected = env.physics.pillar_positions()
    assert len(pillars) == len(expected) == diffdrive.NUM_PILLARS
    np.testing.assert_allclose([(m.pose.position.x, m.pose.position.y) for m in pillars], expected, atol=1e-9)
    assert all(m.scale.x == 2 * diffdrive.PILLAR_RADIUS and m.header.frame_id == "odom" for m in pillars)
