"""MCAP recording of a run, as `ros2 bag record` writes it (ros2msg schemas, CDR messages), off the control path.

    recorder = McapRecorder("runs/demo/demo.mcap")
    recorder.record("/odom", odometry_msg, t_ns)                      # a message nobody mutates afterwards
    recorder.record_later("/cmd_vel", make_twist, (v, omega), t_ns)   # built in the writer thread
    recorder.close()

MCAP is ROS 2's default bag format: the file opens in Foxglove and PlotJuggler and plays with `ros2 bag play` on a
full ROS install. The control tick only appends to a deque (well under a microsecond) and wakes a writer thread,
which serializes (a 360-beam LaserScan costs ~21 us) and writes between ticks. Schemas are the message definitions
from the installed interface packages' `share/<pkg>/msg/*.msg` files (the PyPI wheels' prefix, or
AMENT_PREFIX_PATH's), concatenated with their dependencies as the ros2msg encoding expects.
"""

from __future__ import annotations

import collections
import os
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

_BUILTINS = {
    "bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64",
    "uint64", "string", "wstring",
}  # fmt: skip
_SEPARATOR = "=" * 80


def type_name(msg_type: type) -> str:
    """'nav_msgs/msg/Odometry' for rclpy's nav_msgs.msg.Odometry."""
    package = msg_type.__module__.split(".")[0]
    return f"{package}/msg/{msg_type.__name__}"


def _share_dirs() -> list[Path]:
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p] + [sys.prefix]
    return [Path(p) / "share" for p in prefixes]


def _msg_text(package: str, name: str) -> str:
    for share in _share_dirs():
        path = share / package / "msg" / f"{name}.msg"
        if path.is_file():
            return path.read_text()
    raise FileNotFoundError(f"no definition of {package}/msg/{name} under {[str(s) for s in _share_dirs()]}")


def message_definition(full_name: str) -> str:
    """The ros2msg schema text of `full_name` ('pkg/msg/Name'): its .msg file, then each message type it uses
    (depth first, once each) under a '=====' separator and 'MSG: pkg/Name', as rosbag2's MCAP writer does."""
    package, _, name = full_name.split("/")
    main = _msg_text(package, name)
    parts, seen = [], set()

    def visit(pkg: str, text: str) -> None:
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            type_token, *rest = line.split()
            if rest and "=" in rest[0]:  # a constant: "uint8 OK=0"
                continue
            base = re.sub(r"(\[.*\]|<=\d+)$", "", type_token)
            base = re.sub(r"<=\d+$", "", base)
            if base in _BUILTINS:
                continue
            dep_pkg, dep_name = base.split("/") if "/" in base else (pkg, base)
            key = f"{dep_pkg}/{dep_name}"
            if key in seen:
                continue
            seen.add(key)
            dep_text = _msg_text(dep_pkg, dep_name)
            parts.append(f"{_SEPARATOR}\nMSG: {key}\n{dep_text}")
            visit(dep_pkg, dep_text)

    visit(package, main)
    return "\n".join([main.rstrip("\n"), *parts])


class McapRecorder:
    """Appends messages to an MCAP file from a writer thread.

    Attributes:
        path: The file being written.
        written: Messages written so far (by the thread).
    """

    def __init__(self, path: str | Path, flush_period_s: float = 0.5):
        from mcap.writer import Writer  # deferred: only a recording node needs it

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "wb")  # noqa: SIM115  (closed in close)
        self._writer = Writer(self._file)
        self._writer.start(profile="ros2", library="alam_ros")
        self._channels: dict[tuple[str, type], int] = {}
        self._schemas: dict[type, int] = {}
        self._queue: collections.deque[tuple[str, Any, Any, int]] = collections.deque()
        self._wake = threading.Event()
        self._stop = False
        self._period = flush_period_s
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="mcap-recorder", daemon=True)
        self._thread.start()

    def record(self, topic: str, msg: Any, t_ns: int) -> None:
        """Queues `msg` (it must not be mutated afterwards) on `topic` at log time `t_ns`."""
        self._queue.append((topic, msg, None, t_ns))

    def record_later(self, topic: str, build: Callable[..., Any], args: tuple, t_ns: int) -> None:
        """Queues a message that the writer thread builds as `build(*args)` (for messages the caller reuses)."""
        self._queue.append((topic, build, args, t_ns))

    def notify(self) -> None:
        """Wakes the writer now: called at the end of a control tick, so the writer's share of the interpreter
        lock falls between ticks instead of into one (a drain of half a second of messages held it for ~3 ms)."""
        self._wake.set()

    def close(self) -> None:
        """Writes what is queued, finishes the file (its summary and index) and closes it."""
        if self._stop:
            return
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=10.0)
        self._drain()
        self._writer.finish()
        self._file.close()

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self._period)
            self._wake.clear()
            self._drain()

    def _drain(self) -> None:
        from rclpy.serialization import serialize_message

        while self._queue:
            topic, msg, args, t_ns = self._queue.popleft()
            if args is not None:
                msg = msg(*args)
            msg_type = type(msg)
            channel = self._channels.get((topic, msg_type))
            if channel is None:
                schema = self._schemas.get(msg_type)
                if schema is None:
                    name = type_name(msg_type)
                    schema = self._writer.register_schema(name, "ros2msg", message_definition(name).encode())
                    self._schemas[msg_type] = schema
                channel = self._writer.register_channel(topic, "cdr", schema)
                self._channels[(topic, msg_type)] = channel
            self._writer.add_message(channel, log_time=t_ns, data=serialize_message(msg), publish_time=t_ns,
                                     sequence=self.written)  # fmt: skip
            self.written += 1


class NodeRecording:
    """alam_policy_node's `record:=FILE`: the inputs as received, per tick the command, ~/risk and ~/mode (built in
    the writer thread, as the node reuses those messages), and /diagnostics.

    Args:
        path: The MCAP file.
        topics: Resolved topic name per key: the node's inputs (odom, scan, goal_pose, joint_states) and outputs
            (cmd, risk, mode, diagnostics).
    """

    def __init__(self, path: Path, topics: dict[str, str]):
        self.recorder = McapRecorder(path)
        self.topics = topics

    def input(self, key: str, msg: Any, now: float) -> None:
        """Records an input message received at node-clock time `now` (s)."""
        self.recorder.record(self.topics[key], msg, int(now * 1e9))

    def tick(self, now: float, command: tuple[type, list[float], Any, str], risk: float, label: str) -> None:
        """Records one tick's outputs; `command` is `command_message`'s arguments (type, values, stamp, frame)."""
        t_ns = int(now * 1e9)
        self.recorder.record_later(self.topics["cmd"], command_message, command, t_ns)
        self.recorder.record_later(self.topics["risk"], float32_message, (risk,), t_ns)
        self.recorder.record_later(self.topics["mode"], string_message, (label,), t_ns)
        self.recorder.notify()

    def diagnostics(self, array: Any, t_ns: int) -> None:
        self.recorder.record(self.topics["diagnostics"], array, t_ns)

    def close(self) -> None:
        self.recorder.close()


# Builders of recorded copies of the messages the node reuses every tick (run in the writer thread).


def command_message(kind: type, values: list[float], stamp: Any, frame: str) -> Any:
    """A new command message (Twist, TwistStamped or Float64MultiArray) with `values`, for the recorder."""
    from geometry_msgs.msg import Twist, TwistStamped
    from std_msgs.msg import Float64MultiArray

    if kind is Float64MultiArray:
        return Float64MultiArray(data=values)
    twist = Twist()
    twist.linear.x, twist.angular.z = values[0], values[1]
    if kind is Twist:
        return twist
    msg = TwistStamped()
    msg.header.frame_id, msg.twist = frame, twist
    if stamp is not None:
        msg.header.stamp.sec, msg.header.stamp.nanosec = stamp.sec, stamp.nanosec
    return msg


def float32_message(value: float) -> Any:
    from std_msgs.msg import Float32

    return Float32(data=value)


def string_message(value: str) -> Any:
    from std_msgs.msg import String

    return String(data=value)
