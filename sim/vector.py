"""`VectorEnv`: N copies of a task stepped in lockstep in one process, for data collection.

A dm-control step of our tasks costs 30-150 us, so subprocess workers (gymnasium's AsyncVectorEnv) would spend
more on pickling and pipes than on physics; a plain loop over preallocated arrays keeps the overhead per
env-step to a few microseconds (`benchmarks/task_binding.py` measures steps/s for N = 1 and 8).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.randomization import Randomization
from sim.registry import load


class VectorEnv:
    """Steps `num_envs` copies of one task; an episode that ends is reset at once (auto-reset).

    Copy i is seeded with `seed + i`, so a vector run is reproducible and its copies differ.

    Attributes:
        envs: The `SafeEnv` copies.
        num_envs: N.
        spec: The task's `TaskSpec`.
        single_observation_space, single_action_space: One copy's spaces.
    """

    def __init__(self, name: str, num_envs: int, seed: int | None = None, randomize: bool | Randomization = False):
        """Builds the copies.

        Raises:
            ValueError: If `num_envs` < 1 or the task is unknown.
        """
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.envs = [load(name, seed=None if seed is None else seed + i, randomize=randomize) for i in range(num_envs)]
        self.num_envs = num_envs
        self.spec = self.envs[0].spec
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space
        obs_dim, act_dim = self.single_observation_space.shape[0], self.single_action_space.shape[0]
        self._act_shape = (num_envs, act_dim)
        self._obs = np.empty((num_envs, obs_dim), np.float32)
        self._final_obs = np.zeros((num_envs, obs_dim), np.float32)
        self._reward = np.empty(num_envs)
        self._cost = np.empty(num_envs)
        self._terminated = np.empty(num_envs, bool)
        self._truncated = np.empty(num_envs, bool)

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Resets every copy (copy i re-seeded with `seed + i` if given).

        Returns:
            obs: float32 [N, obs_dim] (a fresh array).
            infos: One reset info dict per copy.
        """
        infos = []
        for i, env in enumerate(self.envs):
            self._obs[i], info = env.reset(seed=None if seed is None else seed + i)
            infos.append(info)
        return self._obs.copy(), infos

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Steps every copy once.

        Args:
            actions: [N, act_dim] in [-1, 1].

        Returns:
            obs: float32 [N, obs_dim]; for a copy whose episode just ended, the first obs of its next episode.
            reward, cost: float64 [N].
            terminated, truncated: bool [N].
            info: {"final_obs": float32 [N, obs_dim], the last obs of each ended episode (rows of running
                copies are stale), "constraints": [N] dicts, "reset_infos": {i: reset info} of reset copies}.
            The returned arrays are fresh copies.

        Raises:
            ValueError: If `actions` is not [N, act_dim].
        """
        actions = np.asarray(actions)
        if actions.shape != self._act_shape:
            raise ValueError(f"expected actions of shape {self._act_shape}, got {actions.shape}")
        constraints, reset_infos = [], {}
        for i, env in enumerate(self.envs):
            obs, self._reward[i], self._cost[i], term, trunc, info = env.step(actions[i])
            self._terminated[i], self._truncated[i] = term, trunc
            constraints.append(info["constraints"])
            if term or trunc:
                self._final_obs[i] = obs
                obs, reset_infos[i] = env.reset()
            self._obs[i] = obs
        info = {"final_obs": self._final_obs.copy(), "constraints": constraints, "reset_infos": reset_infos}
        return (
            self._obs.copy(),
            self._reward.copy(),
            self._cost.copy(),
            self._terminated.copy(),
            self._truncated.copy(),
            info,
        )

    def close(self) -> None:
        """Frees every copy."""
        for env in self.envs:
            env.close()
