"""`alam export`: a trained run -> a self-contained bundle (`policy.onnx` + `manifest.json`, DESIGN.md section 5).

The ONNX graph maps raw observations to everything the robot needs, so the robot side runs no training code:

    obs [B, O] --normalize--> actor mean --tanh--> scale to the actuators' range --> action [B, A] (physical units)
                         \\--> multiplier --> lambda [B]          \\--> cost critic at that action --> cost_q [B]
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

import alam_control
from alam_control import config as config_lib
from alam_control.learn import rundir, trainer
from alam_control.learn.agent import Agent
from alam_control.learn.networks import MultiplierNet
from alam_control.runtime.bundle import (
    FORMAT_VERSION,
    MANIFEST_FILE,
    POLICY_FILE,
    RISK_SIGNALS,
    BundleError,
    file_sha256,
    read_manifest,
    write_manifest,
)


class ExportedPolicy(nn.Module):
    """The deployable part of an agent as one module: ``obs [B, O] -> (action [B, A], lambda [B], cost_q [B])``.

    The action is the deterministic policy action in the actuators' physical units; lambda is the multiplier
    (zeros for plain SAC); cost_q is Q_c(s, action) (zeros without a cost critic).

    Built for a robot's control tick, where onnxruntime's cost is per graph node (~0.5 us each at these sizes),
    not per FLOP: the actor head keeps only its mean rows (no log-std, no split), and the cost critic is the
    ensemble's head 2 alone as plain Linear layers (not the three-head batched matmul). Same numbers as the agent's
    forward pass (tests/alam_control/deploy/test_export.py compares them).
    """

    def __init__(self, agent: Agent, ctrl_low: tuple[float, ...], ctrl_high: tuple[float, ...]):
        super().__init__()
        self.obs_norm, self.multiplier = agent.obs_norm, agent.multiplier
        act_dim = len(ctrl_low)
        head = agent.actor.head
        mean_head = nn.Linear(head.in_features, act_dim)
        with torch.no_grad():
            mean_head.weight.copy_(head.weight[:act_dim])
            mean_head.bias.copy_(head.bias[:act_dim])
        self.actor = nn.Sequential(*agent.actor.trunk, mean_head, nn.Tanh())
        self.cost_critic = _ensemble_head(agent.critic, 2) if agent.constrained else None
        low, high = torch.tensor(ctrl_low), torch.tensor(ctrl_high)
        self.register_buffer("ctrl_mid", (high + low) / 2)
        self.register_buffer("ctrl_half", (high - low) / 2)

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = self.obs_norm(obs)
        a = self.actor(x)
        net = getattr(self.multiplier, "net", None)
        if isinstance(net, MultiplierNet):
            # lambda_max / (1 + exp(-z)), not torch.sigmoid: onnxruntime's Sigmoid op is off by 2x at z = -17 and
            # returns exactly 0 from z = -18 down (measured), so every state below would tie at lambda = 0; with
            # pushes, a quarter of a diff-drive bundle's pre-violation states were there. This form stays exact
            # down to z ~ -88, where exp overflows and lambda is 0.
            lam = net.lambda_max / (1.0 + torch.exp(-net.logits(x)))
        else:
            lam = self.multiplier.multipliers(x)
        if self.cost_critic is not None:
            cost_q = self.cost_critic(torch.cat([x, a], dim=-1)).squeeze(-1)
        else:
            cost_q = torch.zeros_like(lam)
        return self.ctrl_mid + self.ctrl_half * a, lam, cost_q


def write_onnx(module: ExportedPolicy, obs_dim: int, path: Path, opset: int = 18) -> None:
    """The ONNX graph of `module`: ``obs [B, obs_dim] -> (action, lambda, cost_q)``, any batch up to 4096."""
    # The exporter's notes that do not concern this graph: it registers torchvision's detection ops when torchvision
    # is installed and logs a warning for each when it is not; torch's own pytree deprecation warning.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
        torch.onnx.export(
            module,
            (torch.zeros(1, obs_dim),),
            str(path),
            input_names=["obs"],
            output_names=["action", "lambda", "cost_q"],
            dynamic_shapes={"obs": {0: torch.export.Dim("batch", max=4096)}},
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )


def _ensemble_head(critic: nn.Module, head: int) -> nn.Sequential:
    """Head `head` of a CriticEnsemble as an MLP of nn.Linear + ReLU with the same weights: ``[B, O+A] -> [B, 1]``."""
    layers: list[nn.Module] = []
    for i, (w, b) in enumerate(zip(critic.weights, critic.biases, strict=True)):
        linear = nn.Linear(w.shape[1], w.shape[2])
        with torch.no_grad():
            linear.weight.copy_(w[head].T)  # ensemble weights are [H, in, out]; Linear's are [out, in]
            linear.bias.copy_(b[head, 0])
        layers += [linear, nn.ReLU()] if i < len(critic.weights) - 1 else [linear]
    return nn.Sequential(*layers)


def export(
    run_dir: str | Path, out: str | Path, opset: int = 18, risk_signal: str | None = None, which: str = "latest"
) -> dict[str, Any]:
    """Writes the bundle of the run's latest checkpoint to `out`: a new directory, or a previous bundle, which is
    replaced atomically (anything else at `out` is refused, see `check_out`; nothing is deleted but the previous
    bundle's own files).

    Args:
        which: "latest", or "best": the weights at the run's best evaluation at a violation rate of at most
            `rundir.SAFE_VIOLATION_RATE` (`trainer.is_new_best`). The manifest records which, and its step.
        risk_signal: Which output the runtime monitor watches: "lambda" (lambda(s), the default for multiplier
            algorithms) or "cost_q" (Q_c(s, a), the default for `sac`, whose multiplier is zero; also the choice
            when lambda has saturated at `multiplier.lambda_max` and no longer ranks states, see `alam calibrate`'s
            risk_auroc).

    Returns:
        The manifest.

    Raises:
        FileNotFoundError / CheckpointError / ConfigError: If the run cannot be loaded.
    """
    if risk_signal is not None and risk_signal not in RISK_SIGNALS:
        raise ValueError(f"risk_signal must be one of {list(RISK_SIGNALS)}, got {risk_signal!r}")
    run_dir, out = Path(run_dir), Path(out)
    check_out(run_dir, out)
    run = rundir.load_run(run_dir, which=which)
    cfg, env = run.config, run.env
    spec = env.spec
    module = ExportedPolicy(run.agent, spec.ctrl_low, spec.ctrl_high).eval()
    obs_dim = int(spec.obs_layout and max(stop for _, stop in spec.obs_layout.values()))

    out.parent.mkdir(parents=True, exist_ok=True)
    # Build in a sibling temp dir and rename: a crash never leaves a half-written bundle under `out`.
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)
    try:
        write_onnx(module, obs_dim, tmp / POLICY_FILE, opset)
        manifest = {
            "format_version": FORMAT_VERSION,
            "task": spec.name,
            "algo": cfg.algo.name,
            "obs_dim": obs_dim,
            "obs_layout": {k: list(v) for k, v in spec.obs_layout.items()},
            "act_dim": len(spec.ctrl_low),
            "action_low": list(spec.ctrl_low),
            "action_high": list(spec.ctrl_high),
            "control_period_s": spec.control_timestep,
            "ros_interface": spec.ros_interface,
            "deploy": spec.deploy,
            "constraints": list(spec.constraints),
            "cost_threshold": trainer.cost_threshold_for(cfg, env),
            "cost_gamma": cfg.cost.gamma,
            "risk_signal": risk_signal or ("lambda" if cfg.algo.name != "sac" else "cost_q"),
            # The multiplier's cap (calibration reports the share of states at it); None for plain SAC.
            "lambda_max": cfg.multiplier.lambda_max if cfg.algo.name != "sac" else None,
            "risk_high": None,
            "risk_low": None,
            "calibration": None,
            # The domain randomization it was trained under (pushes included): what `alam calibrate` and
            # `alam eval --bundle --randomize` roll it out under; None = trained on the nominal model.
            "randomization": config_lib.to_dict(cfg)["randomization"] if cfg.randomize else None,
            "config_hash": config_lib.config_hash(cfg),
            "train_step": int(run.state["loop"]["step"]),
            "checkpoint": which,
            "package_version": alam_control.__version__,
            "files": {POLICY_FILE: file_sha256(tmp / POLICY_FILE)},
        }
        write_manifest(tmp, manifest)
        previous = check_out(run_dir, out)  # again: the target may have changed while the graph was exported
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # our own temp dir: no half-written bundle is left behind
        raise
    if previous:
        # Swap the previous bundle out and the new one in, then delete only the files the old manifest listed.
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
        old.rmdir()
        os.replace(out, old)
        os.replace(tmp, out)
        for name in previous:
            (old / name).unlink(missing_ok=True)
        old.rmdir()
    else:
        os.replace(tmp, out)
    return manifest


def check_out(run_dir: Path, out: Path) -> list[str]:
    """Refuses an export target that is not a new path, an empty directory or a previous bundle: nothing else is
    ever replaced.

    Returns:
        The files of the previous bundle at `out` (its manifest and the files it lists), [] for a new path or an
        empty directory.

    Raises:
        FileExistsError: `out` is a file, a directory that is not a valid bundle (`read_manifest`, signature aside:
            a bundle from an older version is still one) or holds more than its files, or the run directory itself /
            inside it / around it.
    """
    out_abs, run_abs = out.resolve(), run_dir.resolve()
    if out_abs == run_abs or run_abs in out_abs.parents or out_abs in run_abs.parents:
        raise FileExistsError(
            f"--out {out} is the run directory {run_dir}, inside it or around it; write the bundle elsewhere"
        )
    if not out.exists() and not out.is_symlink():
        return []
    if out.is_symlink() or not out.is_dir():
        raise FileExistsError(f"--out {out} exists and is not a bundle directory; refusing to replace it")
    if not any(out.iterdir()):
        return []  # an empty directory holds nothing to lose: a new path (the rename replaces it)
    try:
        previous = read_manifest(out, verify_signature=False)
    except BundleError as err:
        raise FileExistsError(
            f"--out {out} is an existing directory but not a valid bundle ({err}); refusing to replace it "
            "(export replaces only a previous bundle)"
        ) from None
    files = [MANIFEST_FILE, *previous["files"]]  # plain names inside the bundle: read_manifest checked them
    extra = sorted({p.name for p in out.iterdir()} - set(files))
    if extra:
        raise FileExistsError(
            f"--out {out} holds a bundle plus other entries ({', '.join(extra)}); refusing to replace it: "
            "move them away or pick another --out"
        )
    return files
