"""alam-ros-demo: the sim bridge and the policy node as two processes from one params YAML, without `ros2 launch`.

    alam-ros-demo                                   # config/diffdrive.yaml, bundle from the YAML (bundles/diffdrive)
    alam-ros-demo --bundle /tmp/b -p risk_high:=5.0 -p risk_low:=2.0 -b push_times_s:=[5.0] --duration 30

The pip-installed ROS 2 wheels ship rclpy and messages but not `launch`; this does what
launch/alam_demo.launch.py does: both nodes from the same `--params-file`, each as its own process, plus a
console status line from ~/mode, ~/risk and the bridge's ground truth. Ctrl-C (or --duration) stops both
(the policy node sends a last stop command). Exits non-zero if a node fails, e.g. on a bad bundle.
"""

from __future__ import annotations

import argparse
import math
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def default_params() -> Path:
    """config/diffdrive.yaml of the installed package (ament share directory) or of the source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory

        shared = Path(get_package_share_directory("alam_ros")) / "config" / "diffdrive.yaml"
        if shared.is_file():
            return shared
    except Exception:  # noqa: BLE001  (no ament index, or the package is not installed with colcon)
        pass
    return Path(__file__).resolve().parents[1] / "config" / "diffdrive.yaml"


def override_file(node: str, overrides: list[str], directory: str) -> Path:
    """A params YAML for `node` with NAME:=VALUE overrides (values parsed as YAML, as `-p` does).

    A second `--params-file` rather than `-p`: ROS 2 gives node-specific YAML entries precedence over `-p`
    (which is a wildcard), so `-p` could not override the main YAML's entries.
    """
    import yaml

    values = {}
    for item in overrides:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise SystemExit(f"alam-ros-demo: expected NAME:=VALUE, got {item!r}")
        values[name] = yaml.safe_load(value)
    path = Path(directory) / f"{node}.yaml"
    path.write_text(yaml.safe_dump({node: {"ros__parameters": values}}))
    return path


def node_command(module: str, params: list[Path]) -> list[str]:
    """The command line of one node process: `python -m alam_ros.<module> --ros-args --params-file ...`."""
    cmd = [sys.executable, "-m", f"alam_ros.{module}", "--ros-args"]
    for path in params:
        cmd += ["--params-file", str(path)]
    return cmd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="alam-ros-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=Path, default=None, help="params YAML for both nodes (default: %(default)s)")
    parser.add_argument("--bundle", default=None, help="bundle directory (overrides the YAML's bundle_dir)")
    parser.add_argument("-p", "--policy-param", action="append", default=[], metavar="NAME:=VALUE")
    parser.add_argument("-b", "--bridge-param", action="append", default=[], metavar="NAME:=VALUE")
    parser.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many seconds (0: run until Ctrl-C)"
    )
    parser.add_argument("--quiet", action="store_true", help="no status line")
    parser.add_argument(
        "--record",
        type=Path,
        default=None,
        metavar="PREFIX",
        help="write PREFIX.csv (one row per risk message: time, risk, mode, true cost, push, x, y, episode), "
        "PREFIX.png and, beside them, map.png (the path coloured by risk) and demo.mcap (the policy node's inputs "
        "and outputs: open it in Foxglove or `ros2 bag play` it)",
    )
    args = parser.parse_args(argv)
    if args.quiet and args.record:
        parser.error("--record needs the status subscriber: drop --quiet")
    params = args.params or default_params()
    if not params.is_file():
        parser.error(f"params file not found: {params}")
    policy_params = list(args.policy_param)
    if args.bundle:
        policy_params.append(f"bundle_dir:={args.bundle}")
    if args.record is not None:
        policy_params.append(f"record:={args.record.parent.resolve() / 'demo.mcap'}")

    tmp = tempfile.mkdtemp(prefix="alam-ros-demo-")
    bridge = [params, override_file("alam_sim_bridge", args.bridge_param, tmp)]
    policy = [params, override_file("alam_policy_node", policy_params, tmp)]
    procs = {
        "alam_sim_bridge": subprocess.Popen(node_command("sim_bridge", bridge)),
        "alam_policy_node": subprocess.Popen(node_command("policy_node", policy)),
    }
    stop = False

    def handle(signum, frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    status = None if args.quiet else _Status()
    start = time.monotonic()
    code = 0
    try:
        while not stop:
            if args.duration and time.monotonic() - start >= args.duration:
                break
            exited = {name: p.returncode for name, p in procs.items() if p.poll() is not None}
            if exited:
                for name, rc in exited.items():
                    print(f"alam-ros-demo: {name} exited with status {rc}", file=sys.stderr)
                code = next((rc for rc in exited.values() if rc), 0) or 1
                break
            if status is not None:
                status.spin(0.2)
            else:
                time.sleep(0.2)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 5.0
        for p in procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if status is not None:
            status.close()
            s = summarize_trace(status.trace, status.goals)
            if status.trace:
                print(
                    f"alam-ros-demo: {s['duration_s']:.0f} s, {s['goals']} goals reached, FALLBACK "
                    f"{100 * s['fallback_share']:.0f} % of the time in {s['fallback_episodes']} episode(s), "
                    f"{s['explained_episodes']} of them within 1 s of a push or a fault ({s['stall_recoveries']} "
                    f"for the progress watch); "
                    f"{s['violations']} violation(s), {s['warned_violations']} of them after the monitor had handed "
                    f"over for risk (within 2 s before); {s['violation_steps']} risk messages during a violation",
                    flush=True,
                )
            if args.record is not None:
                write_trace(status.trace, args.record, _thresholds(args.bundle, params, args.policy_param))
                from alam_control.deploy.calibration import plot_map

                drawn = plot_map(status.trace, status.episodes, status.goal_points, args.record.parent / "map.png")
                if drawn is not None:
                    print(f"alam-ros-demo: wrote {drawn} (the path coloured by risk)", flush=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return code


def _thresholds(bundle: str | None, params: Path, overrides: list[str]) -> tuple[float, float] | None:
    """(risk_high, risk_low) as the node resolves them (`MonitorConfig.from_manifest`: -p overrides, then the
    params YAML, over the bundle's manifest); None when neither has them."""
    import yaml

    from alam_control.runtime import BundleError, MonitorConfig, read_manifest

    node = (yaml.safe_load(params.read_text()) or {}).get("alam_policy_node", {}).get("ros__parameters", {})
    node.update({name: yaml.safe_load(value) for name, _, value in (o.partition(":=") for o in overrides)})
    try:
        manifest = read_manifest(bundle or node.get("bundle_dir", ""))
    except BundleError:
        manifest = {}
    try:
        config = MonitorConfig.from_manifest(manifest, {k: node.get(k) for k in ("risk_high", "risk_low")})
    except ValueError:
        return None
    return config.risk_high, config.risk_low


def summarize_trace(
    trace: list[tuple], goals: int, cause_window_s: float = 1.0, warn_window_s: float = 2.0
) -> dict[str, float]:
    """The demo's figures from its trace: what a user checks after `make demo`.

    Args:
        trace: Rows (t in s, risk, mode, cost, push) as recorded by the status subscriber.
        goals: goals reached (the bridge's count).
        cause_window_s: a FALLBACK episode is "explained" when it begins within this long of a push (before it
            starts, during it or after it ends), or with another reason than ``FALLBACK:risk`` (a fault, the
            start-up wait, or the progress watch's ``FALLBACK:stalled``, which are also counted on their own).
        warn_window_s: a violation was "warned" when the monitor handed over for risk (``FALLBACK:risk``) within
            this long before it began (2 s: the H = 20 steps of the risk label), i.e. lambda rose above risk_high
            before the clearance was gone.

    Returns:
        duration_s, goals, fallback_share (of risk messages), fallback_episodes, explained_episodes,
        stall_recoveries (episodes that began as ``FALLBACK:stalled``), violation_steps (messages with cost > 0),
        violations (onsets: cost > 0 after a row without),
        warned_violations.
    """
    if not trace:
        return {"duration_s": 0.0, "goals": goals, "fallback_share": math.nan, "fallback_episodes": 0,
                "explained_episodes": 0, "stall_recoveries": 0, "violation_steps": 0, "violations": 0,
                "warned_violations": 0}  # fmt: skip
    t = [row[0] for row in trace]
    modes = [row[2] for row in trace]
    in_fb = [m.startswith("FALLBACK") for m in modes]
    pushes = []  # (start, end) of each push; an unfinished one ends with the trace
    for i, row in enumerate(trace):
        if row[4] and (i == 0 or not trace[i - 1][4]):
            pushes.append([t[i], t[-1]])
        elif not row[4] and i > 0 and trace[i - 1][4]:
            pushes[-1][1] = t[i]
    episodes = explained = stalls = 0
    for i, fb in enumerate(in_fb):
        if fb and (i == 0 or not in_fb[i - 1]):
            episodes += 1
            stalls += int(modes[i] == "FALLBACK:stalled")
            fault = modes[i] != "FALLBACK:risk"
            pushed = any(start - cause_window_s <= t[i] <= end + cause_window_s for start, end in pushes)
            explained += int(fault or pushed)
    onsets = [i for i, row in enumerate(trace) if row[3] > 0 and (i == 0 or not trace[i - 1][3] > 0)]
    # Strictly earlier rows: a handover in the row that first shows the violation was decided on that state.
    warned = sum(any(modes[j] == "FALLBACK:risk" for j in range(i) if t[j] >= t[i] - warn_window_s) for i in onsets)
    return {
        "duration_s": t[-1] - t[0],
        "goals": goals,
        "fallback_share": sum(in_fb) / len(in_fb),
        "fallback_episodes": episodes,
        "explained_episodes": explained,
        "stall_recoveries": stalls,
        "violation_steps": sum(1 for row in trace if row[3] > 0),
        "violations": len(onsets),
        "warned_violations": warned,
    }


def write_trace(trace: list[tuple], prefix: Path, thresholds: tuple[float, float] | None) -> None:
    """Writes the recorded trace as PREFIX.csv and a three-panel PREFIX.png (risk, mode, true cost over time).

    Args:
        trace: Rows (t in s since start, risk, mode string, cost of the latest sim step, push in progress, and,
            where known, the robot's x, y and the episode index).
        prefix: Output path without suffix.
        thresholds: (risk_high, risk_low), drawn on the risk panel when known.
    """
    import csv

    prefix.parent.mkdir(parents=True, exist_ok=True)
    with open(prefix.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["t_s", "risk", "mode", "cost", "push", "x", "y", "episode"])
        writer.writerows(trace)
    if not trace:
        print(f"alam-ros-demo: no risk messages recorded; wrote an empty {prefix.with_suffix('.csv')}", file=sys.stderr)
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [row[0] for row in trace]
    fallback = [float(row[2].startswith("FALLBACK")) for row in trace]
    fig, axes = plt.subplots(3, 1, figsize=(9, 5), sharex=True, dpi=100)
    axes[0].plot(t, [row[1] for row in trace], lw=1, label="risk (the bundle's risk_signal)")
    if thresholds is not None:
        axes[0].axhline(thresholds[0], color="tab:red", ls="--", lw=0.8, label="risk_high")
        axes[0].axhline(thresholds[1], color="tab:green", ls="--", lw=0.8, label="risk_low")
    axes[0].set_ylabel("risk")
    axes[0].legend(loc="upper right", fontsize=7)
    axes[1].fill_between(t, fallback, step="post", alpha=0.5, label="FALLBACK")
    axes[1].fill_between(t, [0.5 * row[4] for row in trace], step="post", alpha=0.5, color="tab:orange", label="push")
    axes[1].set_yticks([0, 1], ["POLICY", "FALLBACK"])
    axes[1].legend(loc="upper right", fontsize=7)
    axes[2].step(t, [row[3] for row in trace], where="post", color="tab:red", lw=1)
    axes[2].set_ylabel("true cost")
    axes[2].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(prefix.with_suffix(".png"))
    plt.close(fig)
    print(f"alam-ros-demo: wrote {prefix.with_suffix('.csv')} and {prefix.with_suffix('.png')}")


class _Status:
    """Prints mode changes at once and a status line every 2 s, from the nodes' topics, and records them (a few
    small tuples per second: the end-of-run summary and `--record` use the trace)."""

    def __init__(self) -> None:
        import rclpy
        from rclpy.signals import SignalHandlerOptions
        from std_msgs.msg import Bool, Float32, Int32, String

        self._rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node("alam_ros_demo_status", context=self.context)
        self.mode, self.risk, self.cost, self.goals, self.push = "-", math.nan, 0.0, 0, False
        self.last_print = self.start = time.monotonic()
        self.last_cost = 0.0
        self.trace: list[tuple] = []
        sub = self.node.create_subscription
        sub(String, "/alam_policy_node/mode", self._on_mode, 10)
        sub(Float32, "/alam_policy_node/risk", self._on_risk, 10)
        sub(Float32, "/alam_sim_bridge/cost", self._on_cost, 10)
        sub(Int32, "/alam_sim_bridge/goals_reached", lambda m: setattr(self, "goals", m.data), 10)
        sub(Bool, "/alam_sim_bridge/disturbance", lambda m: setattr(self, "push", m.data), 10)
        # For the map of the run: where the robot was, the goals and each episode's obstacles (latched topics).
        from geometry_msgs.msg import PoseStamped
        from nav_msgs.msg import Odometry
        from visualization_msgs.msg import MarkerArray

        from alam_ros import common

        self.xy = (math.nan, math.nan)
        self.episodes: list[list[tuple[float, float, float]]] = []  # per episode: pillars (x, y, radius)
        self.goal_points: list[tuple[int, float, float]] = []  # (episode, x, y) of each goal set
        sub(Odometry, "/odom", self._on_odom, common.SENSOR_QOS)
        sub(PoseStamped, "/goal_pose", self._on_goal, common.LATCHED_GOAL_QOS)
        sub(MarkerArray, "/alam_sim_bridge/obstacles", self._on_obstacles, common.LATCHED_GOAL_QOS)
        from rclpy.executors import SingleThreadedExecutor

        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def _on_risk(self, msg) -> None:
        self.risk = msg.data
        t = round(time.monotonic() - self.start, 3)
        x, y = self.xy
        self.trace.append((t, msg.data, self.mode, self.last_cost, int(self.push), x, y, len(self.episodes) - 1))

    def _on_odom(self, msg) -> None:
        self.xy = (round(msg.pose.pose.position.x, 4), round(msg.pose.pose.position.y, 4))

    def _on_goal(self, msg) -> None:
        goal = (len(self.episodes) - 1, round(msg.pose.position.x, 4), round(msg.pose.position.y, 4))
        if not self.goal_points or self.goal_points[-1] != goal:
            self.goal_points.append(goal)

    def _on_obstacles(self, msg) -> None:
        from visualization_msgs.msg import Marker

        self.episodes.append([(m.pose.position.x, m.pose.position.y, m.scale.x / 2) for m in msg.markers
                              if m.type == Marker.CYLINDER])  # fmt: skip

    def _on_cost(self, msg) -> None:
        self.cost += msg.data
        self.last_cost = msg.data

    def _on_mode(self, msg) -> None:
        if msg.data != self.mode:
            print(f"[{time.strftime('%H:%M:%S')}] mode {msg.data}  (risk {self.risk:.3g})", flush=True)
        self.mode = msg.data

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=max(0.0, end - time.monotonic()))
        if time.monotonic() - self.last_print >= 2.0:
            self.last_print = time.monotonic()
            push = "  PUSH" if self.push else ""
            print(
                f"[{time.strftime('%H:%M:%S')}] {self.mode:<24} risk {self.risk:8.3g}  goals {self.goals}  "
                f"cost steps {self.cost:.0f}{push}",
                flush=True,
            )

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self._rclpy.shutdown(context=self.context)


if __name__ == "__main__":
    sys.exit(main())
