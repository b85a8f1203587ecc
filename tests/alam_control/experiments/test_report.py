"""`alam report`: grouping, the 95% t-interval, Markdown/CSV output and the PNG figures, on synthetic run dirs."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import yaml

from alam_control import cli
from alam_control import config as config_lib
from alam_control.experiments import report


def _fake_run(root: Path, name: str, overrides: list[str], final: dict[str, float], steps: int | None = None) -> Path:
    """A run directory as the trainer leaves it: config.yaml, eval.csv (3 evaluations) and summary.json."""
    cfg = config_lib.from_dict({"train": {"total_steps": 3000, "threads": 1}}, overrides)
    run = root / "trials" / name
    run.mkdir(parents=True)
    config_lib.save(cfg, run / "config.yaml")
    with open(run / "eval.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "return", "cost", "violation_rate", "lambda_mean", "risk_auroc", "lambda_probe"])
        for i, step in enumerate((1000, 2000, 3000)):
            frac = (i + 1) / 3
            w.writerow([step, final["return"] * frac, final["cost"] * frac, 0.1, 0.5, "nan", final["lambda"] * frac])
    summary = {
        "task": cfg.task,
        "algo": cfg.algo.name,
        "seed": cfg.seed,
        "steps": cfg.train.total_steps if steps is None else steps,
        "return": final["return"],
        "cost": final["cost"],
        "violation_rate": 0.1,
        "risk_auroc": final.get("risk_auroc", math.nan),
        "lambda_probe": final["lambda"],
        "lambda_osc": 0.2,
        "cost_osc": 1.0,
        "train_cost": 100.0 + cfg.seed,
        "wall_time_s": 1.0,
    }
    (run / "summary.json").write_text(json.dumps(summary))  # NaN written as NaN, as the trainer does
    return run


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    returns = {0: 10.0, 1: 20.0, 2: 60.0}
    for seed, ret in returns.items():
        auroc = 0.8 if seed < 2 else math.nan  # undefined in one seed (no violation): counted as 2 of 3
        _fake_run(
            tmp_path,
            f"alam-s{seed}",
            [f"seed={seed}"],
            {"return": ret, "cost": 0.0, "lambda": 2.0, "risk_auroc": auroc},
        )
    _fake_run(tmp_path, "sac-s0", ["algo.name=sac", "seed=0"], {"return": 50.0, "cost": 30.0, "lambda": 0.0})
    # A run stopped mid-way (summary of an earlier, shorter budget) and one with no summary at all.
    _fake_run(tmp_path, "alam-s3", ["seed=3"], {"return": 999.0, "cost": 0.0, "lambda": 1.0}, steps=1000)
    partial = _fake_run(tmp_path, "alam-s4", ["seed=4"], {"return": 999.0, "cost": 0.0, "lambda": 1.0})
    (partial / "summary.json").unlink()
    return tmp_path


def test_interval_matches_the_student_t_formula() -> None:
    mean, low, high, n = report.interval([10.0, 20.0, 60.0])
    sd = math.sqrt(((10 - 30) ** 2 + (20 - 30) ** 2 + (60 - 30) ** 2) / 2)
    half = 4.302652729911275 * sd / math.sqrt(3)  # t_{0.975, 2}
    assert (mean, n) == (30.0, 3)
    assert low == pytest.approx(30 - half) and high == pytest.approx(30 + half)
    m, lo, hi, n1 = report.interval([5.0, math.nan])
    assert (m, n1) == (5.0, 1) and math.isnan(lo) and math.isnan(hi)
    assert report.interval([])[3] == 0 and math.isnan(report.interval([])[0])


def test_report_groups_by_algo_and_task_and_writes_table_csv_and_figure(sweep_dir: Path) -> None:
    result = report.report(sweep_dir)
    rows = {r["algo"]: r for r in result["rows"]}
    assert set(rows) == {"sac_alam", "sac"}
    alam, sac = rows["sac_alam"], rows["sac"]
    assert alam["n_seeds"] == 3 and alam["seeds"] == "0;1;2"  # the unfinished seeds 3 and 4 are left out
    assert alam["return_mean"] == pytest.approx(30.0)
    assert alam["return_ci_high"] - alam["return_ci_low"] == pytest.approx(2 * 4.302652729911275 * 26.457513 / 3**0.5)
    assert alam["risk_auroc_n"] == 2 and alam["risk_auroc_mean"] == pytest.approx(0.8)
    assert alam["train_cost_mean"] == pytest.approx(101.0)
    assert sac["n_seeds"] == 1 and math.isnan(sac["return_ci_low"])
    assert alam["setting"] == sac["setting"] == ""  # only seed and algo.name differ: no extra setting column

    md = (sweep_dir / "report.md").read_text()
    assert "| cartpole-safe_swingup | sac_alam | 3 | 30.00 ± 66 |" in md  # 4.303 * 26.46 / sqrt(3) = 65.7, 2 digits
    assert "50.00 ± —" in md  # one seed: no interval
    assert "0.8000 ± 0 (2/3)" in md  # AUROC defined for 2 of 3 seeds
    assert "alam-s3" in md and "alam-s4" in md  # listed as unfinished
    assert "![curves_cartpole-safe_swingup](curves_cartpole-safe_swingup.png)" in md

    with open(sweep_dir / "report.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["algo"] for r in table] == ["sac", "sac_alam"]
    for metric in report.METRICS:
        assert f"{metric}_mean" in table[0] and f"{metric}_ci_low" in table[0] and f"{metric}_n" in table[0]
    assert float(table[1]["return_mean"]) == pytest.approx(30.0)

    png = sweep_dir / "curves_cartpole-safe_swingup.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    assert matplotlib.image.imread(png).shape[:2] == (300, 900)  # 9x3 inches at 100 dpi


def test_only_trials_count_in_a_sweep_directory(sweep_dir: Path) -> None:
    # An exported bundle's training record (config.yaml + summary.json) next to the trials is not a trial.
    record = sweep_dir / "bundles" / "b" / "training"
    record.mkdir(parents=True)
    for name in ("config.yaml", "summary.json", "eval.csv"):
        (record / name).write_bytes((sweep_dir / "trials" / "sac-s0" / name).read_bytes())
    finished, _ = report.find_runs(sweep_dir)
    assert all("bundles" not in str(r.run_dir) for r in finished) and len(finished) == 4
    assert len(report.find_runs(record.parent)[0]) == 1  # any directory of run directories still works


def test_a_sweep_manifest_decides_which_trials_are_done(sweep_dir: Path) -> None:
    # A trial finished under a budget the sweep has since raised still holds a matching config.yaml and summary.json;
    # only the sweep's manifest knows it is pending again.
    before = {r.run_dir.name for r in report.find_runs(sweep_dir)[0]}
    names = sorted(p.name for p in (sweep_dir / "trials").iterdir())
    stale = sorted(before)[0]
    trials = [{"name": n, "status": "pending" if n == stale else "done"} for n in names]
    (sweep_dir / "sweep.json").write_text(json.dumps({"trials": trials}))
    finished, unfinished = report.find_runs(sweep_dir)
    assert {r.run_dir.name for r in finished} == before - {stale}
    assert sweep_dir / "trials" / stale in unfinished
    (sweep_dir / "sweep.json").unlink()  # a committed snapshot has no manifest: the run's own files decide
    assert {r.run_dir.name for r in report.find_runs(sweep_dir)[0]} == before


def test_curve_band_is_mean_and_interval_per_step(sweep_dir: Path) -> None:
    runs, _ = report.find_runs(sweep_dir)
    alam = [r for r in runs if r.config["algo.name"] == "sac_alam"]
    steps, mean, low, high = report.curve_band(alam, "return")
    assert list(steps) == [1000, 2000, 3000]
    assert mean[-1] == pytest.approx(30.0) and mean[0] == pytest.approx(10.0)
    assert low[-1] < 30.0 < high[-1]
    _, lam_mean, _, _ = report.curve_band(alam, "lambda_probe")
    assert lam_mean[-1] == pytest.approx(2.0)


def test_an_ablation_grid_is_not_averaged_together(tmp_path: Path) -> None:
    for rho in (0.1, 1.0):
        for seed in (0, 1):
            _fake_run(tmp_path, f"rho{rho}-s{seed}", [f"seed={seed}", f"multiplier.penalty_coef={rho}"],
                      {"return": 10.0 * rho + seed, "cost": 0.0, "lambda": 1.0})  # fmt: skip
    rows = report.report(tmp_path)["rows"]
    assert [(r["setting"], r["n_seeds"]) for r in rows] == [
        ("multiplier.penalty_coef=0.1", 2),
        ("multiplier.penalty_coef=1.0", 2),
    ]
    assert rows[1]["return_mean"] == pytest.approx(10.5)
    assert "| setting |" in (tmp_path / "report.md").read_text()


def test_labelled_ablations_are_their_own_rows_and_per_task_budgets_are_not_settings(tmp_path: Path) -> None:
    variants = {"alam": [], "ascent": ["algo.multiplier_update=ascent", "algo.label=alam_ascent"]}
    for task, steps in (("cartpole-safe_swingup", 4000), ("walker-safe_walk", 6000)):
        for name, overrides in variants.items():
            for seed in (0, 1):
                _fake_run(tmp_path, f"{task}-{name}-s{seed}",
                          [f"seed={seed}", f"task={task}", f"train.total_steps={steps}", *overrides],
                          {"return": 1.0 + seed, "cost": 0.0, "lambda": 1.0})  # fmt: skip
    rows = report.report(tmp_path)["rows"]
    assert [(r["task"], r["algo"], r["setting"], r["n_seeds"]) for r in rows] == [
        ("cartpole-safe_swingup", "alam_ascent", "", 2),
        ("cartpole-safe_swingup", "sac_alam", "", 2),
        ("walker-safe_walk", "alam_ascent", "", 2),
        ("walker-safe_walk", "sac_alam", "", 2),
    ]


def test_report_cli_and_its_errors(sweep_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    assert cli.main(["report", str(sweep_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| task | algo | n | return |" in printed and str(out / "report.md") in printed
    assert (out / "report.csv").exists() and (out / "curves_cartpole-safe_swingup.png").exists()

    empty = tmp_path / "empty"
    (empty / "r").mkdir(parents=True)
    (empty / "r" / "config.yaml").write_text(yaml.safe_dump({"task": "cartpole-safe_swingup"}))
    assert cli.main(["report", str(empty)]) == 2
    assert "no finished run" in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path / "missing")]) == 2


def test_plateau_compares_the_last_fifth_with_the_fifth_before() -> None:
    def evals(values: list[float]) -> list[dict[str, float]]:
        return [{"step": 1000.0 * (i + 1), "return": v} for i, v in enumerate(values)]

    # 10 evaluations, windows of 2: last (9, 10) vs before (7, 8): gain 2 over a range of 10 -> 0.2, still rising.
    rising = report.plateau(evals([0, 1, 2, 3, 4, 5, 7, 8, 9, 10]))
    assert (rising["last"], rising["before"]) == (9.5, 7.5)
    assert rising["gain"] == pytest.approx(0.2) and rising["plateaued"] == 0.0 and rising["shown"] == 0.0
    # Flat at the end, and falling at the end: plateaued (a fall is no gain).
    # (10.1, 10.3) vs (10, 10.2): gain 0.1 / 10.3 = 0.0097, noise 2 * sqrt((0.02 + 0.02) / 2) / 10.3 = 0.027;
    # 0.037 <= 0.05: a plateau shown, too.
    flat = report.plateau(evals([0, 5, 9, 10, 10, 10, 10, 10.2, 10.1, 10.3]))
    assert flat["gain"] == pytest.approx(0.1 / 10.3) and flat["noise"] == pytest.approx(2 * 0.02**0.5 / 10.3)
    assert flat["plateaued"] == 1.0 and flat["shown"] == 1.0
    assert report.plateau(evals([0, 10, 10, 10, 10, 10, 9, 9, 8, 8]))["gain"] == pytest.approx(-0.1)  # 8 vs 9
    # NaN evaluations are skipped; fewer than 4 left: undefined.
    assert math.isnan(report.plateau(evals([1, math.nan, 2, 3]))["plateaued"])
    assert report.plateau(evals([5, 5, 5, 5]))["gain"] == 0.0  # a flat curve has no range: no gain
    # A rise of 3 (3/13 of the range 0-13) between windows whose evaluations scatter by +-5: inside 2 standard
    # errors (2 * sqrt((50 + 50) / 2) / 13 = 1.09 of the range), so not a trend.
    noisy = report.plateau(evals([0, 10, 0, 10, 0, 10, 0, 10, 3, 13]))
    assert noisy["gain"] == pytest.approx(3 / 13) and noisy["noise"] == pytest.approx(2 * math.sqrt(50) / 13)
    assert noisy["plateaued"] == 1.0
    # ...but nor is it a plateau the evaluations show: the band reaches 0.23 + 1.09, far above 5 %.
    assert noisy["shown"] == 0.0
    # A curve that swings over its whole range (both windows 10, 0: gain 0, noise 1.41): no rise, no plateau shown.
    swinging = report.plateau(evals([0, 10, 0, 10, 0, 10, 10, 0, 10, 0]))
    assert swinging["plateaued"] == 1.0 and swinging["shown"] == 0.0


def _row(task: str, algo: str, ret: float, viol: float, half: float = 1.0, **osc: float) -> dict:
    row = {"task": task, "algo": algo, "return_mean": ret, "return_ci_low": ret - half, "return_ci_high": ret + half,
           "violation_rate_mean": viol}  # fmt: skip
    row.update({f"{m}_mean": osc.get(m, math.nan) for m in ("lambda_osc", "train_violation_osc")})
    return row


def test_claim_verdicts_on_hand_made_rows() -> None:
    rows = [
        # Task a: sac_alam beats every safe baseline on both (sac's higher return is not a safe-RL baseline); its
        # oscillations are below fac's and alam_ascent's on both measures.
        _row("a", "sac", 500.0, 0.5),
        _row("a", "sac_alam", 100.0, 0.01, lambda_osc=0.1, train_violation_osc=0.01),
        _row("a", "sac_lag", 50.0, 0.01),
        _row("a", "fac", 90.0, 0.02, half=20.0, lambda_osc=0.3, train_violation_osc=0.02),
        _row("a", "alam_ascent", 80.0, 0.02, lambda_osc=0.2, train_violation_osc=0.05),
        # Task b: sac_pid_lag has the same return at fewer violations, fac fewer violations at a lower return:
        # neither is beaten. Oscillation lower on lambda only.
        _row("b", "sac_alam", 10.0, 0.05, lambda_osc=0.1, train_violation_osc=0.09),
        _row("b", "sac_pid_lag", 10.0, 0.04, lambda_osc=math.nan),
        _row("b", "fac", 5.0, 0.0, half=0.5, lambda_osc=0.4, train_violation_osc=0.05),
        # Task c: no baselines, no sac_alam oscillation figure.
        _row("c", "sac_alam", 1.0, 0.0),
        _row("c", "alam_ascent", 1.0, 0.0, lambda_osc=0.3, train_violation_osc=0.1),
        _row("d", "fac", 1.0, 0.0),  # no sac_alam: no verdict
    ]
    got = {(v["task"], v["claim"]): v for v in report.claim_verdicts(rows)}
    assert sorted(got) == [("a", 1), ("a", 2), ("b", 1), ("b", 2), ("c", 1), ("c", 2)]
    assert got[("a", 1)]["verdict"] == "supported" and got[("a", 1)]["undominated"] == []
    # 100 +- 1 is disjoint from sac_lag's 50 +- 1, not from fac's 90 +- 20.
    assert got[("a", 1)]["separated"] == ["sac_lag"]
    assert got[("a", 1)]["separated_safety"] == []  # _row gives no violation-rate interval: never disjoint
    assert got[("a", 2)]["verdict"] == "supported"
    assert got[("b", 1)]["verdict"] == "not supported" and got[("b", 1)]["undominated"] == ["sac_pid_lag", "fac"]
    assert got[("b", 2)]["verdict"] == "not supported"  # train_violation_osc 0.09 > fac's 0.05
    assert got[("c", 1)]["verdict"] == "n/a" and got[("c", 2)]["verdict"] == "n/a"
    assert report._verdict_figures(got[("c", 1)]) == "—"
    text = report._verdict_figures(got[("b", 1)])
    assert "sac_alam 10.00 / 0.050" in text and "not beaten: sac_pid_lag, fac" in text and "disjoint from: fac" in text


def test_claim1_marks_violation_rate_intervals_that_do_not_overlap() -> None:
    def row(algo: str, viol: float, half: float) -> dict:
        return {
            **_row("t", algo, 10.0, viol),
            "violation_rate_ci_low": viol - half,
            "violation_rate_ci_high": viol + half,
        }

    rows = [
        row("sac_alam", 0.05, 0.01),
        row("fac", 0.02, 0.015),
        row("sac_lag", 0.06, 0.015),
        row("sac_pid_lag", 0.1, 0.03),
    ]
    (claim_1,) = [v for v in report.claim_verdicts(rows) if v["claim"] == 1]
    # fac's [0.005, 0.035] lies below sac_alam's [0.04, 0.06], sac_pid_lag's [0.07, 0.13] above it; sac_lag's
    # [0.045, 0.075] overlaps it.
    assert claim_1["separated_safety"] == ["sac_pid_lag", "fac"]  # in SAFE_BASELINES order


def test_multiplier_stuck_reads_the_last_fifth_of_the_evaluations() -> None:
    def evals(lams: list[float], viols: list[float], caps: list[float] | None = None) -> list[dict[str, float]]:
        caps = caps or [0.0] * len(lams)
        rows = zip(lams, viols, caps, strict=True)
        return [{"lambda_mean": m, "violation_rate": v, "replay_cap_share": c} for m, v, c in rows]

    # 10 evaluations, a window of 2. lambda ~0 (below 1e-6 of a cap of 10) while the policy violates: dead.
    dead = evals([1.0] * 8 + [1e-7, 9e-6], [0.1] * 10)
    assert report.multiplier_stuck(dead, lambda_max=10.0) == "at 0 while violating"
    assert report.multiplier_stuck(dead, lambda_max=1.0) == ""  # 9e-6 is above 1e-6 of a cap of 1
    # ~0 with a safe policy is the dual's answer, not a failure; one safe evaluation in the window is enough.
    assert report.multiplier_stuck(evals([1e-9] * 10, [0.0] * 10), 10.0) == ""
    assert report.multiplier_stuck(evals([1e-9] * 10, [0.1] * 9 + [0.0]), 10.0) == ""
    # The window only: a multiplier pinned early that recovered is not pinned.
    assert report.multiplier_stuck(evals([1e-9] * 8 + [1.0, 1.0], [0.1] * 10), 10.0) == ""
    # At the cap on >= 95 % of replay states at every evaluation of the window.
    assert report.multiplier_stuck(evals([10.0] * 10, [0.0] * 10, [0.0] * 8 + [0.95, 1.0]), 10.0) == "at the cap"
    assert report.multiplier_stuck(evals([10.0] * 10, [0.0] * 10, [0.0] * 8 + [0.94, 1.0]), 10.0) == ""
    # Missing columns (a scalar multiplier has no cap share) and short runs: not pinned.
    assert report.multiplier_stuck([{"lambda_mean": 1.0, "violation_rate": 0.1}] * 10, 10.0) == ""
    assert report.multiplier_stuck(dead[-3:], 10.0) == ""


def test_claim_2_leaves_out_a_variant_pinned_on_every_seed() -> None:
    def row(algo: str, stuck: int, at: str = "", seeds: int = 2, **osc: float) -> dict:
        return {**_row("a", algo, 1.0, 0.0, **osc), "n_seeds": seeds, "multiplier_stuck": stuck,
                "multiplier_stuck_at": at}  # fmt: skip

    alam = row("sac_alam", 0, lambda_osc=0.5, train_violation_osc=0.01)
    fac = row("fac", 0, lambda_osc=0.9, train_violation_osc=0.02)
    dead = row("alam_ascent", 2, "at 0 while violating", lambda_osc=0.001, train_violation_osc=0.005)

    def claim_2(*rows: dict) -> dict:
        return next(v for v in report.claim_verdicts(list(rows)) if v["claim"] == 2)

    # Counted, the dead multiplier's ~0 oscillation would make the claim fail; pinned on both seeds, it is left
    # out and named.
    got = claim_2(alam, fac, dead)
    assert got["verdict"] == "supported" and set(got["lambda_osc"][1]) == {"fac"}
    assert got["pinned"] == {"alam_ascent": "at 0 while violating"}
    pinned = "left out, multiplier pinned on every seed: alam_ascent (at 0 while violating)"
    assert pinned in report._verdict_figures(got)
    # Pinned on one seed of two: still compared.
    assert claim_2(alam, fac, {**dead, "multiplier_stuck": 1})["verdict"] == "not supported"
    # Every variant pinned, or sac_alam's own multiplier pinned on a seed: no verdict.
    assert claim_2(alam, dead)["verdict"] == "n/a" and "alam_ascent" in report._verdict_figures(claim_2(alam, dead))
    assert claim_2({**alam, "multiplier_stuck": 1}, fac)["verdict"] == "n/a"


def test_last_fifth_is_the_mean_of_the_plateau_window() -> None:
    evals = [{"return": float(v), "violation_rate": 0.0} for v in (0, 1, 2, 3, 4, 5, 6, 7, 100, 2)]
    assert report.last_fifth(evals, "return") == 51.0  # 10 evaluations: the last 2, (100 + 2) / 2
    assert report.last_fifth(evals[:4], "return") == 2.5  # 4 evaluations: the last 2
    assert math.isnan(report.last_fifth(evals[:3], "return"))
    assert math.isnan(report.last_fifth([{"return": math.nan}] * 9 + [{"return": 1.0}], "return"))


def test_aggregate_reads_the_last_fifth_and_pinned_multipliers_per_seed() -> None:
    def run(seed: int, returns: list[float], lams: list[float]) -> report.RunResult:
        evals = [{"step": 1000.0 * (i + 1), "return": r, "violation_rate": 0.01 * (i + 1), "lambda_mean": m,
                  "replay_cap_share": 0.0} for i, (r, m) in enumerate(zip(returns, lams, strict=True))]  # fmt: skip
        config = {"seed": seed, "task": "t", "algo.name": "fac", "multiplier.lambda_max": 100.0}
        return report.RunResult(Path(f"s{seed}"), config, {"return": returns[-1]}, evals)

    # Below 1e-6 of the run's cap of 100 in the last window (not of the default cap of 10).
    alive, dead = [1.0] * 5, [0.5, 0.1, 1e-3, 5e-5, 5e-5]
    (row,) = report.aggregate({("t", "fac", ""): [run(0, [0, 0, 0, 10, 20], alive), run(1, [0, 0, 0, 30, 40], dead)]})
    # 5 evaluations: windows of 2. Seed 0 (10 + 20) / 2 = 15, seed 1 35: mean 25; violation rate (0.04 + 0.05) / 2.
    assert row["return_last_mean"] == 25.0 and row["return_last_n"] == 2
    assert row["violation_rate_last_mean"] == pytest.approx(0.045)
    assert (row["multiplier_stuck"], row["multiplier_stuck_at"]) == (1, "at 0 while violating")
    # Unconstrained sac has no multiplier: never pinned.
    unconstrained = run(1, [0, 0, 0, 30, 40], dead)
    unconstrained.config["algo.name"] = "sac"
    assert report.aggregate({("t", "sac", ""): [unconstrained]})[0]["multiplier_stuck"] == 0


def test_verdicts_on_the_last_fifth_and_undefined_means() -> None:
    def row(algo: str, final: tuple[float, float], last: tuple[float, float]) -> dict:
        r = _row("a", algo, *final)
        for m, v in zip(("return", "violation_rate"), last, strict=True):
            r.update({f"{m}_last_mean": v, f"{m}_last_ci_low": v - 1, f"{m}_last_ci_high": v + 1, f"{m}_last_n": 2})
        return r

    # fac's last evaluation is its best (350 at 0), its last fifth 262 at 0: the goal flips with the reading.
    rows = [row("sac_alam", (336.0, 0.0), (272.0, 0.0)), row("fac", (350.0, 0.0), (262.0, 0.0))]
    assert report.goal_verdicts(rows)[0]["verdict"] == "not met"
    last = report.on_last_fifth(rows)
    assert last[1]["return_mean"] == 262.0 and last[1]["return_ci_high"] == 263.0 and last[1]["return_n"] == 2
    assert report.goal_verdicts(last)[0]["verdict"] == "met"
    assert next(v for v in report.claim_verdicts(last) if v["claim"] == 1)["verdict"] == "supported"
    # An undefined mean (too few evaluations for a last fifth) gives no verdict, not a vacuous one.
    undefined = report.on_last_fifth([row("sac_alam", (1.0, 0.0), (math.nan, math.nan)), rows[1]])
    assert report.goal_verdicts(undefined)[0]["verdict"] == "n/a"
    assert next(v for v in report.claim_verdicts(undefined) if v["claim"] == 1)["verdict"] == "n/a"


def test_goal_verdicts_compare_only_baselines_as_safe() -> None:
    rows = [
        # a: sac_lag is as safe and earns more (not met); sac (unconstrained) and the less safe fac do not count.
        _row("a", "sac", 500.0, 0.5),
        _row("a", "sac_alam", 100.0, 0.01),
        _row("a", "sac_lag", 120.0, 0.01),
        _row("a", "fac", 300.0, 0.02),
        # b: the higher-return baselines all violate more; the one as safe earns less: met.
        _row("b", "sac_alam", 10.0, 0.05),
        _row("b", "sac_pid_lag", 30.0, 0.06),
        _row("b", "fac", 5.0, 0.0),
        # c: no baseline is as safe: met, vacuously, and the table says so.
        _row("c", "sac_alam", 1.0, 0.0),
        _row("c", "sac_lag", 9.0, 0.1),
        _row("d", "sac_alam", 1.0, 0.0),  # no baseline: no verdict
    ]
    got = {g["task"]: g for g in report.goal_verdicts(rows)}
    assert sorted(got) == ["a", "b", "c"]
    assert (
        got["a"]["verdict"] == "not met" and got["a"]["as_safe"] == ["sac_lag"] and got["a"]["beaten_by"] == ["sac_lag"]
    )
    assert got["b"]["verdict"] == "met" and got["b"]["as_safe"] == ["fac"] and got["b"]["beaten_by"] == []
    assert got["c"]["verdict"] == "met" and got["c"]["as_safe"] == []


def test_report_markdown_has_plateau_and_claims(sweep_dir: Path, tmp_path: Path) -> None:
    markdown = report.report(sweep_dir, tmp_path / "out")["markdown"]
    # 3 evaluations per fake run: too few for two windows, so no seed counts as plateaued.
    assert "| plateaued |" in markdown and "0/3 (—; shown 0)" in markdown
    assert "## Claims" in markdown and "| 1 | n/a | n/a | — |" in markdown
    # Too few evaluations for a last fifth: its cells are undefined, not zeros.
    assert "## Return and violation rate over the last 20% of training" in markdown
    assert "| sac | 1 | 50.00 ± — | — | 0.1000 ± — | — |" in markdown


def test_a_seed_run_twice_is_a_named_error(sweep_dir: Path, tmp_path: Path) -> None:
    runs, _ = report.find_runs(sweep_dir)
    copy = report.RunResult(tmp_path / "copy", dict(runs[0].config), dict(runs[0].summary), list(runs[0].evals))
    with pytest.raises(ValueError, match=r"seed \S+ appears in 2 runs .*copy"):
        report.group_runs([*runs, copy])


def test_time_to_bar_is_the_first_evaluation_within_both_bounds() -> None:
    rows = [
        {"step": 1000.0, "return": 350.0, "violation_rate": 0.01},  # return enough, not safe enough
        {"step": 2000.0, "return": 290.0, "violation_rate": 0.0},  # safe, return short
        {"step": 3000.0, "return": 300.0, "violation_rate": 0.0},  # both bounds, inclusive
        {"step": 4000.0, "return": 400.0, "violation_rate": 0.0},
    ]
    assert report.time_to_bar(rows, (300.0, 0.0)) is rows[2]
    assert report.time_to_bar(rows, (300.0, 0.01)) is rows[0]  # the violation bound inclusive too
    assert report.time_to_bar(rows, (401.0, 1.0)) is None


def test_plateau_at_its_boundaries_by_hand() -> None:
    def evals(values: list[float]) -> list[dict[str, float]]:
        return [{"return": v} for v in values]

    # The range is max - min: the rising curve of the test above, 100 higher, gains the same 0.2.
    assert report.plateau(evals([100 + v for v in (0, 1, 2, 3, 4, 5, 7, 8, 9, 10)]))["gain"] == pytest.approx(0.2)
    # A gain of exactly 5 % of the range (50 -> 55 over 0-100) with no scatter: plateaued, and shown.
    edge = report.plateau(evals([0, 100, 50, 50, 50, 50, 50, 50, 55, 55]))
    assert edge["gain"] == report.PLATEAU_GAIN and edge["noise"] == 0.0
    assert edge["plateaued"] == 1.0 and edge["shown"] == 1.0
    # Too few evaluations: every field undefined; a flat curve: every field defined, nothing to rise.
    short = report.plateau(evals([1.0, 2.0, 3.0]))
    assert set(short) == {"last", "before", "gain", "noise", "plateaued", "shown"}
    assert all(math.isnan(v) for v in short.values())
    assert report.plateau(evals([5.0] * 6)) == {"last": 5.0, "before": 5.0, "gain": 0.0, "noise": 0.0,
                                                 "plateaued": 1.0, "shown": 1.0}  # fmt: skip
    assert report._window(50) == 10 and report._window(4) == 2


def test_multiplier_stuck_at_its_boundaries() -> None:
    # Four evaluations, the fewest it reads (a window of 2).
    at_cap = [{"lambda_mean": 10.0, "violation_rate": 0.0, "replay_cap_share": 1.0}] * 4
    assert report.multiplier_stuck(at_cap, 10.0) == "at the cap"
    # Exactly at the floor is not below it.
    floor = report.STUCK_FLOOR * 10.0
    at_floor = [{"lambda_mean": floor, "violation_rate": 0.1, "replay_cap_share": 0.0}] * 4
    assert report.multiplier_stuck(at_floor, 10.0) == ""


def test_aggregate_counts_plateaus_sorts_seeds_and_names_every_pinned_bound() -> None:
    def run(
        seed: int, returns: list[float], lam: float, cap_share: float, viol: float, **config: float
    ) -> report.RunResult:
        evals = [{"step": 1000.0 * (i + 1), "return": r, "violation_rate": viol, "lambda_mean": lam,
                  "replay_cap_share": cap_share} for i, r in enumerate(returns)]  # fmt: skip
        return report.RunResult(Path(f"s{seed}"), {"seed": seed, "algo.name": "fac", **config}, {}, evals)

    rising, flat = [0.0, 1, 2, 3, 4, 5, 7, 8, 9, 10], [0.0, 5, 9, 10, 10, 10, 10, 10.2, 10.1, 10.3]
    runs = [
        run(2, rising, 1e-9, 0.0, 0.1),  # at 0 while violating (the default cap of 10: no lambda_max in its config)
        run(0, flat, 10.0, 1.0, 0.0, **{"multiplier.lambda_max": 10.0}),  # at the cap
        run(1, flat, 1.0, 0.0, 0.0, **{"multiplier.lambda_max": 10.0}),  # alive
    ]
    (row,) = report.aggregate({("t", "fac", ""): runs})
    assert row["seeds"] == "0;1;2"
    assert row["plateaued"] == 2 and row["plateau_shown"] == 2  # the two flat curves, not the rising one
    assert row["plateau_gain"] == pytest.approx((0.2 + 2 * 0.1 / 10.3) / 3)  # the mean gain, not an interval bound
    assert row["multiplier_stuck"] == 2 and row["multiplier_stuck_at"] == "at 0 while violating;at the cap"


def test_verdicts_at_ties_and_with_undefined_baselines() -> None:
    # Claim 1 at a tie: the same return at more violations is beaten. Intervals that touch (99-101 against 97-99
    # and 101-103) are not disjoint.
    tie = [_row("a", "sac_alam", 100.0, 0.01), _row("a", "sac_lag", 100.0, 0.02), _row("a", "sac_pid_lag", 98.0, 0.0),
           _row("a", "fac", 102.0, 0.05)]  # fmt: skip
    claim_1 = next(v for v in report.claim_verdicts(tie) if v["claim"] == 1)
    assert claim_1["undominated"] == ["sac_pid_lag", "fac"] and claim_1["separated"] == []
    # The goal at a tie: a baseline as safe with the same return does not beat sac_alam.
    assert report.goal_verdicts([_row("a", "sac_alam", 100.0, 0.01), _row("a", "sac_lag", 100.0, 0.01)])[0] == {
        "task": "a", "verdict": "met", "as_safe": ["sac_lag"], "beaten_by": []}  # fmt: skip
    # Claim 2 at equal oscillation: not lower, so not supported.
    equal = [_row("a", "sac_alam", 1.0, 0.0, lambda_osc=0.2, train_violation_osc=0.01),
             _row("a", "fac", 1.0, 0.0, lambda_osc=0.2, train_violation_osc=0.02)]  # fmt: skip
    assert next(v for v in report.claim_verdicts(equal) if v["claim"] == 2)["verdict"] == "not supported"
    # A baseline whose mean is undefined: no verdict for the task, and the next task still gets its own.
    rows = [_row("a", "fac", 1.0, 0.0), _row("b", "sac_alam", 1.0, 0.0), _row("b", "sac_lag", math.nan, 0.0),
            _row("c", "sac_alam", 1.0, 0.0), _row("c", "sac_lag", 2.0, 0.1)]  # fmt: skip
    claims = {(v["task"], v["claim"]): v["verdict"] for v in report.claim_verdicts(rows)}
    assert claims[("b", 1)] == "n/a" and claims[("c", 1)] == "not supported"
    goals = report.goal_verdicts(rows)
    assert goals == [{"task": "b", "verdict": "n/a", "as_safe": [], "beaten_by": []},
                     {"task": "c", "verdict": "met", "as_safe": [], "beaten_by": []}]  # fmt: skip
    # Pinned on every seed means on every one of at least one seed.
    assert report._pinned_on_every_seed({"multiplier_stuck": 1, "n_seeds": 1})
    assert not report._pinned_on_every_seed({}) and not report._pinned_on_every_seed({"n_seeds": 1})
    assert not report._pinned_on_every_seed({"multiplier_stuck": 1})


def test_ablation_deltas_pair_by_seed_by_hand() -> None:
    def run(algo: str, seed: int, ret: float, viol: float, curve: list[float] | None = None) -> report.RunResult:
        evals = [{"step": 1000.0 * (i + 1), "return": r, "violation_rate": viol} for i, r in enumerate(curve or [])]
        summary = {"return": ret, "violation_rate": viol, "lambda_osc": ret / 10.0}  # no train_violation_osc
        return report.RunResult(Path(f"{algo}-s{seed}"), {"seed": seed}, summary, evals)

    groups = {
        # Seed 2 has no alam_nopenalty run and seed 3 no sac_alam run: only seeds 0 and 1 pair.
        ("t", "sac_alam", ""): [run("a", 1, 20.0, 0.0, [0, 0, 0, 10, 30]), run("a", 0, 10.0, 0.01, [0, 0, 0, 4, 6]),
                                run("a", 2, 99.0, 0.0)],
        ("t", "alam_nopenalty", ""): [run("n", 0, 8.0, 0.0, [0, 0, 0, 2, 2]), run("n", 1, 25.0, 0.03, [9] * 5),
                                      run("n", 3, 1.0, 0.0)],
        # An ablation without sac_alam on its task, and a method that is not an ablation: no row.
        ("u", "alam_ascent", ""): [run("x", 0, 1.0, 0.0)],
        ("t", "fac", ""): [run("f", 0, 1.0, 0.0)],
    }  # fmt: skip
    (row,) = report.ablation_deltas(groups)
    assert (row["task"], row["ablation"], row["n"], row["seeds"]) == ("t", "alam_nopenalty", 2, "0;1")
    # sac_alam minus the ablation, per seed: return 10 - 8 = 2 and 20 - 25 = -5; violation 0.01 and -0.03.
    half = 12.7062 * math.sqrt(((2 + 1.5) ** 2 + (-5 + 1.5) ** 2) / 1) / math.sqrt(2)  # t(0.975, 1) * s / sqrt(n)
    assert row["return_delta_mean"] == pytest.approx(-1.5)
    assert row["return_delta_ci_low"] == pytest.approx(-1.5 - half, rel=1e-4)
    assert row["return_delta_ci_high"] == pytest.approx(-1.5 + half, rel=1e-4)
    assert row["violation_rate_delta_mean"] == pytest.approx(-0.01) and row["violation_rate_delta_n"] == 2
    # Claim 2's measures, final only: lambda_osc is return / 10 here; train_violation_osc is missing (undefined).
    assert row["lambda_osc_delta_mean"] == pytest.approx(-0.15) and row["lambda_osc_delta_n"] == 2
    assert row["train_violation_osc_delta_n"] == 0 and "lambda_osc_last_delta_mean" not in row
    # Last fifth (5 evaluations: the last 2): seed 0 (4 + 6) / 2 - 2 = 3, seed 1 (10 + 30) / 2 - 9 = 11.
    assert row["return_last_delta_mean"] == pytest.approx(7.0)
    assert report.delta_text(row, "return_delta") == f"-1.50 ± {report.num(half, 2)} (spans 0)"
    assert report.delta_text({**row, "return_delta_ci_low": 0.5}, "return_delta").endswith("(above 0)")
    assert report.delta_text({**row, "return_delta_ci_high": -0.5}, "return_delta").endswith("(below 0)")
    one = {**row, "return_delta_mean": 2.0, "return_delta_n": 1}
    assert report.delta_text(one, "return_delta") == "+2.00 (1 seed)"
    assert report.delta_text({**row, "return_delta_n": 0}, "return_delta") == "—"
    assert report.delta_text(row, "return_delta", side=False) == f"-1.50 ± {report.num(half, 2)}"


def test_report_markdown_lists_the_ablations(tmp_path: Path) -> None:
    for seed, (base, ablated) in enumerate(((10.0, 8.0), (20.0, 25.0))):
        _fake_run(tmp_path, f"alam-s{seed}", [f"seed={seed}"], {"return": base, "cost": 0.0, "lambda": 1.0})
        _fake_run(tmp_path, f"nopen-s{seed}", [f"seed={seed}", "algo.label=alam_nopenalty"],
                  {"return": ablated, "cost": 0.0, "lambda": 1.0})  # fmt: skip
    out = report.report(tmp_path, tmp_path / "out")
    assert len(out["ablations"]) == 1
    assert "## Ablations: sac_alam minus each ablation, paired by seed" in out["markdown"]
    row = "| cartpole-safe_swingup | alam_nopenalty | 2 | -1.50 ± 44 (spans 0) | — | 0 ± 0 (spans 0) | — "
    assert row + "| 0 ± 0 (spans 0) | — |" in out["markdown"]  # lambda_osc 0.2 on both; no train_violation_osc
