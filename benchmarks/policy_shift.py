"""Does lambda(s) rank the violations of the stochastic training policy better than the deterministic policy's?

    python benchmarks/policy_shift.py RUN_DIR [RUN_DIR...] --episodes 100

lambda(s) and the cost critic behind it are fitted to the exploring policy (actions sampled from pi), while a
bundle deploys the deterministic one (the mean action). If that mismatch is what keeps lambda's calibration AUROC
below a classifier fitted to the deployed policy's own rollouts (benchmarks/risk_ceiling.py), lambda should rank
the stochastic policy's violations clearly better. This rolls each run's latest checkpoint out both ways on the
same episodes (the calibration's seeds, its training ranges as `alam calibrate` takes them: the run's own
randomization if it trained under one, else the simulator's defaults) and scores lambda(s_t) against "a
violation within the next H steps" of that rollout (`trainer.evaluate`): return, violation rate and AUROC per
policy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import sim  # noqa: E402
from alam_control import config as config_lib  # noqa: E402
from alam_control.deploy.calibration import EVAL_SEED  # noqa: E402
from alam_control.learn import checkpoint, rundir, trainer  # noqa: E402


def score(run_dir: Path, episodes: int, horizon: int) -> dict[str, dict[str, float]]:
    """{"deterministic" | "stochastic": `trainer.evaluate`'s figures} for the run's latest checkpoint."""
    cfg = config_lib.load(run_dir / rundir.CONFIG)
    state, _ = checkpoint.load_latest(run_dir)
    agent = trainer.build_agent(cfg, sim.load(cfg.task, seed=0), torch.Generator().manual_seed(0))
    agent.load_state_dict(state["agent"])
    ranges = cfg.randomization if cfg.randomize else sim.Randomization()
    env = sim.load(cfg.task, seed=0, randomize=ranges)
    return {
        mode: trainer.evaluate(agent, env, episodes, EVAL_SEED, horizon, deterministic=mode == "deterministic")
        for mode in ("deterministic", "stochastic")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--horizon", type=int, default=20)
    args = parser.parse_args()
    print(f"{'run':<45} {'policy':<13} {'return':>8} {'violation rate':>14} {'AUROC':>6}")
    for run in args.runs:
        for mode, row in score(run, args.episodes, args.horizon).items():
            print(f"{run.name:<45} {mode:<13} {row['return']:8.2f} {row['violation_rate']:14.4f} "
                  f"{row['risk_auroc']:6.3f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
