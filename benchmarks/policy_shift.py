"""Does lambda(s) rank the violations of the stochastic training policy better than the deterministic policy's?

    python benchmarks/policy_shift.py RUN_DIR [RUN_DIR...] --episodes 100

lambda(s) and the cost critic behind it are fitted to the exploring policy (actions sampled from pi), while a
bundle deploys the deterministic one (the mean action). If that mismatch is what keeps lambda's calibration AUROC
below a classifier fitted to the deployed policy's own rollouts (benchmarks/risk_ceiling.py), lambda should rank
the stochastic policy's violations clearly better. This rolls each run's latest checkpoint out both ways on the
same episodes (the calibration's seeds, its training ranges as `alam calibrate` takes them: the run's own
randomization if it trained under one, else the simulator's defaults) and scores lambda(s_t) against "a
violation within the next H steps" of that rollout: violation rate, positive share and AUROC per policy.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import sim  # noqa: E402
from alam_control import config as config_lib  # noqa: E402
from alam_control.deploy.calibration import EVAL_SEED  # noqa: E402
from alam_control.learn import checkpoint, metrics, rundir, trainer  # noqa: E402


def score(run_dir: Path, episodes: int, horizon: int) -> dict[str, dict[str, float]]:
    """{"deterministic" | "stochastic": {violation_rate, positive_share, auroc}} for the run's latest checkpoint."""
    cfg = config_lib.load(run_dir / rundir.CONFIG)
    state, _ = checkpoint.load_latest(run_dir)
    agent = trainer.build_agent(cfg, sim.load(cfg.task, seed=0), torch.Generator().manual_seed(0))
    agent.load_state_dict(state["agent"])
    ranges = cfg.randomization if cfg.randomize else sim.Randomization()
    env = sim.load(cfg.task, seed=0, randomize=ranges)
    out = {}
    for mode in ("deterministic", "stochastic"):
        act = functools.partial(agent.act, deterministic=mode == "deterministic")
        lams, labels, violations, steps = [], [], 0, 0
        for ep in range(episodes):
            episode = sim.run_episode(env, act, EVAL_SEED + ep)
            lams.append(agent.lambdas(episode.obs).cpu().numpy())
            labels.append(metrics.upcoming_violation_labels(episode.costs, horizon))
            violations += int((episode.costs > 0).sum())
            steps += len(episode.costs)
        lam, label = np.concatenate(lams), np.concatenate(labels)
        out[mode] = {"violation_rate": violations / steps, "positive_share": float(label.mean()),
                     "auroc": metrics.auroc(lam, label)}  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--horizon", type=int, default=20)
    args = parser.parse_args()
    print(f"{'run':<45} {'policy':<13} {'violation rate':>14} {'positives':>9} {'AUROC':>6}")
    for run in args.runs:
        for mode, row in score(run, args.episodes, args.horizon).items():
            print(f"{run.name:<45} {mode:<13} {row['violation_rate']:14.4f} {row['positive_share']:9.3f} "
                  f"{row['auroc']:6.3f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
