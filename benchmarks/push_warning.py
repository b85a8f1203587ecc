"""Does lambda(s) warn before a violation when the robot is pushed? Bundles side by side on the same rollouts.

    python benchmarks/push_warning.py bundles/diffdrive /tmp/old_bundle --episodes 20
    python benchmarks/push_warning.py bundles/diffdrive --episodes 40 --seed 30000 --monitor [--push-rate 0]

Rolls each bundle out alone (its policy drives, monitor off: what the risk signal says, not what a fallback does
with it) for N episodes from the same seeds under domain randomization with pushes: the first bundle's training
ranges (manifest `randomization`, `alam_control.deploy.calibration.training_ranges`), or sim's defaults with
`--push-rate` pushes per s. Per bundle it prints, over all steps:

- AUROC of lambda(s) and of Q_c(s, a) for "a violation within the next H steps";
- warned: the share of violation onsets (cost 1 after a step without) with lambda > the manifest's risk_high at
  some step of the H before it (the monitor could have handed over before the clearance was gone);
- flagged: the share of all steps with lambda > risk_high, and the precision of that flag.

With --monitor it also rolls each bundle out behind its runtime monitor (manifest thresholds) and the diff
drive's retreat fallback, and prints return, violation rate and fallback share alone vs monitored. With
--scripted it adds the task's scripted safe policy (`sim.TASKS.safe_policy`) on the same episodes: issue 12's bar
is a return at least the scripted one's at a violation rate <= 0.005.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import sim  # noqa: E402
from alam_control.deploy import calibration  # noqa: E402
from alam_control.learn import metrics  # noqa: E402
from alam_control.runtime import MonitorConfig, load_bundle  # noqa: E402


def warned_share(risk: np.ndarray, cost: np.ndarray, episode: np.ndarray, threshold: float, horizon: int) -> tuple:
    """(warned onsets, onsets): onsets of a violation with risk > threshold at some step of the `horizon` before
    it, in the same episode. All arrays [T]."""
    onsets = metrics.violation_onsets(cost, episode)
    warned = 0
    for i in onsets:
        before = slice(max(0, i - horizon), i)
        warned += bool((risk[before][episode[before] == episode[i]] > threshold).any())
    return warned, len(onsets)


def measure(path: str, episodes: int, ranges: sim.Randomization, horizon: int, seed: int) -> dict[str, float]:
    bundle = load_bundle(path)
    data = calibration.rollout(bundle, episodes, seed=seed, randomize=ranges, horizon=horizon)
    cost_q = bundle.policy.batch(data.obs)[2]
    episode = data.episode if data.episode is not None else np.zeros(len(data.cost), int)
    risk_high = float(bundle.manifest["risk_high"])
    warned, onsets = warned_share(data.risk, data.cost, episode, risk_high, horizon)
    flagged = data.risk > risk_high
    return {
        "steps": len(data.cost),
        "violation_rate": float((data.cost > 0).mean()),
        "auroc_lambda": metrics.auroc(data.risk, data.labels),
        "auroc_cost_q": metrics.auroc(cost_q, data.labels),
        "risk_high": risk_high,
        "onsets": onsets,
        "warned_onsets": warned,
        "warned": warned / onsets if onsets else float("nan"),
        "flagged": float(flagged.mean()),
        "precision": float(data.labels[flagged].mean()) if flagged.any() else float("nan"),
        "return": float(np.mean(data.returns)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--horizon", type=int, default=20)
    parser.add_argument("--push-rate", type=float, default=None, help="pushes per s (default: the first bundle's)")
    parser.add_argument("--seed", type=int, default=calibration.EVAL_SEED, help="first episode seed")
    parser.add_argument("--monitor", action="store_true", help="also alone vs behind monitor + retreat")
    parser.add_argument("--scripted", action="store_true", help="also the task's scripted safe policy")
    args = parser.parse_args()
    ranges = calibration.training_ranges(load_bundle(args.bundles[0]).manifest)
    if args.push_rate is not None:
        ranges = dataclasses.replace(ranges, push_rate=args.push_rate)
    print(f"{args.episodes} episodes per bundle, randomization {ranges}")
    print("| bundle | return | violation rate | AUROC lambda | AUROC Q_c | onsets | warned | flagged | precision |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in args.bundles:
        m = measure(path, args.episodes, ranges, args.horizon, args.seed)
        print(f"| {path} | {m['return']:.2f} | {m['violation_rate']:.3f} | {m['auroc_lambda']:.3f} | "
              f"{m['auroc_cost_q']:.3f} | {m['onsets']} | {m['warned_onsets']} ({m['warned']:.2f}) | "
              f"{m['flagged']:.3f} | "
              f"{m['precision']:.2f} |", flush=True)  # fmt: skip
    if args.monitor:
        print("\n| bundle | policy | return | violation rate | fallback share |\n|---|---|---|---|---|")
        for path in args.bundles:
            bundle = load_bundle(path)
            for monitor in (None, MonitorConfig.from_manifest(bundle.manifest, {})):
                data = calibration.rollout(bundle, args.episodes, seed=args.seed, randomize=ranges, monitor=monitor,
                                           fallback="retreat")  # fmt: skip
                share = float(np.mean([m != "POLICY" for m in data.modes]))
                print(f"| {path} | {'+ monitor + retreat' if monitor else 'alone'} | {np.mean(data.returns):.2f} | "
                      f"{(data.cost > 0).mean():.4f} | {share:.3f} |", flush=True)  # fmt: skip
    if args.scripted:
        task = load_bundle(args.bundles[0]).manifest["task"]
        ret, rate = scripted(task, args.episodes, ranges, args.seed)
        print(f"\nscripted safe policy of {task}, same episodes: return {ret:.2f}, violation rate {rate:.4f}")


def scripted(task: str, episodes: int, ranges: sim.Randomization, seed: int) -> tuple[float, float]:
    """(mean return, violation rate) of the task's scripted safe policy over the episodes `rollout` uses."""
    env = sim.load(task, seed=seed, randomize=ranges)
    try:
        policy = sim.TASKS.safe_policy(env)
        runs = sim.run_episodes(env, policy, episodes, seed)
    finally:
        env.close()
    return float(np.mean([r.ret for r in runs])), float(np.mean(np.concatenate([r.costs for r in runs]) > 0))


if __name__ == "__main__":
    main()
