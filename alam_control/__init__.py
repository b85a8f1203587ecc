"""alam-control: SAC-ALaM safe RL in MuJoCo/dm-control, exported to ONNX and deployed through ROS 2."""

from __future__ import annotations

__version__ = "0.1.0"
