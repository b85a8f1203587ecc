"""alam-control: SAC-ALaM safe RL in MuJoCo/dm-control, exported to ONNX and deployed through ROS 2."""

from __future__ import annotations

import math
from typing import Any

__version__ = "0.1.0"

# Modules of the `train` extra. A runtime-only install (a robot: numpy and onnxruntime, `alam_control.runtime` and
# the ROS nodes) lacks them by design; commands that need them say so instead of failing with a traceback.
TRAIN_STACK = ("torch", "mujoco", "dm_control", "scipy", "gymnasium", "yaml", "tqdm", "tensorboard", "imageio",
               "matplotlib", "onnx", "onnxscript")  # fmt: skip


def missing_train_stack(err: ModuleNotFoundError) -> str | None:
    """One line telling the user to install the `train` extra, when `err` is about one of its modules; else None."""
    if (err.name or "").split(".")[0] not in TRAIN_STACK:
        return None
    return (
        f"this command needs the training stack ({err.name} is not installed: this is a runtime-only install); "
        "install it with: pip install 'alam-control[train,export]' "
        "(from the repository: pip install -e '.[train,export]')"
    )


def strict_json(value: Any) -> Any:
    """`value` with every non-finite float as None, for `json.dumps(..., allow_nan=False)`: JSON has no NaN, and a
    robot's C++ or JavaScript parser (or `jq`) rejects Python's bare `NaN` (an undefined AUROC, for one)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value
