"""The figures `make demo` prints at the end, from its recorded trace (no ROS traffic needed)."""

from __future__ import annotations

import math

from alam_ros.demo import summarize_trace


def row(t: float, mode: str, push: int = 0, cost: float = 0.0) -> tuple:
    return (t, 0.5, mode, cost, push)


def test_fallback_share_episodes_and_their_causes() -> None:
    trace = [
        row(0.0, "FALLBACK:startup"),
        row(0.5, "POLICY"),
        row(1.0, "POLICY", push=1),
        row(1.5, "FALLBACK:risk", push=1),  # during a push: explained
        row(2.0, "FALLBACK:risk", cost=1.0),
        row(2.5, "POLICY"),
        row(3.0, "POLICY"),
        row(4.2, "FALLBACK:risk"),  # 2.7 s after the push ended: not explained
        row(4.5, "POLICY"),
        row(5.0, "FALLBACK:stale"),  # a fault: explained
        row(5.5, "POLICY"),
        row(6.0, "FALLBACK:stalled"),  # the progress watch: explained, and counted on its own
    ]
    s = summarize_trace(trace, goals=3)
    assert s["goals"] == 3 and s["duration_s"] == 6.0
    assert s["fallback_share"] == 6 / 12
    assert s["fallback_episodes"] == 5
    assert s["explained_episodes"] == 4  # startup, the push, the stale input, the stall; not the one at 4.2 s
    assert s["stall_recoveries"] == 1
    assert s["violation_steps"] == 1
    assert s["violations"] == 1 and s["warned_violations"] == 1  # FALLBACK:risk since 1.5 s, 0.5 s before it


def test_a_violation_is_warned_only_by_a_risk_handover_shortly_before_it() -> None:
    trace = [
        row(0.0, "FALLBACK:risk"),  # 3 s before the first violation: too early to count
        row(1.0, "POLICY"),
        row(3.0, "POLICY", cost=1.0),  # not warned
        row(3.5, "POLICY", cost=1.0),  # the same violation
        row(4.0, "FALLBACK:stale"),  # a fault is no warning
        row(4.5, "FALLBACK:stale", cost=1.0),  # not warned
        row(5.0, "FALLBACK:risk"),
        row(6.9, "FALLBACK:risk", cost=1.0),  # warned (1.9 s after the handover)
        row(7.5, "POLICY"),
        row(9.5, "FALLBACK:risk", cost=1.0),  # handed over in the same row that shows the violation: not warned
    ]
    s = summarize_trace(trace, goals=0)
    assert s["violations"] == 4 and s["warned_violations"] == 1


def test_a_push_that_ended_still_explains_a_fallback_within_the_window() -> None:
    # The push ends at 0.5 s (first message without it).
    trace = [row(0.0, "POLICY", push=1), row(0.5, "POLICY"), row(1.4, "FALLBACK:risk"), row(1.6, "FALLBACK:risk")]
    assert summarize_trace(trace, goals=0)["explained_episodes"] == 1
    late = [row(0.0, "POLICY", push=1), row(0.5, "POLICY"), row(1.6, "FALLBACK:risk")]
    assert summarize_trace(late, goals=0, cause_window_s=1.0)["explained_episodes"] == 0


def test_a_fallback_just_before_a_push_counts_as_the_push() -> None:
    trace = [row(0.0, "POLICY"), row(1.5, "FALLBACK:risk"), row(2.0, "FALLBACK:risk", push=1), row(3.5, "POLICY")]
    assert summarize_trace(trace, goals=0)["explained_episodes"] == 1
    early = [row(0.0, "POLICY"), row(0.5, "FALLBACK:risk"), row(2.0, "FALLBACK:risk", push=1), row(3.5, "POLICY")]
    assert summarize_trace(early, goals=0)["explained_episodes"] == 0


def test_empty_trace() -> None:
    s = summarize_trace([], goals=0)
    assert s["fallback_episodes"] == 0 and math.isnan(s["fallback_share"])
