"""Scripted safe controllers, one module per task module (`sim/scripted/<domain>.py` beside `sim/<domain>.py`).

Each is a map obs -> action in [-1, 1] built on its domain's model and constants, and registers itself as its
task's safe policy (`sim.TASKS.safe_policy(env)`): the proof that a safe behaviour with a useful return exists
(`benchmarks/task_binding.py`). They need only what a robot observes, so they can also serve as fallbacks.

- `cartpole.SwingupController`: energy-pumping swing-up, LQR catch near upright, band brake.
- `diffdrive.NavigateController`: goal seeking with lidar obstacle avoidance (tangent-bug like).
- `point_goal.GoalController`: go-to-goal with a control barrier function around each hazard.
- `walker_speed.StandController`: LQR balance about a standing equilibrium.

The domain modules re-export their controller under its old name (`from sim.cartpole import SwingupController`).
"""

from __future__ import annotations

from sim.scripted.cartpole import SwingupController
from sim.scripted.diffdrive import NavigateController
from sim.scripted.point_goal import GoalController
from sim.scripted.walker_speed import StandController

__all__ = [
    "GoalController",
    "NavigateController",
    "StandController",
    "SwingupController",
]
