"""Loading an export bundle on the robot: manifest and hash checks, then an onnxruntime policy.

Imports neither torch nor the training code (tests/alam_control/runtime checks this with torch blocked), so a
robot needs only numpy and onnxruntime.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from alam_control import strict_json

FORMAT_VERSION = 1
POLICY_FILE = "policy.onnx"
MANIFEST_FILE = "manifest.json"
# The policy outputs a bundle may name as its risk signal (manifest "risk_signal"; absent means lambda).
RISK_SIGNALS = ("lambda", "cost_q")
REQUIRED_KEYS = (
    "format_version",
    "task",
    "obs_dim",
    "obs_layout",
    "act_dim",
    "action_low",
    "action_high",
    "control_period_s",
    "ros_interface",
    "deploy",
    "cost_threshold",
    "risk_high",
    "risk_low",
    "config_hash",
    "files",
)


class BundleError(ValueError):
    """A bundle that must not drive a robot: missing files, bad hashes, wrong format or mismatched dimensions."""


class OnnxPolicy:
    """The exported graph: ``obs [O] -> (action [A] in physical units, lambda, cost_q)``.

    Tuned for one small call per control tick (measured on the diff-drive bundle, 2-core machine): one intra-op
    and one inter-op thread, sequential execution (threading only adds jitter at ~10 us per call), and the single
    observation bound once to preallocated input and output buffers (`io_binding`), which skips onnxruntime's
    per-call input conversion and output allocation: 11.0 / 12.9 us p50 / p99 per call against 15.4 / 20.2 us
    through `session.run`. Not thread-safe (one set of buffers): one policy per control loop.
    """

    def __init__(self, path: Path, obs_dim: int, act_dim: int):
        import onnxruntime  # deferred: loading a manifest alone (tools, tests) does not need it

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types for unreadable models
            raise BundleError(f"{path}: not a loadable ONNX model: {err}") from err
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        names = [o.name for o in outputs]
        if [i.name for i in inputs] != ["obs"] or names[:2] != ["action", "lambda"]:
            raise BundleError(
                f"{path}: expected input 'obs' and outputs 'action', 'lambda'[, 'cost_q'], "
                f"got {[i.name for i in inputs]} -> {names}"
            )
        graph_obs = inputs[0].shape[-1]
        graph_act = outputs[0].shape[-1]
        if graph_obs != obs_dim:
            raise BundleError(f"{path}: the policy takes {graph_obs} observations, the manifest says {obs_dim}")
        if graph_act != act_dim:
            raise BundleError(f"{path}: the policy outputs {graph_act} actions, the manifest says {act_dim}")
        self._outputs = names
        self._has_cost_q = "cost_q" in names
        # One observation in, three outputs, all in buffers that live as long as the policy.
        self._feed = np.zeros((1, obs_dim), np.float32)
        self._action = np.zeros((1, act_dim), np.float32)
        self._lam = np.zeros(1, np.float32)
        self._cost_q = np.full(1, np.nan, np.float32)
        binding = self.session.io_binding()
        binding.bind_input("obs", "cpu", 0, np.float32, [1, obs_dim], self._feed.ctypes.data)
        binding.bind_output("action", "cpu", 0, np.float32, [1, act_dim], self._action.ctypes.data)
        binding.bind_output("lambda", "cpu", 0, np.float32, [1], self._lam.ctypes.data)
        if self._has_cost_q:
            binding.bind_output("cost_q", "cpu", 0, np.float32, [1], self._cost_q.ctypes.data)
        self._binding = binding

    def __call__(self, obs: np.ndarray) -> tuple[np.ndarray, float, float]:
        """Returns (action float64 [A], lambda, cost_q) for obs [O] (cost_q is NaN when not exported)."""
        self._feed[0] = obs
        self.session.run_with_iobinding(self._binding)
        return self._action[0].astype(np.float64), float(self._lam[0]), float(self._cost_q[0])

    def batch(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Batched call: ``[N, O] -> (action [N, A], lambda [N], cost_q [N])``."""
        out = self.session.run(self._outputs, {"obs": np.asarray(obs, np.float32)})
        cost_q = out[2] if self._has_cost_q else np.full(len(obs), np.nan, np.float32)
        return out[0], out[1], cost_q


@dataclasses.dataclass
class Bundle:
    """A loaded, verified bundle.

    Attributes:
        path: Bundle directory.
        manifest: The parsed manifest.json (DESIGN.md section 5).
        policy: The onnxruntime policy.
    """

    path: Path
    manifest: dict[str, Any]
    policy: OnnxPolicy

    @property
    def obs_dim(self) -> int:
        return int(self.manifest["obs_dim"])

    @property
    def act_dim(self) -> int:
        return int(self.manifest["act_dim"])

    @property
    def risk_signal(self) -> str:
        """Which policy output is the risk the monitor watches: "lambda" or "cost_q" (the one place that reads it)."""
        return self.manifest.get("risk_signal") or "lambda"

    @property
    def action_low(self) -> np.ndarray:
        return np.asarray(self.manifest["action_low"], np.float64)

    @property
    def action_high(self) -> np.ndarray:
        return np.asarray(self.manifest["action_high"], np.float64)


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


SIGNATURE_KEY = "manifest_sha256"
"""The manifest's own hash: sha256 of its canonical JSON without this key. Written by `alam export`,
`alam calibrate` and `alam bundle rehash`; a manifest edited by hand no longer matches and is refused. It guards
against accidental and unnoticed edits of safety-relevant fields (thresholds, bounds, period), not against an
attacker who can write the bundle directory: anyone can recompute it, as `rehash` does."""


def manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of `manifest` without its SIGNATURE_KEY."""
    body = {k: v for k, v in manifest.items() if k != SIGNATURE_KEY}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_manifest(bundle: Path, manifest: dict[str, Any]) -> None:
    """Writes manifest.json signed (SIGNATURE_KEY) and atomically (temp file + rename), e.g. after calibration
    sets the risk thresholds. Strict JSON: non-finite numbers are written as null."""
    signed = {k: v for k, v in strict_json(manifest).items() if k != SIGNATURE_KEY}
    signed[SIGNATURE_KEY] = manifest_digest(signed)
    tmp = Path(bundle) / (MANIFEST_FILE + ".tmp")
    tmp.write_text(json.dumps(signed, indent=2, allow_nan=False) + "\n")
    os.replace(tmp, Path(bundle) / MANIFEST_FILE)


def read_manifest(path: str | Path, *, verify_signature: bool = True) -> dict[str, Any]:
    """Reads and checks a bundle's manifest (schema, signature) and file hashes, without loading the policy.

    Args:
        verify_signature: False only for `alam bundle rehash`, which re-signs a manifest after checking the rest.

    Raises:
        BundleError: Naming the problem: missing directory or manifest, invalid JSON, unknown format version, a
            manifest edited since it was signed, a field of the wrong type or out of range (see
            `validate_manifest`), a listed file missing, outside the bundle, a symlink, or with another sha256.
    """
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"bundle directory not found: {path}")
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.is_file():
        raise BundleError(f"{path}: no {MANIFEST_FILE}; is this an `alam export` bundle?")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(f"{manifest_path}: not valid JSON: {err}") from err
    if not isinstance(manifest, dict):
        raise BundleError(f"{manifest_path}: the top level must be an object")
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise BundleError(f"{manifest_path}: missing key(s) {', '.join(missing)}")
    if manifest["format_version"] != FORMAT_VERSION:
        raise BundleError(
            f"{manifest_path}: format_version {manifest['format_version']!r}, this runtime reads {FORMAT_VERSION}; "
            "re-export the bundle with this package version"
        )
    if verify_signature:
        signature = manifest.get(SIGNATURE_KEY)
        if signature != manifest_digest(manifest):
            state = (
                f"has no {SIGNATURE_KEY} (an older export, or edited)"
                if signature is None
                else f"does not match its {SIGNATURE_KEY}: it was edited after `alam export` / `alam calibrate`"
            )
            raise BundleError(
                f"{manifest_path} {state}; if its contents are what you want, re-sign it with "
                f"`alam bundle rehash --bundle {path}` (which validates it first)"
            )
    validate_manifest(manifest, manifest_path)
    root = path.resolve()
    for name, expected in manifest["files"].items():
        file = path / name
        if file.is_symlink() or file.resolve().parent != root:
            raise BundleError(f"{manifest_path}: file {name!r} is not a plain file inside the bundle directory")
        if not file.is_file():
            raise BundleError(f"{path}: {name} is listed in the manifest but missing")
        actual = file_sha256(file)
        if actual != expected:
            raise BundleError(
                f"{file}: sha256 {actual[:12]}... does not match the manifest's {str(expected)[:12]}...; "
                "the bundle was modified or corrupted after export"
            )
    return manifest


def validate_manifest(manifest: dict[str, Any], where: str | Path = MANIFEST_FILE) -> None:
    """Checks every field's type and range (the manifest schema, DESIGN.md section 5).

    Raises:
        BundleError: Naming the field, its value and what is allowed.
    """

    def fail(message: str) -> None:
        raise BundleError(f"{where}: {message}")

    def integer(key: str, low: int) -> int:
        value = manifest[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            fail(f"{key} must be an integer >= {low}, got {value!r}")
        return value

    def number(key: str, value: Any, low: float = -math.inf, high: float = math.inf, open_low: bool = False) -> float:
        ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
        if not ok or value < low or value > high or (open_low and value == low):
            bracket = "(" if open_low else "["
            where = "" if (low, high) == (-math.inf, math.inf) else f" in {bracket}{low}, {high}]"
            fail(f"{key} must be a finite number{where}, got {value!r}")
        return float(value)

    if not isinstance(manifest["task"], str) or not manifest["task"]:
        fail(f"task must be a task name, got {manifest['task']!r}")
    obs_dim, act_dim = integer("obs_dim", 1), integer("act_dim", 1)
    layout = manifest["obs_layout"]
    if not isinstance(layout, dict) or not layout:
        fail(f"obs_layout must map part names to [start, stop], got {layout!r}")
    for part, span in layout.items():
        ok = isinstance(span, list) and len(span) == 2 and all(type(i) is int for i in span)
        if not ok or not 0 <= span[0] < span[1] <= obs_dim:
            fail(f"obs_layout.{part} must be [start, stop] with 0 <= start < stop <= obs_dim ({obs_dim}), got {span!r}")
    stops = [stop for _, stop in layout.values()]
    if max(stops) != obs_dim:
        fail(f"obs_layout covers {max(stops)} entries, obs_dim is {obs_dim}")
    bounds = {}
    for key in ("action_low", "action_high"):
        values = manifest[key]
        if not isinstance(values, list):
            fail(f"{key} must be a list of {act_dim} numbers, got {values!r}")
        if len(values) != act_dim:
            fail(f"{key} has {len(values)} entries, act_dim is {act_dim}")
        bounds[key] = [number(f"{key}[{i}]", v) for i, v in enumerate(values)]
    if any(lo >= hi for lo, hi in zip(bounds["action_low"], bounds["action_high"], strict=True)):
        fail(f"action_low {bounds['action_low']} must be below action_high {bounds['action_high']} in every entry")
    number("control_period_s", manifest["control_period_s"], 0.0, 10.0, open_low=True)
    if manifest["ros_interface"] not in ("joint", "diff_drive"):
        fail(f"unknown ros_interface {manifest['ros_interface']!r}; one of joint, diff_drive")
    if not isinstance(manifest["deploy"], dict):
        fail(f"deploy must be an object, got {manifest['deploy']!r}")
    number("cost_threshold", manifest["cost_threshold"])
    signal = manifest.get("risk_signal")
    if signal not in (None, *RISK_SIGNALS):
        fail(f"unknown risk_signal {signal!r}; one of {RISK_SIGNALS}")
    cap = manifest.get("lambda_max")
    if cap is not None:
        number("lambda_max", cap, 0.0, open_low=True)
    _validate_thresholds(manifest, number, fail)
    if "release_dwell_s" in manifest:  # optional: picked by `alam calibrate`'s closed-loop check
        number("release_dwell_s", manifest["release_dwell_s"], 0.0, 3600.0)
    files = manifest["files"]
    if not isinstance(files, dict) or POLICY_FILE not in files:
        fail(f"files must map file names to sha256 and list {POLICY_FILE}, got {files!r}")
    for name, digest in files.items():
        if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", "..", MANIFEST_FILE):
            fail(f"files: {name!r} is not a plain file name inside the bundle directory")
        if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
            fail(f"files.{name} must be a hex sha256, got {digest!r}")
    if not isinstance(manifest["config_hash"], str):
        fail(f"config_hash must be a string, got {manifest['config_hash']!r}")


def threshold_bounds(manifest: dict[str, Any]) -> tuple[float, float, str] | None:
    """(low, high, what) for a risk threshold of this bundle: inside the range of risk its calibration saw (the
    reliability table's first and last bin), and inside [0, lambda_max] for lambda; None when nothing bounds it.

    A threshold outside that range makes the monitor never (or always) engage: the manifest schema refuses it, and
    the ROS node refuses it as a parameter unless started with allow_unsafe_parameters.
    """
    signal = manifest.get("risk_signal") or "lambda"
    low, high, what = -math.inf, math.inf, []
    cap = manifest.get("lambda_max")
    if signal == "lambda" and isinstance(cap, (int, float)) and not isinstance(cap, bool):
        low, high = -1e-6, float(cap)
        what.append(f"[0, lambda_max {cap:g}]")
    calibration = manifest.get("calibration")
    table = calibration.get("reliability") if isinstance(calibration, dict) else None
    if table:
        seen_low, seen_high = float(table[0]["bin_low"]), float(table[-1]["bin_high"])
        slack = 1e-6 + 1e-3 * (seen_high - seen_low)  # calibration sets thresholds just below a quantile
        low, high = max(low, seen_low - slack), min(high, seen_high)
        what.append(f"the range of {signal} the calibration saw [{seen_low:.6g}, {seen_high:.6g}]")
    return None if not what else (low, high, " and ".join(what))


CAP_SHARE_BLIND = 0.95
"""lambda at its cap on at least this share of the calibration's states cannot rank risk (as `alam report` reads a
multiplier pinned at its cap: >= 95 % of the replay states there)."""


def risk_signal_caveats(manifest: dict[str, Any]) -> list[str]:
    """What the bundle's calibration says its risk signal cannot do, one sentence each; [] when it says nothing
    against it (or the bundle is uncalibrated: the monitor then runs on the thresholds it is given).

    A bundle passes every schema check and still leaves the robot unprotected when its multiplier is pinned at its
    cap (the evidence grid's diff-drive `fac` seed 1: lambda 10 on every state, AUROC 0.5, risk_high 10, and the
    monitor never handed over), ranks violations no better than chance, or has thresholds that flagged none of the
    calibration's states although it violated. The ROS node and `alam calibrate` print these as warnings.
    """
    calibration = manifest.get("calibration")
    if not isinstance(calibration, dict):
        return []
    signal = calibration.get("risk_signal") or manifest.get("risk_signal") or "lambda"
    where = f"the calibration's {calibration.get('episodes', '?')} episodes"
    caveats = []
    cap_share, cap = calibration.get("cap_share"), manifest.get("lambda_max")
    if isinstance(cap_share, (int, float)) and cap_share >= CAP_SHARE_BLIND:
        caveats.append(
            f"{signal} sat at its cap (lambda_max {cap}) on {cap_share:.0%} of the states of {where}: it cannot rank "
            "risk, and the monitor cannot hand over for it"
        )
    auroc = calibration.get("risk_auroc")
    interval = calibration.get("risk_auroc_interval") or []
    bounded = len(interval) == 2 and all(isinstance(x, (int, float)) and math.isfinite(x) for x in interval)
    low = interval[0] if bounded else auroc  # chance not excluded: the interval (else the estimate) reaches 0.5
    if isinstance(low, (int, float)) and math.isfinite(low) and low <= 0.5:
        shown = f"{auroc:.3f}" + (f", 95 % interval {interval[0]:.3f}-{interval[1]:.3f}" if bounded else "")
        caveats.append(
            f"{signal} ranked the violations within {calibration.get('horizon', '?')} steps in {where} no better "
            f"than chance (AUROC {shown})"
        )
    if calibration.get("flag_rate") == 0 and (calibration.get("onsets") or 0) > 0:
        caveats.append(
            f"the calibrated risk_high flagged none of the states of {where}, in which the policy violated "
            f"{calibration['onsets']} time(s): the monitor would not have handed over for risk"
        )
    return caveats


def _validate_thresholds(manifest: dict[str, Any], number, fail) -> None:
    """risk_high / risk_low: both null (uncalibrated) or finite with risk_low <= risk_high, inside
    `threshold_bounds`."""
    high, low = manifest["risk_high"], manifest["risk_low"]
    if high is None and low is None:
        return
    if high is None or low is None:
        fail(f"risk_high and risk_low must both be set or both null, got {high!r}, {low!r}")
    high, low = number("risk_high", high), number("risk_low", low)
    if low > high:
        fail(f"risk_low ({low}) must be <= risk_high ({high})")
    for problem in thresholds_outside(manifest, high, low):
        fail(f"{problem}: the monitor would never (or always) engage")


def thresholds_outside(manifest: dict[str, Any], risk_high: float, risk_low: float) -> list[str]:
    """Each of the two thresholds that lies outside `threshold_bounds`, as "risk_high 99.0 is outside [0, lambda_max
    10]"; [] when both are inside or nothing bounds them. The manifest schema refuses such a threshold, the ROS node
    refuses it as a parameter (unless allow_unsafe_parameters), and `alam eval` runs it with a note."""
    bounds = threshold_bounds(manifest)
    if bounds is None:
        return []
    low, high, what = bounds
    pairs = (("risk_high", risk_high), ("risk_low", risk_low))
    return [f"{name} {value} is outside {what}" for name, value in pairs if not low <= value <= high]


def load_bundle(path: str | Path, task: str | None = None) -> Bundle:
    """Loads and verifies a bundle (DESIGN.md section 5).

    Args:
        path: Bundle directory.
        task: If given, the task the bundle must have been trained on.

    Raises:
        BundleError: For any mismatch (see `read_manifest`), a policy whose input/output sizes disagree with the
            manifest, or a bundle for another task.
    """
    path = Path(path)
    manifest = read_manifest(path)
    if task is not None and manifest["task"] != task:
        raise BundleError(f"{path}: bundle is for task {manifest['task']!r}, expected {task!r}")
    policy = OnnxPolicy(path / POLICY_FILE, int(manifest["obs_dim"]), int(manifest["act_dim"]))
    return Bundle(path=path, manifest=manifest, policy=policy)
