"""How well could any risk estimate from this observation rank upcoming violations? lambda(s) against a classifier
fitted to the deployed policy's own labelled rollouts.

    python benchmarks/risk_ceiling.py bundles/diffdrive --train-episodes 500 --episodes 100 [--push-rate 0]

lambda(s) is trained from the cost critic, a TD estimate of the *training* policy's risk. Its calibration AUROC can
fall short because that estimate is poor, or because the observation cannot tell what comes next (a goal that
moves when it is reached, a push that has not begun, sensor noise). To tell the two apart this rolls the bundle out
alone (`calibration.rollout`, its training ranges; `--push-rate` overrides the pushes) for `--train-episodes`
episodes, labels every state "a violation within the next H steps" from what the deployed policy then did, and
fits an MLP classifier on (observation -> label) by cross-entropy: a direct estimate of the calibration label, with
none of the critic's bootstrapping. Both, and the bundle's Q_c(s, a) of the action it takes, are then scored on
`--episodes` held-out episodes (other seeds): AUROC with its episode-bootstrap interval, and by lead
(`metrics.auroc_by_lead`).

The classifier is not an upper bound (more data or another model may do better), but when it does no better
than lambda on 5x the calibration data, the shortfall is in what the observation tells, not in how lambda learned.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from alam_control.deploy import calibration  # noqa: E402
from alam_control.learn import metrics  # noqa: E402
from alam_control.runtime import load_bundle  # noqa: E402

TRAIN_SEED = 50_000  # episode seeds of the classifier's data, apart from the held-out EVAL_SEED episodes


def fit_classifier(obs: np.ndarray, labels: np.ndarray, hidden: int, epochs: int, seed: int = 0):
    """An MLP P(label | obs) by cross-entropy, inputs standardized: ``[N, O], [N] -> (obs [M, O] -> logits [M])``."""
    torch.manual_seed(seed)
    x, y = torch.as_tensor(obs, dtype=torch.float32), torch.as_tensor(labels, dtype=torch.float32)
    mean, std = x.mean(0), x.std(0) + 1e-6
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, 1),
    )  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), 1e-3, weight_decay=1e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(256):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net((x[idx] - mean) / std)[:, 0], y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

    @torch.no_grad()
    def score(o: np.ndarray) -> np.ndarray:
        return net((torch.as_tensor(o, dtype=torch.float32) - mean) / std)[:, 0].numpy()

    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--train-episodes", type=int, default=500)
    parser.add_argument("--episodes", type=int, default=100, help="held-out episodes both are scored on")
    parser.add_argument("--horizon", type=int, default=20)
    parser.add_argument("--push-rate", type=float, default=None, help="pushes per s (default: the bundle's)")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(1)
    bundle = load_bundle(args.bundle)
    ranges = calibration.training_ranges(bundle.manifest)
    if args.push_rate is not None:
        ranges = dataclasses.replace(ranges, push_rate=args.push_rate)
    train = calibration.rollout(bundle, args.train_episodes, seed=TRAIN_SEED, randomize=ranges, horizon=args.horizon)
    test = calibration.rollout(bundle, args.episodes, seed=calibration.EVAL_SEED, randomize=ranges,
                               horizon=args.horizon)  # fmt: skip
    score = fit_classifier(train.obs, train.labels, args.hidden, args.epochs)
    onsets = len(metrics.violation_onsets(test.cost, test.episode))
    print(f"{args.bundle}: randomization {ranges}")
    print(f"classifier data: {args.train_episodes} episodes, {len(train.cost)} states, "
          f"{len(metrics.violation_onsets(train.cost, train.episode))} violation onsets; held out: {args.episodes} "
          f"episodes, {onsets} onsets, positive share {test.labels.mean():.3f}")  # fmt: skip
    edges = calibration.lead_edges(args.horizon)
    header = " | ".join(f"k {lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:], strict=True))
    print(f"\n| risk estimate | AUROC (95 % interval) | {header} |\n|---|---|{'---|' * (len(edges) - 1)}")
    cost_q = bundle.policy.batch(test.obs)[2]
    if bundle.risk_signal == "lambda":
        floor = 0.01 * float(bundle.manifest["lambda_max"])
        print(f"lambda below 1 % of its cap on {(test.risk < floor).mean():.3f} of the states, "
              f"{(test.risk[test.labels] < floor).mean():.3f} of the positives")  # fmt: skip
    estimates = [(f"{bundle.risk_signal}(s) of the bundle", test.risk)]
    if bundle.risk_signal != "cost_q" and np.isfinite(cost_q).all():
        estimates.append(("Q_c(s, a) of the deployed action", cost_q))
    estimates.append((f"classifier {args.hidden}x{args.hidden} on the policy's labels", score(test.obs)))
    for name, values in estimates:
        low, high = metrics.auroc_interval(values, test.labels, test.episode)
        by_lead = " | ".join(f"{r['auroc']:.3f}" for r in metrics.auroc_by_lead(values, test.cost, test.episode, edges))
        print(f"| {name} | {metrics.auroc(values, test.labels):.3f} ({low:.3f}-{high:.3f}) | {by_lead} |", flush=True)


if __name__ == "__main__":
    main()
