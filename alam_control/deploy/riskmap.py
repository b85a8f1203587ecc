"""``alam riskmap``: an exported bundle's lambda(s) over a 2-D slice of its task's state space, next to where
violations actually happen from those states.

A slice fixes every state variable but two (the cart-pole at rest: cart position x pole angle; the diff-drive
robot at rest with a fixed heading: position in one seeded arena). For each cell of an N x N grid over the slice
we put the simulator in that state, read lambda(s) and Q_c(s, pi(s)) from the ONNX graph, and roll the bundle's own
deterministic policy forward H steps from there. The "true violation region" of a cell is then

    violated_now     the constraint is already violated in that state (c(s) > 0 for the task's constraint), and
    violated_within  the policy incurs a violation within the next H steps from it (the label of risk_auroc,
                     DESIGN.md section 7; computed per cell rather than along visited trajectories).

so a good multiplier is high exactly where ``violated_within`` is true. ``RiskMap.auroc`` scores that over the
grid. Everything runs through the torch-free runtime's `Controller` (without its monitor), i.e. what the robot runs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import sim
from alam_control.learn import metrics
from alam_control.runtime import Bundle, Controller, load_bundle
from sim import cartpole

DIFFDRIVE_HEADING = 0.0
"""Heading (rad, world frame) of the diff-drive slice: the robot faces +x."""


@dataclasses.dataclass(frozen=True)
class Slice:
    """Two state variables swept over a grid; every other one fixed by ``place``."""

    x_label: str
    y_label: str
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    place: Callable[[Any, float, float], None]
    """place(physics, x, y): write the state of one grid cell into the physics (qpos, qvel; forward is called
    after)."""
    describe: str
    is_state: Callable[[Any], bool] = lambda physics: True
    """is_state(physics) after place + forward: False where the cell is not a physical state (a hull inside an
    obstacle); such cells are left out of the map."""
    landmark: Callable[[Any], tuple[float, float]] | None = None
    """landmark(physics): a point drawn on the map (the diff-drive goal), or None."""
    read: Callable[[Any], tuple[float, float]] | None = None
    """read(physics): the state's two slice coordinates, for drawing a rollout's path in the slice (`plot_map`)."""
    forbidden_x: tuple[tuple[float, float], ...] = ()
    """x intervals where the constraint is violated whatever y is (the cart-pole's band edges), shaded on maps."""
    walls: bool = False
    """The slice's x and y ranges are walls (the diff-drive arena), drawn on maps."""


def _place_cartpole(physics: Any, x: float, theta: float) -> None:
    physics.data.qpos[:] = (x, theta)
    physics.data.qvel[:] = 0.0


def _place_diffdrive(physics: Any, x: float, y: float) -> None:
    physics.data.qpos[:] = 0.0
    physics.data.qpos[:2] = (x, y)
    physics.data.qpos[3] = DIFFDRIVE_HEADING
    physics.data.qvel[:] = 0.0


SLICES: dict[str, Slice] = {
    "cartpole-safe_swingup": Slice(
        "cart position x (m)", "pole angle (rad, 0 = upright)", (-1.0, 1.0), (-math.pi, math.pi), _place_cartpole,
        "cart and pole at rest",
        read=lambda physics: (float(physics.data.qpos[0]), math.remainder(float(physics.data.qpos[1]), 2 * math.pi)),
        forbidden_x=((-1.0, -cartpole.X_MAX), (cartpole.X_MAX, 1.0)),
    ),
    "diffdrive-safe_navigate": Slice(
        "x (m)", "y (m)", (-2.0, 2.0), (-2.0, 2.0), _place_diffdrive,  # the arena between its walls
        f"robot at rest facing +x (heading {DIFFDRIVE_HEADING:g} rad), pillars and goal of the seeded episode",
        is_state=lambda physics: physics.obstacle_clearance() >= 0.0,
        landmark=lambda physics: tuple(float(v) for v in physics.goal_position()),
        read=lambda physics: tuple(float(v) for v in physics.robot_position()),
        walls=True,
    ),
}  # fmt: skip


@dataclasses.dataclass
class RiskMap:
    """One bundle's map. Arrays are [ny, nx] (row = y value, as imshow draws them with origin='lower').

    Attributes:
        task, bundle: what was mapped.
        xs: float [nx], ys: float [ny] cell centres.
        lam: float [ny, nx] lambda(s); cost_q: float [ny, nx] Q_c(s, pi(s)) (NaN when the bundle has none).
        violated_now: bool [ny, nx] c(s) > 0 in the cell's state.
        violated_within: bool [ny, nx] the policy violates within ``horizon`` steps from the cell.
        valid: bool [ny, nx] the cell is a physical state (the diff-drive hull not inside a pillar or wall).
        goal: (x, y) of the diff-drive goal, else None.
    """

    task: str
    bundle: str
    horizon: int
    xs: np.ndarray
    ys: np.ndarray
    lam: np.ndarray
    cost_q: np.ndarray
    violated_now: np.ndarray
    violated_within: np.ndarray
    valid: np.ndarray
    goal: tuple[float, float] | None = None

    def auroc(self, signal: str = "lambda") -> float:
        """AUROC of ``lambda`` (or ``cost_q``) for violated_within over the valid cells (NaN if one class)."""
        score = self.lam if signal == "lambda" else self.cost_q
        return metrics.auroc(score[self.valid], self.violated_within[self.valid])

    def summary(self) -> dict[str, float]:
        """Grid-level numbers: the AUROCs, the violating share of cells, and lambda inside vs outside it."""
        v, w = self.valid, self.violated_within & self.valid
        safe = v & ~w
        return {
            "cells": int(v.sum()),
            "violated_within_fraction": float(w.sum() / max(v.sum(), 1)),
            "auroc_lambda": self.auroc("lambda"),
            "auroc_cost_q": self.auroc("cost_q"),
            "lambda_mean_violating": float(self.lam[w].mean()) if w.any() else math.nan,
            "lambda_mean_safe": float(self.lam[safe].mean()) if safe.any() else math.nan,
        }


def compute(bundle: Bundle | str | Path, grid: int = 41, horizon: int = 20, seed: int = 0) -> RiskMap:
    """Map lambda(s) and the violation region of a bundle over its task's slice (``SLICES``).

    Args:
        bundle: a loaded bundle or its directory.
        grid: cells per axis (grid x grid states, each rolled out ``horizon`` steps).
        horizon: H of "a violation within the next H steps".
        seed: episode seed of the scene (the diff-drive's pillar layout and goal).

    Raises:
        ValueError: the task has no slice defined (the message lists those that do).
    """
    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle)
    task = bundle.manifest["task"]
    if task not in SLICES:
        raise ValueError(f"no risk-map slice for task {task!r}; tasks with one: {', '.join(SLICES)}")
    if grid < 2 or horizon < 1:
        raise ValueError(f"grid must be >= 2 and horizon >= 1, got grid={grid}, horizon={horizon}")
    spec = SLICES[task]
    xs = np.linspace(*spec.x_range, grid)
    ys = np.linspace(*spec.y_range, grid)
    env = sim.load(task, seed=seed)
    env.reset(seed=seed)
    start = env.get_state()
    goal = spec.landmark(env.physics) if spec.landmark else None
    shape = (grid, grid)
    controller = Controller(bundle, None)  # the policy alone, through the deployed tick (no monitor)
    lam, cost_q = np.full(shape, np.nan), np.full(shape, np.nan)
    now, within, valid = np.zeros(shape, bool), np.zeros(shape, bool), np.ones(shape, bool)
    try:
        for iy, y in enumerate(ys):
            for ix, x in enumerate(xs):
                env.set_state(start)
                spec.place(env.physics, float(x), float(y))
                env.physics.forward()
                if not spec.is_state(env.physics):
                    valid[iy, ix] = False
                    continue
                now[iy, ix] = env.task.get_cost(env.task.get_constraints(env.physics)) > 0
                command = controller.step(0.0, env.observe()).command
                lam[iy, ix], cost_q[iy, ix] = controller.lam, controller.cost_q
                for _ in range(horizon):
                    obs, _, cost, terminated, truncated, _ = env.step(env.action_for(command))
                    if cost > 0:
                        within[iy, ix] = True
                        break
                    if terminated or truncated:
                        break
                    command = controller.step(0.0, obs).command
    finally:
        env.close()
    return RiskMap(task, str(bundle.path), horizon, xs, ys, lam, cost_q, now, within, valid, goal)


def plot(maps: list[RiskMap], labels: list[str], out: str | Path) -> Path:
    """One row per map: the violation region (left) next to lambda(s) (right). A small PNG (about 800 px wide).

    Left: grey = constraint violated in the state itself, red = the policy violates within H steps from it,
    black = not a state (inside an obstacle). Right: lambda(s), log colour scale when it spans > 2 decades, with
    the red region's outline drawn over it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap, LogNorm

    if len(labels) != len(maps):
        raise ValueError(f"{len(maps)} maps but {len(labels)} labels")
    if len({m.task for m in maps}) != 1:
        raise ValueError(f"one task per risk-map figure, got {sorted({m.task for m in maps})}")
    spec = SLICES[maps[0].task]
    fig, axes = plt.subplots(len(maps), 2, figsize=(8.0, 3.3 * len(maps)), squeeze=False)
    region_cmap = ListedColormap(["white", "0.75", "tab:red", "black"])
    for row, (m, label) in zip(axes, zip(maps, labels, strict=True), strict=True):
        extent = (m.xs[0], m.xs[-1], m.ys[0], m.ys[-1])
        region = np.where(~m.valid, 3, np.where(m.violated_within, 2, np.where(m.violated_now, 1, 0)))
        row[0].imshow(region, origin="lower", extent=extent, aspect="auto", cmap=region_cmap, vmin=0, vmax=3,
                      interpolation="nearest")  # fmt: skip
        row[0].set_title(f"{label}: violation within {m.horizon} steps (red)", fontsize=9)
        lam = np.ma.masked_invalid(np.where(m.valid, m.lam, np.nan))
        lo, hi = float(lam.min()), float(lam.max())
        norm = LogNorm(max(lo, 1e-6), max(hi, 1e-5)) if lo > 0 and hi / max(lo, 1e-12) > 100 else None
        im = row[1].imshow(lam, origin="lower", extent=extent, aspect="auto", cmap="viridis", norm=norm,
                           interpolation="nearest")  # fmt: skip
        if m.violated_within.any() and (~m.violated_within).any():
            row[1].contour(m.xs, m.ys, m.violated_within.astype(float), levels=[0.5], colors="red", linewidths=0.8)
        fig.colorbar(im, ax=row[1], fraction=0.046)
        s = m.summary()
        row[1].set_title(f"{label}: lambda(s)  grid AUROC {s['auroc_lambda']:.2f}", fontsize=9)
        for ax in row:
            ax.set_xlabel(spec.x_label, fontsize=8)
            ax.set_ylabel(spec.y_label, fontsize=8)
            ax.tick_params(labelsize=7)
            if m.goal is not None:
                ax.plot(*m.goal, marker="*", color="gold", markeredgecolor="k", markersize=10)
    fig.suptitle(f"{maps[0].task}: {spec.describe}", fontsize=9)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
