"""Safe task suite on dm-control (DESIGN.md section 4).

Example:
    env = sim.load("cartpole-safe_swingup", seed=0)
    obs, info = env.reset()
    obs, reward, cost, terminated, truncated, info = env.step(env.action_space.sample())
"""

from __future__ import annotations

import ctypes.util
import os
import sys

# dm_control picks its OpenGL backend when first imported. Without a display, OSMesa (Debian: libosmesa6) renders
# on any CPU; EGL needs a GPU driver or Mesa's EGL. An explicit MUJOCO_GL still wins.
if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "osmesa" if ctypes.util.find_library("OSMesa") else "egl")

try:
    import dm_control  # noqa: E402, F401
except ModuleNotFoundError as _err:  # a runtime-only install (a robot): numpy and onnxruntime, no simulator
    raise ModuleNotFoundError(
        f"the simulator needs mujoco and dm-control ({_err.name} is not installed); install the training stack: "
        "pip install 'alam-control[train]' (from the repository: pip install -e '.[train]')",
        name=_err.name,
    ) from None

from sim import (
    cartpole,  # noqa: E402, F401  (importing a domain module registers its tasks)
    diffdrive,  # noqa: E402, F401
    point_goal,  # noqa: E402, F401
    scripted,  # noqa: E402, F401  (registers each task's scripted safe policy)
    walker_speed,  # noqa: E402, F401
)
from sim.env import SafeEnv, TaskSpec  # noqa: E402
from sim.gym_adapter import make_gymnasium  # noqa: E402
from sim.randomization import Randomization  # noqa: E402
from sim.registry import TASKS, load  # noqa: E402
from sim.rollout import Episode, Step, run_episode, run_episodes  # noqa: E402
from sim.vector import VectorEnv  # noqa: E402

ALL_TASKS: tuple[str, ...] = tuple(TASKS)

__all__ = [
    "ALL_TASKS",
    "TASKS",
    "Episode",
    "Randomization",
    "SafeEnv",
    "Step",
    "TaskSpec",
    "VectorEnv",
    "load",
    "make_gymnasium",
    "run_episode",
    "run_episodes",
]
