"""`alam riskmap`: the map's lambda and violation labels agree with the simulator and policy probed by hand, cells
inside obstacles are left out, and the CLI names bad requests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import sim
from alam_control import cli
from alam_control.deploy import riskmap
from alam_control.runtime import load_bundle

REPO = Path(__file__).resolve().parents[3]
DIFFDRIVE_BUNDLE = REPO / "bundles" / "diffdrive"


def _probe(bundle, x: float, y: float, horizon: int, seed: int = 0) -> tuple[float, bool, bool]:
    """lambda, violated-now and violated-within-H of one slice state, computed the long way."""
    spec = riskmap.SLICES[bundle.manifest["task"]]
    env = sim.load(bundle.manifest["task"], seed=seed)
    env.reset(seed=seed)
    spec.place(env.physics, x, y)
    env.physics.forward()
    now = env.task.get_cost(env.task.get_constraints(env.physics)) > 0
    obs = env.observe()
    command, lam, _ = bundle.policy(obs)
    mid, half = (bundle.action_high + bundle.action_low) / 2, (bundle.action_high - bundle.action_low) / 2
    costs = []
    for _ in range(horizon):
        obs, _, cost, *_ = env.step(np.clip((command - mid) / half, -1, 1))
        costs.append(cost)
        command = bundle.policy(obs)[0]
    env.close()
    return lam, now, any(c > 0 for c in costs)


def test_cartpole_map_matches_hand_probes_and_the_band(smoke_bundle: Path) -> None:
    bundle = load_bundle(smoke_bundle)
    m = riskmap.compute(bundle, grid=5, horizon=8)
    assert m.lam.shape == m.violated_within.shape == (5, 5) and m.valid.all()
    np.testing.assert_allclose(m.xs, np.linspace(-1.0, 1.0, 5))
    # At rest the constraint is the band |x| <= 0.6, whatever the pole angle.
    assert (m.violated_now == (np.abs(m.xs)[None, :] > 0.6)).all()
    for iy, ix in ((0, 0), (2, 2), (4, 3)):
        lam, now, within = _probe(bundle, m.xs[ix], m.ys[iy], horizon=8)
        assert m.lam[iy, ix] == pytest.approx(lam, rel=1e-6)
        assert (m.violated_now[iy, ix], m.violated_within[iy, ix]) == (now, within)
    s = m.summary()
    assert s["cells"] == 25 and s["violated_within_fraction"] == pytest.approx(m.violated_within.mean())


def test_diffdrive_map_leaves_out_cells_inside_obstacles() -> None:
    bundle = load_bundle(DIFFDRIVE_BUNDLE)
    m = riskmap.compute(bundle, grid=9, horizon=3, seed=4)
    env = sim.load("diffdrive-safe_navigate", seed=4)
    env.reset(seed=4)
    pillars = env.physics.pillar_positions().copy()
    assert m.goal == pytest.approx(tuple(env.physics.goal_position()))
    for iy, y in enumerate(m.ys):
        for ix, x in enumerate(m.xs):
            riskmap.SLICES[m.task].place(env.physics, x, y)
            env.physics.forward()
            assert m.valid[iy, ix] == (env.physics.obstacle_clearance() >= 0.0)
    assert not m.valid.all() and np.isnan(m.lam[~m.valid]).all() and np.isfinite(m.lam[m.valid]).all()
    # A valid cell right next to a pillar violates the clearance at once.
    near = [(iy, ix) for iy, y in enumerate(m.ys) for ix, x in enumerate(m.xs)
            if m.valid[iy, ix] and np.min(np.hypot(*(pillars - (x, y)).T)) < 0.15 + 0.105 + 0.2]  # fmt: skip
    assert near and all(m.violated_now[c] and m.violated_within[c] for c in near)
    env.close()


def test_tasks_without_a_slice_and_bad_grids_are_named(smoke_bundle: Path) -> None:
    bundle = load_bundle(smoke_bundle)
    walker = dataclasses.replace(bundle, manifest={**bundle.manifest, "task": "walker-safe_walk"})
    with pytest.raises(ValueError, match="no risk-map slice for task 'walker-safe_walk'; tasks with one: cartpole"):
        riskmap.compute(walker)
    with pytest.raises(ValueError, match="grid must be >= 2"):
        riskmap.compute(bundle, grid=1)


def test_riskmap_cli_writes_a_small_png_and_refuses_mixed_tasks(smoke_bundle: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "map.png"
    args = ["riskmap", "--bundle", str(smoke_bundle), "--bundle", str(smoke_bundle), "--label", "a", "--label", "b"]
    assert cli.main([*args, "--out", str(out), "--grid", "4", "--horizon", "3"]) == 0
    printed = capsys.readouterr().out
    assert '"label": "a"' in printed and '"label": "b"' in printed and "auroc_lambda" in printed
    import matplotlib.image

    h, w = matplotlib.image.imread(out).shape[:2]
    assert (w, h) == (800, 660)  # 8 x 3.3 inches per row at 100 dpi: two rows
    assert out.stat().st_size < 200_000

    assert cli.main(["riskmap", "--bundle", str(smoke_bundle), "--label", "a", "--label", "b", "--out", str(out)]) == 2
    assert "1 --bundle but 2 --label" in capsys.readouterr().err
    mixed = ["riskmap", "--bundle", str(smoke_bundle), "--bundle", str(DIFFDRIVE_BUNDLE), "--out", str(out)]
    assert cli.main(mixed) == 2
    assert "one task per risk-map figure" in capsys.readouterr().err
