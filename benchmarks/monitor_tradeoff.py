"""What the monitor's recall target buys: violations and fallback share behind the monitor at each operating point.

    python benchmarks/monitor_tradeoff.py runs/sweeps/default_budget/bundles/task=point,seed=0,algo=sac_alam \
        --width 2 --recalls 0.5 0.7 0.9 0.97 --engage-ticks 1 3 --calibration-episodes 30 --episodes 10

`alam calibrate --recall R` sets risk_high so that R of the calibration steps that precede a violation within H are
flagged. The evidence grid calibrates at R = 0.5; issue 19's goal is zero violations behind the monitor under
randomization widened x2. This script picks the thresholds for several R from one set of calibration rollouts
(under the bundle's training ranges, x1; x2 when x1 holds no violation; episode seeds apart from the evaluation's)
and evaluates the bundle behind the monitor at each, plus alone, under the widened ranges, with the fallback the
evidence uses for its task, at each `--engage-ticks` (the monitor's debounce). The bundle's manifest is not
changed.

Prints one row per bundle and operating point; `--csv` writes them.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from alam_control.deploy import calibration  # noqa: E402
from alam_control.runtime import MonitorConfig, load_bundle  # noqa: E402

CALIBRATION_SEED = calibration.EVAL_SEED + 50_000
"""Calibration episodes apart from the evaluated ones, so thresholds are not picked on the episodes they score."""


def tradeoff(
    bundle_dir: Path,
    width: float,
    recalls: list[float],
    cal_episodes: int,
    episodes: int,
    engage: tuple[int, ...] = (1,),
) -> list[dict]:
    """Rows of (recall target, engage ticks, thresholds, calibration quality, widened-randomization outcome) for one
    bundle. The recall targets are taken as asked (no false-alarm budget: this is the curve the budget cuts)."""
    bundle = load_bundle(bundle_dir)
    m = bundle.manifest
    trained = calibration.training_ranges(m)
    for cal_width in (1.0, 2.0):
        data = calibration.rollout(bundle, cal_episodes, seed=CALIBRATION_SEED, randomize=trained.widened(cal_width))
        if data.labels.any():
            break
    else:
        raise SystemExit(f"{bundle_dir}: no violation in {cal_episodes} calibration episodes at x1 or x2")
    ranges = trained.widened(width)
    alone = calibration.rollout(bundle, episodes, randomize=ranges).summary()
    rows = [{"bundle": bundle_dir.name, "calibrated_at": cal_width, "target_recall": None, "monitor": False, **alone}]
    for recall in recalls:
        high, low, quality = calibration.pick_thresholds(data.risk, data.labels, recall, max_flag_ratio=None)
        for ticks in engage:
            monitor = MonitorConfig.from_manifest(m, {"risk_high": high, "risk_low": low, "engage_ticks": ticks})
            out = calibration.rollout(bundle, episodes, randomize=ranges, monitor=monitor).summary()
            rows.append({"bundle": bundle_dir.name, "calibrated_at": cal_width, "target_recall": recall,
                         "engage_ticks": ticks, "monitor": True, "risk_high": high, "risk_low": low,
                         "cal_recall": quality["recall"], "cal_flag_rate": quality["flag_rate"], **out})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundles", type=Path, nargs="+")
    parser.add_argument("--width", type=float, default=2.0, help="randomization width of the evaluation")
    parser.add_argument("--recalls", type=float, nargs="+", default=[0.5, 0.7, 0.9, 0.97])
    parser.add_argument("--engage-ticks", type=int, nargs="+", default=[1], help="monitor debounce(s) to compare")
    parser.add_argument("--calibration-episodes", type=int, default=30)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--csv", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    print(f"x{args.width:g} randomization, {args.episodes} episodes per row; thresholds from "
          f"{args.calibration_episodes} calibration episodes")  # fmt: skip
    print(f"{'bundle':<40} {'recall':>6} {'engage':>6} {'risk_high':>9} {'cal flag':>8} | {'return':>8} "
          f"{'viol. rate':>10} {'fallback':>8}")  # fmt: skip
    for bundle_dir in args.bundles:
        engage = tuple(args.engage_ticks)
        for r in tradeoff(bundle_dir, args.width, args.recalls, args.calibration_episodes, args.episodes, engage):
            rows.append(r)
            target = "alone" if r["target_recall"] is None else f"{r['target_recall']:g}"
            ticks = f"{r['engage_ticks']:6d}" if r["monitor"] else f"{'-':>6}"
            high = f"{r['risk_high']:9.4g}" if r["monitor"] else f"{'-':>9}"
            flag = f"{r['cal_flag_rate']:8.3f}" if r["monitor"] else f"{'-':>8}"
            print(f"{r['bundle'][:40]:<40} {target:>6} {ticks} {high} {flag} | {r['return']:8.2f} "
                  f"{r['violation_rate']:10.4f} {r['fallback_fraction']:8.3f}", flush=True)  # fmt: skip
    if args.csv:
        keys = sorted({k for r in rows for k in r})
        with args.csv.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
