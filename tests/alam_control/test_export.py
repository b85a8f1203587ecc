"""`alam export`: the ONNX graph reproduces torch's deterministic action, lambda and Q_c; the manifest is complete."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

import sim
from alam_control import cli, export
from alam_control.runtime.bundle import file_sha256


def test_onnx_matches_torch(smoke_run: Path, smoke_bundle: Path) -> None:
    _, agent, env, _ = export.load_run(smoke_run)
    rng = np.random.default_rng(0)
    obs = np.concatenate([np.stack([env.reset(seed=i)[0] for i in range(4)]), rng.normal(0, 2, (60, 5))])
    obs = obs.astype(np.float32)
    session = onnxruntime.InferenceSession(str(smoke_bundle / "policy.onnx"))
    action, lam, cost_q = session.run(["action", "lambda", "cost_q"], {"obs": obs})

    low, high = np.array(env.spec.ctrl_low), np.array(env.spec.ctrl_high)
    torch_action = (high + low) / 2 + (high - low) / 2 * agent.act(obs, deterministic=True)
    np.testing.assert_allclose(action, torch_action, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lam, agent.lambdas(obs).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cost_q, agent.cost_values(obs).numpy(), rtol=1e-5, atol=1e-5)
    assert agent.obs_norm.std.ne(1.0).any(), "normalization is baked into the graph, not skipped"
    assert lam.min() >= 0.0


def test_manifest(smoke_bundle: Path) -> None:
    manifest = json.loads((smoke_bundle / "manifest.json").read_text())
    env = sim.load("cartpole-safe_swingup")
    assert manifest["format_version"] == 1 and manifest["task"] == "cartpole-safe_swingup"
    assert manifest["obs_dim"] == 5 and manifest["act_dim"] == 1
    assert manifest["obs_layout"] == {k: list(v) for k, v in env.spec.obs_layout.items()}
    assert manifest["control_period_s"] == env.spec.control_timestep and manifest["ros_interface"] == "joint"
    assert manifest["deploy"] == env.spec.deploy
    assert manifest["cost_threshold"] == pytest.approx(0.97**20)  # d = gamma_c^H of the first_violation critic
    assert manifest["lambda_max"] == 10.0
    assert manifest["risk_high"] is None and manifest["risk_low"] is None  # until `alam calibrate`
    assert len(manifest["config_hash"]) == 64 and manifest["train_step"] == 600
    assert manifest["files"] == {"policy.onnx": file_sha256(smoke_bundle / "policy.onnx")}


def test_export_cli_replaces_bundle_whole(smoke_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "b"
    out.mkdir()
    (out / "stale.txt").write_text("from an older export")
    assert cli.main(["export", "--run-dir", str(smoke_run), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "policy.onnx"]
    assert not list(tmp_path.glob(".b.*")) and not (tmp_path / "b.old").exists()
    assert cli.main(["export", "--run-dir", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "missing" in capsys.readouterr().err
