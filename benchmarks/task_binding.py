"""Does each task's constraint bind? Random policy, short unconstrained SAC, and the scripted safe policy, per task.

For every task in `sim.ALL_TASKS` (or those named) prints, as a Markdown table:

- violation rate (fraction of steps with cost > 0) and return of uniform random actions;
- the same for an unconstrained `sac` run of `--sac-steps` env steps (evaluated deterministically at its end,
  plus the violation rate over all of its training steps);
- the same for the task's registered scripted safe policy (`sim.TASKS.safe_policy`);
- VectorEnv collection speed, env-steps/s for N = 1 and 8 copies (random actions).

Usage:
    python benchmarks/task_binding.py [--tasks a b] [--episodes 10] [--sac-steps 30000] [--no-sac]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import sim
from alam_control import config as config_lib
from alam_control.learn import trainer


def rollout(env: sim.SafeEnv, policy, episodes: int, seed: int) -> tuple[float, float, float]:
    """Returns (violation rate, mean return, mean cost) of `policy(obs) -> action` over seeded episodes."""
    runs = sim.run_episodes(env, policy, episodes, seed)
    rate = float(np.mean(np.concatenate([r.costs for r in runs]) > 0))
    return rate, float(np.mean([r.ret for r in runs])), float(np.mean([r.cost for r in runs]))


def sac_run(name: str, steps: int, episodes: int) -> tuple[float, float, float, float]:
    """Trains unconstrained SAC for `steps`; returns (eval violation rate, eval return, eval cost, train rate)."""
    cfg = config_lib.from_dict(
        {
            "task": name,
            "algo": {"name": "sac"},
            "train": {
                "total_steps": steps,
                "eval_every": steps,
                "checkpoint_every": steps,
                "eval_episodes": episodes,
                "learning_starts": min(2000, steps // 2),
                "threads": 1,  # one core per run, so two runs share this 2-core machine
            },
        }
    )
    with tempfile.TemporaryDirectory() as run_dir:
        summary = trainer.train(cfg, Path(run_dir), progress=False)
    return summary["violation_rate"], summary["return"], summary["cost"], summary["train_cost"] / steps


def vector_speed(name: str, num_envs: int, steps: int = 2000) -> float:
    """Env-steps/s of `VectorEnv` with random actions (collection overhead included, no policy)."""
    vec = sim.VectorEnv(name, num_envs, seed=0)
    vec.reset()
    actions = np.random.default_rng(0).uniform(-1, 1, (steps // num_envs, num_envs, *vec.single_action_space.shape))
    start = time.perf_counter()
    for a in actions:
        vec.step(a)
    return len(actions) * num_envs / (time.perf_counter() - start)


def step_timing(name: str, steps: int = 3000) -> tuple[float, float]:
    """(SafeEnv.step, bare physics stepping for one control period), in us per step, with random actions."""
    env = sim.load(name, seed=0)
    env.reset()
    actions = np.random.default_rng(0).uniform(-1.0, 1.0, (steps, *env.action_space.shape))
    start = time.perf_counter()
    for action in actions:
        if env.step(action)[4]:
            env.reset()
    step_us = (time.perf_counter() - start) / steps * 1e6
    n_sub_steps = round(env.spec.control_timestep / env.physics.timestep())
    start = time.perf_counter()
    for _ in range(steps):
        env.physics.step(n_sub_steps)
    return step_us, (time.perf_counter() - start) / steps * 1e6


def _uniform_policy(shape: tuple[int, ...], seed: int):
    rng = np.random.default_rng(seed)
    return lambda obs: rng.uniform(-1, 1, shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="*", default=list(sim.ALL_TASKS))
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--sac-steps", type=int, default=30000)
    parser.add_argument("--no-sac", action="store_true")
    args = parser.parse_args()

    rows = []
    for name in args.tasks:
        env = sim.load(name, seed=0)
        random_policy = _uniform_policy(env.action_space.shape, seed=0)
        rand = rollout(env, random_policy, args.episodes, seed=1000)
        safe = rollout(env, sim.TASKS.safe_policy(env), args.episodes, seed=1000)
        sac = (float("nan"),) * 4 if args.no_sac else sac_run(name, args.sac_steps, args.episodes)
        speed = (vector_speed(name, 1), vector_speed(name, 8))
        rows.append((name, rand, sac, safe, speed))
        print(f"{name}: random {rand}, sac {sac}, safe {safe}, vector steps/s {speed}", flush=True)

    print(f"\n{args.episodes} episodes per cell; SAC: {args.sac_steps} steps, deterministic evaluation at the end")
    print(
        "| task | random viol. / return | SAC viol. (train) / return | safe policy viol. / return | steps/s N=1 / N=8 |"
    )
    print("|---|---|---|---|---|")
    for name, rand, sac, safe, speed in rows:
        print(
            f"| {name} | {rand[0]:.3f} / {rand[1]:.1f} | {sac[0]:.3f} ({sac[3]:.3f}) / {sac[1]:.1f} "
            f"| {safe[0]:.3f} / {safe[1]:.1f} | {speed[0]:.0f} / {speed[1]:.0f} |"
        )


if __name__ == "__main__":
    main()
