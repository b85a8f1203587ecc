"""Measures how binding the hazards of `point-safe_goal` are, and SafeEnv's per-step cost on it.

Runs a uniform random policy, a greedy go-to-goal that ignores hazards (stand-in for an unconstrained policy)
and the scripted safe controller over seeded episodes, with and without domain randomization, and reports
returns, violation rates, hazard entries per goal and the deepest approach to a hazard.

    PYTHONPATH=. .venv/bin/python benchmarks/point_goal_binding.py [--episodes 100]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
from task_binding import step_timing  # benchmarks/ is the script directory

import sim
from sim.point_goal import GOAL_BONUS, GoalController

TASK = "point-safe_goal"

Policy = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def rollout(env: sim.SafeEnv, policy: Policy, seed: int) -> dict[str, float]:
    """Runs one episode; returns its return, cost, goals reached, hazard entries and largest g."""
    rng = np.random.default_rng(seed)
    hazard = []  # the hazard constraint g in the state before each step, then (below) in the final one

    def record(env: sim.SafeEnv) -> None:
        hazard.append(env.task.get_constraints(env.physics)["hazard"])

    episode = sim.run_episode(env, lambda obs: policy(obs, rng), seed, on_step=record)
    record(env)
    g = np.array(hazard)  # [T + 1], from the reset state on
    return {
        "return": episode.ret,
        "cost": episode.cost,
        "goals": float(np.count_nonzero(episode.rewards > GOAL_BONUS / 2)),
        "entries": float(np.count_nonzero((g[1:] > 0.0) & (g[:-1] <= 0.0))),
        "g_max": float(g.max()),
        "steps": len(episode.rewards),
    }


def report(name: str, episodes: list[dict[str, float]]) -> None:
    def col(key: str) -> np.ndarray:
        return np.array([e[key] for e in episodes])

    print(
        f"{name:34s} return {col('return').mean():6.1f} (min {col('return').min():5.1f})  "
        f"violation rate {col('cost').sum() / col('steps').sum():.4f}  "
        f"episodes violating {(col('cost') > 0).mean():.2f}  goals {col('goals').mean():5.1f}  "
        f"entries/goal {col('entries').sum() / max(col('goals').sum(), 1):.2f}  max g {col('g_max').max():+.3f} m"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100)
    args = parser.parse_args()

    greedy, safe = GoalController(avoid=False), GoalController()
    policies: dict[str, Policy] = {
        "random": lambda obs, rng: rng.uniform(-1.0, 1.0, 2),
        "greedy (GoalController(avoid=False))": lambda obs, rng: greedy(obs),
        "safe (GoalController())": lambda obs, rng: safe(obs),
    }
    for randomize in (False, True):
        print(f"\n{args.episodes} episodes, domain randomization {'on' if randomize else 'off'}")
        env = sim.load(TASK, seed=0, randomize=randomize)
        for name, policy in policies.items():
            report(name, [rollout(env, policy, seed=1000 + i) for i in range(args.episodes)])

    step_us, physics_us = step_timing(TASK, 5000)
    print(f"\nSafeEnv.step {step_us:.1f} us, of which physics {physics_us:.1f} us")


if __name__ == "__main__":
    main()
