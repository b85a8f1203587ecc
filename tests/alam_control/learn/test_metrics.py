"""Hand-computed checks of the metric definitions (DESIGN.md section 7, README "lambda(s) as the risk signal")."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from alam_control.learn import metrics


def test_upcoming_violation_labels_one_episode() -> None:
    costs = np.array([0, 0, 0, 1, 0, 0, 0, 0], dtype=float)
    # H = 2: steps 2 and 3 see the violation at step 3 within [t, t + 2).
    assert metrics.upcoming_violation_labels(costs, 2).tolist() == [0, 0, 1, 1, 0, 0, 0, 0]


def test_upcoming_violation_labels_never_cross_an_episode_end() -> None:
    costs = np.array([0, 0, 0, 1, 0, 0], dtype=float)
    ends = np.array([0, 1, 0, 0, 0, 1], dtype=bool)  # episodes [0, 1] and [2, 5]
    # H = 3 without ends would label steps 1..3; step 1 belongs to the earlier episode.
    assert metrics.upcoming_violation_labels(costs, 3).tolist() == [0, 1, 1, 1, 0, 0]
    assert metrics.upcoming_violation_labels(costs, 3, ends).tolist() == [0, 0, 1, 1, 0, 0]


def test_reliability_table_merges_tied_bins_and_reports_rates() -> None:
    risk = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0])
    labels = np.array([0, 0, 0, 1, 0, 1, 1, 1], dtype=bool)
    rows = metrics.reliability_table(risk, labels, bins=4)
    assert sum(r["steps"] for r in rows) == len(risk)
    assert rows[0]["bin_low"] == 0.0 and rows[0]["positive_rate"] == pytest.approx(1 / 4)
    assert metrics.is_monotone(rows)
    assert not metrics.is_monotone([{"positive_rate": 0.5}, {"positive_rate": 0.2}])


def test_reliability_dips_count_only_falls_beyond_sampling_noise() -> None:
    # Point-goal seed 0's table had 0.0022 then 0.0020 over 5000 states each: one violating state, 0.22 SE.
    noise = [{"positive_rate": 0.0022, "steps": 5000}, {"positive_rate": 0.0020, "steps": 5000},
             {"positive_rate": 0.05, "steps": 5000}]  # fmt: skip
    assert not metrics.is_monotone(noise) and metrics.reliability_dips(noise) == 0
    # A lowest bin at 2.2 % above one at 0.1 % (cart-pole seed 0): ~10 SE, a real fall.
    real = [{"positive_rate": 0.022, "steps": 5000}, {"positive_rate": 0.001, "steps": 5000}]
    assert metrics.reliability_dips(real) == 1
    # By hand: 0.30 -> 0.20 over 100 states each, SE = sqrt(0.3 * 0.7 / 100 + 0.2 * 0.8 / 100) = 0.0608: 1.64 SE.
    hand = [{"positive_rate": 0.30, "steps": 100}, {"positive_rate": 0.20, "steps": 100}]
    assert metrics.reliability_dips(hand) == 0 and metrics.reliability_dips(hand, z=1.6) == 1
    zeros = [{"positive_rate": 0.0, "steps": 10}, {"positive_rate": 0.0, "steps": 10}]  # SE 0, no fall: no dip
    assert metrics.reliability_dips(zeros) == 0 and metrics.reliability_dips([zeros[0]]) == 0


def test_risk_quality_reports_auroc_cap_share_and_base_rate() -> None:
    risk = np.array([0.0, 1.0, 99.0, 100.0])
    labels = np.array([False, False, True, True])
    q = metrics.risk_quality(risk, labels, cap=100.0)
    assert q["risk_auroc"] == 1.0
    assert q["positive_share"] == 0.5
    assert q["cap_share"] == 0.5  # 99 and 100 are >= 95
    assert q["reliability_monotone"] == 1.0
    assert "cap_share" not in metrics.risk_quality(risk, labels)
    assert math.isnan(metrics.risk_quality(risk, np.zeros(4, dtype=bool))["risk_auroc"])


def test_oscillation_metrics_by_hand() -> None:
    # Second halves: lambda [2, 4] -> mean |change| 2 over mean 3; evaluation cost [1, 3] -> std 1.
    assert metrics.lambda_osc([1.0, 1.0, 2.0, 4.0]) == pytest.approx(2.0 / 3.0)
    assert metrics.cost_osc([0.0, 0.0, 1.0, 3.0]) == pytest.approx(1.0)
    # Training violation rates of the windows ending at evaluations 2..6: 1, 0, 2, 0, 0 per step; the windows of
    # the second half (ending at evaluations 4, 5, 6) are 2, 0, 0 -> changes 2, 0 -> 1.
    steps = [1, 2, 3, 4, 5, 6]
    assert metrics.train_violation_osc(steps, [0, 1, 1, 3, 3, 3]) == pytest.approx(1.0)
    # Evaluations without a recorded train cost (a run resumed from before it was logged) are skipped.
    assert metrics.train_violation_osc(steps, [math.nan, math.nan, 0, 1, 3, 3]) == pytest.approx(1.5)
    assert math.isnan(metrics.train_violation_osc([1, 2], [0, 1]))
    assert metrics.train_violation_osc([10, 20, 30, 40], [0, 0, 0, 0]) == 0.0  # no violation: no oscillation


def test_violation_onsets_count_runs_and_restart_at_each_episode() -> None:
    costs = np.array([0, 1, 1, 0, 1, 1, 0], dtype=float)
    episode = np.array([0, 0, 0, 0, 0, 1, 1])
    # Runs starting at t = 1 and t = 4; t = 5 continues a violation but opens episode 1: a new onset.
    assert metrics.violation_onsets(costs, episode).tolist() == [1, 4, 5]
    assert len(metrics.violation_onsets(np.zeros(4), np.zeros(4))) == 0


def test_steps_to_violation_counts_to_the_next_violation_of_the_same_episode() -> None:
    costs = np.array([0, 0, 1, 0, 0, 0, 1, 0], dtype=float)
    episode = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    # Episode 0: t = 0, 1 lead to its violation at t = 2; t = 3, 4 see none in their episode (episode 1's
    # violation at t = 6 does not count for them); episode 1: 1 step, then the violation, then none.
    assert metrics.steps_to_violation(costs, episode).tolist() == [2, 1, 0, -1, -1, 1, 0, -1]
    assert metrics.steps_to_violation(np.zeros(3), np.zeros(3)).tolist() == [-1, -1, -1]


def test_auroc_by_lead_scores_each_lead_against_the_safe_states() -> None:
    # One episode: a violation at t = 6; the score rises only 2 steps before it.
    costs = np.array([0, 0, 0, 0, 0, 0, 1, 0, 0, 0], dtype=float)
    scores = np.array([0.1, 0.2, 0.1, 0.5, 0.9, 0.9, 1.0, 0.1, 0.4, 0.1])
    episode = np.zeros(10, int)
    rows = metrics.auroc_by_lead(scores, costs, episode, edges=(0, 1, 3, 6))
    # Negatives: no violation within 6 steps, t = 0 (lead 6) and t = 7, 8, 9 (none follows): scores .1 .1 .4 .1.
    assert [(r["lead_low"], r["lead_high"], r["positives"]) for r in rows] == [(0, 1, 1), (1, 3, 2), (3, 6, 3)]
    assert rows[0]["auroc"] == 1.0 and rows[1]["auroc"] == 1.0
    # Leads 3, 4, 5 are t = 3, 2, 1 with scores .5, .1, .2: 4/4 + (0.5 * 3)/4 + 3/4 wins of 3 x 4 pairs.
    assert rows[2]["auroc"] == pytest.approx((4 + 1.5 + 3) / 12)
    assert math.isnan(metrics.auroc_by_lead(scores, np.zeros(10), episode, edges=(0, 5))[0]["auroc"])


def test_auroc_interval_resamples_whole_episodes() -> None:
    # Episode 0 ranks its positive first, episode 1 last: pooled AUROC 0.5, and resampling episodes (not states)
    # swings it between all-good and all-bad draws.
    scores = np.array([0.9, 0.1, 0.2, 0.1, 0.9, 0.8])
    labels = np.array([1, 0, 0, 1, 0, 0], dtype=bool)
    episode = np.array([0, 0, 0, 1, 1, 1])
    low, high = metrics.auroc_interval(scores, labels, episode, draws=400, min_positive_episodes=1)
    assert low == 0.0 and high == 1.0
    # Perfectly separated in every episode: a point interval at 1.
    assert metrics.auroc_interval(np.array([1.0, 0.0, 1.0, 0.0]), np.array([1, 0, 1, 0], bool),
                                  np.array([0, 0, 1, 1]), min_positive_episodes=1) == (1.0, 1.0)  # fmt: skip
    # By default positives in fewer than 5 episodes give no interval (here 2 of 2).
    assert all(math.isnan(v) for v in metrics.auroc_interval(scores, labels, episode))
    assert all(math.isnan(v) for v in metrics.auroc_interval(scores, labels, np.zeros(6)))


def test_auroc_interval_narrows_with_more_episodes() -> None:
    rng = np.random.default_rng(0)

    def width(episodes: int) -> float:
        labels = rng.random(episodes * 50) < 0.1
        scores = labels + rng.normal(0.0, 1.0, len(labels))  # AUROC ~0.76
        low, high = metrics.auroc_interval(scores, labels, np.repeat(np.arange(episodes), 50), draws=300)
        assert low < metrics.auroc(scores, labels) < high
        return high - low

    assert width(80) < 0.6 * width(10)


def test_upcoming_violation_labels_at_the_record_edges() -> None:
    # The second-to-last step ends an episode: the violation of the last one-step episode labels only itself.
    assert metrics.upcoming_violation_labels(np.array([0.0, 0.0, 1.0]), 3, np.array([0, 1, 1], bool)).tolist() == [
        False, False, True]  # fmt: skip
    empty = metrics.upcoming_violation_labels(np.zeros(0), 3, np.zeros(0, bool))
    assert empty.dtype == bool and empty.shape == (0,)


def test_reliability_table_bins_by_hand() -> None:
    # 8 distinct risks, 4 bins: quantile edges 0, 1.75, 3.5, 5.25, 7 and two states in each bin.
    rows = metrics.reliability_table(np.arange(8.0), np.arange(8) >= 4, bins=4)
    assert [(r["bin_low"], r["bin_high"], r["steps"], r["positive_rate"]) for r in rows] == [
        (0.0, 1.75, 2, 0.0), (1.75, 3.5, 2, 0.0), (3.5, 5.25, 2, 1.0), (5.25, 7.0, 2, 1.0)]  # fmt: skip
    # A risk on an inner edge belongs to the bin above it (edges 0, 2, 4: bins [0, 2) and [2, 4]).
    rows = metrics.reliability_table(np.arange(5.0), np.arange(5) >= 3, bins=2)
    assert [(r["bin_low"], r["bin_high"], r["steps"]) for r in rows] == [(0.0, 2.0, 2), (2.0, 4.0, 3)]
    # A constant signal is one bin with every state.
    assert metrics.reliability_table(np.full(4, 0.5), np.array([1, 0, 0, 0], bool)) == [
        {"bin_low": 0.5, "bin_high": 0.5, "steps": 4, "positive_rate": 0.25}]  # fmt: skip


def test_metric_edge_cases_by_hand() -> None:
    # Two real falls are two dips.
    falls = [{"positive_rate": p, "steps": 1000} for p in (0.5, 0.1, 0.5, 0.1)]
    assert metrics.reliability_dips(falls) == 2
    # The cap share counts a risk at exactly 0.95 of the cap.
    assert metrics.cap_share(np.array([95.0, 94.9]), 100.0) == 0.5
    # One negative is enough for an AUROC.
    assert metrics.auroc(np.array([0.0, 1.0, 2.0]), np.array([False, True, True])) == 1.0
    # lambda_osc is relative: small multipliers oscillate as much as large ones.
    assert metrics.lambda_osc([0.1, 0.1, 0.2, 0.4]) == pytest.approx(2.0 / 3.0)
    # Deciles by default; a fall of 2.58 standard errors (0.30 -> 0.15 over 100 states each) is a dip at the
    # default z = 2.
    assert len(metrics.reliability_table(np.arange(100.0), np.arange(100) >= 50)) == 10
    assert metrics.reliability_dips([{"positive_rate": 0.30, "steps": 100}, {"positive_rate": 0.15, "steps": 100}]) == 1


def test_metrics_on_empty_or_one_class_input_are_nan_without_warnings() -> None:
    # A mean over nothing would also give NaN, with a RuntimeWarning in every evaluation log: the guards return
    # NaN before any such mean.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        empty = metrics.risk_quality(np.zeros(0), np.zeros(0, bool), cap=1.0)
        assert all(math.isnan(v) for v in empty.values())
        assert math.isnan(metrics.auroc(np.array([0.0, 1.0]), np.array([True, True])))
        assert math.isnan(metrics.cost_osc([]))
        assert math.isnan(metrics.train_violation_osc([1, 2], [0, 1]))
        assert math.isnan(metrics.lambda_osc([1.0])) and math.isnan(metrics.lambda_osc([0.0, 0.0, 0.0, 0.0]))


def test_labels_given_as_integers_read_as_booleans() -> None:
    # A label column read from a CSV is 0 / 1, not bool: indexing with it would pick states 0 and 1.
    scores, labels = np.array([0.0, 1.0, 2.0, 3.0]), np.array([0, 0, 1, 1])
    assert metrics.auroc(scores, labels) == 1.0
    assert metrics.risk_quality(scores, labels)["positive_share"] == 0.5
    assert [r["positive_rate"] for r in metrics.reliability_table(scores, labels, bins=2)] == [0.0, 1.0]
    episode = np.repeat(np.arange(5), 2)
    interval = metrics.auroc_interval(np.tile([0.9, 0.1], 5), np.tile([1, 0], 5), episode)
    assert interval == (1.0, 1.0)
    # The bootstrap is seeded: the same call gives the same interval.
    noisy = np.array([0.9, 0.1, 0.2, 0.3, 0.1, 0.9, 0.6, 0.5, 0.4, 0.45])
    assert metrics.auroc_interval(noisy, np.tile([1, 0], 5), episode) == metrics.auroc_interval(
        noisy, np.tile([1, 0], 5), episode)  # fmt: skip


def test_train_violation_osc_is_a_rate_per_step() -> None:
    # The test above at evaluations 1000 steps apart: the same rates per step (1, 0, 2, 0, 0), the same answer.
    steps = [1000, 2000, 3000, 4000, 5000, 6000]
    assert metrics.train_violation_osc(steps, [0, 1000, 1000, 3000, 3000, 3000]) == pytest.approx(1.0)


def test_violation_onsets_continue_a_run_inside_a_later_episode() -> None:
    # Episode 1 holds a two-step run: one onset at t = 2, t = 3 continues it.
    assert metrics.violation_onsets(np.array([0, 0, 1, 1], float), np.array([0, 1, 1, 1])).tolist() == [2]


def test_auroc_by_lead_negatives_are_beyond_the_whole_horizon() -> None:
    # Lead 3 (t = 3) scores 0.95, above the lead 0-2 positives' 0.9: it is not a negative of the first bin (its
    # violation is within H = 6), so that bin still ranks perfectly against t = 0, 7, 8, 9.
    costs = np.array([0, 0, 0, 0, 0, 0, 1, 0, 0, 0], dtype=float)
    scores = np.array([0.1, 0.2, 0.1, 0.95, 0.9, 0.9, 1.0, 0.1, 0.4, 0.1])
    rows = metrics.auroc_by_lead(scores, costs, np.zeros(10, int), edges=(0, 3, 6))
    assert rows[0]["positives"] == 3 and rows[0]["auroc"] == 1.0


def test_auroc_interval_percentiles_by_hand() -> None:
    # Three episodes, one positive and one negative each: two rank it right (0.9 over 0.1), one wrong. A draw of
    # three episodes pools to AUROC 1 with no wrong one (probability 8/27), 2/3 with one (12/27), 1/3 with two
    # (6/27), 0 with three (1/27). So the 95 % interval reaches 0 (1/27 > 2.5 %), the 90 % one stops at 1/3
    # (1/27 < 5 % < 7/27), and the 30 % one (35th to 65th percentile) is the 2/3 of one wrong episode.
    scores = np.array([0.9, 0.1, 0.9, 0.1, 0.1, 0.9])
    labels = np.array([1, 0, 1, 0, 1, 0], bool)
    episode = np.array([0, 0, 1, 1, 2, 2])

    def interval(level: float) -> tuple[float, float]:
        return metrics.auroc_interval(scores, labels, episode, level=level, min_positive_episodes=3)

    assert interval(0.95) == (0.0, 1.0)
    assert interval(0.9) == (pytest.approx(1 / 3), 1.0)
    assert interval(0.3) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    # The default asks for positives in 5 episodes: 5 is enough, 4 is not.
    five = metrics.auroc_interval(np.tile([0.9, 0.1], 5), np.tile([True, False], 5), np.repeat(np.arange(5), 2))
    assert five == (1.0, 1.0)
    assert all(math.isnan(v) for v in metrics.auroc_interval(
        np.tile([0.9, 0.1], 4), np.tile([True, False], 4), np.repeat(np.arange(4), 2)))  # fmt: skip
