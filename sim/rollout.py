"""One episode of a task under any driver: the single episode loop that training evaluation, bundle calibration,
`alam eval` and the benchmarks share.

    episode = sim.run_episode(env, lambda obs: policy(obs), seed=3)                  # an action in [-1, 1]
    episode = sim.run_episode(env, driver, seed=3)       # driver(obs) -> Step(action, risk, fallback)
    episode.rewards, episode.costs, episode.risk, episode.fallback, episode.ret, episode.cost
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from sim.env import SafeEnv


class Step(NamedTuple):
    """What a driver chose for one step: the env action in [-1, 1] [A], its risk signal (NaN: none) and whether
    a fallback (not the policy) chose it."""

    action: np.ndarray
    risk: float = math.nan
    fallback: bool = False


@dataclasses.dataclass
class Episode:
    """Per-step records of one episode (T steps).

    Attributes:
        obs: float32 [T, O] the observation s_t each action was chosen from.
        rewards, costs: float [T] r_t and c_t of the step taken at s_t.
        risk: float [T] the driver's risk signal at s_t (NaN where it gave none).
        fallback: bool [T] a fallback chose the action at s_t.
        terminated: The episode ended by termination (not the time limit).
        final_obs: float32 [O] the observation after the last step.
    """

    obs: np.ndarray
    rewards: np.ndarray
    costs: np.ndarray
    risk: np.ndarray
    fallback: np.ndarray
    terminated: bool
    final_obs: np.ndarray

    @property
    def ret(self) -> float:
        """The undiscounted return."""
        return float(self.rewards.sum())

    @property
    def cost(self) -> float:
        """The episode's cost sum (violating steps)."""
        return float(self.costs.sum())


def run_episode(
    env: SafeEnv,
    driver: Callable[[np.ndarray], Any],
    seed: int | None = None,
    on_step: Callable[[SafeEnv], None] | None = None,
) -> Episode:
    """Resets `env` with `seed` and steps it until the episode ends.

    Args:
        driver: obs [O] -> an action in [-1, 1] [A], or a `Step` (action, risk, fallback).
        on_step: Called with the env before each step (e.g. to render a video frame).
    """
    obs, _ = env.reset(seed=seed)
    observations, rewards, costs, risks, fallbacks = [], [], [], [], []
    terminated = truncated = False
    while not (terminated or truncated):
        if on_step is not None:
            on_step(env)
        chosen = driver(obs)
        step = chosen if isinstance(chosen, Step) else Step(chosen)
        observations.append(obs)
        risks.append(step.risk)
        fallbacks.append(step.fallback)
        obs, reward, cost, terminated, truncated, _ = env.step(step.action)
        rewards.append(reward)
        costs.append(cost)
    return Episode(
        obs=np.asarray(observations, np.float32),
        rewards=np.asarray(rewards, np.float64),
        costs=np.asarray(costs, np.float64),
        risk=np.asarray(risks, np.float64),
        fallback=np.asarray(fallbacks, bool),
        terminated=bool(terminated),
        final_obs=np.asarray(obs, np.float32),
    )


def run_episodes(env: SafeEnv, driver: Callable[[np.ndarray], Any], episodes: int, seed: int) -> list[Episode]:
    """`run_episode` with seeds seed, seed + 1, ... (the seeded evaluation episodes every benchmark compares on)."""
    return [run_episode(env, driver, seed=seed + ep) for ep in range(episodes)]
