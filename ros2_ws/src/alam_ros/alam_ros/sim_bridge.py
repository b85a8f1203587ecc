"""alam_sim_bridge: a `sim` task stands in for the robot on the policy node's topics (DESIGN.md section 6).

    alam_sim_bridge --ros-args -p task:=diffdrive-safe_navigate -p seed:=0 -p push_times_s:=[8.0]

A wall-clock timer steps the env at its control rate (times `real_time_factor`). After each step it publishes:

- diff-drive tasks: `odom` (nav_msgs/Odometry: the sim's robot pose in the odometry frame, body-frame twist
  v, omega), `scan` (sensor_msgs/LaserScan of `scan_beams` beams over 360 degrees, default 360 like a real
  lidar: MuJoCo ray casts from the lidar's position, REP 117: +Inf for no return within range_max, -Inf for a
  return closer than range_min), and `goal_pose` (geometry_msgs/PoseStamped, transient local) when the goal
  moves and every `goal_period_s`;
- joint tasks: `joint_states` (sensor_msgs/JointState of the manifest's joints);
- always: ground truth `~/cost` (Float32, 1 while a constraint is violated), `~/constraints`
  (Float64MultiArray, the constraint values g > 0 violated, names in layout.dim[0].label), `~/goals_reached`
  (Int32, cumulative), `~/disturbance` (Bool, a push in progress), and /clock with `publish_clock`;
- diff-drive tasks: `~/obstacles` (visualization_msgs/MarkerArray, transient local), the walls and pillars of the
  episode, at every reset (RViz, Foxglove, and the demo's map of the run).

It applies the latest `cmd_vel` (Twist or TwistStamped by `cmd_vel_stamped`) or `commands` (Float64MultiArray),
mapped from physical units to the env's [-1, 1] actions by the inverse of the env's ctrl mapping; it holds the
last command and applies zero once none has arrived for `cmd_timeout_s`. Sensor topics are published best
effort, keep last 1 (the policy node subscribes so; a reliable subscriber would not match). Commands are
subscribed best effort, which matches reliable and best-effort publishers alike.

Disturbances, so the monitor's handover can be seen: during a push (at the times in `push_times_s`, and every
`push_period_s`, each for `push_duration_s`) the env's push disturbance (`SafeEnv.push`) replaces the commands:
it drives the robot toward the nearest obstacle its lidar sectors see at `push_speed` (diff drive,
`sim.diffdrive.push_command`: the same push the diff-drive bundle saw in training), or applies full positive
actions (joint tasks).
Episode end: reset and continue.
"""

from __future__ import annotations

import array
import math
import sys
import time
from typing import Any

import numpy as np
from geometry_msgs.msg import Point, PoseStamped, Twist, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.time import Time
from sensor_msgs.msg import JointState, LaserScan
from std_msgs.msg import Bool, Float32, Float64MultiArray, Int32, MultiArrayDimension
from visualization_msgs.msg import Marker, MarkerArray

from alam_ros import common
from alam_ros.common import ConfigError

NODE_NAME = "alam_sim_bridge"


def yaw_quaternion(yaw: float) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a rotation by `yaw` about +z."""
    return 0.0, 0.0, math.sin(yaw / 2.0), math.cos(yaw / 2.0)


class SimBridge(Node):
    """The bridge node; see the module docstring."""

    def __init__(self, **kwargs: Any):
        super().__init__(NODE_NAME, **kwargs)
        d = common.declare
        d(self, "task", "diffdrive-safe_navigate", "Registered sim task to run as the robot.")
        d(self, "seed", 0, "Seed of the task RNG (layouts, goals, randomization).")
        d(self, "randomize", False, "Domain randomization (sim.Randomization defaults), drawn anew every episode.")
        d(self, "real_time_factor", 1.0, "Sim seconds per wall second.", range_=(0.01, 100.0))
        d(self, "scan_beams", 360, "LaserScan beams over 360 degrees.", range_=(4, 10000))
        d(
            self,
            "cmd_timeout_s",
            0.5,
            "Apply zero once no command arrived for this long (wall clock).",
            range_=(0.0, 60.0),
        )
        d(self, "cmd_vel_stamped", False, "cmd_vel is geometry_msgs/TwistStamped (else Twist).")
        d(self, "odom_topic", "odom", "nav_msgs/Odometry output.")
        d(self, "scan_topic", "scan", "sensor_msgs/LaserScan output.")
        d(self, "goal_topic", "goal_pose", "geometry_msgs/PoseStamped goal output.")
        d(self, "cmd_vel_topic", "cmd_vel", "Twist / TwistStamped input.")
        d(self, "joint_states_topic", "joint_states", "sensor_msgs/JointState output (joint tasks).")
        d(self, "commands_topic", "commands", "std_msgs/Float64MultiArray input (joint tasks).")
        d(self, "odom_frame", "odom", "Odometry, goal and world frame.")
        d(self, "base_frame", "base_link", "Robot frame (Odometry child_frame_id).")
        d(self, "scan_frame", "base_scan", "LaserScan frame (at the robot's center, axes as base_frame).")
        d(
            self,
            "goal_period_s",
            1.0,
            "Republish the goal this often (also sent whenever it moves).",
            range_=(0.01, 3600.0),
        )
        d(self, "publish_clock", False, "Publish the sim time on /clock and stamp messages with it.")
        d(self, "push_times_s", Parameter.Type.DOUBLE_ARRAY, "Push disturbance start times (s of sim time from start).")
        d(self, "push_period_s", 0.0, "Also push every this many seconds (0: off).", range_=(0.0, 3600.0))
        d(self, "push_duration_s", 1.5, "Length of each push in s.", range_=(0.0, 60.0))
        d(
            self,
            "push_speed",
            0.3,
            "Diff drive: speed in m/s of a push toward the nearest obstacle.",
            range_=(0.0, 10.0),
        )

        import sim  # deferred: mujoco and dm_control take a moment to import
        from sim.diffdrive import Lidar

        task = common.get(self, "task")
        try:
            self.env = sim.load(task, seed=int(common.get(self, "seed")), randomize=bool(common.get(self, "randomize")))
        except ValueError as err:
            raise ConfigError(f"parameter task: {err}") from None
        spec = self.env.spec
        self.spec = spec
        self.interface = spec.ros_interface
        self.physics = self.env.physics
        self._high = np.asarray(spec.ctrl_high)
        self._dt = spec.control_timestep
        self._rtf = float(common.get(self, "real_time_factor"))
        self._cmd_timeout = float(common.get(self, "cmd_timeout_s"))
        self._stamped = bool(common.get(self, "cmd_vel_stamped"))
        self._odom_frame = common.get(self, "odom_frame")
        self._base_frame = common.get(self, "base_frame")
        self._scan_frame = common.get(self, "scan_frame")
        self._goal_period = float(common.get(self, "goal_period_s"))
        self._publish_clock = bool(common.get(self, "publish_clock"))
        self._pushes = sorted(float(t) for t in (common.get(self, "push_times_s") or []))
        self._push_period = float(common.get(self, "push_period_s"))
        self._push_duration = float(common.get(self, "push_duration_s"))
        self._push_speed = float(common.get(self, "push_speed"))

        if self.interface == "diff_drive":
            deploy = spec.deploy
            if not deploy:
                raise ConfigError(f"task {task} has no deploy spec (range sensor fan)")
            self._range_min, self._range_max = float(deploy["range_min"]), float(deploy["range_max"])
            try:
                self.lidar = Lidar(self.physics, int(common.get(self, "scan_beams")), self._range_min, self._range_max)
            except ValueError as err:
                raise ConfigError(str(err)) from None
            self._odom_pub = self.create_publisher(Odometry, common.get(self, "odom_topic"), common.SENSOR_QOS)
            self._scan_pub = self.create_publisher(LaserScan, common.get(self, "scan_topic"), common.SENSOR_QOS)
            self._goal_pub = self.create_publisher(PoseStamped, common.get(self, "goal_topic"), common.LATCHED_GOAL_QOS)
            # The arena of the current episode for RViz / Foxglove and the demo's map (latched: a late viewer gets it).
            self._obstacles_pub = self.create_publisher(MarkerArray, "~/obstacles", common.LATCHED_GOAL_QOS)
            kind = TwistStamped if self._stamped else Twist
            self.create_subscription(kind, common.get(self, "cmd_vel_topic"), self._on_cmd_vel, common.SENSOR_QOS)
        else:
            deploy = spec.deploy
            if not deploy or "joints" not in deploy:
                raise ConfigError(f"task {task} has no joint deploy spec")
            self._joints = list(deploy["joints"])
            import mujoco

            model = self.physics.model.ptr
            ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, j) for j in self._joints]
            if min(ids) < 0:
                raise ConfigError(f"task {task}: deploy joints {self._joints} are not all joints of the model")
            self._qpos_index = [int(model.jnt_qposadr[i]) for i in ids]
            self._qvel_index = [int(model.jnt_dofadr[i]) for i in ids]
            self._joint_pub = self.create_publisher(
                JointState, common.get(self, "joint_states_topic"), common.SENSOR_QOS
            )
            self.create_subscription(
                Float64MultiArray, common.get(self, "commands_topic"), self._on_commands, common.SENSOR_QOS
            )
        self._cost_pub = self.create_publisher(Float32, "~/cost", common.STATUS_QOS)
        self._constraints_pub = self.create_publisher(Float64MultiArray, "~/constraints", common.STATUS_QOS)
        self._goals_pub = self.create_publisher(Int32, "~/goals_reached", common.STATUS_QOS)
        self._push_pub = self.create_publisher(Bool, "~/disturbance", common.STATUS_QOS)
        if self._publish_clock:
            from rosgraph_msgs.msg import Clock as ClockMsg

            self._clock_msg = ClockMsg
            self._clock_pub = self.create_publisher(ClockMsg, "/clock", 10)

        self._command = np.zeros(len(self._high))  # physical units
        self._command_time = -math.inf  # wall clock (monotonic) of the last valid command
        self._sim_time = 0.0  # across episodes
        self._episode = 0
        self._goals = 0
        self._episode_cost = 0.0
        self._last_goal: np.ndarray | None = None
        self._last_goal_pub = -math.inf
        self._bad_commands = 0
        self.env.reset()
        self._publish_obstacles()
        self._publish_state(first=True)
        # Wall-clock (steady) timer: the robot runs in real time (times real_time_factor) whatever ROS time is.
        self._wall = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(self._dt / self._rtf, self._step, clock=self._wall)
        self.get_logger().info(
            f"running {task} ({self.interface}) at {1.0 / self._dt:.1f} Hz x {self._rtf}"
            + (f", pushes at {self._pushes} s" if self._pushes else "")
            + (f", a push every {self._push_period} s" if self._push_period > 0 else "")
        )

    # ------------------------------------------------------------------------------------------------- commands

    def _accept(self, command: np.ndarray) -> None:
        if command.shape != self._command.shape or not np.isfinite(command).all():
            self._bad_commands += 1
            self.get_logger().warning(
                f"ignoring command {command.tolist()} (expected {self._command.size} finite values)",
                throttle_duration_sec=2.0,
            )
            return
        self._command = command
        self._command_time = time.monotonic()

    def _on_cmd_vel(self, msg: Twist | TwistStamped) -> None:
        twist = msg.twist if self._stamped else msg
        self._accept(np.array([twist.linear.x, twist.angular.z]))

    def _on_commands(self, msg: Float64MultiArray) -> None:
        self._accept(np.asarray(msg.data, np.float64))

    def _pushing(self) -> bool:
        t = self._sim_time
        for start in self._pushes:
            if start <= t < start + self._push_duration:
                return True
        if self._push_period > 0.0 and t >= self._push_period:
            return (t % self._push_period) < self._push_duration
        return False

    def _action(self) -> np.ndarray:
        """The env action in [-1, 1] for this step (a push, started in `_step`, overrides it inside the env)."""
        if time.monotonic() - self._command_time <= self._cmd_timeout:
            return self.env.action_for(self._command)
        return self.env.action_for(np.zeros_like(self._command))

    def _push_strength(self) -> float:
        """The push as a fraction of the actuator range: push_speed of the diff drive's top speed; joint robots
        get full positive actions."""
        if self.interface == "diff_drive":
            return min(1.0, self._push_speed / float(self._high[0]))
        return 1.0

    # ------------------------------------------------------------------------------------------------- stepping

    def _step(self) -> None:
        if self._pushing():  # one control step of the env's push disturbance (sim.diffdrive.push_command)
            self.env.push(self.env.task.control_timestep, self._push_strength())
        _, _, cost, terminated, truncated, info = self.env.step(self._action())
        self._sim_time += self._dt
        self._episode_cost += cost
        self._push_pub.publish(Bool(data=info["push"]))
        self._cost_pub.publish(Float32(data=float(cost)))
        names = list(info["constraints"])
        layout = Float64MultiArray()
        layout.layout.dim = [MultiArrayDimension(label=",".join(names), size=len(names), stride=len(names))]
        layout.data = [float(info["constraints"][n]) for n in names]
        self._constraints_pub.publish(layout)
        if terminated or truncated:
            self.get_logger().info(
                f"episode {self._episode} ended: cost {self._episode_cost:.0f}, goals so far {self._goals}; resetting"
            )
            self._episode += 1
            self._episode_cost = 0.0
            self.env.reset()
            self._publish_obstacles()
            self._last_goal = None
        self._publish_state()

    def _publish_obstacles(self) -> None:
        """~/obstacles (visualization_msgs/MarkerArray, odom frame): a DELETEALL, the arena's walls as a line strip
        (ns "walls") and each pillar as a cylinder (ns "pillars", id = index), for the episode just started."""
        if self.interface != "diff_drive":
            return
        from sim.diffdrive import ARENA, PILLAR_RADIUS

        stamp = self._stamp()
        clear = Marker(action=Marker.DELETEALL)
        clear.header.frame_id = self._odom_frame
        walls = Marker(ns="walls", id=0, type=Marker.LINE_STRIP, action=Marker.ADD)
        walls.header.stamp, walls.header.frame_id = stamp, self._odom_frame
        walls.scale.x = 0.05
        walls.color.r = walls.color.g = walls.color.b = 0.3
        walls.color.a = 1.0
        walls.pose.orientation.w = 1.0
        for x, y in ((-ARENA, -ARENA), (ARENA, -ARENA), (ARENA, ARENA), (-ARENA, ARENA), (-ARENA, -ARENA)):
            walls.points.append(Point(x=x, y=y, z=0.0))
        markers = [clear, walls]
        for i, (x, y) in enumerate(np.asarray(self.physics.pillar_positions(), np.float64).tolist()):
            pillar = Marker(ns="pillars", id=i, type=Marker.CYLINDER, action=Marker.ADD)
            pillar.header.stamp, pillar.header.frame_id = stamp, self._odom_frame
            pillar.pose.position.x, pillar.pose.position.y, pillar.pose.position.z = x, y, 0.25
            pillar.pose.orientation.w = 1.0
            pillar.scale.x = pillar.scale.y = 2 * PILLAR_RADIUS
            pillar.scale.z = 0.5
            pillar.color.r, pillar.color.g, pillar.color.b, pillar.color.a = 0.5, 0.5, 0.5, 1.0
            markers.append(pillar)
        self._obstacles_pub.publish(MarkerArray(markers=markers))

    def _stamp(self) -> Any:
        if self._publish_clock:
            return Time(nanoseconds=int(round(self._sim_time * 1e9))).to_msg()
        return self.get_clock().now().to_msg()

    def _publish_state(self, first: bool = False) -> None:
        if self._publish_clock:
            self._clock_pub.publish(self._clock_msg(clock=Time(nanoseconds=int(round(self._sim_time * 1e9))).to_msg()))
        stamp = self._stamp()
        if self.interface == "joint":
            data = self.physics.data
            msg = JointState(name=self._joints)
            msg.header.stamp = stamp
            msg.position = data.qpos[self._qpos_index].tolist()
            msg.velocity = data.qvel[self._qvel_index].tolist()
            self._joint_pub.publish(msg)
            return
        physics = self.physics
        x, y = (float(v) for v in physics.robot_position())
        yaw = float(physics.heading())
        v, omega = physics.body_velocity()
        odom = Odometry()
        odom.header.stamp = stamp
        odom.header.frame_id = self._odom_frame
        odom.child_frame_id = self._base_frame
        odom.pose.pose.position.x, odom.pose.pose.position.y = x, y
        q = odom.pose.pose.orientation
        q.x, q.y, q.z, q.w = yaw_quaternion(yaw)
        odom.twist.twist.linear.x, odom.twist.twist.angular.z = float(v), float(omega)
        self._odom_pub.publish(odom)

        ranges = self.lidar.scan(yaw)
        scan = LaserScan()
        scan.header.stamp = stamp
        scan.header.frame_id = self._scan_frame
        scan.angle_min = self.lidar.angle_min
        scan.angle_increment = self.lidar.angle_increment
        scan.angle_max = self.lidar.angle_min + self.lidar.angle_increment * (self.lidar.beams - 1)
        scan.time_increment = 0.0
        scan.scan_time = self._dt
        scan.range_min, scan.range_max = self._range_min, self._range_max
        scan.ranges = array.array("f", ranges.tobytes())  # rosidl takes array.array('f') as is
        self._scan_pub.publish(scan)

        goal = np.array(physics.goal_position(), np.float64)
        now = time.monotonic()
        moved = self._last_goal is None or not np.array_equal(goal, self._last_goal)
        if moved and self._last_goal is not None and not first:
            self._goals += 1  # the task moves a goal once it is reached (a reset clears _last_goal first)
        if moved or now - self._last_goal_pub >= self._goal_period:
            self._goals_pub.publish(Int32(data=self._goals))
            msg = PoseStamped()
            msg.header.stamp = stamp
            msg.header.frame_id = self._odom_frame
            msg.pose.position.x, msg.pose.position.y = float(goal[0]), float(goal[1])
            msg.pose.orientation.w = 1.0
            self._goal_pub.publish(msg)
            self._last_goal, self._last_goal_pub = goal, now
            if moved:
                self.get_logger().info(f"goal at ({goal[0]:.2f}, {goal[1]:.2f})")


def main(args: list[str] | None = None) -> int:
    """Console entry point `alam_sim_bridge`: returns 1 if the node cannot be configured."""
    return common.run_node(NODE_NAME, SimBridge, lambda node, spinner: spinner.spin(node), args)


if __name__ == "__main__":
    sys.exit(main())
