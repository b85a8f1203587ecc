"""alam_policy_node as a process, fed crafted inputs by the test's own rclpy node (DESIGN.md section 6)."""

from __future__ import annotations

import json
import math
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from ros_harness import ERROR, OK, STALE, WARN, DiffDriveInputs, JointInputs, PolicyOutputs, command_values, wait_until

from alam_control.runtime.bundle import write_manifest
from sim import diffdrive

# Fast monitor settings. Thresholds at lambda_max (10, smoke bundles are uncalibrated): lambda never exceeds it,
# so the monitor never engages on risk.
FAST = {
    "control_rate_hz": 20.0,
    "risk_high": 10.0,
    "risk_low": 10.0,
    "engage_ticks": 3,
    "release_dwell_s": 0.5,
    "stall_s": 0.0,  # the harness robot never moves: the progress watch is off but where a test turns it on
    "obs_timeout_s": 0.3,
    "diagnostics_period_s": 0.5,
    "publish_observation": True,
}
STARTUP_S = 20.0  # process start (imports, bundle load, discovery) on a loaded 2-core machine
BEAMS = 360


def wait_policy(out: PolicyOutputs, since: float = 0.0, timeout: float = STARTUP_S) -> float:
    t = wait_until(lambda: out.mode_is("POLICY", since), timeout)
    assert t, f"never reached POLICY; modes seen: {sorted({m.data for m in out.mode.since(since)})}"
    return t


def assert_finite_commands(out: PolicyOutputs, since: float, act_dim: int | None = None) -> int:
    commands = out.command.since(since)
    for msg in commands:
        values = command_values(msg)
        assert all(math.isfinite(v) for v in values), values
        if act_dim is not None:
            assert len(values) == act_dim
    return len(commands)


def fault_then_recover(out: PolicyOutputs, inject, restore, expected_mode: str, expected_level: int, hold_s=1.2,
                       dwell_s: float = FAST["release_dwell_s"]):  # fmt: skip
    """Injects a fault for `hold_s`, checks FALLBACK with finite commands and the diagnostic level, then checks
    that POLICY comes back only after the release dwell `dwell_s`."""
    wait_policy(out)
    t_fault = time.monotonic()
    inject()
    assert wait_until(lambda: out.mode_is(expected_mode, t_fault), 2.0), (
        f"expected {expected_mode}; modes seen: {sorted({m.data for m in out.mode.since(t_fault)})}"
    )
    time.sleep(hold_s)
    restore()
    t_clear = time.monotonic()
    t_fallback = out.mode_is(expected_mode, t_fault)
    # No POLICY while the fault lasted (after it was detected).
    assert out.mode_is("POLICY", t_fallback) is None or out.mode_is("POLICY", t_fallback) >= t_clear
    n = assert_finite_commands(out, t_fault)
    # The fallback command keeps coming at the control rate (20 Hz) while the fault lasts.
    assert n >= 0.6 * FAST["control_rate_hz"] * hold_s, f"only {n} commands during {hold_s} s of fault"
    levels = out.diagnostic_levels(t_fault)
    assert any(level == expected_level for level, _ in levels), levels
    risks = [m.data for m in out.risk.since(t_fault)]
    assert risks and all(math.isfinite(r) for r in risks)
    t_policy = wait_until(lambda: out.mode_is("POLICY", t_clear), dwell_s + 3.0)
    assert t_policy, "did not return to POLICY after the fault cleared"
    assert t_policy - t_clear >= dwell_s - 0.05, (
        f"back to POLICY {t_policy - t_clear:.3f} s after the fault cleared, dwell is {dwell_s} s"
    )
    assert wait_until(lambda: any(level == OK for level, _ in out.diagnostic_levels(t_policy)), 1.0)


# ---------------------------------------------------------------------------------------------- diff-drive faults


def _nan_pose(inputs: DiffDriveInputs):
    inputs.pose[0] = math.nan


def _inf_twist(inputs: DiffDriveInputs):
    inputs.twist[0] = math.inf


def _front_quarter_scan(inputs: DiffDriveInputs):
    # A 90-degree lidar: the trained fan's sides and back are not covered.
    inputs.angle_min, inputs.angle_increment = -math.pi / 4, (math.pi / 2) / 89
    inputs.ranges = np.full(90, 1.5, np.float32)


def _nan_front(inputs: DiffDriveInputs):
    inputs.ranges[:10] = math.nan  # 10 of the 15 beams of sector 0 (and its neighbours): more than half invalid
    inputs.ranges[-5:] = math.nan


def _silent(topic: str):
    def inject(inputs: DiffDriveInputs):
        inputs.send[topic] = False

    return inject


DIFFDRIVE_FAULTS = {
    "nan_odometry": (_nan_pose, "FALLBACK:nonfinite:odom", ERROR),
    "inf_odometry": (_inf_twist, "FALLBACK:nonfinite:odom", ERROR),
    "scan_coverage": (_front_quarter_scan, "FALLBACK:coverage:scan", ERROR),
    "scan_invalid_beams": (_nan_front, "FALLBACK:invalid:scan", ERROR),
    "silent_scan": (_silent("scan"), "FALLBACK:stale:scan", STALE),
    "silent_odometry": (_silent("odom"), "FALLBACK:stale:odom", STALE),
}


@pytest.mark.parametrize("fault", list(DIFFDRIVE_FAULTS))
def test_diffdrive_fault_falls_back_and_recovers_after_dwell(fault, diffdrive_bundle, start_node, harness):
    inject, expected_mode, expected_level = DIFFDRIVE_FAULTS[fault]
    out = PolicyOutputs(harness)
    inputs = DiffDriveInputs(harness, rate_hz=20.0)
    start_node("policy_node", bundle_dir=diffdrive_bundle, fallback="retreat", **FAST)

    def restore():
        inputs.pose, inputs.twist = [0.0, 0.0, 0.0], [0.0, 0.0]
        inputs.angle_min, inputs.angle_increment = 0.0, 2 * math.pi / BEAMS
        inputs.ranges = np.full(BEAMS, 1.5, np.float32)
        inputs.send.update(odom=True, scan=True, goal=True)

    fault_then_recover(out, lambda: inject(inputs), restore, expected_mode, expected_level)


def test_release_dwell_defaults_to_the_one_calibrate_picked(diffdrive_bundle, start_node, harness, tmp_path):
    bundle = Path(shutil.copytree(diffdrive_bundle, tmp_path / "b"))
    manifest = json.loads((bundle / "manifest.json").read_text())
    write_manifest(bundle, dict(manifest, risk_high=10.0, risk_low=10.0, release_dwell_s=1.5))
    out = PolicyOutputs(harness)
    inputs = DiffDriveInputs(harness, rate_hz=20.0)
    node = start_node("policy_node", bundle_dir=bundle, **{k: v for k, v in FAST.items() if k != "release_dwell_s"})
    inject, expected_mode, expected_level = DIFFDRIVE_FAULTS["nan_odometry"]

    def restore():
        inputs.pose = [0.0, 0.0, 0.0]

    fault_then_recover(out, lambda: inject(inputs), restore, expected_mode, expected_level, dwell_s=1.5)
    # The operator is told what the monitor runs with.
    assert "monitor: FALLBACK above 10 for 3 tick(s), POLICY again after 1.5 s below 10" in node.output()


def test_a_bundle_calibrated_with_lambda_pinned_runs_with_a_warning(diffdrive_bundle, start_node, harness, tmp_path):
    bundle = Path(shutil.copytree(diffdrive_bundle, tmp_path / "b"))
    manifest = json.loads((bundle / "manifest.json").read_text())
    write_manifest(bundle, dict(manifest, calibration={"risk_signal": "lambda", "episodes": 100, "cap_share": 1.0}))
    out = PolicyOutputs(harness)
    DiffDriveInputs(harness, rate_hz=20.0)
    node = start_node("policy_node", bundle_dir=bundle, **FAST)
    # It loads and drives (the operator decides), and says at start-up why its monitor may not protect the robot.
    assert wait_until(lambda: out.mode_is("POLICY") is not None, STARTUP_S), node.output()
    assert "bundle calibration: lambda sat at its cap (lambda_max 10" in node.output()
    assert "[WARN]" in next(line for line in node.output().splitlines() if "bundle calibration:" in line)
    # /diagnostics carries it in every status, for whoever watches the robot rather than its start-up log.
    assert wait_until(lambda: out.diagnostics.items, 3.0)
    statuses = [{kv.key: kv.value for kv in s.values} for msg in out.diagnostics.since(0.0) for s in msg.status]
    assert all(values["bundle_caveats"].startswith("lambda sat at its cap") for values in statuses)


def test_no_goal_is_stale_and_commands_keep_coming(diffdrive_bundle, start_node, harness):
    out = PolicyOutputs(harness)
    inputs = DiffDriveInputs(harness, rate_hz=20.0)
    inputs.send["goal"] = False
    start = time.monotonic()
    start_node("policy_node", bundle_dir=diffdrive_bundle, **FAST)
    assert wait_until(lambda: len(out.command.since(start)) >= 20, STARTUP_S)
    assert out.mode.last.data == "FALLBACK:stale:goal_pose"
    stale = {"FALLBACK:stale:odom", "FALLBACK:stale:scan", "FALLBACK:stale:goal_pose"}  # in order of arrival
    assert {m.data for m in out.mode.since(start)} <= stale
    assert all(v == 0.0 for m in out.command.since(start) for v in command_values(m))  # "stop" fallback
    assert any(level == STALE for level, _ in out.diagnostic_levels(start))


# ------------------------------------------------------------------------------------------------- scan binning


def test_360_beam_scan_is_binned_onto_trained_sectors(diffdrive_bundle, start_node, harness):
    out = PolicyOutputs(harness)
    inputs = DiffDriveInputs(harness, rate_hz=20.0, beams=BEAMS)
    ranges = np.full(BEAMS, 1.9, np.float32)
    expected = 0.3 + 0.06 * np.arange(diffdrive.NUM_BEAMS)
    step = BEAMS // diffdrive.NUM_BEAMS  # 15 beams of 1 degree per 15-degree sector, centered on its direction
    for k, distance in enumerate(expected):
        ranges[(k * step + (k % 7) - 3) % BEAMS] = distance  # somewhere inside sector k, not always its center
    inputs.ranges = ranges
    start_node("policy_node", bundle_dir=diffdrive_bundle, **FAST)
    t = wait_policy(out)
    assert wait_until(lambda: out.observation.since(t), 2.0)
    obs = np.asarray(out.observation.since(t)[-1].data)
    assert obs.shape == (5 + diffdrive.NUM_BEAMS,)
    np.testing.assert_allclose(obs[5:], expected, atol=1e-6)
    np.testing.assert_allclose(obs[0], math.hypot(1.0, 0.5), atol=1e-5)  # goal (1, 0.5) from the origin


def test_rep117_readings_are_readings_not_faults(diffdrive_bundle, start_node, harness):
    out = PolicyOutputs(harness)
    inputs = DiffDriveInputs(harness, rate_hz=20.0, beams=BEAMS)
    ranges = np.full(BEAMS, np.inf, np.float32)  # +Inf: no return within range -> reads range_max
    ranges[0] = -np.inf  # sector 0: closer than the sensor's minimum -> reads range_min
    ranges[3 * 15 - 2 : 3 * 15 + 3] = np.nan  # sector 3: 5 of 15 beams invalid, the rest no return
    ranges[6 * 15 - 4 : 6 * 15] = np.nan  # sector 6: 4 invalid beams and one return at 1 m
    ranges[6 * 15 + 1] = 1.0
    inputs.ranges = ranges
    start = time.monotonic()
    start_node("policy_node", bundle_dir=diffdrive_bundle, **FAST)
    t = wait_policy(out)
    time.sleep(1.0)
    faults = [m.data for m in out.mode.since(start) if m.data.split(":")[1:2] in (["nonfinite"], ["invalid"])]
    assert not faults, faults  # only startup/staleness before the first inputs, never a fault from the readings
    assert out.mode.last.data == "POLICY"
    assert all(m.data == "POLICY" for m in out.mode.since(t))
    assert all(level == OK for level, _ in out.diagnostic_levels(t))
    obs = np.asarray(out.observation.since(t)[-1].data)
    expected = np.full(diffdrive.NUM_BEAMS, diffdrive.RANGE_MAX)
    expected[0], expected[6] = diffdrive.RANGE_MIN, 1.0
    np.testing.assert_allclose(obs[5:], expected, atol=1e-6)


# ---------------------------------------------------------------------------------------------- joint interface


def _wrong_length(inputs: JointInputs):
    inputs.positions = [0.0, math.pi, 0.0]  # 3 positions for 2 names


def _nan_joint(inputs: JointInputs):
    inputs.velocities = [math.nan, 0.0]


@pytest.mark.parametrize(
    "inject,expected",
    [(_wrong_length, "FALLBACK:size:joint_states"), (_nan_joint, "FALLBACK:nonfinite:joint_states")],
    ids=["wrong_length", "nan"],
)
def test_joint_fault_falls_back_and_recovers(inject, expected, cartpole_bundle, start_node, harness):
    out = PolicyOutputs(harness, interface="joint")
    inputs = JointInputs(harness, rate_hz=20.0)
    start_node("policy_node", bundle_dir=cartpole_bundle, fallback="damping", **FAST)

    def restore():
        inputs.positions, inputs.velocities = [0.0, math.pi], [0.0, 0.0]

    fault_then_recover(out, lambda: inject(inputs), restore, expected, ERROR)
    assert_finite_commands(out, 0.0, act_dim=1)


# ----------------------------------------------------------------------------------------- refused at start


def _bad_hash(bundle: Path):
    with open(bundle / "policy.onnx", "ab") as f:
        f.write(b"\0")


def _wrong_dimensions(bundle: Path):
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["obs_dim"] += 1
    manifest["obs_layout"]["ranges"][1] += 1
    write_manifest(bundle, manifest)


def _format_version(bundle: Path):
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["format_version"] = 99
    write_manifest(bundle, manifest)


def _keep(bundle: Path):
    pass


def _no_deploy_spec(bundle: Path):
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["deploy"] = {"beam_angles": []}
    write_manifest(bundle, manifest)


# case: (how to corrupt a copy of the bundle, or None for no bundle at all; parameter overrides; expected message)
REFUSED = {
    "bad_hash": (_bad_hash, {}, "does not match the manifest"),
    "wrong_dimensions": (_wrong_dimensions, {}, "the policy takes 29 observations, the manifest says 30"),
    "format_version": (_format_version, {}, "format_version 99"),
    "missing_bundle": (None, {}, "bundle directory not found"),
    "risk_low_above_high": (_keep, {"risk_low": 2.0, "risk_high": 1.0}, "must be <= risk_high"),
    "uncalibrated_no_thresholds": (_keep, {"risk_low": None, "risk_high": None}, "risk_high is required"),
    "damping_on_diff_drive": (_keep, {"fallback": "damping"}, "fallback 'damping' is for joint robots"),
    "integer_for_double": (_keep, {"control_rate_hz": 20}, "must be a double"),
    "no_deploy_spec": (_no_deploy_spec, {}, "manifest deploy spec"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_bad_bundle_or_parameters_refused_at_start(case, diffdrive_bundle, start_node, tmp_path):
    corrupt, overrides, message = REFUSED[case]
    bundle = tmp_path / "bundle"
    if corrupt is not None:
        shutil.copytree(diffdrive_bundle, bundle)
        corrupt(bundle)
    params = dict(FAST, bundle_dir=bundle)
    params.update(overrides)
    params = {k: v for k, v in params.items() if v is not None}
    node = start_node("policy_node", **params)
    rc = node.wait(timeout=STARTUP_S)
    output = node.output()
    assert rc != 0, output
    assert message in output, output
    assert "configuration failed" in output
    assert "Traceback" not in output, output


# ----------------------------------------------------------------------------------------------------- lifecycle


def _call(harness, client, request, timeout=5.0):
    future = client.call_async(request)
    assert wait_until(future.done, timeout), f"{client.srv_name} did not answer"
    return future.result()


@pytest.mark.parametrize("executor", ["single_threaded", "events"])
def test_lifecycle_start_stop(executor, diffdrive_bundle, start_node, harness):
    out = PolicyOutputs(harness)
    DiffDriveInputs(harness, rate_hz=20.0)
    start_node("policy_node", bundle_dir=diffdrive_bundle, autostart=False, executor=executor, **FAST)
    get_state = harness.node.create_client(GetState, "/alam_policy_node/get_state")
    change = harness.node.create_client(ChangeState, "/alam_policy_node/change_state")
    assert wait_until(lambda: change.service_is_ready() and get_state.service_is_ready(), STARTUP_S)
    assert _call(harness, get_state, GetState.Request()).current_state.label == "unconfigured"

    def transition(tid: int) -> bool:
        return _call(harness, change, ChangeState.Request(transition=Transition(id=tid)), timeout=15.0).success

    assert transition(Transition.TRANSITION_CONFIGURE)
    assert _call(harness, get_state, GetState.Request()).current_state.label == "inactive"
    time.sleep(0.3)
    assert not out.mode.items and not out.command.items  # configured but not active: silent
    t_active = time.monotonic()
    assert transition(Transition.TRANSITION_ACTIVATE)
    wait_policy(out, t_active, timeout=5.0)
    assert transition(Transition.TRANSITION_DEACTIVATE)
    t_inactive = time.monotonic()
    assert wait_until(lambda: out.mode.last.data == "FALLBACK:inactive", 2.0)
    assert all(v == 0.0 for v in command_values(out.command.last))  # a last stop command
    time.sleep(0.5)
    assert len(out.mode.since(t_inactive + 0.2)) == 0  # no more ticks


def test_sigint_sends_a_last_stop_command(diffdrive_bundle, start_node, harness):
    out = PolicyOutputs(harness)
    inputs = DiffDriveInputs(harness, rate_hz=20.0)
    inputs.goal = [-1.0, 0.0]  # behind the robot: the policy's commands are not zero
    node = start_node("policy_node", bundle_dir=diffdrive_bundle, **FAST)
    wait_policy(out)
    node.proc.send_signal(signal.SIGINT)
    assert node.wait(timeout=5.0) == 0, node.output()
    assert wait_until(lambda: out.mode.last.data == "FALLBACK:shutdown", 1.0), out.mode.last
    assert wait_until(lambda: all(v == 0.0 for v in command_values(out.command.last)), 1.0)


def test_risk_above_threshold_hands_over_and_thresholds_are_live(diffdrive_bundle, start_node, harness):
    """FALLBACK:risk (WARN) after engage_ticks ticks of risk > risk_high; thresholds change at run time, validated."""
    from rcl_interfaces.msg import Parameter as ParameterMsg
    from rcl_interfaces.msg import ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    out = PolicyOutputs(harness)
    DiffDriveInputs(harness, rate_hz=20.0)
    start_node("policy_node", bundle_dir=diffdrive_bundle, **FAST)
    client = harness.node.create_client(SetParameters, "/alam_policy_node/set_parameters")
    wait_policy(out)
    assert wait_until(client.service_is_ready, 5.0)

    def set_param(name: str, value: float):
        value_msg = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
        request = SetParameters.Request(parameters=[ParameterMsg(name=name, value=value_msg)])
        return _call(harness, client, request).results[0]

    assert set_param("risk_low", 0.0).successful
    t_high = time.monotonic()
    assert set_param("risk_high", 0.0).successful  # lambda = lambda_max * sigmoid(z) > 0: above it at once
    assert wait_until(lambda: out.mode_is("FALLBACK:risk", t_high), 2.0)
    assert wait_until(lambda: any(level == WARN for level, _ in out.diagnostic_levels(t_high)), 2.0)
    rejected = set_param("risk_low", 5.0)  # above risk_high
    assert not rejected.successful and "risk_high" in rejected.reason
    assert set_param("risk_high", 10.0).successful and set_param("risk_low", 10.0).successful
    t_calm = time.monotonic()
    t_policy = wait_policy(out, t_calm, timeout=3.0)
    assert t_policy - t_calm >= FAST["release_dwell_s"] - 0.05
    # The progress watch's settings are live too: the harness robot stands still 1.1 m from its goal.
    assert set_param("recover_s", 0.5).successful
    t_watch = time.monotonic()
    assert set_param("stall_s", 0.5).successful
    t_stalled = wait_until(lambda: out.mode_is("FALLBACK:stalled", t_watch), 3.0)
    assert t_stalled and 0.45 <= t_stalled - t_watch < 1.5, t_stalled - t_watch
    assert wait_until(lambda: any(level == WARN for level, _ in out.diagnostic_levels(t_stalled)), 2.0)
    assert set_param("stall_s", 0.0).successful
    wait_policy(out, time.monotonic(), timeout=3.0)
    assert not set_param("stall_s", -1.0).successful


def test_safety_cannot_be_switched_off_from_another_process(diffdrive_bundle, start_node, harness):
    """risk thresholds beyond [0, lambda_max] and long staleness timeouts are refused at run time; an accepted
    change is a WARN log and shows on /diagnostics."""
    from rcl_interfaces.msg import Parameter as ParameterMsg
    from rcl_interfaces.msg import ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    out = PolicyOutputs(harness)
    DiffDriveInputs(harness, rate_hz=20.0)
    node = start_node("policy_node", bundle_dir=diffdrive_bundle, **FAST)
    client = harness.node.create_client(SetParameters, "/alam_policy_node/set_parameters")
    wait_policy(out)
    assert wait_until(client.service_is_ready, 5.0)

    def set_params(**values: float):
        request = SetParameters.Request(parameters=[
            ParameterMsg(name=k, value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=v))
            for k, v in values.items()])  # fmt: skip
        return _call(harness, client, request).results

    off = set_params(risk_high=1.0e9, risk_low=1.0e9)  # what a hostile or careless peer would send
    assert not any(r.successful for r in off), off
    assert "outside [0, lambda_max 10]" in off[0].reason
    stale = set_params(obs_timeout_s=3600.0)[0]
    assert not stale.successful and "obs_timeout_s 3600.0 is above 0.5 s" in stale.reason
    t_change = time.monotonic()
    assert all(r.successful for r in set_params(risk_low=5.0, risk_high=9.0))

    def reported() -> bool:
        for msg in out.diagnostics.since(t_change):
            values = {kv.key: kv.value for status in msg.status for kv in status.values}
            # rclpy's set_parameters service applies (and reports) one parameter at a time.
            if values.get("parameter_changes") == "2" and values.get("last_parameter_change") == "risk_high=9.0":
                return True
        return False

    assert wait_until(reported, 3.0)
    assert wait_until(lambda: "changed at run time: risk_high=9.0" in node.output(), 3.0)
    assert "refused a parameter change" in node.output()


def test_unsafe_parameters_need_the_opt_in_at_start(diffdrive_bundle, start_node, tmp_path):
    node = start_node("policy_node", bundle_dir=diffdrive_bundle, **dict(FAST, risk_high=1.0e6, risk_low=1.0e6))
    assert node.wait(timeout=STARTUP_S) != 0
    assert "allow_unsafe_parameters" in node.output() and "Traceback" not in node.output()


def test_markers_show_the_robot_coloured_by_risk_and_the_mode(diffdrive_bundle, start_node, harness):
    from visualization_msgs.msg import Marker, MarkerArray

    out = PolicyOutputs(harness)
    inputs = DiffDriveInputs(harness, rate_hz=20.0)
    inputs.pose = [0.4, -0.3, 0.0]
    markers = harness.listen(MarkerArray, "/alam_policy_node/markers")
    start_node("policy_node", bundle_dir=diffdrive_bundle, markers_period_s=0.2, **FAST)
    t_policy = wait_policy(out)

    def latest() -> dict:
        arrays = markers.since(t_policy)
        return {m.ns: m for m in arrays[-1].markers} if arrays else {}

    assert wait_until(lambda: "POLICY" in getattr(latest().get("mode"), "text", ""), 3.0)
    shown = latest()
    robot = shown["robot"]
    assert robot.type == Marker.CYLINDER and robot.header.frame_id == "odom"
    assert (robot.pose.position.x, robot.pose.position.y) == pytest.approx((0.4, -0.3))
    assert robot.color.g > 0.9 and robot.color.r < 0.1  # risk far below risk_low (10): green
    assert (shown["goal"].pose.position.x, shown["goal"].pose.position.y) == pytest.approx(tuple(inputs.goal))
