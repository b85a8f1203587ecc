"""Measures how binding the cart band of `cartpole-safe_swingup` is, and SafeEnv's per-step cost.

Runs a uniform random policy, an aggressive swing-up (stand-in for an unconstrained policy) and the safe
scripted swing-up over seeded episodes, and reports returns and violation rates for the task's x_max and for
other candidate band widths (from the recorded |x|); then the safe controller taking over from random
in-band states. `--search N` adds a random search over the swing-up controller's gains that ignores the
band: the best return reachable for each bound on max |x|.

    PYTHONPATH=. .venv/bin/python benchmarks/cartpole_band.py [--episodes 20] [--search 500]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

import sim
from sim.cartpole import X_MAX, SwingupController

TASK = "cartpole-safe_swingup"
CANDIDATE_X_MAX = (0.4, 0.5, 0.6, 0.75, 1.0, 1.2)
# Large pump gain, weak centering, no damping: within 1 % of the best return `--search` finds (432), using the
# whole rail, as an optimizer that ignores the band may.
AGGRESSIVE = dict(pump_gain=30.0, pump_limit=0.8, position_gain=0.3, velocity_gain=0.0, x_max=None)

Policy = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def rollout(env: sim.SafeEnv, policy: Policy, seed: int) -> dict[str, np.ndarray | float]:
    """Runs one episode; returns its return, cost and per-step |x|, reward and pole cosine (after each step)."""
    rng = np.random.default_rng(seed)
    episode = sim.run_episode(env, lambda obs: policy(obs, rng), seed)
    after = np.vstack([episode.obs[1:], episode.final_obs])  # the observations after each step
    return {
        "return": episode.ret,
        "cost": episode.cost,
        "abs_x": np.abs(after[:, 0]),
        "reward": episode.rewards,
        "cos": after[:, 1],
    }


def report(name: str, episodes: list[dict]) -> None:
    abs_x = np.stack([e["abs_x"] for e in episodes])
    returns = np.array([e["return"] for e in episodes])
    steps = abs_x.size
    print(f"\n{name}: return {returns.mean():.1f} (min {returns.min():.1f}), max |x| {abs_x.max():.2f} m")
    print(
        f"  x_max {X_MAX}: violation rate {sum(e['cost'] for e in episodes) / steps:.3f} (env cost), "
        f"episodes with a violation {np.mean([e['cost'] > 0 for e in episodes]):.2f}"
    )
    upright = [e["reward"][np.argmax(e["cos"] > 0.9) :] for e in episodes if (e["cos"] > 0.9).any()]
    if upright:
        print(
            f"  swung up in {len(upright)}/{len(episodes)} episodes; mean reward per step from then on "
            f"{np.concatenate(upright).mean():.2f}"
        )
    rates = "  ".join(f"{x:.2f}: {(abs_x > x).mean():.3f}" for x in CANDIDATE_X_MAX)
    print(f"  violation rate by candidate x_max  {rates}")


def search(n: int, seeds: int = 3) -> None:
    """Random search over the swing-up gains, ignoring the band; best return per bound on max |x|."""
    env = sim.load(TASK)
    rng = np.random.default_rng(0)
    results = []
    for _ in range(n):
        gains = dict(
            pump_gain=float(np.exp(rng.uniform(np.log(1.0), np.log(50.0)))),
            pump_limit=rng.uniform(0.3, 1.0),
            position_gain=rng.uniform(0.0, 3.0),
            velocity_gain=rng.uniform(0.0, 2.0),
            catch_cosine=rng.uniform(0.7, 0.95),
        )
        controller = SwingupController(**gains, x_max=None)
        episodes = [rollout(env, lambda obs, _, c=controller: c(obs), s) for s in range(seeds)]
        max_x = max(e["abs_x"].max() for e in episodes)
        results.append((max_x, np.mean([e["return"] for e in episodes]), gains))
    print(f"\nrandom search, {n} gain settings x {seeds} seeds: best return with max |x| below")
    for bound in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.2, 1.5, 2.0):
        inside = [r for r in results if r[0] < bound]
        if inside:
            max_x, ret, gains = max(inside, key=lambda r: r[1])
            print(
                f"  {bound:.1f} m: {ret:.1f} (max |x| {max_x:.2f})  "
                + " ".join(f"{k}={v:.2f}" for k, v in gains.items())
            )


def takeover(n: int) -> None:
    """The safe controller taking over from random in-band states, as a fallback would."""
    env = sim.load(TASK)
    controller = SwingupController()
    rng = np.random.default_rng(0)
    violated = balanced = 0
    for seed in range(n):
        env.reset(seed=seed)
        env.physics.data.qpos[:] = rng.uniform(-0.4, 0.4), rng.uniform(-np.pi, np.pi)
        env.physics.data.qvel[:] = rng.uniform(-1.0, 1.0), rng.uniform(-3.0, 3.0)
        env.physics.forward()
        obs = np.array(list(env.task.get_observation(env.physics).values()))
        cost, truncated = 0.0, False
        while not truncated:
            obs, _, c, _, truncated, _ = env.step(controller(obs))
            cost += c
        violated += cost > 0
        balanced += obs[1] > 0.99
    print(
        f"\nsafe swing-up taking over from {n} states with |x| <= 0.4, |x_dot| <= 1, any angle, "
        f"|theta_dot| <= 3: {violated} episodes with a violation, {balanced} balanced at the end"
    )


def throughput(steps: int) -> None:
    """Steps/s of SafeEnv.step with random actions, against bare physics stepping."""
    env = sim.load(TASK, seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, 1))
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
        env.physics.step(2)
    physics = (time.perf_counter() - start) / steps
    print(
        f"\nSafeEnv.step: {1 / per_step:,.0f} steps/s ({per_step * 1e6:.1f} us/step; physics.step(2) alone "
        f"{physics * 1e6:.1f} us, env overhead {(per_step - physics) * 1e6:.1f} us)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--search", type=int, default=0, help="gain settings to try (0: skip)")
    parser.add_argument("--takeover", type=int, default=200, help="start states for the safe controller")
    parser.add_argument("--timing-steps", type=int, default=20_000)
    args = parser.parse_args()

    env = sim.load(TASK)
    aggressive, safe = SwingupController(**AGGRESSIVE), SwingupController()
    policies: dict[str, Policy] = {
        "uniform random": lambda _, rng: rng.uniform(-1.0, 1.0, 1),
        "aggressive swing-up": lambda obs, _: aggressive(obs),
        "safe swing-up": lambda obs, _: safe(obs),
    }
    print(f"{TASK}: {args.episodes} episodes x {env.spec.max_episode_steps} steps, seeds 0-{args.episodes - 1}")
    for name, policy in policies.items():
        report(name, [rollout(env, policy, seed) for seed in range(args.episodes)])
    takeover(args.takeover)
    if args.search:
        search(args.search)
    throughput(args.timing_steps)


if __name__ == "__main__":
    main()
