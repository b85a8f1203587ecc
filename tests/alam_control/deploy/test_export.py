"""`alam export`: the ONNX graph reproduces torch's deterministic action, lambda and Q_c; the manifest is complete."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

import sim
from alam_control import cli
from alam_control.deploy import export
from alam_control.learn import rundir
from alam_control.runtime.bundle import file_sha256


def test_onnx_matches_torch(smoke_run: Path, smoke_bundle: Path) -> None:
    run = rundir.load_run(smoke_run)
    agent, env = run.agent, run.env
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


def test_exported_lambda_stays_graded_far_below_the_cap(smoke_run: Path, tmp_path: Path) -> None:
    """onnxruntime's Sigmoid returns exactly 0 from a logit of -18 down; the exported lambda must still rank."""
    run = rundir.load_run(smoke_run)
    net = run.agent.multiplier.net
    with torch.no_grad():
        net.net[-1].bias.sub_(60.0)  # logits around -60: lambda ~ 1e-26 lambda_max
    module = export.ExportedPolicy(run.agent, run.env.spec.ctrl_low, run.env.spec.ctrl_high).eval()
    path = tmp_path / "policy.onnx"
    export.write_onnx(module, 5, path)
    obs = np.random.default_rng(0).normal(0, 1, (32, 5)).astype(np.float32)
    lam = onnxruntime.InferenceSession(str(path)).run(["lambda"], {"obs": obs})[0]
    with torch.no_grad():
        z = net.logits(run.agent.obs_norm(torch.as_tensor(obs))).double()
    assert z.max() < -30.0
    np.testing.assert_allclose(lam, (net.lambda_max * torch.sigmoid(z)).numpy(), rtol=1e-4)
    assert len(np.unique(lam)) == len(lam)


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
    assert manifest["randomization"] is None  # trained on the nominal model
    assert len(manifest["config_hash"]) == 64 and manifest["train_step"] == 600
    assert manifest["files"] == {"policy.onnx": file_sha256(smoke_bundle / "policy.onnx")}


def test_export_replaces_only_a_previous_bundle(smoke_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "b"
    assert cli.main(["export", "--run-dir", str(smoke_run), "--out", str(out)]) == 0
    first = (out / "policy.onnx").stat().st_ino
    assert cli.main(["export", "--run-dir", str(smoke_run), "--out", str(out)]) == 0  # a previous bundle: replaced
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "policy.onnx"]
    assert (out / "policy.onnx").stat().st_ino != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no temp or .old directory left behind
    assert cli.main(["export", "--run-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "c")]) == 2
    assert "missing" in capsys.readouterr().err and not (tmp_path / "c").exists()


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("target", ["unrelated_dir", "run_dir", "inside_run", "a_file", "cwd", "bundle_plus"])
def test_export_refuses_anything_but_a_bundle_and_deletes_nothing(
    target: str, smoke_run: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    run = tmp_path / "run"
    __import__("shutil").copytree(smoke_run, run)
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    (work / "data").mkdir()
    (work / "data" / "x.csv").write_text("1,2")
    monkeypatch.chdir(work)
    out = {"unrelated_dir": work / "data", "run_dir": run, "inside_run": run / "bundle", "a_file": work / "notes.txt",
           "cwd": Path("."), "bundle_plus": work / "bundle"}[target]  # fmt: skip
    if target == "bundle_plus":
        assert cli.main(["export", "--run-dir", str(run), "--out", str(out)]) == 0
        (out / "README.md").write_text("my notes on this bundle")
    before_run, before_work = _snapshot(run), _snapshot(work)
    assert cli.main(["export", "--run-dir", str(run), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "refusing" in err or "run directory" in err, err
    assert _snapshot(run) == before_run and _snapshot(work) == before_work  # nothing lost, nothing added
    assert not [p for p in work.iterdir() if p.name.startswith(".")]  # no temp dir left behind


def test_export_writes_into_an_empty_directory(smoke_run: Path, tmp_path: Path) -> None:
    """An empty directory holds nothing to lose (benchmarks/evidence.py empties a stale bundle dir of its cache)."""
    out = tmp_path / "empty"
    out.mkdir()
    assert cli.main(["export", "--run-dir", str(smoke_run), "--out", str(out)]) == 0
    assert json.loads((out / "manifest.json").read_text())["train_step"] > 0
