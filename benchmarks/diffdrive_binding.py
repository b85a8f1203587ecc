"""Measures how binding the clearance constraint of `diffdrive-safe_navigate` is, and SafeEnv's per-step cost.

Runs a uniform random policy, a greedy go-to-goal that ignores obstacles and an obstacle-hugging navigator
(`NavigateController(clearance=0)`, the shortest-path behaviour an unconstrained learner drifts to), both standing in
for unconstrained policies, and the safe navigator over seeded episodes. Reports returns, goals reached, violation
rates for the task's clearance and for other candidate clearances (from the recorded hull-to-obstacle distances),
and the closest approach; `--randomize` repeats it under the default domain randomization.

    PYTHONPATH=. .venv/bin/python benchmarks/diffdrive_binding.py [--episodes 20] [--randomize]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

import sim
from sim.diffdrive import CLEARANCE, NavigateController

TASK = "diffdrive-safe_navigate"
CANDIDATE_CLEARANCES = (0.1, 0.15, 0.2, 0.25, 0.3)

Policy = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def rollout(env: sim.SafeEnv, policy: Policy, seed: int) -> dict[str, np.ndarray | float]:
    """Runs one episode; returns its return, cost, goals reached and hull-to-obstacle distance after each step."""
    rng = np.random.default_rng(seed)
    distances = []  # in the state before each step, then (below) in the final one

    def record(env: sim.SafeEnv) -> None:
        distances.append(CLEARANCE - env.task.get_constraints(env.physics)["clearance"])

    episode = sim.run_episode(env, lambda obs: policy(obs, rng), seed, on_step=record)
    record(env)
    goals = int(np.count_nonzero(episode.rewards > 0.5))  # progress is at most 0.05 m a step: only a goal bonus
    return {"return": episode.ret, "cost": episode.cost, "goals": goals, "distance": np.array(distances[1:])}


def report(name: str, episodes: list[dict]) -> None:
    distance = np.stack([e["distance"] for e in episodes])
    returns = np.array([e["return"] for e in episodes])
    steps = distance.size
    print(
        f"\n{name}: return {returns.mean():.1f} (min {returns.min():.1f}, max {returns.max():.1f}), "
        f"goals {np.mean([e['goals'] for e in episodes]):.1f} per episode, "
        f"closest approach {distance.min():.3f} m"
    )
    print(
        f"  clearance {CLEARANCE}: violation rate {sum(e['cost'] for e in episodes) / steps:.3f} (env cost), "
        f"episodes with a violation {np.mean([e['cost'] > 0 for e in episodes]):.2f}"
    )
    rates = "  ".join(f"{c:.2f}: {(distance < c).mean():.3f}" for c in CANDIDATE_CLEARANCES)
    print(f"  violation rate by candidate clearance  {rates}")


def throughput(steps: int) -> None:
    """Steps/s of SafeEnv.step with random actions, against bare physics stepping."""
    env = sim.load(TASK, seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, 2))
    n_sub_steps = round(env.spec.control_timestep / env.physics.timestep())
    env.reset()
    start = time.perf_counter()
    for action in actions:
        *_, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    per_step = (time.perf_counter() - start) / steps
    start = time.perf_counter()
    for action in actions:
        env.physics.set_control(action)
        env.physics.step(n_sub_steps)
    physics = (time.perf_counter() - start) / steps
    start = time.perf_counter()
    for _ in range(steps):
        env.physics.ranges()
    ranges = (time.perf_counter() - start) / steps
    print(
        f"\nSafeEnv.step: {1 / per_step:,.0f} steps/s ({per_step * 1e6:.1f} us/step incl. resets; "
        f"physics.step({n_sub_steps}) alone {physics * 1e6:.1f} us, lidar {ranges * 1e6:.1f} us)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--randomize", action="store_true", help="default domain randomization on")
    parser.add_argument("--timing-steps", type=int, default=10_000)
    args = parser.parse_args()

    env = sim.load(TASK, randomize=args.randomize)
    greedy, hugging, safe = (
        NavigateController(avoid=False),
        NavigateController(clearance=0.0, margin=0.03),
        NavigateController(),
    )
    policies: dict[str, Policy] = {
        "uniform random": lambda _, rng: rng.uniform(-1.0, 1.0, 2),
        "greedy go-to-goal, ignoring obstacles": lambda obs, _: greedy(obs),
        "obstacle-hugging navigator (clearance 0)": lambda obs, _: hugging(obs),
        "safe navigator": lambda obs, _: safe(obs),
    }
    print(
        f"{TASK}: {args.episodes} episodes x {env.spec.max_episode_steps} steps, seeds 0-{args.episodes - 1}"
        + (", domain randomization on" if args.randomize else "")
    )
    for name, policy in policies.items():
        report(name, [rollout(env, policy, seed) for seed in range(args.episodes)])
    if args.timing_steps:
        throughput(args.timing_steps)


if __name__ == "__main__":
    main()
