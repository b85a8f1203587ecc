"""MCAP recording by alam_policy_node (`record:=path.mcap`): the file reads back with the mcap reader, its
ros2msg schemas parse (as Foxglove parses them), and it holds what the node received and published."""

from __future__ import annotations

import math
import time
from pathlib import Path

from alam_ros.recorder import message_definition
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from ros_harness import DiffDriveInputs, PolicyOutputs, wait_until
from test_ros_policy_node import FAST, wait_policy

TOPICS = {
    "/odom": "nav_msgs/msg/Odometry",
    "/scan": "sensor_msgs/msg/LaserScan",
    "/goal_pose": "geometry_msgs/msg/PoseStamped",
    "/cmd_vel": "geometry_msgs/msg/Twist",
    "/alam_policy_node/risk": "std_msgs/msg/Float32",
    "/alam_policy_node/mode": "std_msgs/msg/String",
    "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray",
}


def test_message_definitions_carry_their_dependencies() -> None:
    text = message_definition("diagnostic_msgs/msg/DiagnosticArray")
    assert [line for line in text.splitlines() if line.startswith("MSG: ")] == [
        "MSG: std_msgs/Header", "MSG: builtin_interfaces/Time", "MSG: diagnostic_msgs/DiagnosticStatus",
        "MSG: diagnostic_msgs/KeyValue"]  # fmt: skip


def test_policy_node_records_its_run(diffdrive_bundle, start_node, harness, tmp_path: Path) -> None:
    out = PolicyOutputs(harness)
    DiffDriveInputs(harness, rate_hz=20.0)
    path = tmp_path / "run.mcap"
    node = start_node("policy_node", bundle_dir=diffdrive_bundle, record=str(path), **FAST)
    wait_policy(out)
    time.sleep(1.5)
    # An input late by more than obs_timeout_s (0.3 s on a busy runner) puts the node in FALLBACK for a release
    # dwell: stop it while it drives, so the file's last mode is known.
    assert wait_until(lambda: (heard := out.mode.since(0.0)) and heard[-1].data == "POLICY", 5.0), node.output()
    assert node.stop() == 0  # SIGINT: the node finishes the file on the way out
    published_risk = [m.data for m in out.risk.since(0.0)]

    decode = DecoderFactory()
    decoders: dict[int, object] = {}
    by_topic: dict[str, list] = {}
    with open(path, "rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        assert summary is not None and summary.statistics.message_count > 0  # a finished file, with its index
        for schema, channel, message in reader.iter_messages():
            assert schema.encoding == "ros2msg" and channel.message_encoding == "cdr"
            assert TOPICS.get(channel.topic) == schema.name, (channel.topic, schema.name)
            decoder = decoders.setdefault(channel.id, decode.decoder_for("cdr", schema))
            by_topic.setdefault(channel.topic, []).append((message.log_time, decoder(message.data)))
    assert set(by_topic) == set(TOPICS), sorted(by_topic)
    # One command, risk and mode per tick; the scan, odometry and goal as received.
    ticks = len(by_topic["/alam_policy_node/mode"])
    assert ticks >= 20 and len(by_topic["/cmd_vel"]) == len(by_topic["/alam_policy_node/risk"]) == ticks
    assert len(by_topic["/scan"]) >= 20 and len(by_topic["/scan"][0][1].ranges) == 360
    times = [t for t, _ in by_topic["/alam_policy_node/mode"]]
    assert times == sorted(times)
    # What the test heard on ~/risk is what the file holds, in order (the file may start earlier: discovery).
    recorded_risk = [m.data for _, m in by_topic["/alam_policy_node/risk"]]
    assert all(math.isfinite(r) for r in recorded_risk)
    tail = recorded_risk[-len(published_risk) :]
    assert len(published_risk) >= 20 and [round(r, 6) for r in tail] == [round(r, 6) for r in published_risk]
    modes = [m.data for _, m in by_topic["/alam_policy_node/mode"]]
    assert modes[0].startswith("FALLBACK") and "POLICY" in modes, modes
    assert modes[-1] in ("POLICY", "FALLBACK:shutdown"), modes[-20:]
