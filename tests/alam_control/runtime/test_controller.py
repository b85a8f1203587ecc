"""The deployed control tick as a plain class: every fault path, the monitor wiring, the one threshold rule and
the one risk-signal choice, in milliseconds (the same paths run once over DDS in tests/ros2)."""

from __future__ import annotations

import itertools
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from alam_control.runtime import (
    FALLBACK,
    POLICY,
    BundleError,
    Controller,
    MonitorConfig,
    ScanBinner,
    load_bundle,
)
from alam_control.runtime.bundle import write_manifest

REPO = Path(__file__).resolve().parents[3]
SHIPPED = REPO / "bundles" / "diffdrive"
BEAMS = 360
INC = 2 * math.pi / BEAMS
CALM = MonitorConfig(risk_high=1e6, risk_low=1e6, engage_ticks=3, release_dwell_s=0.5)


@pytest.fixture(scope="module")
def diffdrive():
    return load_bundle(SHIPPED)


def open_space() -> np.ndarray:
    return np.full(BEAMS, np.inf, np.float32)  # REP 117: no return within range_max anywhere


def feed(controller: Controller, now: float, scan: np.ndarray | None = None, pose=(0.0, 0.0, 0.0), twist=(0.0, 0.0),
         goal=(1.0, 0.5), odom_frame: str = "odom", goal_frame: str = "odom") -> None:  # fmt: skip
    inputs = controller.inputs
    inputs.odom(now, pose, twist, odom_frame)
    inputs.scan(now, open_space() if scan is None else scan, 0.0, INC)
    inputs.goal(now, goal, goal_frame)


def settle(controller: Controller, start: float = 0.0, dt: float = 0.1, ticks: int = 10) -> float:
    """Good inputs every dt until POLICY (after the release dwell); returns the time reached."""
    now = start
    for _ in range(ticks):
        feed(controller, now)
        tick = controller.tick(now)
        now += dt
    assert tick.mode == POLICY, tick
    return now


def assert_safe_command(tick, bundle) -> None:
    assert tick.command.shape == (bundle.act_dim,) and np.isfinite(tick.command).all()
    assert (tick.command >= bundle.action_low).all() and (tick.command <= bundle.action_high).all()


# --- diff-drive fault paths -----------------------------------------------------------------------------------


def _nan_odom(c, now):
    feed(c, now, pose=(math.nan, 0.0, 0.0))


def _inf_goal(c, now):
    feed(c, now, goal=(math.inf, 0.0))


def _front_quarter(c, now):
    feed(c, now)
    c.inputs.scan(now, np.ones(90, np.float32), -math.pi / 4, INC)  # 90 degrees: most sectors uncovered


def _nan_sector(c, now):
    scan = open_space()
    scan[:10] = np.nan  # more than half of sector 0's beams
    scan[-5:] = np.nan
    feed(c, now, scan=scan)


def _empty_scan(c, now):
    feed(c, now)
    c.inputs.scan(now, np.zeros(0, np.float32), 0.0, INC)


def _frames(c, now):
    feed(c, now, goal_frame="map")


def _silent_odom(c, now):
    c.inputs.scan(now, open_space(), 0.0, INC)  # odometry last came at settle time: older than obs_timeout_s


def _silent_scan(c, now):
    c.inputs.odom(now, (0.0, 0.0, 0.0), (0.0, 0.0))


FAULTS = {
    "nan_odometry": (_nan_odom, "nonfinite:odom"),
    "inf_goal": (_inf_goal, "nonfinite:goal_pose"),
    "scan_coverage": (_front_quarter, "coverage:scan"),
    "scan_invalid_beams": (_nan_sector, "invalid:scan"),
    "scan_wrong_length": (_empty_scan, "size:scan"),
    "goal_frame": (_frames, "frame:goal_pose"),
    "silent_odometry": (_silent_odom, "stale:odom"),
    "silent_scan": (_silent_scan, "stale:scan"),
}


@pytest.mark.parametrize("case", FAULTS)
def test_diffdrive_fault_falls_back_at_once_and_recovers_after_dwell(case, diffdrive) -> None:
    inject, reason = FAULTS[case]
    controller = Controller(diffdrive, CALM, "retreat", obs_timeout_s=0.3)
    now = settle(controller)
    now += 0.5  # silent inputs are older than obs_timeout_s by now
    inject(controller, now)
    tick = controller.tick(now)
    assert (tick.mode, tick.fault, tick.label) == (FALLBACK, reason, f"{FALLBACK}:{reason}")
    assert tick.detail and math.isnan(tick.risk) and tick.obs is None
    assert_safe_command(tick, diffdrive)
    assert controller.risk == pytest.approx(controller.lam)  # ~/risk keeps the last finite value
    # Good inputs again: "recovering" for the dwell, then POLICY.
    labels = []
    for _ in range(8):
        now += 0.1
        feed(controller, now)
        labels.append(controller.tick(now).label)
    assert labels[0] == f"{FALLBACK}:recovering" and labels[-1] == POLICY, labels
    assert labels.index(POLICY) in (5, 6), labels  # 0.5 s of calm at 10 Hz


def test_no_input_yet_is_stale_in_arrival_order(diffdrive) -> None:
    controller = Controller(diffdrive, CALM, "stop")
    assert controller.tick(0.0).label == f"{FALLBACK}:stale:odom"
    controller.inputs.odom(0.0, (0.0, 0.0, 0.0), (0.0, 0.0))
    assert controller.tick(0.0).label == f"{FALLBACK}:stale:scan"
    controller.inputs.scan(0.0, open_space(), 0.0, INC)
    tick = controller.tick(0.0)
    assert tick.label == f"{FALLBACK}:stale:goal_pose" and "no goal" in tick.detail
    assert (tick.command == 0.0).all()


def test_rep117_infinities_are_readings_not_faults(diffdrive) -> None:
    controller = Controller(diffdrive, CALM, "stop", start_in_fallback=False)
    scan = open_space()
    scan[100:110] = -np.inf  # closer than range_min
    scan[200:205] = np.nan  # a few invalid beams (under half a sector)
    feed(controller, 0.0, scan=scan)
    tick = controller.tick(0.0)
    assert tick.fault is None and tick.mode == POLICY
    ranges = tick.obs[5:]
    fan = diffdrive.manifest["deploy"]
    assert ranges.max() == pytest.approx(fan["range_max"]) and ranges.min() == pytest.approx(fan["range_min"])


def test_a_scan_is_binned_once_however_often_the_controller_ticks(diffdrive, monkeypatch) -> None:
    controller = Controller(diffdrive, CALM, "stop")
    feed(controller, 0.0)
    calls = []
    binner = controller.inputs.observer.bin
    monkeypatch.setattr(controller.inputs.observer, "bin", lambda *a: calls.append(1) or binner(*a))
    for k in range(3):
        controller.tick(0.01 * k)
    assert len(calls) == 1


def test_retreat_fallback_backs_away_on_a_fault_with_a_good_scan(diffdrive) -> None:
    controller = Controller(diffdrive, CALM, "retreat")
    scan = open_space()
    scan[355:] = 0.25  # an obstacle just ahead
    scan[:5] = 0.25
    feed(controller, 0.0, scan=scan, pose=(math.nan, 0.0, 0.0))
    tick = controller.tick(0.0)
    assert tick.fault == "nonfinite:odom" and tick.command[0] < 0.0  # backs away from it


# --- joint robots ---------------------------------------------------------------------------------------------


def test_joint_faults(smoke_bundle: Path) -> None:
    bundle = load_bundle(smoke_bundle)
    names = bundle.manifest["deploy"]["joints"]
    controller = Controller(bundle, CALM, "damping", obs_timeout_s=0.3)
    good = ([*names, "extra"], [0.1] * (len(names) + 1), [0.0] * (len(names) + 1))
    now = 0.0
    for _ in range(7):
        controller.inputs.joint_states(now, *good)
        tick = controller.tick(now)
        now += 0.1
    assert tick.mode == POLICY
    for state, reason in [
        ((names, [0.1] * len(names), [0.0]), "size:joint_states"),  # wrong length
        ((names[:-1], [0.1] * (len(names) - 1), [0.0] * (len(names) - 1)), "size:joint_states"),  # missing joint
        ((names, [math.nan] * len(names), [0.0] * len(names)), "nonfinite:joint_states"),
    ]:
        controller.inputs.joint_states(now, *state)
        tick = controller.tick(now)
        assert tick.fault == reason and tick.mode == FALLBACK, (state, tick)
        assert_safe_command(tick, bundle)
    tick = controller.tick(now + 0.5)  # then silence
    assert tick.fault == "stale:joint_states"


# --- observations from a simulator; the policy's own outputs --------------------------------------------------


def test_step_checks_the_observation(diffdrive) -> None:
    controller = Controller(diffdrive, CALM, "stop", start_in_fallback=False)
    obs = np.zeros(diffdrive.obs_dim, np.float32)
    assert controller.step(0.0, obs).mode == POLICY
    obs[3] = np.nan
    assert controller.step(0.1, obs).fault == "nonfinite:obs"
    assert controller.step(0.2, np.zeros(3)).fault == "size:obs"


@pytest.mark.parametrize("bad", ["action", "risk"])
def test_nonfinite_policy_outputs_are_faults(bad, diffdrive, monkeypatch) -> None:
    controller = Controller(diffdrive, CALM, "stop", start_in_fallback=False)
    nan_action = (np.array([np.nan, 0.0]), 0.5, 0.5)
    nan_risk = (np.array([0.1, 0.0]), math.nan, 0.5)
    monkeypatch.setattr(controller.bundle, "policy", lambda obs: nan_action if bad == "action" else nan_risk)
    tick = controller.step(0.0, np.zeros(diffdrive.obs_dim, np.float32))
    assert tick.fault == ("nonfinite:action" if bad == "action" else "nonfinite:lambda")
    assert tick.mode == FALLBACK and (tick.command == 0.0).all()


def test_commands_are_clipped_and_never_nonfinite(diffdrive, monkeypatch) -> None:
    controller = Controller(diffdrive, CALM, "stop", start_in_fallback=False)
    monkeypatch.setattr(controller.bundle, "policy", lambda obs: (np.array([7.0, -9.0]), 0.1, 0.1))
    tick = controller.step(0.0, np.zeros(diffdrive.obs_dim, np.float32))
    np.testing.assert_array_equal(tick.command, [0.5, -2.0])  # the actuator range
    controller.fallback = lambda obs, action=None: np.array([np.inf, np.nan])  # a broken fallback
    controller.monitor.update(0.0, None, "stale:odom")
    tick = controller.step(0.1, np.full(diffdrive.obs_dim, np.nan, np.float32))
    np.testing.assert_array_equal(tick.command, [0.0, 0.0])


def test_high_risk_engages_after_engage_ticks_and_uses_the_fallback(diffdrive, monkeypatch) -> None:
    controller = Controller(diffdrive, MonitorConfig(1.0, 0.5, engage_ticks=3, release_dwell_s=0.2), "stop",
                            start_in_fallback=False)  # fmt: skip
    risk = iter([2.0, 2.0, 2.0, 2.0, 0.1, 0.1, 0.1, 0.1])
    monkeypatch.setattr(controller.bundle, "policy", lambda obs: (np.array([0.3, 0.0]), next(risk), 0.9))
    obs = np.zeros(diffdrive.obs_dim, np.float32)
    ticks = [controller.step(0.1 * k, obs) for k in range(8)]
    # Engages on the 3rd tick above risk_high; calm from t = 0.4 s, back after the 0.2 s dwell.
    assert [t.label for t in ticks] == [POLICY, POLICY, "FALLBACK:risk", "FALLBACK:risk", "FALLBACK:risk",
                                        "FALLBACK:risk", POLICY, POLICY]  # fmt: skip
    assert ticks[1].command[0] == 0.3 and ticks[2].command[0] == 0.0
    assert ticks[0].risk == 2.0 and controller.risk == 0.1


@pytest.mark.parametrize("bad", [None, "action", "risk", "obs"])
def test_throttle_gets_the_ticks_action_once_and_only_when_trusted(bad, diffdrive, monkeypatch) -> None:
    """Behind a risk handover the throttle halves the action the controller computed (the policy runs once a
    tick); on a fault of the input or of the policy's outputs it gets none, and commands zero."""
    controller = Controller(diffdrive, MonitorConfig(1.0, 0.5), "throttle", start_in_fallback=False)
    calls = []
    outputs = {None: (np.array([0.4, -1.0]), 5.0, 0.9), "action": (np.array([np.nan, 0.0]), 5.0, 0.9),
               "risk": (np.array([0.4, -1.0]), math.nan, 0.9), "obs": (np.array([0.4, -1.0]), 5.0, 0.9)}  # fmt: skip
    monkeypatch.setattr(controller.bundle, "policy", lambda obs: calls.append(obs) or outputs[bad])
    obs = np.full(diffdrive.obs_dim, np.nan if bad == "obs" else 0.0, np.float32)
    tick = controller.step(0.0, obs)
    faults = {None: None, "action": "nonfinite:action", "risk": "nonfinite:lambda", "obs": "nonfinite:obs"}
    assert tick.mode == FALLBACK and tick.fault == faults[bad]
    np.testing.assert_allclose(tick.command, [0.2, -0.5] if bad is None else [0.0, 0.0])
    assert len(calls) == (0 if bad == "obs" else 1)


def test_a_stalled_policy_hands_over_to_the_recovery_under_the_monitor(diffdrive, monkeypatch) -> None:
    """The progress watch overrides the policy's own driving only: a risk hand-over pre-empts its recovery and
    restarts its window; without a monitor (the policy alone) there is no watch."""
    config = MonitorConfig(1.0, 0.5, engage_ticks=1, release_dwell_s=0.25)
    controller = Controller(diffdrive, config, "stop", start_in_fallback=False)
    risk = itertools.chain([0.1] * 20, [2.0], itertools.repeat(0.1))
    monkeypatch.setattr(controller.bundle, "policy", lambda obs: (np.array([0.0, 0.0]), next(risk), 0.9))
    obs = np.zeros(diffdrive.obs_dim, np.float32)
    obs[:3] = 1.0, 1.0, 0.0  # the goal 1 m straight ahead; the robot does not move
    labels, commands = [], []
    for k in range(44):
        tick = controller.step(k * 0.125, obs)
        labels.append(tick.label)
        commands.append(tick.command)
    stalled = "FALLBACK:stalled"
    # Still from t = 0: the recovery drives from t = 2.0 (tick 16) until the hand-over for risk at tick 20, whose
    # dwell ends at tick 23; the watch starts afresh there, and the robot is stalled again at t = 2.875 + 2.0.
    assert labels[:16] == [POLICY] * 16 and labels[16:20] == [stalled] * 4
    assert controller.step(44 * 0.125, obs).mode == FALLBACK  # what rollouts count as the fallback's share
    assert labels[20:23] == ["FALLBACK:risk"] * 3 and labels[23:39] == [POLICY] * 16 and labels[39] == stalled
    np.testing.assert_array_equal(commands[16], [0.0, -1.0])  # goal dead ahead counts as left: turn right
    np.testing.assert_array_equal(commands[20], [0.0, 0.0])  # the stop fallback, not the recovery
    assert controller.watch.recoveries == 2 and controller.monitor.mode == POLICY
    # A reset (a new episode, an activation) forgets the window too.
    controller.reset(start_in_fallback=False)
    assert controller.step(0.0, obs).label == POLICY and controller.step(2.0, obs).label == stalled
    controller.step(3.5, obs)
    for k in range(8):
        controller.step(3.5 + k * 0.25, obs)
    controller.reset(start_in_fallback=False)
    assert controller.step(5.5, obs).label == POLICY
    alone = Controller(diffdrive, None, "stop")
    assert alone.watch is None
    monkeypatch.setattr(alone.bundle, "policy", lambda obs: (np.array([0.0, 0.0]), 0.1, 0.9))
    assert {alone.step(k * 0.125, obs).label for k in range(40)} == {POLICY}


def test_without_a_monitor_only_faults_hand_over(diffdrive) -> None:
    controller = Controller(diffdrive, None, "stop")
    obs = np.zeros(diffdrive.obs_dim, np.float32)
    assert controller.step(0.0, obs).label == POLICY  # no startup dwell, no risk threshold
    assert controller.step(0.1, obs * np.nan).label == "FALLBACK:nonfinite:obs"


def test_risk_signal_is_the_bundles_choice(diffdrive, tmp_path: Path) -> None:
    obs = np.zeros(diffdrive.obs_dim, np.float32)
    _, lam, cost_q = diffdrive.policy(obs)
    assert Controller(diffdrive, None).step(0.0, obs).risk == lam
    bundle = Path(shutil.copytree(SHIPPED, tmp_path / "b"))
    manifest = json.loads((bundle / "manifest.json").read_text())
    write_manifest(bundle, dict(manifest, risk_signal="cost_q"))
    assert Controller(load_bundle(bundle), None).step(0.0, obs).risk == pytest.approx(cost_q)
    write_manifest(bundle, dict(manifest, risk_signal="Q"))
    with pytest.raises(BundleError, match="risk_signal"):
        load_bundle(bundle)


# --- the threshold rule ---------------------------------------------------------------------------------------


def test_monitor_config_from_manifest() -> None:
    manifest = {"risk_high": 0.8, "risk_low": 0.1}
    assert MonitorConfig.from_manifest(manifest) == MonitorConfig(0.8, 0.1)
    got = MonitorConfig.from_manifest(manifest, {"risk_high": 2.0, "risk_low": None, "engage_ticks": 5})
    assert got == MonitorConfig(2.0, 0.1, engage_ticks=5)  # an override wins, None defers to the manifest
    # A release dwell picked by `alam calibrate` is the default; an override still wins.
    picked = dict(manifest, release_dwell_s=0.25)
    assert MonitorConfig.from_manifest(picked).release_dwell_s == 0.25
    assert MonitorConfig.from_manifest(picked, {"release_dwell_s": None}).release_dwell_s == 0.25
    assert MonitorConfig.from_manifest(picked, {"release_dwell_s": 2.0}).release_dwell_s == 2.0
    with pytest.raises(ValueError, match="risk_low is required"):
        MonitorConfig.from_manifest({"risk_high": 0.8, "risk_low": None})
    with pytest.raises(ValueError, match="unknown monitor setting"):
        MonitorConfig.from_manifest(manifest, {"risk_hi": 1.0})
    with pytest.raises(ValueError, match="risk_high must be a number"):
        MonitorConfig.from_manifest({"risk_high": "abc", "risk_low": 0.1})
    with pytest.raises(ValueError, match="risk_low .* must be <= risk_high"):
        MonitorConfig.from_manifest(manifest, {"risk_low": 5.0})
    with pytest.raises(ValueError, match="finite"):
        MonitorConfig.from_manifest(manifest, {"risk_high": math.inf})
    # A ROS parameter may come as a double: the tick count is still an int.
    ticks = MonitorConfig.from_manifest(manifest, {"engage_ticks": 4.0}).engage_ticks
    assert ticks == 4 and type(ticks) is int


def test_monitor_config_bounds() -> None:
    assert MonitorConfig(0.5, 0.5, engage_ticks=1, release_dwell_s=0.0).risk_low == 0.5  # equal: no hysteresis band
    with pytest.raises(ValueError, match="engage_ticks must be >= 1, got 0"):
        MonitorConfig(1.0, 0.5, engage_ticks=0)
    for name in ("release_dwell_s", "stall_s", "recover_s", "goal_tolerance_m"):
        assert getattr(MonitorConfig(1.0, 0.5, **{name: 0.0}), name) == 0.0
        for bad in (-0.1, math.nan, math.inf):
            with pytest.raises(ValueError, match=f"{name} must be a finite number >= 0, got {bad}"):
                MonitorConfig(1.0, 0.5, **{name: bad})


# --- scan binning ---------------------------------------------------------------------------------------------


def reference_bin(ranges, angle_min, inc, rmin, rmax, centers, width):
    """Straight from the definition: per sector, the minimum over its non-NaN beams of the clamped readings."""
    angles = angle_min + inc * np.arange(len(ranges))
    out = []
    for center in centers:
        offset = np.angle(np.exp(1j * (angles - center)))
        beams = np.asarray(ranges, np.float64)[np.abs(offset) <= width / 2 + 1e-9]
        beams = beams[~np.isnan(beams)]
        out.append(np.clip(np.where(beams == np.inf, rmax, np.where(beams == -np.inf, rmin, beams)), rmin, rmax).min())
    return np.asarray(out, np.float32)


@pytest.mark.parametrize("beams, angle_min", [(360, 0.0), (720, -math.pi), (1000, 0.3), (24, 0.0)])
def test_scan_binner_matches_the_definition(beams, angle_min) -> None:
    centers = np.linspace(0, 2 * math.pi, 24, endpoint=False)
    width = 2 * math.pi / 24
    binner = ScanBinner(centers, width, 0.12, 2.0)
    rng = np.random.default_rng(beams)
    for _ in range(20):
        ranges = rng.uniform(0.0, 3.0, beams).astype(np.float32)
        special = rng.random(beams)
        ranges[special < 0.05] = np.inf
        ranges[(special >= 0.05) & (special < 0.08)] = -np.inf
        if beams > 24:
            ranges[(special >= 0.08) & (special < 0.1)] = np.nan
        got = binner(ranges, angle_min, 2 * math.pi / beams, 1.0)
        np.testing.assert_array_equal(got, reference_bin(ranges, angle_min, 2 * math.pi / beams, 0.12, 2.0,
                                                         centers, width))  # fmt: skip


def test_a_bundle_without_a_joint_recipe_runs_in_simulation_only(smoke_bundle: Path, tmp_path: Path) -> None:
    # The point robot and the walker declare no way to rebuild their observation from JointState: calibration and
    # evaluation still roll them out (`step`), a robot-side tick refuses with the reason.
    bundle_dir = Path(shutil.copytree(smoke_bundle, tmp_path / "b"))
    write_manifest(bundle_dir, dict(load_bundle(bundle_dir).manifest, deploy={}))
    bundle = load_bundle(bundle_dir)
    controller = Controller(bundle, CALM, "stop", start_in_fallback=False)
    assert controller.inputs is None and "joint observation recipe" in controller.inputs_error
    tick = controller.step(0.0, np.zeros(bundle.obs_dim, np.float32))
    assert tick.mode == POLICY and np.isfinite(tick.command).all()
    with pytest.raises(ValueError, match="cannot be driven from robot readings: .*joint observation recipe"):
        controller.tick(0.0)
