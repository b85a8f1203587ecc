"""Where a goal-seeking policy stops making progress: stretches in POLICY mode where the robot neither moves nor turns.

    python benchmarks/stalls.py bundles/diffdrive --episodes 40 --widths 1 2
    python benchmarks/stalls.py docs/results/paper/bundles/seed=*,task=diffdrive,algo=* --episodes 40

A navigation policy can stop short of its goal and stay there: the diff-drive robot behind a pillar that stands
between it and the goal, the point robot just outside the goal's disk (docs/results.md, "Standstill"). That is
safe, and the risk monitor does not see it: lambda is low there, so the robot sits in POLICY mode, reaching nothing
until the episode ends. This script rolls each bundle out through the deployed controller (behind its calibrated
monitor, its task's default fallback and its progress watch, `alam_control.runtime.ProgressWatch`; `--no-watch`
without the watch; `--alone` the policy alone) on the diff-drive and point-goal tasks, and reports how much of the
time the robot was stalled, and where.

A step is stalled when it lies in a `--window` (s) of POLICY steps over which the robot moved less than `--move` (m)
and turned less than `--turn` (rad; the diff-drive only: turning on the spot is progress). An episode counts as
stuck when its stalled time reaches `--long` (s). Episode seeds start at `--seed`, apart from calibration and
evaluation seeds.

Prints one row per bundle and width: return, violation rate, fallback share (the watch's recoveries included), the
share of steps the watch's recovery drove, stalled share of the steps, stuck episodes, lambda's median while
stalled against the monitor's risk_low, and where the robot stalls against where it drives (all steps, in
brackets): the median clearance (m to the nearest obstacle's edge), the median distance to the goal's center, the
share of steps whose straight path to the goal crosses an obstacle, and the share where the bundle's Q_c(s, pi(s))
exceeds the constraint's threshold d (the constraint binds there).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from alam_control.deploy import calibration  # noqa: E402
from alam_control.runtime import MonitorConfig, load_bundle  # noqa: E402
from sim import diffdrive, point_goal  # noqa: E402

NAVIGATION = ("diffdrive-safe_navigate", "point-safe_goal")
SCENE = (("clearance", 3, np.median), ("goal_distance", 4, np.median), ("blocked", 5, np.mean),
         ("above_d", 6, np.mean))  # fmt: skip
"""Per-step columns after x, y, heading (`scene`'s, then whether Q_c(s, pi(s)) > d), and how `measure` sums each
up over steps."""


def stalled_steps(xy: np.ndarray, yaw: np.ndarray | None, in_policy: np.ndarray, window: int, move: float,
                  turn: float) -> np.ndarray:  # fmt: skip
    """Steps of one episode that lie in a stalled window.

    Args:
        xy: float [T, 2] the robot's position before each step; yaw: float [T] its unwrapped heading (None for a
            robot without one).
        in_policy: bool [T] the policy drove the step (a fallback's standstill is the fallback's business).
        window: steps per window (>= 1); move: m; turn: rad.

    Returns:
        bool [T]: step t is stalled when some window [k - window, k] containing it spans only POLICY steps and
        the robot moved less than `move` between its ends and turned less than `turn`.
    """
    out = np.zeros(len(xy), bool)
    for k in range(window, len(xy)):
        still = np.linalg.norm(xy[k] - xy[k - window]) < move
        if yaw is not None:
            still = still and abs(yaw[k] - yaw[k - window]) < turn
        if still and in_policy[k - window : k + 1].all():
            out[k - window : k + 1] = True
    return out


def crosses(start: np.ndarray, end: np.ndarray, centers: np.ndarray, radius: float) -> bool:
    """Does the segment start -> end ([2] each) pass within `radius` of any of `centers` [N, 2]?"""
    d = end - start
    t = np.clip((centers - start) @ d / max(float(d @ d), 1e-12), 0.0, 1.0)
    return bool((np.linalg.norm(centers - (start + t[:, None] * d), axis=1) < radius).any())


def scene(env) -> tuple[float, float, float]:
    """(clearance: m from the robot to the nearest obstacle's edge, negative inside one; goal distance: m to the
    goal's center; blocked: 1.0 when the straight path to the goal crosses an obstacle, else 0.0). Obstacles: the
    diff-drive's pillars (widened by its hull; walls count for the clearance only) and the point robot's hazards."""
    physics = env.physics
    robot, goal = np.array(physics.robot_position()), np.array(physics.goal_position())
    if hasattr(physics, "obstacle_clearance"):
        clear = float(physics.obstacle_clearance())
        blocked = crosses(
            robot, goal, np.array(physics.pillar_positions()), diffdrive.PILLAR_RADIUS + diffdrive.HULL_RADIUS
        )
    else:
        clear = -float(env.task.get_constraints(physics)["hazard"])  # the constraint: radius - nearest distance
        blocked = crosses(robot, goal, np.array(physics.hazard_positions()), point_goal.HAZARD_RADIUS)
    return clear, float(np.linalg.norm(goal - robot)), float(blocked)


def measure(bundle_dir: Path, episodes: int, width: float, seed: int, alone: bool, window_s: float, move: float,
            turn: float, long_s: float, watch: bool = True) -> dict[str, float | str]:  # fmt: skip
    """One bundle at one randomization width: the row `main` prints (`watch` False: stall_s 0)."""
    bundle = load_bundle(bundle_dir)
    manifest = bundle.manifest
    if manifest["task"] not in NAVIGATION:
        raise SystemExit(f"{bundle_dir}: task {manifest['task']} is not a navigation task ({', '.join(NAVIGATION)})")
    ranges = calibration.training_ranges(manifest).widened(width)
    monitor = None if alone else MonitorConfig.from_manifest(manifest, None if watch else {"stall_s": 0.0})
    poses: list[tuple[float, ...]] = []  # x, y, heading, *scene

    def pose(env, _tick) -> None:
        physics = env.physics
        x, y = (float(v) for v in physics.robot_position())
        poses.append((x, y, float(physics.heading()) if hasattr(physics, "heading") else np.nan, *scene(env)))

    run = calibration.rollout(bundle, episodes, seed=seed, randomize=ranges, monitor=monitor, on_frame=pose)
    period = float(manifest["control_period_s"])
    window = max(1, round(window_s / period))
    # Q_c(s, pi(s)) > d: the constraint binds at the policy's own action. Where it does not and lambda is ~0, the
    # PHR term and its gradient are 0 there (lambda + rho g < 0): the actor is plain SAC at that state.
    _, _, cost_q = bundle.policy.batch(run.obs)
    pose_arr = np.column_stack([np.asarray(poses), cost_q > float(manifest["cost_threshold"])])
    in_policy = np.asarray(run.modes) == "POLICY"
    stalled = np.zeros(len(pose_arr), bool)
    stuck = 0
    for ep in range(episodes):
        idx = np.flatnonzero(run.episode == ep)
        yaw = pose_arr[idx, 2]
        yaw = None if np.isnan(yaw).any() else np.unwrap(yaw)
        stalled[idx] = stalled_steps(pose_arr[idx, :2], yaw, in_policy[idx], window, move, turn)
        stuck += int(stalled[idx].sum() * period >= long_s)
    figures = run.summary()
    return {
        "bundle": str(bundle_dir), "width": width, "return": figures["return"],
        "violation_rate": figures["violation_rate"], "fallback": figures["fallback_fraction"],
        "recovering": figures["stalled_fraction"],
        "stalled": float(stalled.mean()), "stuck": f"{stuck}/{episodes}",
        "risk_stalled": float(np.median(run.risk[stalled])) if stalled.any() else float("nan"),
        "risk_low": float("nan") if monitor is None else monitor.risk_low,
        **{f"{name}_stalled": float(summary(pose_arr[stalled, col])) if stalled.any() else float("nan")
           for name, col, summary in SCENE},
        **{name: float(summary(pose_arr[:, col])) for name, col, summary in SCENE},
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--widths", type=float, nargs="+", default=[1.0], help="randomization widths (x training)")
    parser.add_argument("--seed", type=int, default=990_000, help="first episode seed")
    parser.add_argument("--alone", action="store_true", help="the policy alone (no risk monitor, no watch)")
    parser.add_argument("--no-watch", action="store_true", help="behind the monitor without the progress watch")
    parser.add_argument("--window", type=float, default=2.0, help="s")
    parser.add_argument("--move", type=float, default=0.02, help="m")
    parser.add_argument("--turn", type=float, default=0.2, help="rad")
    parser.add_argument("--long", type=float, default=5.0, help="s of stalled time that make an episode stuck")
    args = parser.parse_args(argv)
    print(
        f"{'bundle (directory name)':42s} {'width':>5s} {'return':>7s} {'viol':>7s} {'fallbk':>6s} {'recov':>6s} "
        f"{'stalled':>7s} "
        f"{'stuck':>6s} "
        f"{'risk stalled':>12s} {'risk_low':>9s}  " + " / ".join(name for name, _, _ in SCENE) + ": stalled (all)"
    )
    for bundle_dir in args.bundles:
        for width in args.widths:
            r = measure(bundle_dir, args.episodes, width, args.seed, args.alone, args.window, args.move, args.turn,
                        args.long, not args.no_watch)  # fmt: skip
            print(f"{Path(r['bundle']).name:42s} {width:5g} {r['return']:7.2f} {r['violation_rate']:7.4f} "
                  f"{r['fallback']:6.3f} {r['recovering']:6.3f} {r['stalled']:7.3f} {r['stuck']:>6s} "
                  f"{r['risk_stalled']:12.3g} "
                  f"{r['risk_low']:9.3g}  " + " / ".join(f"{r[n + '_stalled']:.2f} ({r[n]:.2f})" for n, _, _ in SCENE),
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
