"""The table of the multiplier issue's check (docs/multiplier.md), from finished sweeps and their evidence runs.

    python benchmarks/multiplier_table.py runs/sweeps/multiplier runs/sweeps/multiplier_diffdrive \
        --evidence docs/multiplier/evidence.json docs/multiplier/diffdrive/evidence.json \
        --extra-run diffdrive=runs/diffdrive_demo

Per task, mean and 95% t-interval over seeds of: the final deterministic evaluation (return, violation rate), the
replay risk metrics of the last evaluation (lambda's AUROC for "a violation within H steps", the share of states
that precede a violation, the share at >= 0.95 lambda_max), and the exported bundle's calibration rollouts
(randomized; AUROC of lambda, whether the reliability table is monotone, the share at the cap). `--extra-run`
adds a run that is not in a sweep (the shipped diff-drive bundle's seed-0 run, whose calibration is its manifest's).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from alam_control.experiments import report  # noqa: E402
from alam_control.learn import rundir  # noqa: E402

SCRIPTED = {"cartpole": 368.7, "point": 25.7, "walker": 167.0, "diffdrive": 14.7}  # docs/tasks.md binding table


def fmt(values: list[float], digits: int = 3) -> str:
    mean, low, high, n = report.interval(values)
    if n == 0:
        return "-"
    return f"{mean:.{digits}g}" if n == 1 or low != low else f"{mean:.{digits}g} ± {(high - low) / 2:.2g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweeps", type=Path, nargs="+")
    parser.add_argument("--evidence", type=Path, nargs="*", default=[])
    parser.add_argument("--extra-run", action="append", default=[], metavar="TASK=RUN_DIR[=BUNDLE]")
    args = parser.parse_args()
    rows: dict[str, list[dict]] = defaultdict(list)
    calibrations = {}
    for path in args.evidence:
        for name, entry in json.loads(path.read_text())["bundles"].items():
            calibrations[name] = entry["calibration"]
    runs = [(r.run_dir.name, r.run_dir) for sweep in args.sweeps for r in report.find_runs(sweep)[0]]
    for item in args.extra_run:
        task, run_dir, *bundle = item.split("=")
        runs.append((f"task={task}", Path(run_dir)))
        manifest = Path(bundle[0] if bundle else REPO / "bundles" / "diffdrive") / "manifest.json"
        calibrations[f"task={task}"] = json.loads(manifest.read_text())["calibration"]
    for name, run_dir in runs:
        task = next(p.split("=")[1] for p in name.split(",") if p.startswith("task="))
        s = rundir.read_summary(run_dir)
        cal = calibrations.get(name, {})
        rows[task].append({"summary": s, "cal": cal})
    print("| task | seeds | return (scripted safe) | violation rate | replay AUROC | replay positive / cap share |"
          " calibration AUROC | monotone | calibration positive / cap share |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for task in ("cartpole", "point", "walker", "diffdrive"):
        group = rows.get(task, [])
        if not group:
            continue
        s = [g["summary"] for g in group]
        c = [g["cal"] for g in group if "risk_auroc" in g["cal"]]
        print(
            f"| {task} | {len(group)} | {fmt([x['return'] for x in s])} ({SCRIPTED[task]}) "
            f"| {fmt([x['violation_rate'] for x in s], 2)} | {fmt([x['replay_risk_auroc'] for x in s])} "
            f"| {fmt([x['replay_positive_share'] for x in s], 2)} / {fmt([x['replay_cap_share'] for x in s], 2)} "
            f"| {fmt([x['risk_auroc'] for x in c])} | {sum(int(x['reliability_monotone']) for x in c)}/{len(c)} "
            f"| {fmt([x['positive_rate'] for x in c], 2)} / {fmt([x['cap_share'] for x in c], 2)} |"
        )


if __name__ == "__main__":
    main()
