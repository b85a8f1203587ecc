"""benchmarks/evidence.py's summary table: the verdict cells on hand-made rows, and the results page's table
against the trials committed beside it."""

from __future__ import annotations

import json
from pathlib import Path

from alam_control.experiments import report
from benchmarks import evidence, pages

REPO = Path(__file__).resolve().parents[2]


def test_claim1_names_each_baseline_not_beaten_and_how() -> None:
    verdict = {
        "verdict": "not supported",
        "sac_alam": (10.0, 0.01),
        "undominated": ["sac_lag", "fac", "sac_pid_lag", "tie"],
        "baselines": {"sac_lag": (12.0, 0.02), "fac": (8.0, 0.001), "sac_pid_lag": (11.0, 0.0), "tie": (10.0, 0.005)},
        "separated": ["sac_lag", "fac"],  # fac's return interval is disjoint, but fac earns less: not an edge
        "separated_safety": ["sac_pid_lag"],
    }
    assert evidence.claim1_text(verdict) == (
        "no: `sac_lag` 12.00 / 0.020 earns more (return intervals disjoint); "
        "`fac` 8.000 / 0.0010 is safer (violation-rate intervals overlap); "
        "`sac_pid_lag` 11.00 / 0 earns more and is safer "
        "(return intervals overlap, violation-rate intervals disjoint); "
        "`tie` 10.00 / 0.0050 is safer (violation-rate intervals overlap)"
    )
    supported = {"verdict": "supported", "sac_alam": (10.0, 0.0), "undominated": [], "baselines": {"fac": (9.0, 0.1)}}
    assert evidence.claim1_text(supported) == "yes: beats `fac`"
    assert evidence.claim1_text({"verdict": "n/a"}) == "n/a"


def _row(algo: str, ret: float, viol: float, last: tuple[float, float] | None = None) -> dict:
    last_ret, last_viol = last or (ret, viol)
    return {"algo": algo, "return_mean": ret, "violation_rate_mean": viol,
            "return_last_mean": last_ret, "violation_rate_last_mean": last_viol}  # fmt: skip


def test_goal1_shows_the_baselines_as_safe_or_the_safest_when_none_is() -> None:
    rows = {r["algo"]: r for r in (_row("sac_alam", 10.0, 0.01, (9.0, 0.02)), _row("fac", 8.0, 0.005),
                                    _row("sac_lag", 12.0, 0.2), _row("sac_pid_lag", 11.0, 0.1))}  # fmt: skip
    met = {"verdict": "met", "as_safe": ["fac"], "beaten_by": []}
    assert evidence.goal1_text(met, rows, last=False) == "met: `fac` 8.000 at 0.0050"
    assert evidence.goal1_text(met, rows, last=True) == "met: 9.000 at 0.020 against `fac` 8.000 at 0.0050"
    vacuous = {"verdict": "met", "as_safe": [], "beaten_by": []}
    # The safest baseline, not the first listed: how far the nearest one is from sac_alam's violation rate.
    assert evidence.goal1_text(vacuous, rows, last=False) == "met, vacuously (safest baseline: `fac` 8.000 at 0.0050)"


def test_claim2_lists_each_variant_and_the_ones_left_out() -> None:
    verdict = {"verdict": "not supported", "lambda_osc": (0.1, {"fac": 0.2}),
               "train_violation_osc": (0.004, {"fac": 0.003}), "pinned": {"alam_ascent": "at the cap"}}  # fmt: skip
    assert evidence.claim2_text(verdict) == (
        "no: `sac_alam` 0.1 / 0.004 against `fac` 0.2 / 0.003 "
        "(`alam_ascent` left out: multiplier at the cap on every seed)"
    )
    assert evidence.claim2_text({"verdict": "n/a", "pinned": {}}) == "n/a"


def test_claim2_adds_the_differences_paired_against_dual_ascent() -> None:
    """A 'yes' on means beside paired intervals that span 0 (the walker at 3 seeds) must be visible in the cell."""
    verdict = {"verdict": "supported", "lambda_osc": (0.66, {"alam_ascent": 0.9}),
               "train_violation_osc": (0.0044, {"alam_ascent": 0.0046}), "pinned": {}}  # fmt: skip
    paired = {"ablation": "alam_ascent"}
    for key, (mean, half) in (("lambda_osc_delta", (-0.25, 3.0)), ("train_violation_osc_delta", (-0.0018, 0.0016))):
        paired.update({f"{key}_mean": mean, f"{key}_ci_low": mean - half, f"{key}_ci_high": mean + half,
                       f"{key}_n": 3})  # fmt: skip
    assert evidence.claim2_text(verdict, paired) == (
        "yes: `sac_alam` 0.66 / 0.0044 against `alam_ascent` 0.9 / 0.0046; "
        "paired against `alam_ascent`: -0.250 ± 3.0 (spans 0) / -0.00180 ± 0.0016 (below 0)"
    )


def test_auroc_lists_seeds_in_order_and_marks_a_multiplier_at_its_cap() -> None:
    entries = [
        {"seed": 1, "calibration": {"risk_auroc": 0.5, "cap_share": 1.0}},
        {"seed": 0, "calibration": {"risk_auroc": 0.9, "cap_share": 0.1}},
        {"seed": 2, "calibration": {"error": "no violation"}},
    ]
    assert evidence.auroc_text(entries) == "0.700 (0.900 / 0.500, at its cap / no violation)"
    assert evidence.auroc_text([]) == "—"


def test_ablation_cell_lists_each_ablation_with_its_intervals() -> None:
    def delta(ablation: str, ret: tuple[float, float], viol: tuple[float, float]) -> dict:
        row = {"ablation": ablation}
        for key, (mean, half) in (("return_delta", ret), ("violation_rate_delta", viol)):
            row.update({f"{key}_mean": mean, f"{key}_ci_low": mean - half, f"{key}_ci_high": mean + half,
                        f"{key}_n": 3})  # fmt: skip
        return row

    cell = evidence.ablation_text([delta("alam_nopenalty", (-36.5, 97.0), (0.0052, 0.014)),
                                   delta("alam_ascent", (14.2, 8.4), (0.0029, 0.0019))])  # fmt: skip
    assert cell == "`alam_nopenalty` -36.5 ± 97 / +0.00520 ± 0.014; `alam_ascent` +14.2 ± 8.4 / +0.00290 ± 0.0019"
    assert evidence.ablation_text([]) == "—"


def test_the_results_page_shows_what_the_committed_trials_say() -> None:
    """docs/results.md's summary is `make sweep-readout`'s output over docs/results/paper: a trial committed
    without the readout (or a hand edit of the table) fails here."""
    runs, _ = report.find_runs(REPO / "docs/results/paper")
    results = json.loads((REPO / "docs/results/paper-readout/evidence.json").read_text())
    table = pages.block((REPO / "docs/results.md").read_text(), evidence.HEADLINE)
    assert table == evidence.headline(runs, results), "run `make sweep-readout` and commit docs/results.md"
