"""The torch-free runtime: bundle checks, monitor hysteresis, fallbacks, observation rebuilding and scan binning."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alam_control.runtime import (
    BundleError,
    DiffDriveObservation,
    InputFault,
    JointObservation,
    MonitorConfig,
    ProgressWatch,
    RiskMonitor,
    bin_scan,
    default_fallback,
    load_bundle,
    make_fallback,
    risk_signal_caveats,
    yaw_from_quaternion,
)
from alam_control.runtime.bundle import (
    RISK_SIGNALS,
    SIGNATURE_KEY,
    manifest_digest,
    validate_manifest,
    write_manifest,
)

REPO = Path(__file__).resolve().parents[3]


def copy_bundle(bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bundle, tmp_path / "bundle"))


# --- bundles ------------------------------------------------------------------------------------------------


def test_runtime_runs_without_torch(smoke_bundle: Path) -> None:
    code = f"""
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
from alam_control.runtime import load_bundle
bundle = load_bundle({str(smoke_bundle)!r})
action, lam, cost_q = bundle.policy([0.0, -1.0, 0.0, 0.0, 0.0])
assert action.shape == (1,) and lam >= 0.0
assert not any(name == "torch" or name.startswith(("torch.", "sim", "dm_control")) for name in sys.modules
               if sys.modules[name] is not None)
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_bundle_loads_and_runs(smoke_bundle: Path) -> None:
    bundle = load_bundle(smoke_bundle, task="cartpole-safe_swingup")
    action, lam, cost_q = bundle.policy(np.zeros(5, np.float32))
    assert action.dtype == np.float64 and bundle.action_low[0] <= action[0] <= bundle.action_high[0]
    actions, lams, _ = bundle.policy.batch(np.zeros((3, 5), np.float32))
    np.testing.assert_allclose(actions[0], action, rtol=1e-6)
    assert lams[0] == pytest.approx(lam) and math.isfinite(cost_q)


def test_bad_hash_is_refused(smoke_bundle: Path, tmp_path: Path) -> None:
    bundle = copy_bundle(smoke_bundle, tmp_path)
    data = bytearray((bundle / "policy.onnx").read_bytes())
    data[-10] ^= 0xFF
    (bundle / "policy.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256 .* does not match"):
        load_bundle(bundle)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(format_version=99), "format_version 99"),
        (lambda m: m.pop("obs_layout"), "missing key"),
        (lambda m: m.update(obs_dim=6, obs_layout={**m["obs_layout"], "extra": [5, 6]}), "takes 5 observations"),
        (lambda m: m.update(act_dim=2, action_low=[-1, -1], action_high=[1, 1]), "outputs 1 actions"),
        (lambda m: m.update(action_low=[-1, -1]), "action_low has 2 entries"),
        (lambda m: m.update(ros_interface="wheels"), "ros_interface"),
    ],
)
def test_mismatched_manifest_is_refused(smoke_bundle: Path, tmp_path: Path, edit, message: str) -> None:
    bundle = copy_bundle(smoke_bundle, tmp_path)
    manifest = json.loads((bundle / "manifest.json").read_text())
    edit(manifest)
    write_manifest(bundle, manifest)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle)


# Hand edits a hostile or careless user might make, each re-signed (so the schema, not the signature, must catch
# it) and each refused with the field named.
SCHEMA_EDITS = [
    (lambda m: m.update(risk_high=1e9, risk_low=0.0), "risk_high 1000000000.0 is outside [0, lambda_max 10]"),
    (lambda m: m.update(risk_high="abc", risk_low=0.0), "risk_high must be a finite number"),
    (lambda m: m.update(risk_high=0.5, risk_low=0.8), "risk_low (0.8) must be <= risk_high"),
    (lambda m: m.update(risk_high=0.5, risk_low=None), "both be set or both null"),
    (lambda m: m.update(action_low=[0], action_high=[0]), "must be below action_high"),
    (lambda m: m.update(action_low=[float("inf")]), "action_low[0] must be a finite number"),
    (lambda m: m.update(control_period_s=-1), "control_period_s must be a finite number in (0.0"),
    (lambda m: m.update(obs_dim="5"), "obs_dim must be an integer >= 1, got '5'"),
    (lambda m: m.update(obs_dim=True), "obs_dim must be an integer"),
    (lambda m: m.update(lambda_max=-1.0), "lambda_max must be a finite number"),
    (lambda m: m.update(risk_signal="Q"), "unknown risk_signal"),
    (lambda m: m.update(obs_layout={"x": [3, 2]}), "obs_layout.x must be [start, stop]"),
    (lambda m: m["files"].update({"../escape.onnx": "0" * 64}), "not a plain file name inside the bundle"),
    (lambda m: m["files"].update({"/etc/passwd": "0" * 64}), "not a plain file name inside the bundle"),
    (lambda m: m["files"].update({"policy.onnx": "abc"}), "must be a hex sha256"),
    (lambda m: m.update(deploy=[]), "deploy must be an object"),
    (lambda m: m.update(release_dwell_s=-0.5), "release_dwell_s must be a finite number in [0.0, 3600.0]"),
]


@pytest.mark.parametrize(("edit", "message"), SCHEMA_EDITS)
def test_manifest_schema_names_the_field(smoke_bundle: Path, tmp_path: Path, edit, message: str) -> None:
    bundle = copy_bundle(smoke_bundle, tmp_path)
    manifest = json.loads((bundle / "manifest.json").read_text())
    edit(manifest)
    write_manifest(bundle, manifest)
    with pytest.raises(BundleError, match=re.escape(message)):
        load_bundle(bundle)


def test_a_nan_threshold_written_by_hand_is_refused(smoke_bundle: Path, tmp_path: Path) -> None:
    """write_manifest writes NaN as null; a file edited by hand (and signed) may still hold one."""
    bundle = copy_bundle(smoke_bundle, tmp_path)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest.update(risk_high=float("nan"), risk_low=0.0)
    manifest.pop(SIGNATURE_KEY)
    manifest[SIGNATURE_KEY] = manifest_digest(manifest)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="risk_high must be a finite number"):
        load_bundle(bundle)


def test_a_hand_edit_is_refused_until_rehashed(smoke_bundle: Path, tmp_path: Path, capsys) -> None:
    from alam_control import cli

    bundle = copy_bundle(smoke_bundle, tmp_path)
    manifest = json.loads((bundle / "manifest.json").read_text())
    (bundle / "manifest.json").write_text(json.dumps(dict(manifest, control_period_s=0.05)))
    with pytest.raises(BundleError, match="does not match its manifest_sha256.*alam bundle rehash"):
        load_bundle(bundle)
    assert cli.main(["bundle", "rehash", "--bundle", str(bundle)]) == 0
    assert load_bundle(bundle).manifest["control_period_s"] == 0.05
    # rehash validates before it signs: an invalid edit stays refused.
    (bundle / "manifest.json").write_text(json.dumps(dict(manifest, risk_high=1e9, risk_low=0.0)))
    assert cli.main(["bundle", "rehash", "--bundle", str(bundle)]) == 2
    assert "risk_high 1000000000.0 is outside" in capsys.readouterr().err
    with pytest.raises(BundleError, match="manifest_sha256"):
        load_bundle(bundle)


def test_listed_files_must_be_plain_files_inside_the_bundle(smoke_bundle: Path, tmp_path: Path) -> None:
    bundle = copy_bundle(smoke_bundle, tmp_path)
    outside = tmp_path / "outside.onnx"
    outside.write_bytes((bundle / "policy.onnx").read_bytes())
    (bundle / "policy.onnx").unlink()
    (bundle / "policy.onnx").symlink_to(outside)  # same bytes, same hash, but not the bundle's own file
    with pytest.raises(BundleError, match="not a plain file inside the bundle"):
        load_bundle(bundle)


def test_calibrated_thresholds_must_lie_in_the_calibrated_range(tmp_path: Path) -> None:
    bundle = Path(shutil.copytree(REPO / "bundles" / "diffdrive", tmp_path / "b"))
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert load_bundle(bundle).manifest["risk_high"] == manifest["risk_high"]  # the shipped bundle passes
    table = [dict(row) for row in manifest["calibration"]["reliability"]]
    table[0]["bin_low"], table[-1]["bin_high"] = 0.1, 2.0  # as if the calibration had seen lambda in [0.1, 2]
    calibration = dict(manifest["calibration"], reliability=table)
    for high, low in ((3.0, 0.5), (1.0, 0.01)):  # within [0, lambda_max] but outside what was seen
        write_manifest(bundle, dict(manifest, calibration=calibration, risk_high=high, risk_low=low))
        with pytest.raises(BundleError, match="the range of lambda the calibration saw"):
            load_bundle(bundle)
    write_manifest(bundle, dict(manifest, calibration=calibration, risk_high=1.0, risk_low=0.5))
    assert load_bundle(bundle).manifest["risk_low"] == 0.5


# A calibration entry as `alam calibrate` writes it, cut to what the caveats read: a risk signal that ranks.
HEALTHY = {"risk_signal": "lambda", "episodes": 100, "horizon": 20, "risk_auroc": 0.82,
           "risk_auroc_interval": [0.80, 0.84], "cap_share": 0.05, "flag_rate": 0.12, "onsets": 40}  # fmt: skip


@pytest.mark.parametrize(
    "edit, says",
    [
        ({}, []),
        ({"cap_share": 0.9499}, []),
        ({"cap_share": 0.95}, ["lambda sat at its cap (lambda_max 10.0) on 95% of the states of the calibration's"]),
        ({"risk_auroc": 0.55, "risk_auroc_interval": [0.5001, 0.6]}, []),
        (
            {"risk_auroc": 0.55, "risk_auroc_interval": [0.5, 0.6]},
            [
                "lambda ranked the violations within 20 steps in the calibration's 100 episodes no better than chance "
                "(AUROC 0.550, 95 % interval 0.500-0.600)"
            ],
        ),
        ({"risk_auroc": 0.5, "risk_auroc_interval": [None, None]}, ["no better than chance (AUROC 0.500)"]),
        ({"risk_auroc": 0.51, "risk_auroc_interval": None}, []),
        ({"risk_auroc": float("nan"), "risk_auroc_interval": [None, None]}, []),  # no violation: nothing to rank
        (
            {"flag_rate": 0.0},
            [
                "the calibrated risk_high flagged none of the states of the calibration's 100 episodes, in which the "
                "policy violated 40 time(s): the monitor would not have handed over for risk"
            ],
        ),
        ({"flag_rate": 0.0, "onsets": 0}, []),  # a policy that never violated flags nothing, rightly
        ({"flag_rate": 1e-9}, []),
        ({"flag_rate": None}, []),  # a calibration from before the flag budget did not record it
        (
            {"cap_share": 1.0, "risk_auroc": 0.5, "risk_auroc_interval": [0.5, 0.5], "flag_rate": 0.0},
            ["lambda sat at its cap", "no better than chance", "the calibrated risk_high flagged none"],
        ),
    ],
)
def test_risk_signal_caveats_name_what_the_calibration_saw_the_signal_fail_at(edit: dict, says: list[str]) -> None:
    manifest = {"risk_signal": "lambda", "lambda_max": 10.0, "calibration": dict(HEALTHY, **edit)}
    caveats = risk_signal_caveats(manifest)
    assert len(caveats) == len(says) and all(part in text for part, text in zip(says, caveats, strict=True))


def test_an_uncalibrated_bundle_has_no_caveats_and_the_shipped_one_none() -> None:
    assert risk_signal_caveats({"risk_signal": "lambda", "calibration": None}) == []
    assert risk_signal_caveats({"risk_signal": "lambda"}) == []
    assert risk_signal_caveats({"risk_signal": "lambda", "calibration": "a hand edit"}) == []  # not the schema's
    assert risk_signal_caveats(json.loads((REPO / "bundles/diffdrive/manifest.json").read_text())) == []


def test_missing_and_foreign_bundles(smoke_bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not found"):
        load_bundle(tmp_path / "nothing")
    with pytest.raises(BundleError, match="no manifest.json"):
        load_bundle(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(tmp_path)
    with pytest.raises(BundleError, match="for task 'cartpole-safe_swingup', expected 'diffdrive"):
        load_bundle(smoke_bundle, task="diffdrive-safe_navigate")


# --- monitor ------------------------------------------------------------------------------------------------


def run_monitor(monitor: RiskMonitor, risks, dt: float = 0.1, faults=None) -> list[str]:
    faults = faults or [None] * len(risks)
    return [monitor.update(i * dt, r, f) for i, (r, f) in enumerate(zip(risks, faults, strict=True))]


def test_monitor_engages_after_ticks_and_releases_after_dwell() -> None:
    monitor = RiskMonitor(MonitorConfig(risk_high=2.0, risk_low=1.0, engage_ticks=3, release_dwell_s=0.5), False)
    risks = [3, 3, 0, 3, 3, 3, 1.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    modes, labels = [], []
    for i, risk in enumerate(risks):
        modes.append(monitor.update(i * 0.1, risk))
        labels.append(monitor.label())
    assert modes[:5] == ["POLICY"] * 5, "an interrupted streak above risk_high does not engage"
    assert modes[5] == "FALLBACK" and labels[5] == "FALLBACK:risk"
    # Between risk_low and risk_high: hold. Below risk_low from t = 0.7 s: release once 0.5 s have passed.
    assert modes[6:12] == ["FALLBACK"] * 6 and modes[12] == "POLICY"
    assert monitor.switches == 2
    # The default hands over at the first tick above risk_high: lambda warns only a few ticks ahead.
    assert run_monitor(RiskMonitor(MonitorConfig(2.0, 1.0), False), [0.0, 3.0]) == ["POLICY", "FALLBACK"]


def test_monitor_faults_engage_at_once_and_reset_the_dwell() -> None:
    monitor = RiskMonitor(MonitorConfig(2.0, 1.0, engage_ticks=5, release_dwell_s=0.3), start_in_fallback=False)
    faults = [None, "nonfinite:odom", None, None, "stale:scan", None, None, None, None]
    modes = run_monitor(monitor, [0.0] * 9, faults=faults)
    assert modes == ["POLICY", "FALLBACK", "FALLBACK", "FALLBACK", "FALLBACK", "FALLBACK", "FALLBACK",
                     "FALLBACK", "POLICY"]  # fmt: skip
    assert run_monitor(RiskMonitor(MonitorConfig(2.0, 1.0), False), [float("nan")]) == ["FALLBACK"]
    # The label names the fault while it lasts, then "recovering" during the dwell, then "risk" if risk stays up.
    labeled = RiskMonitor(MonitorConfig(2.0, 1.0, release_dwell_s=1.0), start_in_fallback=False)
    labels = []
    for t, (risk, fault) in enumerate([(0.0, "stale:scan"), (0.0, None), (1.5, None), (0.0, "size:scan")]):
        labeled.update(0.1 * t, risk, fault)
        labels.append(labeled.label())
    assert labels == ["FALLBACK:stale:scan", "FALLBACK:recovering", "FALLBACK:risk", "FALLBACK:size:scan"]
    starting = RiskMonitor(MonitorConfig(2.0, 1.0, release_dwell_s=0.0))
    assert starting.label() == "FALLBACK:startup" and starting.update(0.0, 0.0) == "POLICY"


def test_monitor_counts_exactly_over_repeated_cycles() -> None:
    """Thresholds are strict, the counters restart at each handover, and a second cycle behaves as the first."""
    monitor = RiskMonitor(MonitorConfig(2.0, 1.0, engage_ticks=3, release_dwell_s=0.15), start_in_fallback=False)
    assert (monitor.mode, monitor.reason, monitor.label()) == ("POLICY", "", "POLICY")
    cycle = [2.0, 2.0, 2.0, 3.0, 3.0, 3.0, 1.0, 0.5, 0.5, 0.5, 3.0, 3.0, 0.0]
    expected = ["POLICY"] * 5 + ["FALLBACK"] * 4 + ["POLICY"] * 4  # at risk_high and risk_low: no count
    for start in (0.0, 10.0):
        assert run_monitor_from(monitor, start, cycle) == expected
        assert monitor.reason == ""
    assert monitor.switches == 4
    # Risk straight from above risk_high to below risk_low: the dwell starts at the first calm tick.
    assert run_monitor_from(monitor, 15.0, [3.0, 3.0, 3.0, 0.5, 0.5, 0.5]) == ["POLICY"] * 2 + ["FALLBACK"] * 3 + [
        "POLICY"
    ]
    # A fault in POLICY, its release, then a fresh count of engage_ticks.
    faulted = run_monitor_from(monitor, 20.0, [0.0] * 5 + [3.0] * 3, faults=[None, "stale:odom"] + [None] * 6)
    assert faulted == ["POLICY", "FALLBACK", "FALLBACK", "FALLBACK", "POLICY", "POLICY", "POLICY", "FALLBACK"]
    # A risk that is not a number is a fault of its own name; a startup wait keeps its name under high risk.
    monitor.update(30.0, float("nan"))
    assert monitor.label() == "FALLBACK:nonfinite:risk"
    starting = RiskMonitor(MonitorConfig(2.0, 1.0))
    starting.update(0.0, 5.0)
    assert starting.label() == "FALLBACK:startup"


def run_monitor_from(monitor: RiskMonitor, start: float, risks, faults=None, dt: float = 0.1) -> list[str]:
    faults = faults or [None] * len(risks)
    return [monitor.update(start + i * dt, r, f) for i, (r, f) in enumerate(zip(risks, faults, strict=True))]


@pytest.mark.parametrize(
    "kwargs", [{"risk_high": 1.0, "risk_low": 2.0}, {"risk_high": math.inf, "risk_low": 0.0}, {"engage_ticks": 0}]
)
def test_monitor_config_is_validated(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        MonitorConfig(**{"risk_high": 2.0, "risk_low": 1.0, **kwargs})


# --- fallbacks ----------------------------------------------------------------------------------------------

JOINT_MANIFEST = {
    "ros_interface": "joint",
    "action_low": [-1.0],
    "action_high": [1.0],
    "deploy": {
        "joints": ["slider", "hinge_1"],
        "observation": [
            ["position", "slider"],
            ["cos", "hinge_1"],
            ["sin", "hinge_1"],
            ["velocity", "slider"],
            ["velocity", "hinge_1"],
        ],
        "commands": ["slide"],
    },  # fmt: skip
}
BEAMS = np.arange(16) * 2 * np.pi / 16
DIFF_MANIFEST = {
    "ros_interface": "diff_drive",
    "action_low": [-0.5, -2.0],
    "action_high": [0.5, 2.0],
    "obs_layout": {"goal": [0, 3], "velocity": [3, 5], "ranges": [5, 21]},
    "deploy": {"beam_angles": BEAMS.tolist(), "beam_width": 2 * np.pi / 16, "range_min": 0.12, "range_max": 2.0},
}


POINT_MANIFEST = {
    "ros_interface": "joint",
    "action_low": [-1.0, -1.0],
    "action_high": [1.0, 1.0],
    "obs_layout": {"velocity": [0, 2], "goal_vector": [2, 4], "hazard_vectors": [4, 8]},
    "deploy": {},
}


def test_fallbacks_are_finite_on_any_input() -> None:
    cases = [("stop", JOINT_MANIFEST, 5), ("damping", JOINT_MANIFEST, 5), ("center", JOINT_MANIFEST, 5),
             ("retreat", DIFF_MANIFEST, 21), ("stop", DIFF_MANIFEST, 21), ("evade", POINT_MANIFEST, 8)]  # fmt: skip
    for name, manifest, dim in cases:
        fallback = make_fallback(name, manifest)
        for obs in (None, np.full(dim, np.nan), np.full(dim, np.inf), np.zeros(dim)):
            command = fallback(obs)
            assert command.shape == (len(manifest["action_low"]),) and np.isfinite(command).all(), (name, obs)


def test_damping_opposes_velocity_and_center_pulls_back() -> None:
    damping = make_fallback("damping", JOINT_MANIFEST)
    assert damping(np.array([0.0, 1.0, 0.0, 0.4, 3.0]))[0] < 0.0
    assert damping(np.array([0.7, 1.0, 0.0, 0.0, 3.0]))[0] == 0.0  # damping ignores where the cart is
    # center: -kp x - kd v with kp = kd = 1 (x = 0.3, v = 0.1 -> -0.4); it pulls a cart at rest back to the middle.
    center = make_fallback("center", JOINT_MANIFEST)
    assert center(np.array([0.3, 1.0, 0.0, 0.1, 3.0]))[0] == pytest.approx(-0.4)
    assert center(np.array([-0.5, 1.0, 0.0, 0.0, 0.0]))[0] == pytest.approx(0.5)


def test_damping_gains_clipping_and_recipes() -> None:
    damping = make_fallback("damping", JOINT_MANIFEST)
    # Gain 1 by default, clipped to the actuator range on both sides, and a NaN velocity gives exactly 0.
    assert damping(np.array([0.0, 1.0, 0.0, 0.4, 3.0]))[0] == pytest.approx(-0.4)
    assert damping(np.array([0.0, 1.0, 0.0, 3.0, 0.0]))[0] == -1.0
    assert damping(np.array([0.0, 1.0, 0.0, -3.0, 0.0]))[0] == 1.0
    assert damping(np.array([0.0, 1.0, 0.0, np.nan, 0.0]))[0] == 0.0
    assert make_fallback("damping", JOINT_MANIFEST, gain=0.5)(np.array([0.0, 1.0, 0.0, 0.4, 0.0]))[0] == -0.2
    # The commanded joint comes from deploy.command_joints where the task names it (here the hinge, velocity 3).
    hinge = {**JOINT_MANIFEST, "deploy": {**JOINT_MANIFEST["deploy"], "command_joints": ["hinge_1"]}}
    assert make_fallback("damping", hinge, gain=0.1)(np.array([0.0, 1.0, 0.0, 0.4, 3.0]))[0] == pytest.approx(-0.3)
    # Pure damping needs only velocities; a recipe missing either half is a named error.
    velocities_only = {**JOINT_MANIFEST, "deploy": {"joints": ["slider"], "observation": [["velocity", "slider"]]}}
    assert make_fallback("damping", velocities_only)(np.array([0.25]))[0] == -0.25
    with pytest.raises(ValueError, match="needs the velocity and position of each commanded joint"):
        make_fallback("center", velocities_only)
    for partial in ({"joints": ["slider"]}, {"observation": [["velocity", "slider"]]}):
        with pytest.raises(ValueError, match="joint observation recipe"):
            make_fallback("damping", {**JOINT_MANIFEST, "deploy": partial})


def _retreat_at(ranges: dict[int, float]) -> np.ndarray:
    """The retreat command for a 16-sector scan (sector k at bearing k * 22.5 deg) clear but for `ranges`."""
    scan = np.full(16, 2.0)
    for k, r in ranges.items():
        scan[k] = r
    return make_fallback("retreat", DIFF_MANIFEST)(np.concatenate([[1.0, 1.0, 0.0, 0.0, 0.0], scan]))


def test_retreat_moves_away_from_every_obstacle_inside_its_clear_distance() -> None:
    # Defaults: clear distance 0.6 m, 0.3 m/s, turn gain 1. One sector at 0.2 m ahead: depth 2/3, push 2/3 (>= 0.5:
    # full speed), straight back.
    np.testing.assert_allclose(_retreat_at({0: 0.2}), [-0.3, 0.0], atol=1e-12)
    # On the left (90 deg): no translation along it; turn right to face away.
    np.testing.assert_allclose(_retreat_at({4: 0.2}), [0.0, -1.0], atol=1e-12)
    # Ahead and on the left at 0.3 m: depth 1/2 each, F = (-1/2, -1/2), phi = -135 deg: back off and turn right,
    # v = 0.3 cos(phi), omega = sin(phi). The nearest-sector rule saw only one of the two.
    c = math.sqrt(0.5)
    np.testing.assert_allclose(_retreat_at({0: 0.3, 4: 0.3}), [-0.3 * c, -c], atol=1e-12)
    # Just inside (0.54 m: depth 0.1): scaled by 2 |F| = 0.2.
    np.testing.assert_allclose(_retreat_at({8: 0.54}), [0.06, 0.0], atol=1e-12)
    # The middle of a gap (0.4 m on both sides): the pushes cancel, and the robot, still clear of the constraint,
    # stops instead of swerving from one pillar to the other.
    np.testing.assert_allclose(_retreat_at({4: 0.4, 12: 0.4}), [0.0, 0.0], atol=1e-12)
    # Clear everywhere, or a NaN sector beside a real obstacle (it pushes with nothing).
    np.testing.assert_array_equal(_retreat_at({}), 0.0)
    np.testing.assert_allclose(_retreat_at({0: np.nan, 4: 0.2}), [0.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(_retreat_at({0: -np.inf, 4: 0.2}), [0.0, -1.0], atol=1e-12)
    # Its settings reach it, and the command stays inside the actuator range (0.5 m/s) either way.
    fast = make_fallback("retreat", DIFF_MANIFEST, speed=2.0)
    scan = np.full(16, 2.0)
    for sector, v in ((0, -0.5), (8, 0.5)):
        ranges = scan.copy()
        ranges[sector] = 0.2
        np.testing.assert_allclose(fast(np.concatenate([[1.0, 1.0, 0.0, 0.0, 0.0], ranges])), [v, 0.0], atol=1e-12)


def test_evade_brakes_and_pushes_away_from_the_nearest_hazard() -> None:
    evade = make_fallback("evade", POINT_MANIFEST)
    # Moving +x at 0.5 m/s, nearest hazard 0.4 m straight ahead (a farther one behind is ignored): brake -0.5 and
    # push -x by depth (0.8 - 0.4) / 0.8 = 0.5: command (-1.0, 0), clipped to the actuator range.
    obs = np.array([0.5, 0.0, 1.0, 1.0, 0.4, 0.0, -0.5, 0.0])
    np.testing.assert_allclose(evade(obs), [-1.0, 0.0])
    # At rest, hazard 0.6 m along +y: push -y by 0.25; no hazard within 0.8 m: brake only.
    np.testing.assert_allclose(evade(np.array([0.0, 0.0, 1.0, 1.0, 0.0, 0.6, 2.0, 2.0])), [0.0, -0.25])
    np.testing.assert_allclose(evade(np.array([0.2, -0.4, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0])), [-0.2, 0.4])
    # A NaN velocity does not hide the hazard: the push still comes.
    assert evade(np.array([np.nan, 0.0, 1.0, 1.0, 0.4, 0.0, 2.0, 2.0]))[0] < 0.0
    # Its settings reach it (no push at strength 0).
    np.testing.assert_allclose(make_fallback("evade", POINT_MANIFEST, strength=0.0)(obs), [-0.5, 0.0])
    # A NaN hazard leaves the brake.
    np.testing.assert_allclose(evade(np.array([0.2, -0.4, 1.0, 1.0, np.nan, 0.1, 2.0, 2.0])), [-0.2, 0.4])
    # Fast at a close hazard: brake + push = -/+1.75, clipped to the actuator range on either side.
    np.testing.assert_allclose(evade(np.array([1.0, 0.0, 1.0, 1.0, 0.2, 0.0, 2.0, 2.0])), [-1.0, 0.0])
    np.testing.assert_allclose(evade(np.array([0.0, -1.0, 1.0, 1.0, 0.0, -0.2, 2.0, 2.0])), [0.0, 1.0])


def test_default_fallback_fits_the_robot() -> None:
    assert default_fallback(DIFF_MANIFEST) == "retreat"
    assert default_fallback(POINT_MANIFEST) == "evade"  # hazard vectors: a planar point robot
    assert default_fallback(JOINT_MANIFEST) == "center"  # joint states it can read
    walker = {**JOINT_MANIFEST, "deploy": {}}
    assert default_fallback(walker) == "throttle"  # the walker: no joint states it can rebuild, and it falls at rest
    for manifest in (DIFF_MANIFEST, POINT_MANIFEST, JOINT_MANIFEST, walker):
        make_fallback(default_fallback(manifest), manifest)  # and it builds for that robot


def test_throttle_scales_the_ticks_action_and_zeroes_an_untrusted_one() -> None:
    manifest = {**JOINT_MANIFEST, "action_low": [-1.0, -1.0], "action_high": [1.0, 1.0], "deploy": {}}
    throttle = make_fallback("throttle", manifest)
    obs = np.zeros(3)
    # Half the policy's command, clipped to the actuator range on either side (-3 -> -1.5 -> -1, 3 -> 1).
    np.testing.assert_allclose(throttle(obs, np.array([0.8, -3.0])), [0.4, -1.0])
    np.testing.assert_allclose(throttle(obs, np.array([3.0, 0.2])), [1.0, 0.1])
    for scale in (0.0, 0.25, 1.0):
        np.testing.assert_allclose(make_fallback("throttle", manifest, scale=scale)(obs, np.array([0.8, -0.4])),
                                   [0.8 * scale, -0.4 * scale])  # fmt: skip
    # No action the controller trusts (an input fault, a non-finite action or risk): zero effort.
    np.testing.assert_array_equal(throttle(None), [0.0, 0.0])
    np.testing.assert_array_equal(throttle(obs, None), [0.0, 0.0])
    with pytest.raises(ValueError, match="scale must be in"):
        make_fallback("throttle", manifest, scale=1.5)


def test_fallback_names_are_checked() -> None:
    names = "stop, damping, center, retreat, evade, throttle"
    with pytest.raises(ValueError, match=f"unknown fallback 'brake'; choose one of {names}$"):
        make_fallback("brake", JOINT_MANIFEST)
    with pytest.raises(ValueError, match="for diff-drive robots"):
        make_fallback("retreat", JOINT_MANIFEST)
    with pytest.raises(ValueError, match="for joint robots"):
        make_fallback("damping", DIFF_MANIFEST)
    with pytest.raises(ValueError, match="'center' is for joint robots"):
        make_fallback("center", DIFF_MANIFEST)
    with pytest.raises(ValueError, match="needs the observation entries 'velocity' and 'hazard_vectors'"):
        make_fallback("evade", DIFF_MANIFEST)
    # A joint task that declares no observation recipe (the walker: its observation is not rebuildable from
    # JointState) cannot damp: a clear error, not a KeyError.
    with pytest.raises(ValueError, match="damping fallback needs the bundle's joint observation recipe"):
        make_fallback("damping", {**JOINT_MANIFEST, "deploy": {}})


# --- progress watch -----------------------------------------------------------------------------------------

WATCH = MonitorConfig(2.0, 1.0)  # stall_s 2.0, recover_s 1.5, goal_tolerance_m 0.3
DT = 0.125  # s, exact in binary: the window's edges fall on ticks


def diff_obs(v: float = 0.0, omega: float = 0.0, distance: float = 1.0, bearing: float = 0.5) -> np.ndarray:
    """A DIFF_MANIFEST observation [21]: goal (distance, cos, sin of bearing), velocity (v, omega), open ranges."""
    obs = np.full(21, 2.0)
    obs[:5] = distance, math.cos(bearing), math.sin(bearing), v, omega
    return obs


def watch_flags(watch: ProgressWatch, obs_at, ticks: int = 48, config: MonitorConfig = WATCH) -> list[int]:
    """Indices of the ticks (one every DT) on which the recovery drives."""
    return [k for k in range(ticks) if watch.update(k * DT, obs_at(k), config)]


def test_progress_watch_recovers_after_stall_s_for_recover_s_then_watches_afresh() -> None:
    watch = ProgressWatch(DIFF_MANIFEST)
    # Still from t = 0: stalled at t = 2.0 (tick 16), recovering until t = 3.5 (ticks 16-27), a fresh window from
    # t = 3.5 (tick 28), stalled again at t = 5.5 (tick 44).
    assert watch_flags(watch, lambda k: diff_obs()) == [*range(16, 28), *range(44, 48)]
    assert watch.recoveries == 2
    # It turns on the spot at half the yaw-rate limit (2.0 rad/s), away from the goal's side.
    np.testing.assert_array_equal(watch.command(diff_obs()), [0.0, -1.0])
    left = ProgressWatch(DIFF_MANIFEST)
    assert watch_flags(left, lambda k: diff_obs(bearing=-0.5), ticks=17)[0] == 16
    np.testing.assert_array_equal(left.command(diff_obs(bearing=-0.5)), [0.0, 1.0])
    # A reset (the monitor took over) forgets the window: stalled only stall_s after it.
    watch = ProgressWatch(DIFF_MANIFEST)
    assert watch_flags(watch, lambda k: diff_obs(), ticks=10) == []
    watch.reset()
    assert [k for k in range(10, 40) if watch.update(k * DT, diff_obs(), WATCH)][0] == 26


@pytest.mark.parametrize(
    "v, omega, stalled",
    [
        (0.005, 0.0, True),  # 1 cm in 2 s: creeping is no progress
        (0.05, 0.0, False),  # 10 cm in 2 s
        (0.015, 0.0, False),  # 3 cm in 2 s
        (-0.05, 0.0, False),  # backing up is travel too
        (0.0, 0.2, False),  # 0.4 rad in 2 s: turning on the spot is progress
        (0.0, -0.2, False),  # either way
        (0.0, 0.05, True),  # 0.1 rad in 2 s
    ],
)
def test_progress_is_net_travel_or_turn_over_the_window(v: float, omega: float, stalled: bool) -> None:
    assert bool(watch_flags(ProgressWatch(DIFF_MANIFEST), lambda k: diff_obs(v, omega), ticks=17)) == stalled


def test_the_window_slides_tick_by_tick() -> None:
    # 5 cm in the first tick, then 1.9 cm over the next 2 s: the window from t = 0 saw progress, the one from the
    # second tick (t = 0.125 to 2.125) did not.
    creep = ProgressWatch(DIFF_MANIFEST)
    assert watch_flags(creep, lambda k: diff_obs(0.4 if k == 1 else 0.0095), ticks=18) == [17]


def test_dithering_that_nets_no_travel_is_stalled() -> None:
    # 0.4 m/s forward and back on alternate ticks (the parked policies of benchmarks/stalls.py do this).
    assert watch_flags(ProgressWatch(DIFF_MANIFEST), lambda k: diff_obs(0.4 * (-1) ** k), ticks=17) == [16]
    # Forward, about-turn, forward, about-turn back: back at the start, facing the same way. Only a pose that
    # integrates the heading sees that (ignoring it, the two forward legs would add up to 0.4 m of travel).
    about = (0.0, math.pi / DT, 0.0, -math.pi / DT)
    three_point = ProgressWatch(DIFF_MANIFEST)
    assert watch_flags(three_point, lambda k: diff_obs(0.4 * (k % 2 == 0), about[k % 4]), ticks=17) == [16]


def test_arrival_and_stall_s_zero_are_never_stalled() -> None:
    assert watch_flags(ProgressWatch(DIFF_MANIFEST), lambda k: diff_obs(distance=0.3)) == []  # within tolerance
    off = MonitorConfig(2.0, 1.0, stall_s=0.0)
    assert watch_flags(ProgressWatch(DIFF_MANIFEST), lambda k: diff_obs(), config=off) == []
    far = MonitorConfig(2.0, 1.0, goal_tolerance_m=0.2)
    assert watch_flags(ProgressWatch(DIFF_MANIFEST), lambda k: diff_obs(distance=0.3), ticks=17, config=far) == [16]


def test_progress_watch_on_a_point_robot_pushes_toward_the_goal() -> None:
    def obs(velocity=(0.0, 0.0)) -> np.ndarray:
        return np.array([*velocity, 3.0, 4.0, 1.0, 1.0, 2.0, 2.0])  # velocity, goal_vector, two hazards

    watch = ProgressWatch(POINT_MANIFEST)
    assert watch_flags(watch, lambda k: obs(), ticks=17) == [16]
    np.testing.assert_allclose(watch.command(obs()), [0.3, 0.4])  # half force, toward (3, 4) / 5
    # A hazard 0.4 m to the right (depth 0.5 of 0.8 m) pushes back by 0.5: 0.5 * ((0.6, 0.8) - (0.5, 0)).
    near = np.array([0.0, 0.0, 3.0, 4.0, 0.4, 0.0, 2.0, 2.0])
    np.testing.assert_allclose(watch.command(near), [0.05, 0.4])
    assert watch_flags(ProgressWatch(POINT_MANIFEST), lambda k: obs((0.0, 0.05)), ticks=17) == []
    assert watch_flags(ProgressWatch(POINT_MANIFEST), lambda k: obs((0.0, 0.005)), ticks=17) == [16]


def test_progress_watch_only_for_robots_with_a_goal() -> None:
    assert ProgressWatch.for_bundle(JOINT_MANIFEST) is None
    assert isinstance(ProgressWatch.for_bundle(DIFF_MANIFEST), ProgressWatch)
    with pytest.raises(ValueError, match="needs 'velocity' and a goal"):
        ProgressWatch({"obs_layout": {"velocity": [0, 2]}, "action_high": [1.0, 1.0]})


# --- observations -------------------------------------------------------------------------------------------


def test_joint_observation_matches_the_sim() -> None:
    import sim

    env = sim.load("cartpole-safe_swingup", seed=0)
    obs, _ = env.reset()
    for action in np.random.default_rng(0).uniform(-1, 1, (20, 1)):
        obs, *_ = env.step(action)
    build = JointObservation(env.spec.deploy, 5)
    qpos, qvel = env.physics.data.qpos, env.physics.data.qvel
    # Another joint order and an extra joint, as a robot's JointState may have.
    rebuilt, velocity = build(["hinge_1", "other", "slider"], [qpos[1], 9.0, qpos[0]], [qvel[1], 0.0, qvel[0]])
    np.testing.assert_allclose(rebuilt, obs, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(velocity, qvel)


@pytest.mark.parametrize(
    ("names", "pos", "vel", "reason"),
    [
        (["slider", "hinge_1"], [0.0], [0.0, 0.0], "size:joint_states"),
        (["slider"], [0.0], [0.0], "size:joint_states"),
        (["slider", "hinge_1"], [0.0, math.nan], [0.0, 0.0], "nonfinite:joint_states"),
        (["slider", "hinge_1"], [0.0, 0.0], [math.inf, 0.0], "nonfinite:joint_states"),
    ],
)
def test_joint_observation_faults(names, pos, vel, reason: str) -> None:
    with pytest.raises(InputFault) as fault:
        JointObservation(JOINT_MANIFEST["deploy"], 5)(names, pos, vel)
    assert fault.value.reason == reason


def lidar(ranges_by_degree: dict[int, float], beams: int = 360, default: float = math.inf) -> np.ndarray:
    ranges = np.full(beams, default)
    for degree, value in ranges_by_degree.items():
        ranges[round(degree * beams / 360) % beams] = value
    return ranges


def test_bin_scan_360_beams_onto_the_trained_fan() -> None:
    ranges = lidar({0: 0.8, 3: 0.6, 90: 1.2, 180: -math.inf, 270: 0.05, 200: math.nan})
    binned = bin_scan(ranges, 0.0, 2 * math.pi / 360, 0.12, 2.0, BEAMS, 2 * math.pi / 16)
    assert binned.shape == (16,) and binned.dtype == np.float32
    assert binned[0] == pytest.approx(0.6)  # minimum over the sector
    assert binned[4] == pytest.approx(1.2)
    assert binned[8] == pytest.approx(0.12)  # -Inf: closer than range_min
    assert binned[12] == pytest.approx(0.12)  # below range_min clamps
    assert binned[2] == pytest.approx(2.0)  # +Inf: no return reads range_max
    # A scan starting at -pi (another common convention) gives the same sectors.
    shifted = np.roll(ranges, 180)
    np.testing.assert_array_equal(bin_scan(shifted, -math.pi, 2 * math.pi / 360, 0.12, 2.0, BEAMS, 2 * math.pi / 16),
                                  binned)  # fmt: skip


def test_bin_scan_faults() -> None:
    width = 2 * math.pi / 16
    front_only = np.full(90, 1.0)  # a 90 degree scan leaves most trained directions uncovered
    with pytest.raises(InputFault) as fault:
        bin_scan(front_only, -math.pi / 4, math.radians(1), 0.12, 2.0, BEAMS, width)
    assert fault.value.reason == "coverage:scan"
    mostly_nan = lidar({}, default=math.nan)
    with pytest.raises(InputFault) as fault:
        bin_scan(mostly_nan, 0.0, 2 * math.pi / 360, 0.12, 2.0, BEAMS, width)
    assert fault.value.reason == "invalid:scan"
    with pytest.raises(InputFault) as fault:
        bin_scan([], 0.0, 0.1, 0.12, 2.0, BEAMS, width)
    assert fault.value.reason == "size:scan"


def test_diff_drive_observation() -> None:
    build = DiffDriveObservation(DIFF_MANIFEST["deploy"], 21)
    yaw = yaw_from_quaternion(0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4))
    assert yaw == pytest.approx(math.pi / 2)
    obs = build((1.0, 1.0, yaw), (0.3, -0.1), (1.0, 3.0), np.full(16, 2.0, np.float32))
    # Goal 2 m straight ahead of a robot facing +y.
    np.testing.assert_allclose(obs[:5], [2.0, 1.0, 0.0, 0.3, -0.1], atol=1e-6)
    with pytest.raises(InputFault, match="nonfinite:odom"):
        build((math.nan, 1.0, 0.0), (0.0, 0.0), (1.0, 3.0), np.full(16, 2.0))
    with pytest.raises(InputFault, match="nonfinite:goal_pose"):
        build((0.0, 1.0, 0.0), (0.0, 0.0), (math.inf, 3.0), np.full(16, 2.0))


# --- property: every manifest field, any invalid value -> a BundleError that names the field ------------------

_SHIPPED_MANIFEST = json.loads((REPO / "bundles" / "diffdrive" / "manifest.json").read_text())
_WRONG_TYPE = st.one_of(st.text(max_size=4), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                        st.lists(st.text(max_size=2), min_size=1, max_size=2), st.booleans())  # fmt: skip
_NONFINITE = st.sampled_from([math.nan, math.inf, -math.inf])
_NOT_A_NUMBER = st.one_of(_NONFINITE, st.text(max_size=4), st.booleans(), st.just([1.0]))


def _floats(**bounds: float) -> st.SearchStrategy:
    # No subnormals: training flushes them to zero process-wide (torch.set_flush_denormal), which hypothesis refuses.
    return st.floats(allow_subnormal=False, allow_nan=False, **bounds)


_INVALID = {
    "task": st.one_of(st.just(""), st.integers(), st.none(), st.just(["diffdrive"])),
    "obs_dim": st.one_of(st.integers(max_value=0), _floats(), st.text(max_size=3), st.booleans()),
    "act_dim": st.one_of(st.integers(max_value=0), _floats(), st.text(max_size=3), st.booleans()),
    "obs_layout": st.one_of(_WRONG_TYPE.filter(lambda v: not isinstance(v, dict) or v),
                            st.fixed_dictionaries({"x": st.lists(st.integers(-5, 40), max_size=3).filter(
                                lambda r: not (len(r) == 2 and 0 <= r[0] < r[1] <= _SHIPPED_MANIFEST["obs_dim"]))})),
    "action_low": st.one_of(_WRONG_TYPE, st.lists(_NOT_A_NUMBER, min_size=2, max_size=2), st.just([-0.5])),
    "action_high": st.one_of(_WRONG_TYPE, st.lists(_NOT_A_NUMBER, min_size=2, max_size=2),
                             st.just([-0.5, -2.0]), st.just([1, 2, 3])),
    "control_period_s": st.one_of(_NOT_A_NUMBER, _floats(max_value=0.0), _floats(min_value=10.001)),
    "ros_interface": st.one_of(_WRONG_TYPE, st.none()),
    "deploy": st.one_of(st.text(max_size=3), st.integers(), st.lists(st.integers(), max_size=2), st.none()),
    "cost_threshold": _NOT_A_NUMBER,
    "risk_signal": st.one_of(st.text(max_size=6).filter(lambda t: t not in RISK_SIGNALS), st.integers()),
    "lambda_max": st.one_of(_NOT_A_NUMBER, _floats(max_value=0.0)),
    "risk_high": st.one_of(_NOT_A_NUMBER, _floats(min_value=10.001), _floats(max_value=-0.001)),
    "risk_low": st.one_of(_NOT_A_NUMBER, _floats(min_value=_SHIPPED_MANIFEST["risk_high"] + 0.01),  # above risk_high
                          _floats(max_value=-0.001)),
    "files": st.one_of(_WRONG_TYPE, st.dictionaries(
        st.sampled_from(["../x", "/etc/passwd", "a/b", "..", "manifest.json", ""]), st.just("0" * 64), min_size=1),
        st.just({"policy.onnx": "not a hash"})),
    "config_hash": st.one_of(st.integers(), st.none(), st.lists(st.integers(), max_size=1)),
    "release_dwell_s": st.one_of(_NOT_A_NUMBER, _floats(max_value=-0.001), _floats(min_value=3600.001), st.none()),
}  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_any_invalid_manifest_value_is_a_named_error(data) -> None:
    key = data.draw(st.sampled_from(sorted(_INVALID)), label="field")
    value = data.draw(_INVALID[key], label="value")
    with pytest.raises(BundleError) as err:
        validate_manifest(dict(_SHIPPED_MANIFEST, **{key: value}))
    assert key in str(err.value), (key, value, str(err.value))


def test_validate_manifest_accepts_the_shipped_manifest() -> None:
    validate_manifest(_SHIPPED_MANIFEST)


def test_manifests_are_written_as_strict_json(smoke_bundle: Path, tmp_path: Path) -> None:
    """An undefined figure (NaN) is written as null: a robot's C++ or JavaScript JSON parser rejects `NaN`."""
    bundle = tmp_path / "b"
    shutil.copytree(smoke_bundle, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["calibration"] = {"risk_auroc_interval": [math.nan, math.inf], "risk_auroc": 0.8}
    write_manifest(bundle, manifest)

    def no_constants(name: str) -> None:
        raise ValueError(f"{name} in a manifest")

    written = json.loads((bundle / "manifest.json").read_text(), parse_constant=no_constants)
    assert written["calibration"] == {"risk_auroc_interval": [None, None], "risk_auroc": 0.8}
    assert load_bundle(bundle).manifest["calibration"]["risk_auroc"] == 0.8  # the signature covers what was written
