"""Preallocated replay buffer storing reward, cost and ``terminated`` (not ``done``: truncation bootstraps)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

_FIELDS = ("obs", "action", "reward", "cost", "next_obs", "terminated")


class Batch(NamedTuple):
    """A minibatch: ``obs``/``next_obs`` ``[B, O]``, ``action`` ``[B, A]``, the rest ``[B]`` float32."""

    obs: Tensor
    action: Tensor
    reward: Tensor
    cost: Tensor
    next_obs: Tensor
    terminated: Tensor


class ReplayBuffer:
    """Ring buffer over preallocated float32 numpy arrays.

    Writes go to numpy (cheap per-step scalar stores); sampling indexes torch views that share the same memory,
    so there is no copy of the whole buffer and no per-step tensor allocation.
    """

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, device: torch.device | str = "cpu"):
        self.capacity, self.device = capacity, torch.device(device)
        shapes = {"obs": (obs_dim,), "action": (act_dim,), "next_obs": (obs_dim,)}
        self._np = {k: np.zeros((capacity, *shapes.get(k, ())), dtype=np.float32) for k in _FIELDS}
        self._torch = {k: torch.from_numpy(v) for k, v in self._np.items()}
        self.ptr = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: float,
        cost: float,
        next_obs: np.ndarray,
        terminated: bool,
    ) -> None:
        """Store one transition (overwriting the oldest when full)."""
        i = self.ptr
        self._np["obs"][i] = obs
        self._np["action"][i] = action
        self._np["reward"][i] = reward
        self._np["cost"][i] = cost
        self._np["next_obs"][i] = next_obs
        self._np["terminated"][i] = terminated
        self.ptr = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """Uniform minibatch drawn with ``generator`` (so replay is reproducible and checkpointable)."""
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        idx = torch.randint(self.size, (batch_size,), generator=generator)
        return Batch(*(self._torch[k][idx].to(self.device, non_blocking=True) for k in _FIELDS))

    def observations(self) -> Tensor:
        """All stored observations ``[size, O]`` (a view, no copy)."""
        return self._torch["obs"][: self.size]

    def recent(self, n: int) -> tuple[Tensor, np.ndarray, np.ndarray]:
        """The last ``n`` transitions in the order they were stored, for risk labels under the recent policy.

        Returns:
            ``obs`` ``[n, O]`` (a copy), ``cost`` ``[n]`` and ``episode_end`` ``[n]`` bool: transition t ends its
            episode (terminated, or its next_obs is not the next transition's obs: a truncation or a reset).
            The newest transition counts as an end (its episode is unfinished: labels there are censored).
        """
        n = min(n, self.size)
        idx = (self.ptr - n + np.arange(n)) % self.capacity
        obs, next_obs = self._np["obs"][idx], self._np["next_obs"][idx]
        ends = self._np["terminated"][idx] > 0
        ends[:-1] |= np.any(next_obs[:-1] != obs[1:], axis=1)
        if n:
            ends[-1] = True
        return torch.from_numpy(obs.copy()), self._np["cost"][idx].copy(), ends

    def state_dict(self) -> dict:
        """Filled part only, as tensors (loadable with ``torch.load(weights_only=True)``)."""
        n = self.size
        return {"ptr": self.ptr, "size": n, **{k: self._torch[k][:n].clone() for k in _FIELDS}}

    def load_state_dict(self, state: dict) -> None:
        """Restore a `state_dict`, into the same capacity (bit-exact resume) or a larger one.

        A larger capacity (a resume that extends ``train.total_steps``, which sizes the buffer) gets a wrapped ring
        unrolled to chronological order with the write pointer after the newest transition: kept as saved, the next
        write would overwrite the oldest transition while ``size`` counted an empty slot as filled.
        """
        n, ptr = int(state["size"]), int(state["ptr"])
        if n > self.capacity:
            raise ValueError(f"checkpointed buffer holds {n} transitions, more than capacity {self.capacity}")
        # Oldest first when the saved ring was full and wrapped (ptr != n) and there is now room after it.
        order = (ptr + torch.arange(n)) % n if n < self.capacity and ptr != n else None
        for k in _FIELDS:
            if tuple(state[k].shape[1:]) != tuple(self._torch[k].shape[1:]):
                raise ValueError(
                    f"checkpointed buffer field {k!r} has shape {tuple(state[k].shape)}, "
                    f"expected (*, {', '.join(map(str, self._torch[k].shape[1:]))})"
                )
            self._torch[k][:n] = state[k] if order is None else state[k][order]
        self.ptr, self.size = (n if order is not None else ptr), n
