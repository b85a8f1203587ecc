"""Sensor -> command latency of alam_policy_node over loopback DDS (ROS 2 Jazzy, rclpy, Fast DDS).

    python benchmarks/ros_latency.py                       # smoke bundle, 100 and 500 Hz, several node set-ups
    python benchmarks/ros_latency.py --bundle bundles/diffdrive --rates 100 500 --duration 10 --json out.json

The policy node runs as its own process (`python -m alam_ros.policy_node`). This process publishes odom, goal and
a 360-beam scan at each rate (odom first, then the scan, paced by a dedicated thread) and listens for cmd_vel
(TwistStamped) and /diagnostics on another thread. The node runs with `cmd_vel_stamp_source:=scan`, so each
command carries the stamp of the newest scan it was computed from; the stamp is the wall clock at publication,
and the latency of a command is its receipt time minus that stamp (one machine, one clock). Reported per set-up:

- latency p50 / p99 / max in ms, over the commands of the measuring window (after a warm-up);
- missed: scans that produced no command (dropped by the keep-last-1 sensor queue while the node was busy,
  or, with a timer, overtaken by the next scan before a tick);
- the node's own compute per tick (from its /diagnostics: mean of the window means, max of the window p99s,
  max), and its CPU use (from /proc, % of one core).

Node set-ups: `tick_on` scan (a tick per scan: event-driven) or timer (control_rate_hz = the publishing rate),
and the rclpy executor (single_threaded, or rclpy.experimental's events executor). `echo/<executor>` replaces the
policy node with the least an rclpy node can do on the same path (`serve_echo`: take the scan, publish a
TwistStamped with its stamp, nothing else): the floor that rclpy, Fast DDS and this machine set under any node.

First, without ROS: the deployed tick itself (`runtime.Controller`, what the node runs per scan) over recorded
inputs (odometry, a goal, 360-beam scans as the `array.array('f')` rclpy delivers), p50 / p99 / max in us, and
the same for its stages measured alone (scan binning, observation, policy, monitor). `--no-ros` stops there.
"""

from __future__ import annotations

import argparse
import array
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PACKAGE_SRC = REPO / "ros2_ws" / "src" / "alam_ros"
SETUPS = [("scan", "single_threaded"), ("scan", "events"), ("timer", "single_threaded")]


def smoke_bundle(directory: Path) -> Path:
    """Trains and exports a tiny diffdrive run (~10 s): the network's size, not its quality, sets the cost."""
    from alam_control import config as config_lib
    from alam_control.deploy import export
    from alam_control.learn import trainer

    config = config_lib.load(REPO / "configs" / "smoke.yaml", ["task=diffdrive-safe_navigate"])
    trainer.train(config, directory / "run", progress=False)
    export.export(directory / "run", directory / "bundle")
    return directory / "bundle"


def _percentiles_us(seconds: list[float]) -> dict[str, float]:
    us = np.asarray(seconds) * 1e6
    return {"p50_us": float(np.percentile(us, 50)), "p99_us": float(np.percentile(us, 99)), "max_us": float(us.max())}


def controller_timing(bundle_dir: Path, ticks: int = 20000, beams: int = 360) -> dict[str, dict[str, float]]:
    """Per-tick time of the deployed tick without ROS, then of each stage alone (in its own loop), over recorded
    inputs.

    "tick": `inputs.scan(...)` + `tick(now)` as the node's scan callback runs them (odometry and goal are stored
    by their own callbacks); "policy+monitor": `bundle.policy(obs)` + `monitor.update`. The first 10 % of each
    loop is warm-up and not counted.
    """
    import array

    from alam_control.runtime import Controller, MonitorConfig, RiskMonitor, load_bundle

    bundle = load_bundle(bundle_dir)
    controller = Controller(bundle, MonitorConfig(1e6, 1e6), "retreat", start_in_fallback=False)
    rng = np.random.default_rng(0)
    scans = [array.array("f", rng.uniform(0.1, 3.0, beams).astype(np.float32).tobytes()) for _ in range(64)]
    poses = rng.uniform(-1.0, 1.0, (64, 3)).tolist()
    inc = 2 * math.pi / beams
    inputs = controller.inputs
    observer = inputs.observer
    monitor = RiskMonitor(MonitorConfig(1e6, 1e6), start_in_fallback=False)
    binned = observer.bin(scans[0], 0.0, inc)
    observations = [observer(pose, (0.1, 0.0), (1.0, 0.5), binned) for pose in poses]

    def policy_and_monitor(k: int) -> None:
        monitor.update(0.01 * k, bundle.policy(observations[k % 64])[1], None)

    stages = {
        "tick": None,  # below: odometry and goal arrive in their own callbacks, not part of the scan tick
        "bin": lambda k: observer.bin(scans[k % 64], 0.0, inc),
        "observe": lambda k: observer(poses[k % 64], (0.1, 0.0), (1.0, 0.5), binned),
        "policy": lambda k: bundle.policy(observations[k % 64]),
        "monitor": lambda k: monitor.update(0.01 * k, 0.5, None),
        "policy+monitor": policy_and_monitor,
    }
    clock = time.perf_counter
    timing = {}
    for name, stage in stages.items():
        seconds = []
        warm = ticks // 10
        for k in range(ticks + warm):
            if stage is None:
                now = 0.01 * k
                inputs.odom(now, poses[k % 64], (0.1, 0.0))
                inputs.goal(now, (1.0, 0.5))
                t0 = clock()
                inputs.scan(now, scans[k % 64], 0.0, inc)
                controller.tick(now)
            else:
                t0 = clock()
                stage(k)
            if k >= warm:
                seconds.append(clock() - t0)
        timing[name] = _percentiles_us(seconds)
    return timing


def serve_echo(executor_kind: str) -> None:
    """The latency floor's node: subscribes to odom and scan as the policy node does, and answers each scan with a
    TwistStamped carrying the scan's stamp, at once, from the callback. Runs until SIGINT."""
    import rclpy
    from alam_ros import common
    from geometry_msgs.msg import TwistStamped
    from nav_msgs.msg import Odometry
    from sensor_msgs.msg import LaserScan

    common.init(None)
    spinner = common.Spinner()
    node = rclpy.create_node("alam_latency_echo")
    pub = node.create_publisher(TwistStamped, "cmd_vel", common.COMMAND_QOS)
    cmd = TwistStamped()

    def on_scan(msg: LaserScan) -> None:
        cmd.header.stamp = msg.header.stamp
        pub.publish(cmd)

    node.create_subscription(Odometry, "odom", lambda msg: None, common.SENSOR_QOS)
    node.create_subscription(LaserScan, "scan", on_scan, common.SENSOR_QOS)
    spinner.spin(node, executor_kind)
    node.destroy_node()
    rclpy.shutdown()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_setup(
    bundle: Path,
    rate: float,
    tick_on: str,
    executor: str,
    duration: float,
    warmup: float,
    env,
    record: bool = False,
    receiver: str = "single_threaded",
) -> dict:
    import rclpy
    from alam_ros import common
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped, TwistStamped
    from nav_msgs.msg import Odometry
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import LaserScan

    params = {
        "bundle_dir": str(bundle),
        "control_rate_hz": float(rate),
        "tick_on": tick_on,
        "executor": executor,
        "cmd_vel_stamped": "true",
        "cmd_vel_stamp_source": "scan",
        "risk_high": 1.0e6,  # the monitor off: latency of the policy path, every tick
        "risk_low": 1.0e6,
        "allow_unsafe_parameters": "true",
        "release_dwell_s": 0.2,
        "obs_timeout_s": 0.5,
        "diagnostics_period_s": 0.5,
    }
    if record:  # the node writes its run to an MCAP file (alam_ros.recorder)
        params["record"] = tempfile.NamedTemporaryFile(suffix=".mcap", delete=False).name
    cmd = [sys.executable, "-m", "alam_ros.policy_node", "--ros-args"]
    for k, v in params.items():
        cmd += ["-p", f"{k}:={v}"]
    if tick_on == "echo":
        cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-echo", executor]
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115
    node_proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
    node = rclpy.create_node("alam_latency_bench", context=context)
    sensor, latched = common.SENSOR_QOS, common.LATCHED_GOAL_QOS
    reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)
    odom_pub = node.create_publisher(Odometry, "odom", sensor)
    scan_pub = node.create_publisher(LaserScan, "scan", sensor)
    goal_pub = node.create_publisher(PoseStamped, "goal_pose", latched)
    received: list[tuple[int, int]] = []  # (scan stamp ns, receipt ns)
    diags: list[dict[str, str]] = []

    def on_cmd(msg: TwistStamped) -> None:
        now = time.time_ns()
        received.append((msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec, now))

    def on_diag(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith("risk monitor"):
                diags.append({kv.key: kv.value for kv in status.values} | {"_t": time.monotonic()})

    node.create_subscription(TwistStamped, "cmd_vel", on_cmd, reliable)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, reliable)
    spin_executor = common.make_executor(receiver, context)  # its own overhead is inside every latency measured
    spin_executor.add_node(node)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            spin_executor.spin_once(timeout_sec=0.05)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()

    goal = PoseStamped()
    goal.header.frame_id = "odom"
    goal.pose.position.x, goal.pose.position.y, goal.pose.orientation.w = 1.0, 0.5, 1.0
    goal_pub.publish(goal)
    odom = Odometry()
    odom.header.frame_id, odom.child_frame_id = "odom", "base_link"
    odom.pose.pose.orientation.w = 1.0
    scan = LaserScan()
    scan.header.frame_id = "base_scan"
    scan.angle_min, scan.angle_increment = 0.0, 2 * math.pi / 360
    scan.angle_max = scan.angle_increment * 359
    scan.range_min, scan.range_max = 0.12, 3.5
    rng = np.random.default_rng(0)
    # Typed arrays, as a driver's message already holds them: a list would be converted inside publish(), inside
    # the measured window, and that cost is this process's, not the node's.
    ranges = [array.array("f", rng.uniform(0.3, 3.0, 360).astype(np.float32).tobytes()) for _ in range(16)]

    # Wait for the node: commands arrive once it is up and subscribed (the fallback is published from the start).
    sent: list[int] = []
    period = 1.0 / rate
    deadline = time.monotonic() + 30.0
    measuring_from = None
    i = 0
    t_next = time.monotonic()
    end = None
    cpu0 = None
    while True:
        now = time.monotonic()
        if end is not None and now >= end:
            break
        if end is None and now > deadline:
            break
        if measuring_from is None and received and end is None:
            # The node answers: warm up, then measure.
            measuring_from = now + warmup
            end = measuring_from + duration
        if measuring_from is not None and cpu0 is None and now >= measuring_from:
            cpu0 = (cpu_seconds(node_proc.pid), now)
        # Pace: sleep to ~0.3 ms before the slot, then spin with sleep(0), which releases the GIL, so the receiving
        # thread is never kept from stamping a command by this loop (a bare `pass` loop held it up to the
        # interpreter's 5 ms switch interval).
        delay = t_next - time.monotonic()
        if delay > 0.0005:
            time.sleep(delay - 0.0003)
        while time.monotonic() < t_next:
            time.sleep(0)
        odom.header.stamp.sec, odom.header.stamp.nanosec = divmod(time.time_ns(), 1_000_000_000)
        odom_pub.publish(odom)
        scan.ranges = ranges[i % len(ranges)]
        # The latency starts as the scan, the message the node ticks on, is handed to DDS (odom went first).
        stamp = time.time_ns()
        scan.header.stamp.sec, scan.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        scan_pub.publish(scan)
        if i % int(rate) == 0:
            goal_pub.publish(goal)
        if cpu0 is not None:
            sent.append(stamp)
        i += 1
        t_next += period
        if t_next < time.monotonic() - period:  # fell behind by more than a period: do not burst
            t_next = time.monotonic()
    cpu1 = (cpu_seconds(node_proc.pid), time.monotonic()) if cpu0 is not None else None
    time.sleep(0.2)  # in-flight commands
    stop.set()
    spinner.join(timeout=1.0)
    node_proc.send_signal(signal.SIGINT)
    try:
        node_proc.wait(timeout=5.0)
    except subprocess.TimeoutExpired:
        node_proc.kill()
    spin_executor.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=context)
    if cpu0 is None:
        log.seek(0)
        raise RuntimeError(f"the policy node never answered:\n{log.read()[-3000:]}")

    sent_set = set(sent)
    first = {}
    for stamp, recv in received:
        if stamp in sent_set and stamp not in first:
            first[stamp] = recv
    latency_ms = np.array([(first[s] - s) / 1e6 for s in sent if s in first])
    window = [d for d in diags if d["_t"] >= cpu0[1]]

    def col(key: str) -> np.ndarray:
        return np.array([float(d[key]) for d in window if d.get(key) not in (None, "nan")])

    ticks = [int(d["ticks"]) for d in window]
    return {
        "rate_hz": rate,
        "tick_on": tick_on,
        "executor": executor,
        "record": record,
        "scans_sent": len(sent),
        "send_rate_hz": len(sent) / (cpu1[1] - cpu0[1]),
        "commands_matched": len(first),
        "missed": len(sent) - len(first),
        "missed_fraction": (len(sent) - len(first)) / max(1, len(sent)),
        "latency_ms_p50": float(np.percentile(latency_ms, 50)) if len(latency_ms) else math.nan,
        "latency_ms_p99": float(np.percentile(latency_ms, 99)) if len(latency_ms) else math.nan,
        "latency_ms_max": float(latency_ms.max()) if len(latency_ms) else math.nan,
        "node_ticks": (ticks[-1] - ticks[0]) if len(ticks) > 1 else 0,
        "node_watchdog_or_late_ticks": int(window[-1]["missed_ticks"]) - int(window[0]["missed_ticks"])
        if window
        else 0,
        "compute_ms_mean": float(col("tick_compute_ms_mean").mean()) if window else math.nan,
        "compute_ms_p99": float(col("tick_compute_ms_p99").max()) if window else math.nan,
        "compute_ms_max": float(col("tick_compute_ms_max").max()) if window else math.nan,
        "node_cpu_percent": 100.0 * (cpu1[0] - cpu0[0]) / (cpu1[1] - cpu0[1]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=None, help="diffdrive bundle (default: a smoke bundle)")
    parser.add_argument("--rates", type=float, nargs="+", default=[100.0, 500.0])
    parser.add_argument("--duration", type=float, default=10.0, help="measuring window per set-up, s")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument(
        "--setups",
        nargs="+",
        default=[f"{t}/{e}" for t, e in SETUPS],
        help="tick_on/executor pairs, /record appended to record an MCAP file (default: %(default)s)",
    )
    parser.add_argument(
        "--receiver",
        choices=("single_threaded", "events"),
        default="single_threaded",
        help="executor of this process's command subscriber (its overhead is part of every latency measured)",
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--ticks", type=int, default=20000, help="controller ticks timed without ROS")
    parser.add_argument("--no-ros", action="store_true", help="time the controller without ROS only")
    parser.add_argument("--serve-echo", metavar="EXECUTOR", help=argparse.SUPPRESS)  # the echo set-up's process
    args = parser.parse_args()

    sys.path[:0] = [str(REPO), str(PACKAGE_SRC)]
    if args.serve_echo:
        serve_echo(args.serve_echo)
        return 0
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(env.get("ROS_DOMAIN_ID") or 150 + os.getpid() % 80)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(PACKAGE_SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["RCUTILS_COLORIZED_OUTPUT"] = "0"
    os.environ.update(ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    tmp = tempfile.TemporaryDirectory(prefix="ros_latency_")
    bundle = args.bundle
    if bundle is None:
        trained = REPO / "bundles" / "diffdrive"
        bundle = trained if (trained / "manifest.json").is_file() else smoke_bundle(Path(tmp.name))
    print(f"bundle {bundle}; {os.cpu_count()} CPUs; ROS_DOMAIN_ID {env['ROS_DOMAIN_ID']}", flush=True)
    timing = controller_timing(bundle, args.ticks)
    print(f"controller without ROS ({args.ticks} ticks, 360-beam scans): per tick, us")
    for name, row in timing.items():
        print(f"  {name:>15}: p50 {row['p50_us']:7.1f}  p99 {row['p99_us']:7.1f}  max {row['max_us']:8.1f}")
    results: list[dict] = [{"controller_us": timing}]
    if args.no_ros:
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
        return 0
    header = (
        f"{'rate':>5} {'tick_on':>7} {'executor':>15} | {'lat p50':>8} {'p99':>7} {'max':>7} ms | "
        f"{'missed':>13} | {'compute mean':>12} {'p99':>6} {'max':>6} ms | {'node CPU':>8}"
    )
    print(header)
    print("-" * len(header))
    for rate in args.rates:
        for setup in args.setups:
            tick_on, executor, *extra = setup.split("/")
            r = run_setup(
                bundle, rate, tick_on, executor, args.duration, args.warmup, env, extra == ["record"], args.receiver
            )
            executor = executor + (" +rec" if extra else "")
            results.append(r)
            print(
                f"{rate:5.0f} {tick_on:>7} {executor:>15} | {r['latency_ms_p50']:8.3f} {r['latency_ms_p99']:7.3f} "
                f"{r['latency_ms_max']:7.2f} ms | {r['missed']:5d}/{r['scans_sent']:<7d} | "
                f"{r['compute_ms_mean']:12.3f} {r['compute_ms_p99']:6.3f} {r['compute_ms_max']:6.2f} ms | "
                f"{r['node_cpu_percent']:7.1f}%",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
