"""Does lambda rank 'a violation within H steps' better at another H than the metrics' 20?

    python benchmarks/label_horizon.py bundles/diffdrive docs/results/paper/bundles/seed=*,task=diffdrive,algo=sac_alam

The calibration labels a state positive when a violation follows within H = 20 steps (README, "Constraint: H steps
of margin"), whatever margin the bundle was trained to: the diff-drive trains to d = 0.97^60, "the next violation
at least 60 steps away". If lambda had learned that wider margin, 20-step labels would count its early warnings
as false alarms and understate its AUROC. This rolls each bundle out alone exactly as `alam calibrate` does
(`--episodes` under its training ranges, `--width` times as wide, the calibration's seeds), labels the same
states at each of `--horizons`, and prints AUROC with its episode-bootstrap interval and the positive share per H.
The H = 20 column reproduces the calibration's risk_auroc (at the width the bundle was calibrated at).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from alam_control.deploy import calibration  # noqa: E402
from alam_control.learn import metrics  # noqa: E402
from alam_control.runtime import load_bundle  # noqa: E402


def labels_at(cost: np.ndarray, episode: np.ndarray, horizon: int) -> np.ndarray:
    """bool [T]: a violation within `horizon` steps of each step, within its episode (episodes are contiguous)."""
    return np.concatenate([metrics.upcoming_violation_labels(cost[episode == e], horizon) for e in np.unique(episode)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundles", nargs="+")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--horizons", type=int, nargs="+", default=[10, 20, 40, 60, 90])
    parser.add_argument("--width", type=float, default=1.0, help="training ranges widened this many times (a bundle "
                        "that never violates under x1 is calibrated at 2 or 3 by the evidence)")  # fmt: skip
    args = parser.parse_args()
    print(f"{'bundle':<40} {'signal':<7} {'viol':>7}  " + "  ".join(f"{'H ' + str(h):<26}" for h in args.horizons))
    for path in args.bundles:
        bundle = load_bundle(path)
        ranges = calibration.training_ranges(bundle.manifest).widened(args.width)
        data = calibration.rollout(bundle, args.episodes, seed=calibration.EVAL_SEED, randomize=ranges)
        cells = []
        for h in args.horizons:
            labels = labels_at(data.cost, data.episode, h)
            lo, hi = metrics.auroc_interval(data.risk, labels, data.episode)
            cells.append(f"{metrics.auroc(data.risk, labels):.3f} [{lo:.3f},{hi:.3f}] p{labels.mean():.3f}")
        name = Path(path).resolve().name
        head = f"{name:<40} {bundle.risk_signal:<7} {(data.cost > 0).mean():>7.4f}  "
        print(head + "  ".join(f"{c:<26}" for c in cells))


if __name__ == "__main__":
    main()
