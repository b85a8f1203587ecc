"""Calibration: threshold picking on constructed data, and bundle rollouts with and without the monitor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from alam_control import cli, runtime
from alam_control.deploy import calibration
from alam_control.learn import metrics
from alam_control.runtime import MonitorConfig, load_bundle, risk_signal_caveats
from alam_control.runtime.bundle import write_manifest


def test_pick_thresholds_reaches_the_recall() -> None:
    rng = np.random.default_rng(0)
    labels = rng.random(5000) < 0.2
    lam = np.where(labels, rng.normal(5.0, 1.0, 5000), rng.normal(2.0, 1.0, 5000))
    high, low, quality = calibration.pick_thresholds(lam, labels, recall=0.9)
    assert low == pytest.approx(0.5 * high)  # the default hysteresis
    assert calibration.pick_thresholds(lam, labels, recall=0.9, hysteresis=0.25)[1] == pytest.approx(0.25 * high)
    floor = calibration.pick_thresholds(lam + 100.0, labels, recall=0.9, hysteresis=0.1)  # 0.1 x high: below all
    assert floor[1] == pytest.approx(np.quantile(lam + 100.0, 0.05)) and floor[1] <= floor[0]
    with pytest.raises(ValueError, match="hysteresis"):
        calibration.pick_thresholds(lam, labels, 0.9, hysteresis=1.5)
    assert quality["recall"] >= 0.9 and quality["recall"] == pytest.approx(0.9, abs=0.01)
    assert (lam[labels] > high).mean() == pytest.approx(quality["recall"])
    assert quality["precision"] > labels.mean(), "a useful signal flags positives above their base rate"
    with pytest.raises(ValueError, match=r"no violations.*--randomize-width 2"):
        calibration.pick_thresholds(lam, np.zeros_like(labels), 0.9)
    # A lambda far below its cap (1e-12 .. 1e-9 here) keeps its ranking: the threshold stays positive and flags the
    # recall asked for, not every state.
    tiny_high, _, tiny = calibration.pick_thresholds(np.exp(lam * 4.0 - 48.0), labels, recall=0.9)
    assert 0.0 < tiny_high and tiny["recall"] == pytest.approx(quality["recall"])
    assert tiny["flag_rate"] == pytest.approx(quality["flag_rate"]) and tiny["flag_rate"] < 0.5


def test_pick_thresholds_keeps_the_false_alarm_budget() -> None:
    # 10 positives of 100 steps: lambda 0..89 on the negatives, 50..59 on the positives (a weak signal: half the
    # negatives rank above every positive). Recall 0.5 alone: risk_high just below the positives' lower median 54,
    # flagging 6 positives and 36 negatives (54..89), 42 % of the steps.
    lam = np.concatenate([np.arange(90.0), np.arange(50.0, 60.0)])
    labels = np.arange(100) >= 90
    high, _, free = calibration.pick_thresholds(lam, labels, recall=0.5, max_flag_ratio=None)
    assert 53.9 < high < 54.0 and free["flag_rate"] == pytest.approx(0.42) and free["recall"] == pytest.approx(0.6)
    assert free["recall_met"] == 1.0
    assert free["flag_budget"] == 1.0
    # Budget 2 x 10 % = 20 % of the steps: the 80 % quantile of all 100 (method "higher": sorted index 80, which is
    # 70), so lam > 70 flags 19 negatives (71..89) and no positive; the recall target is then reported missed
    # rather than met by stopping the robot.
    high, low, tight = calibration.pick_thresholds(lam, labels, recall=0.5)
    assert high == 70.0 and low == 35.0
    assert tight["flag_rate"] == pytest.approx(0.19) and tight["flag_budget"] == pytest.approx(0.2)
    assert tight["recall"] == 0.0 and tight["recall_met"] == 0.0
    # A budget that does not bind leaves the recall rule alone; a budget of 10 x (> 100 %) is no budget.
    assert 53.9 < calibration.pick_thresholds(lam, labels, 0.5, max_flag_ratio=4.5)[0] < 54.0  # 45 % >= 42 %
    assert calibration.pick_thresholds(lam, labels, 0.5, max_flag_ratio=10.0)[2]["flag_budget"] == 1.0
    assert calibration.pick_thresholds(lam, labels, 0.5, max_flag_ratio=15.0)[2]["flag_budget"] == 1.0  # not 1.5
    # A ratio below 1 is a budget too: 0.5 x 10 % = 5 % of the steps, lam > the 95 % quantile (sorted index 95: 85).
    high, _, strict = calibration.pick_thresholds(lam, labels, 0.5, max_flag_ratio=0.5)
    assert high == 85.0 and strict["flag_rate"] == pytest.approx(0.04) and strict["flag_budget"] == pytest.approx(0.05)
    with pytest.raises(ValueError, match="max_flag_ratio"):
        calibration.pick_thresholds(lam, labels, 0.5, max_flag_ratio=0.0)


def test_pick_thresholds_at_the_edges_of_its_arguments() -> None:
    lam = np.array([0.0, 1.0, 2.0, 3.0])
    labels = np.array([True, False, True, False])
    for recall in (0.0, 1.0):
        with pytest.raises(ValueError, match=r"recall must be in \(0, 1\), got"):
            calibration.pick_thresholds(lam, labels, recall)
    with pytest.raises(ValueError, match=r"hysteresis must be in \(0, 1\]"):
        calibration.pick_thresholds(lam, labels, 0.5, hysteresis=0.0)
    high, low, _ = calibration.pick_thresholds(lam, labels, 0.5, hysteresis=1.0, max_flag_ratio=None)
    assert low == high  # no hysteresis band: release where it engages
    # The lowest positive is the lowest lambda of all: risk_high falls just below it and flags every step. No
    # budget (None), or one of exactly 100 % (2 x 50 %), must not raise it to that lowest lambda, which would leave
    # the lowest positive unflagged.
    for ratio in (None, 2.0):
        high, _, quality = calibration.pick_thresholds(lam, labels, 0.9, max_flag_ratio=ratio)
        assert high < 0.0 and quality["recall"] == 1.0 and quality["flag_rate"] == 1.0 and quality["flag_budget"] == 1.0
    # The recall target met exactly is met: positives 10..13 among 10 steps, budget 0.75 x 40 % = 30 %: lam > the
    # 70 % quantile (method "higher": sorted index 7, which is 11) flags 12 and 13, half the positives.
    lam = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 11.0, 12.0, 13.0])
    labels = lam >= 10.0
    high, _, quality = calibration.pick_thresholds(lam, labels, 0.5, max_flag_ratio=0.75)
    assert high == 11.0 and quality["recall"] == 0.5 and quality["recall_met"] == 1.0


def test_reliability_table_is_monotone_for_a_calibrated_score() -> None:
    rng = np.random.default_rng(1)
    lam = rng.random(20000)
    labels = rng.random(20000) < lam  # P(positive | lam) = lam
    rows = metrics.reliability_table(lam, labels, bins=5)
    assert len(rows) == 5 and sum(r["steps"] for r in rows) == 20000
    rates = [r["positive_rate"] for r in rows]
    assert rates == sorted(rates)
    for row in rows:
        assert row["positive_rate"] == pytest.approx((row["bin_low"] + row["bin_high"]) / 2, abs=0.03)


def test_monitor_rollout_hands_over(smoke_bundle: Path) -> None:
    bundle = load_bundle(smoke_bundle)
    alone = calibration.rollout(bundle, 1, randomize=True)
    # Episode k is the same whatever the count (the closed-loop check of `calibrate` reruns the first ones).
    two = calibration.rollout(bundle, 2, randomize=True)
    np.testing.assert_array_equal(two.risk[two.episode == 0], alone.risk)
    assert not alone.fallback.any() and len(alone.risk) == 500
    # risk_high below every lambda: the monitor must hand over after engage_ticks and keep the fallback.
    guarded = calibration.rollout(bundle, 1, randomize=True, monitor=MonitorConfig(-1.0, -2.0, engage_ticks=3))
    assert not guarded.fallback[:2].any() and guarded.fallback[2:].all()  # the 3rd tick above engages
    # Without a fallback named, the robot's own drives (the cart-pole's center PD, which moves; stop would not).
    assert np.abs(guarded.commands[3:]).max() > 0.0
    np.testing.assert_array_equal(guarded.risk[:3], alone.risk[:3])


def test_closed_loop_reruns_the_first_episodes_behind_the_monitor(smoke_bundle: Path) -> None:
    bundle = load_bundle(smoke_bundle)
    three = calibration.rollout(bundle, 3, randomize=True)
    first_two = calibration.rollout(bundle, 2, randomize=True)
    # risk_high below every lambda: the fallback drives from the first tick to the end.
    loop = calibration.closed_loop(bundle, three, MonitorConfig(-1.0, -2.0), 2, calibration.EVAL_SEED, True, "stop")
    assert loop["episodes"] == 2 and loop["fallback"] == "stop" and loop["fallback_share"] == 1.0
    assert loop["alone_violation_rate"] == pytest.approx((first_two.cost > 0).mean())
    assert loop["alone_return"] == pytest.approx(np.mean(first_two.returns))
    guarded = calibration.rollout(bundle, 2, randomize=True, monitor=MonitorConfig(-1.0, -2.0), fallback="stop")
    assert loop["return"] == pytest.approx(np.mean(guarded.returns))
    assert loop["violation_rate"] == pytest.approx((guarded.cost > 0).mean())


def test_pick_dwell_keeps_the_least_fallback_among_the_fewest_violations() -> None:
    # 4 episodes, 3 candidates; candidate 2 has the fewest violations (none).
    violations = np.array([[3, 2, 4, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    shares = np.array([0.05, 0.10, 0.30])
    assert calibration.pick_dwell(violations, shares) == 2  # no slack: only the safest
    # With one standard error of slack: candidate 0 is +2.25 steps per episode at a paired standard error of 0.854,
    # out; candidate 1 +0.25 at 0.25 (one episode's difference is never more than one standard error), in, and it
    # hands back sooner.
    assert calibration.pick_dwell(violations, shares, slack=1.0) == 1
    assert calibration.pick_dwell(violations, np.array([0.05, 0.30, 0.10]), slack=1.0) == 2
    assert calibration.pick_dwell(violations, shares, slack=3.0) == 0  # 2.25 <= 3 x 0.854
    # A difference spread over the episodes is significant at any slack: +1 in each, standard error 0.
    assert calibration.pick_dwell(np.array([[1, 1, 1, 1], [0, 0, 0, 0]]), np.array([0.0, 0.5]), slack=5.0) == 1
    # No violation anywhere: the least fallback; equal shares: the first.
    assert calibration.pick_dwell(np.zeros((3, 5)), np.array([0.2, 0.1, 0.3])) == 1
    assert calibration.pick_dwell(np.zeros((2, 5)), np.array([0.2, 0.2])) == 0
    # One episode: no standard error to go on, only candidates as safe as the safest.
    assert calibration.pick_dwell(np.array([[1], [0], [0]]), np.array([0.0, 0.4, 0.3]), slack=1.0) == 2
    # Slack between the two standard-error estimates of candidate 0 (paired differences 3, 2, 4, 0; 0.854 with
    # ddof 1): 2.4 x 0.854 = 2.05 < 2.25, out; candidate 1 (+0.25 at 0.25) in.
    assert calibration.pick_dwell(violations, shares, slack=2.4) == 1
    # The paired differences are taken to the safest candidate's own counts, not to zero: candidate 1 is +1 in one
    # of 4 episodes over candidate 0 (1 each), +0.25 at a standard error of 0.25, within one.
    assert calibration.pick_dwell(np.array([[1, 1, 1, 1], [1, 2, 1, 1]]), np.array([0.3, 0.1]), slack=1.0) == 1
    # Two episodes give a standard error: +1 in one of them is +0.5 at 0.5, within one.
    assert calibration.pick_dwell(np.array([[1, 0], [0, 0]]), np.array([0.1, 0.5]), slack=1.0) == 0
    assert calibration.pick_dwell(np.array([[2, 5]]), np.array([0.7])) == 0  # one candidate: that one
    with pytest.raises(ValueError, match=r"violations must be \[D, E\]"):
        calibration.pick_dwell(np.zeros(3), np.zeros(3))
    for empty in ((0, 3), (2, 0)):  # no candidate, no episode
        with pytest.raises(ValueError, match=r"violations must be \[D, E\] with D, E >= 1"):
            calibration.pick_dwell(np.zeros(empty), np.zeros(empty[0]))
    with pytest.raises(ValueError, match="fallback_share"):
        calibration.pick_dwell(np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="slack must be >= 0"):
        calibration.pick_dwell(np.zeros((2, 3)), np.zeros(2), slack=-1.0)


def test_violation_steps_counts_the_violating_steps_of_each_episode() -> None:
    data = calibration.Rollouts(risk=np.zeros(6), cost=np.array([0.0, 1.0, 2.0, 0.0, 0.0, 0.5]),
                                labels=np.zeros(6, bool), fallback=np.zeros(6, bool), returns=[0.0, 0.0, 0.0],
                                costs=[3.0, 0.0, 0.5], episode=np.array([0, 0, 0, 1, 1, 2]))  # fmt: skip
    np.testing.assert_array_equal(data.violation_steps(), [2, 0, 1])  # steps, not cost: 2.0 counts once


def test_closed_loop_tries_each_dwell_and_keeps_the_one_pick_dwell_picks(smoke_bundle: Path) -> None:
    bundle = load_bundle(smoke_bundle)
    alone = calibration.rollout(bundle, 2, randomize=True)
    # Thresholds that hand over and back often, so the dwell matters.
    monitor = MonitorConfig(float(np.quantile(alone.risk, 0.6)), float(np.quantile(alone.risk, 0.4)))
    loop = calibration.closed_loop(bundle, alone, monitor, 2, calibration.EVAL_SEED, True, "center", (0, 0.5, 0.0), 1.0)
    assert [c["release_dwell_s"] for c in loop["candidates"]] == [0.0, 0.5]  # each candidate once
    per_episode, shares = [], []
    for row in loop["candidates"]:
        at = MonitorConfig(monitor.risk_high, monitor.risk_low, release_dwell_s=row["release_dwell_s"])
        guarded = calibration.rollout(bundle, 2, randomize=True, monitor=at, fallback="center")
        assert row["fallback_share"] == pytest.approx(guarded.fallback.mean())
        assert row["violation_rate"] == pytest.approx((guarded.cost > 0).mean())
        assert row["return"] == pytest.approx(np.mean(guarded.returns))
        per_episode.append([(guarded.cost[guarded.episode == e] > 0).sum() for e in range(2)])
        np.testing.assert_array_equal(guarded.violation_steps(), per_episode[-1])
        shares.append(guarded.fallback.mean())
    kept = loop["candidates"][calibration.pick_dwell(np.array(per_episode), np.array(shares), 1.0)]
    assert loop["dwell_slack"] == 1.0
    assert loop["release_dwell_s"] == kept["release_dwell_s"] and loop["fallback_share"] == kept["fallback_share"]
    assert shares[0] != shares[1]  # the dwell changed what the monitor did, so the choice was a real one
    # Without candidates, the monitor's own dwell only.
    own = calibration.closed_loop(bundle, alone, monitor, 2, calibration.EVAL_SEED, True, "center")
    assert [c["release_dwell_s"] for c in own["candidates"]] == [monitor.release_dwell_s]


def test_calibrate_writes_the_picked_dwell_and_drops_a_stale_one(smoke_bundle: Path, tmp_path: Path) -> None:
    import shutil

    bundle = Path(shutil.copytree(smoke_bundle, tmp_path / "b"))
    cal = calibration.calibrate(bundle, episodes=2, recall=0.5, dwells=(0.0, 2.0))
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["release_dwell_s"] == cal["release_dwell_s"] == cal["closed_loop"]["release_dwell_s"]
    assert manifest["release_dwell_s"] in (0.0, 2.0)
    assert MonitorConfig.from_manifest(load_bundle(bundle).manifest).release_dwell_s == manifest["release_dwell_s"]
    # Recalibrated without the check (or without candidates): the old dwell was picked for other thresholds.
    calibration.calibrate(bundle, episodes=2, recall=0.5, closed_loop_episodes=0)
    assert "release_dwell_s" not in json.loads((bundle / "manifest.json").read_text())
    cal = calibration.calibrate(bundle, episodes=2, recall=0.5, dwells=None)
    assert "release_dwell_s" not in json.loads((bundle / "manifest.json").read_text())
    assert cal["closed_loop"]["release_dwell_s"] == MonitorConfig(0.0, 0.0).release_dwell_s


def test_calibrate_cli_writes_thresholds(smoke_bundle: Path, tmp_path: Path, capsys) -> None:
    import shutil

    bundle = Path(shutil.copytree(smoke_bundle, tmp_path / "b"))
    # The smoke policy (600 steps) leaves the band in most episodes, so there is something to calibrate on.
    assert cli.main(["calibrate", "--bundle", str(bundle), "--episodes", "3"]) == 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["risk_low"] <= manifest["risk_high"] and manifest["calibration"]["episodes"] == 3
    cal = manifest["calibration"]
    # The closed-loop check ran the same 3 episodes behind the new monitor with the cart-pole's own fallback; its
    # "alone" figures are those episodes' (rollouts are the same episode by episode whatever their count).
    loop = cal["closed_loop"]
    assert loop["episodes"] == 3 and loop["fallback"] == "center" and loop["engage_ticks"] == 1
    assert loop["alone_violation_rate"] == pytest.approx(cal["violation_rate"])
    assert 0.0 <= loop["fallback_share"] <= 1.0 and 0.0 <= loop["violation_rate"] <= 1.0
    # The false-alarm budget (default 2 x the positive share) is kept and recorded.
    assert cal["max_flag_ratio"] == 2.0 and cal["flag_rate"] <= cal["flag_budget"] + 1e-12
    assert cal["flag_budget"] == pytest.approx(min(1.0, 2.0 * cal["positive_rate"]))
    low, high = cal["risk_auroc_interval"]  # null (strict JSON) where undefined: violations in < 5 episodes
    assert cal["onsets"] >= 1 and (low is None or low <= cal["risk_auroc"] <= high)
    assert cal["reliability_dips"] == metrics.reliability_dips(cal["reliability"])
    # How early: one row per lead bin, the violating states' count is the steps with cost (a positive bin).
    rows = cal["auroc_by_lead"]
    assert [(r["lead_low"], r["lead_high"]) for r in rows] == [(0, 1), (1, 5), (5, 10), (10, 15), (15, 20)]
    assert rows[0]["positives"] == round(cal["violation_rate"] * 3 * 500)  # 3 episodes of 500 steps
    out = capsys.readouterr().out
    assert "reliability" in out and "how early" in out and "k 0-0  " in out and "behind this monitor (center" in out
    # One row per candidate dwell (the default five), the kept one marked and written.
    assert out.count("  release_dwell_s ") == len(calibration.DWELLS) and out.count("<- kept") == 1
    assert f"release_dwell_s {manifest['release_dwell_s']:<5g}" in out.split("<- kept")[0].splitlines()[-1]
    assert "risk_high / risk_low / release_dwell_s written" in out
    load_bundle(bundle)  # still verifies: the policy file and its hash are untouched
    assert cli.main(["eval", "--bundle", str(bundle), "--monitor", "--episodes", "1"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["monitor"] is True
    assert evaluated["stalled_fraction"] == 0.0  # a joint robot: no progress watch
    assert evaluated["monitor_settings"] == {
        "risk_high": manifest["risk_high"],
        "risk_low": manifest["risk_low"],
        "engage_ticks": 1,
        "release_dwell_s": manifest["release_dwell_s"],
        "stall_s": 2.0,  # the progress watch's defaults (it watches navigation bundles only)
        "recover_s": 1.5,
        "goal_tolerance_m": 0.3,
    }

    # The reliability diagram, and a stress evaluation under ranges twice as wide as training's.
    assert cli.main(["calibrate", "--bundle", str(bundle), "--episodes", "2", "--max-flag-ratio", "inf",
                     "--closed-loop-episodes", "0"]) == 0  # fmt: skip
    cal = json.loads((bundle / "manifest.json").read_text())["calibration"]
    assert "closed_loop" not in cal
    assert cal["max_flag_ratio"] is None and cal["flag_budget"] == 1.0 and cal["recall_met"] == 1.0
    assert "note: the monitor flags" not in capsys.readouterr().out
    # A budget below the share the recall needs: the recall is missed, and the CLI says so in words.
    assert cli.main(["calibrate", "--bundle", str(bundle), "--episodes", "2", "--recall", "0.95",
                     "--max-flag-ratio", "0.5", "--dwells", "0.5", "--dwell-slack", "1"]) == 0  # fmt: skip
    manifest = json.loads((bundle / "manifest.json").read_text())
    cal = manifest["calibration"]
    assert cal["recall_met"] == 0.0 and cal["flag_rate"] <= cal["flag_budget"] + 1e-12
    # One candidate dwell: just that one, kept; the slack is recorded.
    assert manifest["release_dwell_s"] == 0.5 and cal["closed_loop"]["dwell_slack"] == 1.0
    assert len(cal["closed_loop"]["candidates"]) == 1
    assert "not the 95% asked for" in capsys.readouterr().out
    assert cli.main(["calibrate", "--bundle", str(bundle), "--episodes", "2", "--plot", str(tmp_path / "r.png")]) == 0
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG" and "reliability diagram" in capsys.readouterr().out
    assert cli.main(["eval", "--bundle", str(bundle), "--randomize-width", "2", "--episodes", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["randomize_width"] == 2.0
    assert cli.main(["eval", "--bundle", str(bundle), "--episodes", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["randomize_width"] is None
    assert cli.main(["eval", "--bundle", str(bundle), "--randomize-width", "0.5"]) == 2
    assert "--randomize-width must be >= 1" in capsys.readouterr().err


def test_calibrate_and_eval_warn_of_what_the_calibration_saw_the_risk_signal_fail_at(
    smoke_bundle: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    import shutil

    bundle = Path(shutil.copytree(smoke_bundle, tmp_path / "b"))
    assert cli.main(["calibrate", "--bundle", str(bundle), "--episodes", "2", "--closed-loop-episodes", "0"]) == 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    warned = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning: ")]
    assert warned == [f"warning: {caveat}" for caveat in risk_signal_caveats(manifest)]
    # As if the calibration had seen lambda pinned at its cap: `alam eval --monitor` reports it with its figures.
    write_manifest(bundle, dict(manifest, calibration=dict(manifest["calibration"], cap_share=1.0)))
    assert cli.main(["eval", "--bundle", str(bundle), "--monitor", "--episodes", "1"]) == 0
    caveats = json.loads(capsys.readouterr().out)["monitor_caveats"]
    assert caveats == risk_signal_caveats(load_bundle(bundle).manifest)
    assert caveats[0].startswith("lambda sat at its cap (lambda_max 10")
    assert cli.main(["eval", "--bundle", str(bundle), "--episodes", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["monitor_caveats"] is None  # no monitor, nothing it cannot do
    # A threshold the node would refuse runs here (an experiment), with a note saying what it does.
    assert cli.main(["eval", "--bundle", str(bundle), "--monitor", "--episodes", "1", "--risk-high", "99"]) == 0
    assert "note: risk_high 99.0 is outside [0, lambda_max 10]" in capsys.readouterr().err
    # `alam calibrate` prints every caveat of the manifest it has just written, one line each.
    monkeypatch.setattr(runtime, "risk_signal_caveats", lambda manifest: ["one", "two"])
    assert cli.main(["calibrate", "--bundle", str(bundle), "--episodes", "2", "--closed-loop-episodes", "0"]) == 0
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning: ")] == [
        "warning: one",
        "warning: two",
    ]


def test_calibrate_cli_says_when_the_monitor_costs_much(
    smoke_bundle: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    import shutil

    bundle = Path(shutil.copytree(smoke_bundle, tmp_path / "b"))
    real = calibration.calibrate
    # (fallback share, return behind the monitor) against the policy alone's return of 100.
    outcomes = iter([(0.25, 50.0), (0.6, 90.0), (0.05, 49.0)])

    def with_outcome(*args, **kwargs):  # the real calibration, its closed-loop figures set
        result = real(*args, **kwargs)
        share, ret = next(outcomes)
        result["closed_loop"].update(fallback_share=share, alone_return=100.0, **{"return": ret})
        return result

    monkeypatch.setattr(calibration, "calibrate", with_outcome)
    command = ["calibrate", "--bundle", str(bundle), "--episodes", "2", "--dwells", "1"]
    assert cli.main(command) == 0
    assert "the fallback drives" not in capsys.readouterr().out  # a quarter and half the return: at the bars
    assert cli.main(command) == 0
    out = capsys.readouterr().out
    assert "note: behind this monitor the fallback drives 60% of the time and the return is 90.00 against 100.00" in out
    assert "lambda's AUROC" in out
    assert cli.main(command) == 0  # a short handover that costs most of the return (a walker that falls)
    assert (
        "note: behind this monitor the fallback drives 5% of the time and the return is 49.00"
        in capsys.readouterr().out
    )


def test_bundles_roll_out_under_the_ranges_they_were_trained_under(
    smoke_bundle: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    import shutil

    import sim
    from alam_control.runtime.bundle import write_manifest

    nominal = sim.Randomization()
    assert calibration.training_ranges({"randomization": None}) == nominal == calibration.training_ranges({})
    bundle = Path(shutil.copytree(smoke_bundle, tmp_path / "b"))
    trained = sim.Randomization(push_rate=0.5, obs_noise=0.0)
    write_manifest(bundle, dict(load_bundle(bundle).manifest, randomization={"push_rate": 0.5, "obs_noise": 0.0}))
    seen = []
    real = calibration.rollout

    def spy(*args, **kwargs):
        seen.append(kwargs["randomize"] if "randomize" in kwargs else args[3])
        return real(*args, **kwargs)

    monkeypatch.setattr(calibration, "rollout", spy)
    assert cli.main(["calibrate", "--bundle", str(bundle), "--episodes", "2"]) == 0
    assert load_bundle(bundle).manifest["calibration"]["randomize_width"] == 1.0
    assert cli.main(["eval", "--bundle", str(bundle), "--randomize", "--episodes", "1"]) == 0
    assert cli.main(["eval", "--bundle", str(bundle), "--randomize-width", "2", "--episodes", "1"]) == 0
    # A policy that never violates under its own ranges is calibrated under wider ones, and the manifest says so.
    assert cli.main(["calibrate", "--bundle", str(bundle), "--episodes", "2", "--randomize-width", "3"]) == 0
    assert load_bundle(bundle).manifest["calibration"]["randomize_width"] == 3.0
    capsys.readouterr()
    # Each calibrate rolls out once alone, then behind the new monitor at each candidate dwell, under the same ranges.
    each = 1 + len(calibration.DWELLS)
    assert seen == [trained] * each + [trained, trained.widened(2.0)] + [trained.widened(3.0)] * each
    assert cli.main(["calibrate", "--bundle", str(bundle), "--randomize-width", "0.5"]) == 2
    assert "randomization width must be >= 1" in capsys.readouterr().err
    assert cli.main(["calibrate", "--bundle", str(bundle), "--randomize-width", "2", "--no-randomize"]) == 2
    assert "cannot go with --no-randomize" in capsys.readouterr().err
    assert len(seen) == 2 * each + 2  # refused before any rollout


def test_cost_q_risk_signal_is_what_calibration_and_monitor_watch(smoke_run: Path, tmp_path: Path) -> None:
    import sim
    from alam_control.deploy import export

    manifest = export.export(smoke_run, tmp_path / "q", risk_signal="cost_q")
    assert manifest["risk_signal"] == "cost_q"
    bundle = load_bundle(tmp_path / "q")
    data = calibration.rollout(bundle, 1)
    env = sim.load(manifest["task"], seed=calibration.EVAL_SEED)
    obs, _ = env.reset(seed=calibration.EVAL_SEED)
    _, lam, cost_q = bundle.policy(obs)
    assert data.risk[0] == pytest.approx(cost_q) and data.risk[0] != pytest.approx(lam)
    assert calibration.calibrate(tmp_path / "q", episodes=2)["risk_signal"] == "cost_q"
    with pytest.raises(ValueError, match="risk_signal must be one of"):
        export.export(smoke_run, tmp_path / "bad", risk_signal="lam")


def test_a_mobile_robots_rollout_carries_its_path_and_map(tmp_path: Path, capsys) -> None:
    shipped = Path(__file__).resolve().parents[3] / "bundles" / "diffdrive"
    data = calibration.rollout(load_bundle(shipped), 1, seed=5)
    assert data.positions.shape == (300, 2) and (data.episode == 0).all()
    assert len(data.layouts) == 1 and len(data.layouts[0]) == 5 and data.goals[0][0] == 0
    assert np.abs(data.positions).max() < 2.0  # inside the arena
    rows = data.map_rows(0.1)
    assert len(rows) == 300 and rows[1][0] == 0.1 and rows[0][5:7] == tuple(data.positions[0])
    out = tmp_path / "map.png"
    assert cli.main(["eval", "--bundle", str(shipped), "--episodes", "1", "--plot", str(out)]) == 0
    assert out.stat().st_size > 10_000 and f'"map": "{out}"' in capsys.readouterr().out


def test_map_of_the_run_draws_one_panel_per_episode(tmp_path) -> None:
    trace = [(0.1 * i, 10 ** (-4 + i / 10), "FALLBACK:risk" if 20 <= i < 30 else "POLICY", float(i == 25), 0,
              -1.5 + 0.05 * i, 0.02 * i, 0 if i < 40 else 1) for i in range(60)]  # fmt: skip
    episodes = [[(0.0, 0.0, 0.15), (1.0, -1.0, 0.15)], [(0.5, 0.5, 0.15)]]
    out = calibration.plot_map(trace, episodes, [(0, 1.0, 1.0), (1, -1.0, 1.0)], tmp_path / "map.png")
    assert out is not None and out.stat().st_size > 10_000
    import matplotlib.image

    assert matplotlib.image.imread(out).shape[1] > matplotlib.image.imread(out).shape[0]  # two panels side by side
    # No positions (a joint robot, or odometry never heard): no map, no error.
    assert calibration.plot_map([(0.0, 0.5, "POLICY", 0.0, 0)], episodes, [], tmp_path / "none.png") is None


def test_video_frames_carry_risk_and_mode(smoke_bundle: Path) -> None:
    frame = np.full((240, 320, 3), 128, np.uint8)
    calm, alert = calibration.overlay(frame, "POLICY  lambda 0.01"), calibration.overlay(frame, "FALLBACK:risk", True)
    assert calm.shape == frame.shape and (calm[:16] != 128).any() and (calm[40:200, 40:280] == 128).all()
    assert tuple(alert[120, 1]) == (220, 30, 30) and tuple(calm[120, 1]) == (128, 128, 128)  # red border in FALLBACK
    seen = []
    data = calibration.rollout(load_bundle(smoke_bundle), 1, monitor=MonitorConfig(0.0, 0.0),
                               on_frame=lambda env, tick: seen.append((tick.label, tick.risk)))  # fmt: skip
    assert [label for label, _ in seen] == data.modes and [r for _, r in seen] == list(data.risk)
