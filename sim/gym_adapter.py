"""Gymnasium adapter: any `sim` task as a `gymnasium.Env`, so other libraries' agents can train on it.

The constraint cost goes into `info["cost"]` (gymnasium's step has no slot for it), next to the named
constraint values in `info["constraints"]`.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from sim.registry import load


class GymnasiumEnv(gymnasium.Env):
    """`gymnasium.Env` view of a `SafeEnv`; `render_mode="rgb_array"` renders with MuJoCo offscreen."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(
        self, name: str, seed: int | None = None, randomize: bool = False, render_mode: str | None = None
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.env = load(name, seed=seed, randomize=randomize)
        self.observation_space = self.env.observation_space
        self.action_space = self.env.action_space
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.env.spec.control_timestep)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return self.env.reset(seed=seed)

    def step(self, action: np.ndarray):
        obs, reward, cost, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, "cost": cost}

    def render(self) -> np.ndarray | None:
        return self.env.render() if self.render_mode == "rgb_array" else None

    def close(self) -> None:
        self.env.close()


def make_gymnasium(name: str, **kwargs: Any) -> gymnasium.Env:
    """Returns task `name` as a `gymnasium.Env` (kwargs: seed, randomize, render_mode)."""
    return GymnasiumEnv(name, **kwargs)
