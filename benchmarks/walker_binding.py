"""Measures how binding the speed limit of `walker-safe_walk` is, and SafeEnv's per-step cost on it.

Runs a uniform random policy and the scripted standing controller over seeded episodes (with and without domain
randomization), and, given `--checkpoints`, the deterministic policies of a SAC run (`alam train` with algo sac,
which ignores the cost) from copies of its checkpoints. Reports returns, violation rates and the share of steps
above other candidate limits.

    PYTHONPATH=. .venv/bin/python benchmarks/walker_binding.py [--episodes 20] [--checkpoints 'runs/x/ckpt_*.pt']
"""

from __future__ import annotations

import argparse
import glob
from collections.abc import Callable

import numpy as np
from task_binding import step_timing  # benchmarks/ is the script directory

import sim
from sim.walker_speed import V_LIMIT, StandController

TASK = "walker-safe_walk"
CANDIDATE_LIMITS = (0.5, 0.7, 1.0, 1.5)

Policy = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def rollout(env: sim.SafeEnv, policy: Policy, seed: int) -> dict[str, float | np.ndarray]:
    """Runs one episode; returns its return, cost, center-of-mass speed after each step and least torso height."""
    rng = np.random.default_rng(seed)
    speeds, heights = [], []  # in the state before each step, then (below) in the final one

    def record(env: sim.SafeEnv) -> None:
        speeds.append(env.task.get_constraints(env.physics)["speed"] + V_LIMIT)
        heights.append(env.physics.torso_height())

    episode = sim.run_episode(env, lambda obs: policy(obs, rng), seed, on_step=record)
    record(env)
    return {"return": episode.ret, "cost": episode.cost, "speed": np.array(speeds[1:]), "lowest": min(heights[1:])}


def report(name: str, episodes: list[dict]) -> None:
    returns = np.array([e["return"] for e in episodes])
    costs = np.array([e["cost"] for e in episodes])
    speed = np.concatenate([e["speed"] for e in episodes])
    fallen = np.mean([e["lowest"] < 1.0 for e in episodes])
    above = "  ".join(f">{limit}: {np.mean(speed > limit):.2f}" for limit in CANDIDATE_LIMITS)
    print(
        f"{name:28s} return {returns.mean():6.1f} (min {returns.min():6.1f})  violation rate "
        f"{costs.sum() / speed.size:.4f}  episodes violating {np.mean(costs > 0):.2f}  fell {fallen:.2f}  "
        f"speed mean {speed.mean():+.2f} max {speed.max():.2f} m/s  share of steps {above}"
    )


def sac_policies(pattern: str) -> dict[str, Policy]:
    """Deterministic policies of the checkpoints matching `pattern`, keyed by their training step."""
    import torch

    from alam_control import config as config_lib
    from alam_control.learn import checkpoint, trainer

    torch.set_num_threads(1)
    policies = {}
    for path in sorted(glob.glob(pattern)):
        state = checkpoint.load_file(path)
        cfg = config_lib.from_dict(state["config"])
        agent = trainer.build_agent(cfg, sim.load(cfg.task), torch.Generator().manual_seed(0))
        agent.load_state_dict(state["agent"])
        policies[f"sac @ {state['loop']['step']} steps"] = lambda obs, rng, agent=agent: agent.act(
            obs, deterministic=True
        )
    return dict(sorted(policies.items(), key=lambda item: int(item[0].split()[2])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--checkpoints", help="glob of SAC checkpoint files (evaluated on --sac-episodes)")
    parser.add_argument("--sac-episodes", type=int, default=5)
    args = parser.parse_args()

    stand = StandController()
    policies: dict[str, Policy] = {
        "random": lambda obs, rng: rng.uniform(-1.0, 1.0, 6),
        "safe (StandController())": lambda obs, rng: stand(obs),
    }
    for randomize in (False, True):
        print(f"\n{args.episodes} episodes, domain randomization {'on' if randomize else 'off'}")
        env = sim.load(TASK, seed=0, randomize=randomize)
        for name, policy in policies.items():
            report(name, [rollout(env, policy, seed=1000 + i) for i in range(args.episodes)])
    if args.checkpoints:
        print(f"\nSAC checkpoints, {args.sac_episodes} deterministic episodes each")
        env = sim.load(TASK, seed=0)
        for name, policy in sac_policies(args.checkpoints).items():
            report(name, [rollout(env, policy, seed=1000 + i) for i in range(args.sac_episodes)])

    step_us, physics_us = step_timing(TASK, 3000)
    print(f"\nSafeEnv.step {step_us:.1f} us, of which physics {physics_us:.1f} us")


if __name__ == "__main__":
    main()
