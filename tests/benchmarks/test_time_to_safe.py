"""benchmarks/time_to_safe.py's sweep table: the ranking, and docs/performance.md's table against the trials
committed in docs/results/paper."""

from __future__ import annotations

from pathlib import Path

from benchmarks import pages, time_to_safe
from benchmarks.time_to_safe import Outcome

REPO = Path(__file__).resolve().parents[2]


def test_methods_rank_by_seeds_at_the_bar_then_median_time() -> None:
    outcomes = [
        Outcome("slow", 0, True, 100, 50.0, 1.0, 200),
        Outcome("slow", 1, True, 100, 70.0, 1.0, 200),
        Outcome("fast", 0, True, 100, 10.0, 1.0, 200),
        Outcome("fast", 1, True, 100, 90.0, 1.0, 200),  # median 50 as "slow"'s 60: faster
        Outcome("once", 0, True, 100, 1.0, 1.0, 200),
        Outcome("once", 1, False, 200, 2.0, 1.0, 200),
        Outcome("never", 0, False, 200, 2.0, 1.0, 200),
    ]
    assert time_to_safe.ranked(outcomes) == ["fast", "slow", "once", "never"]


def test_the_sweep_table_names_each_task_with_its_budget() -> None:
    by_task = {"walker-safe_walk": [Outcome("fac", 0, False, 400_000, 9.0, float("nan"), 400_000)],
               "cartpole-safe_swingup": [Outcome("sac_alam", 1, True, 39_000, 239.4, 371.04, 60_000)]}  # fmt: skip
    table = time_to_safe.sweep_table(by_task)
    assert table.splitlines()[2:] == [
        "| cart-pole (60k) | sac_alam | 1/1 | 239 | 39000 | 371.0 |",  # the BARS order, not the dict's
        "| walker (400k) | fac | 0/1 | - | - | - |",
    ]
    assert table.startswith("| task | method | reached |")


def test_the_performance_page_shows_what_the_committed_trials_say() -> None:
    """docs/performance.md's time-to-safe table is `make sweep-readout`'s output over docs/results/paper."""
    expected = time_to_safe.sweep_table(time_to_safe.from_sweep(REPO / "docs/results/paper"))
    table = pages.block((REPO / "docs/performance.md").read_text(), time_to_safe.TIME_TO_SAFE)
    assert table == expected, "run `make sweep-readout` and commit docs/performance.md"
