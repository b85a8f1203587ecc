"""The learning check of ``train.precision``: final return and violation rate of bf16 runs against float32 runs.

Reads every finished run under RUNS (a folder of run directories, e.g. a sweep of configs/sweeps/precision.yaml
or plain `alam train` runs), groups them by task and ``train.precision`` (from each run's config.yaml), and prints
per task: the mean and 95 % t-interval of each precision's final evaluation over seeds, wall time, and the
difference bf16 - float32 with Welch's 95 % interval. "Within seed noise" means that interval contains 0.

    python benchmarks/precision_check.py runs/precision
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml
from scipy import stats

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from alam_control.experiments import report  # noqa: E402
from alam_control.learn import rundir  # noqa: E402

METRICS = ("return", "violation_rate", "wall_time_s")


def welch(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """mean(b) - mean(a) and its Welch 95 % interval (NaN bounds with fewer than 2 values a side)."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    diff = float(y.mean() - x.mean())
    if len(x) < 2 or len(y) < 2:
        return diff, math.nan, math.nan
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(vx + vy)
    if se == 0:
        return diff, diff, diff
    dof = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    half = float(stats.t.ppf(0.975, dof)) * se
    return diff, diff - half, diff + half


def mean_ci(values: list[float]) -> str:
    """'mean ± half-width' of the 95 % t-interval (report.interval, as every results table here)."""
    mean, low, high, _ = report.interval(values)
    return f"{mean:.3g}" if math.isnan(low) else f"{mean:.3g} ± {(high - low) / 2:.2g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path)
    args = parser.parse_args()

    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for run in sorted(p for p in args.runs.rglob(rundir.SUMMARY)):
        config = yaml.safe_load((run.parent / rundir.CONFIG).read_text())
        summary = rundir.read_summary(run.parent)
        groups[(config["task"], config["train"].get("precision", "float32"))].append(summary)

    print("| task | precision | seeds | return | violation rate | wall time (s) |\n|---|---|---|---|---|---|")
    for (task, precision), runs in sorted(groups.items()):
        cells = " | ".join(mean_ci([r[m] for r in runs]) for m in METRICS)
        print(f"| {task} | {precision} | {len(runs)} | {cells} |")
    print("\n| task | metric | bf16 - float32 (Welch 95 % interval) | within seed noise |\n|---|---|---|---|")
    for task in sorted({t for t, _ in groups}):
        a, b = groups.get((task, "float32"), []), groups.get((task, "bfloat16"), [])
        if not a or not b:
            continue
        for metric in METRICS:
            diff, low, high = welch([r[metric] for r in a], [r[metric] for r in b])
            noise = "yes" if low <= 0 <= high else ("no" if math.isfinite(low) else "n/a")
            print(f"| {task} | {metric} | {diff:+.3g} [{low:+.3g}, {high:+.3g}] | {noise} |")


if __name__ == "__main__":
    main()
