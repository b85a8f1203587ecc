"""Wall time and throughput of a 4-trial `alam sweep` with --max-concurrent 1 versus 2 on this machine.

Each trial is SAC-ALaM on the safe cart-pole with 64x64 networks for a few thousand steps (one torch thread per
trial, as every sweep trial). Each setting runs as a real `alam sweep` (its own local Ray, started and stopped
inside the measured wall time, as a user would see it). Prints, per setting: wall time, aggregate env-steps/s
(all trials' steps / sweep wall time), the mean per-trial env-steps/s the trainer itself measured, and the
speedup of 2 over 1. The machine's load average is printed beside, since other jobs skew the figures.

    .venv/bin/python benchmarks/sweep_scaling.py                  # 4 trials x 3000 steps
    .venv/bin/python benchmarks/sweep_scaling.py --steps 5000 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from alam_control.experiments import sweep  # noqa: E402
from alam_control.learn import rundir  # noqa: E402


def write_sweep(directory: Path, trials: int, steps: int, hidden: int) -> Path:
    path = directory / "scaling.yaml"
    sweep = {
        "name": "scaling",
        "base": str(REPO / "configs" / "cartpole_safe_swingup_alam.yaml"),
        "set": {
            "sac.hidden": [hidden, hidden],
            "multiplier.hidden": [hidden, hidden],
            "train.total_steps": steps,
            "train.learning_starts": min(1000, steps // 2),
            "train.eval_every": steps,
            "train.eval_episodes": 1,
            "train.checkpoint_every": max(steps // 3, 1),
            "train.log_every": max(steps // 6, 1),
        },
        "grid": {"seed": list(range(trials))},
    }
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def run_setting(sweep_file: Path, out: Path, max_concurrent: int) -> dict[str, float]:
    """One `alam sweep` run; returns wall time, steps and the trainers' own per-trial rates."""
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "alam_control.cli", "sweep", "--config", str(sweep_file), "--out", str(out),
         "--max-concurrent", str(max_concurrent), "--refresh", "600"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"sweep failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    summaries = [rundir.read_summary(p.parent) for p in sorted(out.glob(f"{sweep.TRIALS_DIR}/*/{rundir.SUMMARY}"))]
    steps = sum(s["steps"] for s in summaries)
    return {
        "max_concurrent": max_concurrent,
        "trials": len(summaries),
        "wall_s": wall,
        "steps": steps,
        "agg_steps_per_s": steps / wall,
        "trial_steps_per_s": sum(s["steps"] / s["wall_time_s"] for s in summaries) / len(summaries),
        "trial_wall_s": sum(s["wall_time_s"] for s in summaries) / len(summaries),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3000, help="env steps per trial")
    parser.add_argument("--hidden", type=int, default=64, help="hidden width of the 2-layer networks")
    parser.add_argument("--repeats", type=int, default=1, help="alternate 1/2 this many times")
    args = parser.parse_args()

    print(f"{args.trials} trials x {args.steps} steps, sac_alam {args.hidden}x{args.hidden}, cartpole-safe_swingup; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")  # fmt: skip
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        sweep_file = write_sweep(Path(tmp), args.trials, args.steps, args.hidden)
        for rep in range(args.repeats):
            for mc in (1, 2):
                r = run_setting(sweep_file, Path(tmp) / f"mc{mc}-{rep}", mc)
                results.append(r)
                print(
                    f"max-concurrent {mc}: wall {r['wall_s']:.1f} s, {r['steps']} steps, "
                    f"aggregate {r['agg_steps_per_s']:.1f} env-steps/s; per trial {r['trial_steps_per_s']:.1f} "
                    f"env-steps/s over {r['trial_wall_s']:.1f} s (trainer's own clock); "
                    f"load {r['load_before']:.2f} -> {r['load_after']:.2f}",
                    flush=True,
                )
    best = {mc: min(r["wall_s"] for r in results if r["max_concurrent"] == mc) for mc in (1, 2)}
    print(f"speedup of max-concurrent 2 over 1 (best wall time of each): {best[1] / best[2]:.2f}x")


if __name__ == "__main__":
    main()
