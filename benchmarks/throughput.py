"""Training throughput: our sac_alam (and sac) versus Stable-Baselines3 SAC, side by side in one run.

Both train on the same task at update-to-data 1, batch 256, 256x256 MLPs, same torch thread count. We time only
the learning phase (after the random warm-up), and alternate the contenders over several rounds so that a noisy
neighbour on this shared machine hurts both alike. Prints env-steps/s per contender and the ratio of medians.

    make bench                              # or:
    .venv/bin/python benchmarks/throughput.py --steps 3000 --rounds 2
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import sim
from alam_control import config as config_lib
from alam_control.learn import rundir, trainer

WARMUP = 1000  # random steps before learning (not timed)


def ours(task: str, algo: str, steps: int, threads: int, compile_: bool, precision: str = "float32") -> float:
    """env-steps/s of the real training loop (alam_control.learn.trainer.train) during its learning phase."""
    log_every = 250
    cfg = config_lib.from_dict(
        {
            "task": task,
            "algo": {"name": algo},
            "sac": {"hidden": [256, 256], "batch_size": 256},
            "multiplier": {"hidden": [256, 256]},
            "train": {
                "total_steps": WARMUP + steps,
                "learning_starts": WARMUP,
                "eval_every": 10**9,  # only the final evaluation, which is outside the timed window
                "eval_episodes": 1,
                "checkpoint_every": 10**9,
                "log_every": log_every,
                "threads": threads,
                "compile": compile_,
                "precision": precision,
            },
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        trainer.train(cfg, Path(tmp) / "run", progress=False)
        with open(Path(tmp) / "run" / rundir.TRAIN_LOG) as f:
            rows = [(int(r["step"]), float(r["wall_s"])) for r in csv.DictReader(f)]
    # From the first logged row after warm-up (excludes start-up and any compile time) to the last row.
    (s0, t0), (s1, t1) = rows[1], rows[-1]
    return (s1 - s0) / (t1 - t0)


def sb3(task: str, steps: int, threads: int) -> float:
    """env-steps/s of Stable-Baselines3 SAC on the same task (gymnasium adapter) during its learning phase."""
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback

    class Clock(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.marks: dict[int, float] = {}

        def _on_step(self) -> bool:
            if self.num_timesteps in (WARMUP + 250, WARMUP + steps):
                self.marks[self.num_timesteps] = time.perf_counter()
            return True

    torch.set_num_threads(threads)
    env = sim.make_gymnasium(task)
    model = SAC(
        "MlpPolicy",
        env,
        batch_size=256,
        learning_starts=WARMUP,
        train_freq=1,
        gradient_steps=1,
        buffer_size=WARMUP + steps,
        policy_kwargs={"net_arch": [256, 256]},
        device="cpu",
        seed=0,
        verbose=0,
    )
    clock = Clock()
    model.learn(total_timesteps=WARMUP + steps, callback=clock)
    return (steps - 250) / (clock.marks[WARMUP + steps] - clock.marks[WARMUP + 250])


def start_load(n: int) -> list[subprocess.Popen]:
    """``n`` single-threaded busy processes (a tight float loop each): the 'another job shares the machine' case."""
    code = "x = 0.0\nwhile True:\n    x = (x + 1.5) * 0.999"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="cartpole-safe_swingup")
    parser.add_argument("--steps", type=int, default=3000, help="timed learning steps per contender and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also measure sac_alam with torch.compile")
    parser.add_argument("--load", type=int, default=0, help="busy processes running beside the contenders")
    args = parser.parse_args()
    hogs = start_load(args.load)

    contenders = {
        "sb3_sac": lambda: sb3(args.task, args.steps, args.threads),
        "alam_sac_alam": lambda: ours(args.task, "sac_alam", args.steps, args.threads, False),
        "alam_sac": lambda: ours(args.task, "sac", args.steps, args.threads, False),
        "alam_sac_alam_bf16": lambda: ours(args.task, "sac_alam", args.steps, args.threads, False, "bfloat16"),
        "alam_sac_bf16": lambda: ours(args.task, "sac", args.steps, args.threads, False, "bfloat16"),
    }
    if args.compile:
        contenders["alam_sac_alam_compiled"] = lambda: ours(args.task, "sac_alam", args.steps, args.threads, True)
    results: dict[str, list[float]] = {name: [] for name in contenders}
    try:
        for r in range(args.rounds):
            for name, run in contenders.items():
                results[name].append(run())
                print(f"round {r + 1}/{args.rounds}  {name:24s} {results[name][-1]:7.1f} env-steps/s", flush=True)
    finally:
        for hog in hogs:
            hog.kill()
    print(
        f"\ntask {args.task}, batch 256, 256x256 MLPs, UTD 1, {args.threads} torch threads, "
        f"{args.load} busy process(es) beside, "
        f"{args.steps} timed steps x {args.rounds} rounds (median)"
    )
    base = statistics.median(results["sb3_sac"])
    for name, values in results.items():
        med = statistics.median(values)
        print(f"  {name:24s} {med:7.1f} env-steps/s   ratio to SB3 SAC {med / base:5.2f}x")


if __name__ == "__main__":
    main()
