"""Risk maps, reliability diagrams and the sim-to-real stress test of docs/results.md, from a finished sweep.

    python benchmarks/evidence.py runs/sweeps/paper --out docs/results

For every finished `fac` and `sac_alam` trial of the sweep (trial names `seed=S,task=T,algo=A` in any order, as
configs/sweeps/*.yaml write them) this:

1. exports a bundle to SWEEP_DIR/bundles/<trial> (`alam export`),
2. calibrates it (`alam calibrate --episodes 100 --recall 0.5` under its training ranges; the x2, then x3 ranges of
   step 4 when the bundle never violates under x1) and draws the reliability diagram of seed 0
   (reliability_<task>_<algo>.png). 100 episodes (`--calibration-episodes`): a safe policy violates rarely, and
   10 diff-drive episodes held 5 violation onsets, an AUROC of noise; each AUROC comes with its onsets and a 95 %
   episode-bootstrap interval; its closed-loop check picks the release dwell (`calibration.pick_dwell`),
3. maps lambda(s) over the task's state slice (`alam riskmap`, cart-pole and diff-drive; grid 41, H 20), all seeds
   for the grid AUROC table, the seed-0 maps of fac and sac_alam in one figure per task (riskmap_<task>.png),
4. evaluates each sac_alam bundle (and the shipped bundles/diffdrive, trained with randomization x1) under
   randomization widened x0 (nominal) / x1 / x2 / x3 around its training ranges (`alam eval --randomize-width`),
   on episodes apart from the calibration's (`STRESS_SEED`), alone and behind the runtime monitor + fallback at
   its calibrated thresholds and dwell (retreat for the diff-drive,
   center for the cart-pole, evade for the point robot, stop for the walker, whose observation a robot cannot
   rebuild from JointState),
   30 episodes each (10 until 2026-12-06: a violation rate of 0.003 was then 9 violating steps in one cell).

Writes OUT/evidence.json (every number) and OUT/evidence.md (the tables, mean and 95% t-interval over seeds).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from alam_control.deploy import calibration, export, riskmap  # noqa: E402
from alam_control.experiments import report  # noqa: E402
from alam_control.learn import checkpoint, metrics, rundir  # noqa: E402
from alam_control.learn.checkpoint import CheckpointError  # noqa: E402
from alam_control.runtime import MonitorConfig, default_fallback, load_bundle  # noqa: E402
from alam_control.runtime.bundle import BundleError, read_manifest  # noqa: E402
from benchmarks import pages  # noqa: E402

ALGOS = ("fac", "sac_alam")
CACHE_VERSION = 9
"""Part of each trial's cache key: raise it when what a trial's evidence means changes (2: calibration and stress
around the bundle's training ranges, the cart-pole's center fallback; 3: calibration's onsets and interval; 4: the
point robot's evade fallback, calibration's AUROC by lead; 5: the exported lambda exact below a logit of -18; 6:
calibration's false-alarm budget, the every-sector retreat; 7: the monitor engages on its first tick above; 8: the
release dwell picked closed loop by `alam calibrate`, the stress test on episodes apart from calibration's; 9: that
pick without slack)."""
CACHE_FILES = ("evidence.json", "riskmap.npz")
"""A trial's evidence cache, kept in its bundle directory."""
WIDTHS = (0.0, 1.0, 2.0, 3.0)
STRESS_SEED = calibration.EVAL_SEED + 60_000
"""Episode seeds of the stress test, apart from the calibration's (`calibration.EVAL_SEED`): the thresholds and the
release dwell are picked on those, so scoring the monitor on them would flatter it."""
_FIELD = re.compile(r"(\w+)=([\w.-]+)")


def finished_trials(sweep_dir: Path) -> list[tuple[int, str, str, Path]]:
    """(seed, task label, algo label, run dir) of the finished fac / sac_alam trials (named by their grid values,
    `seed=S,task=T,algo=A` in any order)."""
    runs, _ = report.find_runs(sweep_dir)
    out = []
    for r in runs:
        fields = dict(_FIELD.findall(r.run_dir.name))
        if {"seed", "task", "algo"} <= set(fields) and fields["algo"] in ALGOS:
            out.append((int(fields["seed"]), fields["task"], fields["algo"], r.run_dir))
    return sorted(out, key=lambda t: (t[1], t[2], t[0]))


def stress_rows(bundle_dir: Path, episodes: int) -> list[dict]:
    """The bundle alone and behind its monitor under each randomization width."""
    bundle = load_bundle(bundle_dir)
    m = bundle.manifest
    # Without thresholds (calibration saw no violation) only the policy alone is evaluated.
    guards = [None] + ([MonitorConfig.from_manifest(m)] if m["risk_high"] is not None else [])
    rows = []
    for width in WIDTHS:
        # Widened around the ranges the bundle was trained under (its manifest; sim's defaults if none), as
        # `alam eval --bundle --randomize-width` does: the shipped diff-drive bundle's include pushes.
        ranges = calibration.training_ranges(m).widened(width) if width >= 1.0 else False
        for monitor in guards:
            # The robot's own fallback, behind the monitor as deployed (the manifest's thresholds and dwell).
            data = calibration.rollout(bundle, episodes, seed=STRESS_SEED, randomize=ranges, monitor=monitor)
            rows.append({"width": width, "monitor": monitor is not None, **data.summary()})
    return rows


def ci_text(values: list[float], digits: int = 3) -> str:
    mean, low, high, n = report.interval(values)
    if n == 0:
        return "—"
    half = "—" if math.isnan(low) else f"{(high - low) / 2:.{digits}g}"
    return f"{mean:.{digits}g} ± {half}"


def throughput(sweep_dir: Path) -> list[dict]:
    """Per task x algorithm: the trials' env-steps per second of wall time (training + its evaluations), from
    their summary.json, with their networks and torch threads (the sweep's `--max-concurrent` is not recorded)."""
    runs, _ = report.find_runs(sweep_dir)
    rows = []
    for (task, algo, _), group in report.group_runs(runs).items():
        rates = [r.summary["steps"] / r.summary["wall_time_s"] for r in group]
        walls = [r.summary["wall_time_s"] for r in group]
        rows.append({"task": task, "algo": algo, "n": len(group), "steps": group[0].summary["steps"],
                     "hidden": group[0].config.get("sac.hidden"), "threads": group[0].config.get("train.threads"),
                     "steps_per_s": rates, "wall_s": walls})  # fmt: skip
    return rows


def process(
    run_dir: Path, algo: str, bundle_dir: Path, episodes: int, grid: int, calibration_episodes: int
) -> tuple[dict, riskmap.RiskMap | None]:
    """Export, calibrate, risk-map and (sac_alam) stress-test one trial. The result is cached in
    bundle_dir/evidence.json (+ riskmap.npz) and reused while the trial's final step, the settings and the robot's
    default fallback (which calibration's closed-loop check and the stress test run behind) match, so the script
    can run while a sweep is still adding trials, and a new default fallback redoes only that robot's trials."""
    # Raises, leaving the stale cache as a record, when there is neither a bundle nor a checkpoint to redo it from.
    ensure_bundle(run_dir, bundle_dir)
    key = {"train_step": rundir.read_summary(run_dir)["steps"], "episodes": episodes, "grid": grid,
           "calibration_episodes": calibration_episodes, "version": CACHE_VERSION,
           "fallback": default_fallback(read_manifest(bundle_dir))}  # fmt: skip
    cache, arrays = (bundle_dir / name for name in CACHE_FILES)
    if cache.exists():
        entry = json.loads(cache.read_text())
        if entry.get("key") == key:
            m = None
            if arrays.exists():
                with np.load(arrays) as z:
                    meta = entry["riskmap_meta"]
                    m = riskmap.RiskMap(**meta, **{k: z[k] for k in z.files})
            return entry, m
    cache.unlink(missing_ok=True)
    arrays.unlink(missing_ok=True)
    cal: dict = {}
    for width in (1.0, 2.0, 3.0):  # a bundle that never violates under x1 is calibrated on wider ranges
        try:
            # Records the width; the closed-loop check picks the release dwell the stress test below then runs.
            cal = calibration.calibrate(bundle_dir, calibration_episodes, 0.5, width=width)
            break
        except ValueError as err:  # no violation at all in the rollouts: nothing to calibrate on
            cal = {"error": str(err)}
    entry: dict = {"key": key, "calibration": cal}
    m = None
    bundle = load_bundle(bundle_dir)
    if bundle.manifest["task"] in riskmap.SLICES:
        m = riskmap.compute(bundle, grid=grid)
        entry["riskmap"] = m.summary()
        entry["riskmap_meta"] = {"task": m.task, "bundle": m.bundle, "horizon": m.horizon,
                                 "goal": list(m.goal) if m.goal else None}  # fmt: skip
        np.savez_compressed(arrays, xs=m.xs, ys=m.ys, lam=m.lam, cost_q=m.cost_q, violated_now=m.violated_now,
                            violated_within=m.violated_within, valid=m.valid)  # fmt: skip
    if algo == "sac_alam":
        entry["stress"] = stress_rows(bundle_dir, episodes)
    cache.write_text(json.dumps(entry, default=float))
    return entry, m


def ensure_bundle(run_dir: Path, bundle_dir: Path) -> bool:
    """Export the trial's bundle unless one of its final step is already at ``bundle_dir``: a committed snapshot's
    (`make sweep-snapshot` keeps manifest.json and policy.onnx). A trial finished in an earlier sitting has lost its
    checkpoint with runs/, and training is bit-exact on one machine only (a re-run of a cart-pole trial on this
    sitting's VM differed from the committed one by its 24000th step), so its bundle is what its evidence can be
    computed again from. A change to `export` that alters what a bundle computes must therefore say so in
    CACHE_VERSION and be measured on the trials that still have checkpoints.

    Returns:
        True if it exported, False if it kept the bundle there.
    """
    step = rundir.read_summary(run_dir)["steps"]
    try:
        if read_manifest(bundle_dir)["train_step"] == step:
            return False
    except BundleError:
        pass  # none there (or a broken one): export, which replaces only a previous bundle
    if not checkpoint.is_run(run_dir):
        raise CheckpointError(f"{run_dir}: no checkpoint to export (runs/ of an earlier sitting) and no bundle kept")
    for name in CACHE_FILES:  # the old bundle's evidence: export replaces only a bundle's own files
        (bundle_dir / name).unlink(missing_ok=True)
    export.export(run_dir, bundle_dir)
    return True


def widths(entries: list[dict]) -> str:
    """Per seed, the randomization width the bundle was calibrated at ('-' where it never violated)."""
    cals = [e["calibration"] for e in sorted(entries, key=lambda e: e["seed"])]
    return " ".join(f"x{c['randomize_width']:g}" if "randomize_width" in c else "-" for c in cals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--out", type=Path, help="where evidence.json, evidence.md and the figures go")
    parser.add_argument(
        "--export-only",
        action="store_true",
        help="only export the bundles of finished trials that have none yet (seconds; `make sweep-snapshot` runs it)",
    )
    parser.add_argument("--episodes", type=int, default=30, help="episodes per stress-test cell")
    parser.add_argument("--calibration-episodes", type=int, default=100)
    parser.add_argument("--grid", type=int, default=41)
    parser.add_argument("--shipped", type=Path, default=REPO / "bundles" / "diffdrive")
    parser.add_argument("--page", type=Path, help=f"a page whose '{HEADLINE}' block (benchmarks/pages.py) is "
                        "rewritten with the summary table (headline.md): docs/results.md")  # fmt: skip
    args = parser.parse_args()
    t0 = time.perf_counter()
    trials = finished_trials(args.sweep_dir)
    if not trials:
        raise SystemExit(f"{args.sweep_dir}: no finished fac / sac_alam trials named by seed, task and algo")
    if args.export_only:
        for _, _, _, run_dir in trials:
            try:
                if ensure_bundle(run_dir, args.sweep_dir / "bundles" / run_dir.name):
                    print(f"exported {run_dir.name}")
            except CheckpointError as err:  # finished in an earlier sitting and never exported: nothing to do
                print(f"{run_dir.name}: {err}")
        return
    if args.out is None:
        parser.error("--out is required (unless --export-only)")
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {"sweep": str(args.sweep_dir), "episodes": args.episodes,
                     "calibration_episodes": args.calibration_episodes, "bundles": {}, "stress": []}  # fmt: skip

    maps: dict[tuple[str, str, int], riskmap.RiskMap] = {}
    results["missing"] = []
    for seed, task, algo, run_dir in trials:
        try:
            entry, m = process(run_dir, algo, args.sweep_dir / "bundles" / run_dir.name, args.episodes, args.grid,
                               args.calibration_episodes)  # fmt: skip
        except CheckpointError as err:  # neither evidence nor a bundle kept, and the checkpoint gone with runs/
            print(f"{run_dir.name}: no evidence ({err})", flush=True)
            results["missing"].append(run_dir.name)
            continue
        entry.update(seed=seed, task=task, algo=algo)
        results["bundles"][run_dir.name] = entry
        cal = entry["calibration"]
        if seed == 0 and "error" not in cal:
            fig = args.out / f"reliability_{task}_{algo}.png"
            calibration.plot_reliability(cal["reliability"], cal, fig, title=f"{task} {algo} seed 0")
        if m is not None:
            maps[(task, algo, seed)] = m
        for row in entry.get("stress", []):
            results["stress"].append({"bundle": run_dir.name, "task": task, "seed": seed, **row})
        print(f"{run_dir.name}: calibration {cal.get('risk_auroc', cal.get('error'))} {entry.get('riskmap', '')}",
              flush=True)  # fmt: skip
    for task in sorted({k[0] for k in maps}):
        pair = [(algo, maps[(task, algo, 0)]) for algo in ALGOS if (task, algo, 0) in maps]
        if pair:
            riskmap.plot([m for _, m in pair], [f"{a} seed 0" for a, _ in pair], args.out / f"riskmap_{task}.png")
    if args.shipped.exists():  # read in place, at its shipped thresholds (not re-calibrated): nothing is written
        for row in stress_rows(args.shipped, args.episodes):
            results["stress"].append({"bundle": "bundles/diffdrive (shipped)", "task": "diffdrive-shipped", "seed": 0,
                                      **row})  # fmt: skip
    results["throughput"] = throughput(args.sweep_dir)
    # The readout's own wall time is printed, not stored: the committed JSON changes only when the evidence does.
    (args.out / "evidence.json").write_text(json.dumps(results, indent=1, default=float))
    (args.out / "evidence.md").write_text(to_markdown(results))
    table = headline(report.find_runs(args.sweep_dir)[0], results)
    (args.out / "headline.md").write_text(table)
    if args.page is not None:
        pages.write(args.page, HEADLINE, table)
    print(to_markdown(results))
    print(f"written: {args.out}/evidence.json, evidence.md and PNGs ({time.perf_counter() - t0:.0f} s)")


def grouped(results: dict) -> tuple[dict[tuple[str, str], list[dict]], dict[tuple[str, float, bool], list[dict]]]:
    """evidence.json's bundles by (task, algo) and its stress-test rows by (task, width, monitor)."""
    bundles: dict[tuple[str, str], list[dict]] = {}
    for e in results["bundles"].values():
        bundles.setdefault((e["task"], e["algo"]), []).append(e)
    stress: dict[tuple[str, float, bool], list[dict]] = {}
    for row in results["stress"]:
        stress.setdefault((row["task"], row["width"], row["monitor"]), []).append(row)
    return bundles, stress


def to_markdown(results: dict) -> str:
    lines = [f"Generated by `python benchmarks/evidence.py {results['sweep']} --out <dir>`.", ""]
    if results.get("missing"):
        missing = ", ".join(results["missing"])
        lines += [f"Finished trials without evidence (no bundle kept, checkpoint gone): {missing}.", ""]
    by, groups = grouped(results)
    lines += ["## Risk signal quality (mean ± 95% CI over seeds)", "",
              "| task | algo | n | calibrated at | calibrate AUROC (lambda) | P(viol. within H) top decile "
              "| bottom decile | risk-map grid AUROC lambda | grid AUROC Q_c |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for (task, algo), es in sorted(by.items()):
        cals = [e["calibration"] for e in es if "error" not in e["calibration"]]
        rel = [c["reliability"] for c in cals]
        top = [r[-1]["positive_rate"] for r in rel]
        bottom = [r[0]["positive_rate"] for r in rel]
        grid_l = [e["riskmap"]["auroc_lambda"] for e in es if "riskmap" in e]
        grid_q = [e["riskmap"]["auroc_cost_q"] for e in es if "riskmap" in e]
        lines.append(
            f"| {task} | {algo} | {len(es)} | {widths(es)} | {ci_text([c['risk_auroc'] for c in cals])} "
            f"| {ci_text(top)} | {ci_text(bottom)} | {ci_text(grid_l)} | {ci_text(grid_q)} |"
        )
    lines += ["", "## Calibration per seed (95% interval: bootstrap over episodes)", "",
              "| task | algo | seed | width | episodes | violation onsets | AUROC (lambda) | interval | monotone "
              "| dips > 2 SE | cap share |", "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for (task, algo), es in sorted(by.items()):
        for e in sorted(es, key=lambda e: e["seed"]):
            c = e["calibration"]
            if "error" in c:
                lines.append(f"| {task} | {algo} | {e['seed']} | - | - | 0 | no violation | | | | |")
                continue
            low, high = c.get("risk_auroc_interval", (math.nan, math.nan))
            # NaN: the violations fell in fewer than 5 episodes (metrics.auroc_interval)
            span = f"{low:.3f}-{high:.3f}" if math.isfinite(low) else "— (< 5 violating episodes)"
            lines.append(
                f"| {task} | {algo} | {e['seed']} | x{c['randomize_width']:g} | {c['episodes']} "
                f"| {c.get('onsets', '?')} "
                f"| {c['risk_auroc']:.3f} | {span} | {'yes' if c['reliability_monotone'] else 'no'} "
                f"| {metrics.reliability_dips(c['reliability'])} | {c.get('cap_share', math.nan):.4f} |"
            )
    lines += ["", "## Stress test: sac_alam bundles under widened randomization (mean ± 95% CI over seeds)", "",
              "| task | width | monitor | n | return | violation_rate | fallback share |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for (task, width, monitor), rows in sorted(groups.items()):
        lines.append(
            f"| {task} | x{width:g} | {'on' if monitor else 'off'} | {len(rows)} "
            f"| {ci_text([r['return'] for r in rows])} | {ci_text([r['violation_rate'] for r in rows])} "
            f"| {ci_text([r['fallback_fraction'] for r in rows], 2)} |"
        )
    lines += goal_lines(by, groups)
    lines += ["", "## Training throughput of the sweep's trials (incl. evaluations)", "",
              "| task | algo | networks | threads | n | steps | env-steps/s | wall s per trial |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    total = 0.0
    for row in results.get("throughput", []):
        total += sum(row["wall_s"])
        hidden = "x".join(str(h) for h in row.get("hidden") or []) or "?"
        lines.append(f"| {row['task']} | {row['algo']} | {hidden} | {row.get('threads', '?')} | {row['n']} "
                     f"| {row['steps']} | {ci_text(row['steps_per_s'])} | {ci_text(row['wall_s'])} |")  # fmt: skip
    lines += ["", f"Sum of trial wall times: {total / 3600:.2f} h."]
    return "\n".join(lines) + "\n"


AUROC_GOAL = 0.95
"""Issue 19's goal for sac_alam's lambda: calibration AUROC at least this on every task."""


def goal_lines(by: dict[tuple[str, str], list[dict]], stress: dict[tuple[str, float, bool], list[dict]]) -> list[str]:
    """The two deployment goals per task, on sac_alam's seed means: calibration AUROC >= AUROC_GOAL, and zero
    violations behind the monitor at randomization x2."""
    lines = ["", f"## Goals: lambda's calibration AUROC >= {AUROC_GOAL} on every task; zero violations behind the "
             "monitor at x2", "", "| task | AUROC (mean over seeds) | met | violation rate, monitored, x2 | met |",
             "|---|---|---|---|---|"]  # fmt: skip
    for (task, algo), es in sorted(by.items()):
        if algo != "sac_alam":
            continue
        aurocs = [e["calibration"]["risk_auroc"] for e in es if "error" not in e["calibration"]]
        x2 = [r["violation_rate"] for r in stress.get((task, 2.0, True), [])]
        auroc = float(np.mean(aurocs)) if aurocs else math.nan
        viol = float(np.mean(x2)) if x2 else math.nan
        lines.append(
            f"| {task} | {auroc:.3f} ({len(aurocs)}) | {_met(auroc >= AUROC_GOAL, aurocs)} "
            f"| {viol:.4f} ({len(x2)}) | {_met(viol == 0.0, x2)} |"
        )
    return lines


def _met(ok: bool, values: list) -> str:
    return "—" if not values else ("yes" if ok else "no")


HEADLINE = "headline"
"""The block of docs/results.md that `--page` rewrites (`pages`): the page's summary is the readout's output."""
TASK_NAMES = {task.split("-")[0]: name for task, name in pages.TASK_NAMES.items()}
"""The docs' task names by the short names of trial directories (``task=cartpole``)."""


def _rv(ret: float, viol: float, sep: str = " / ") -> str:
    """A return and violation rate as the page writes them: 4 significant digits, then 2."""
    return f"{report.num(ret, 4)}{sep}{report.num(viol, 2)}"


def _names(algos: list[str]) -> str:
    return ", ".join(f"`{a}`" for a in algos)


def claim1_text(v: dict) -> str:
    """Claim 1's cell: whom sac_alam does not beat and how (more return, or fewer violations), each edge marked
    with whether the two methods' 95 % intervals of that figure are disjoint or overlap (the verdict compares
    means; an edge within overlapping intervals is a reading, not a measured difference)."""
    if v["verdict"] == "n/a":
        return "n/a"
    ret, viol = v["sac_alam"]
    if v["verdict"] == "supported":
        return f"yes: beats {_names(list(v['baselines']))}"
    parts = []
    for algo in v["undominated"]:
        r, c = v["baselines"][algo]
        edges = [("earns more", "return", algo in v["separated"])] if r > ret else []
        if c < viol:
            edges.append(("is safer", "violation-rate", algo in v["separated_safety"]))
        how = " and ".join(e for e, _, _ in edges)
        sides = ", ".join(f"{name} intervals {'disjoint' if apart else 'overlap'}" for _, name, apart in edges)
        parts.append(f"`{algo}` {_rv(r, c)} {how} ({sides})")  # undominated: it earns more or is safer
    return "no: " + "; ".join(parts)


def goal1_text(g: dict, by_algo: dict[str, dict], last: bool) -> str:
    """Goal 1's cell: the verdict and the figures of the baselines as safe as sac_alam (the safest one when none
    is, so a vacuous 'met' shows how far the nearest baseline is)."""
    sfx = "_last_mean" if last else "_mean"
    fig = lambda a: _rv(by_algo[a]["return" + sfx], by_algo[a]["violation_rate" + sfx], " at ")  # noqa: E731
    if g["verdict"] == "n/a":
        return "n/a"
    alam = f"{fig('sac_alam')} against " if last else ""
    if not g["as_safe"]:
        safest = min(report.SAFE_BASELINES, key=lambda a: by_algo.get(a, {}).get("violation_rate" + sfx, math.inf))
        return f"{g['verdict']}, vacuously (safest baseline: `{safest}` {fig(safest)})"
    return f"{g['verdict']}: {alam}" + ", ".join(f"`{a}` {fig(a)}" for a in g["as_safe"])


def claim2_text(v: dict, paired: dict | None = None) -> str:
    """Claim 2's cell: sac_alam's lambda_osc and train_violation_osc against each dual-ascent variant compared
    (the verdict compares these means), then, with ``paired`` (the `report.ablation_deltas` row against
    `alam_ascent`, the same method with dual ascent), both differences paired by seed with their intervals: the
    verdict on means can rest on seeds that do not order the two."""
    pinned = "; ".join(f"`{a}` left out: multiplier {at} on every seed" for a, at in v.get("pinned", {}).items())
    if v["verdict"] == "n/a":
        return "n/a" + (f" ({pinned})" if pinned else "")
    lam, trv = v["lambda_osc"], v["train_violation_osc"]
    parts = [f"`{a}` {lam[1][a]:.2g} / {trv[1][a]:.2g}" for a in lam[1]]
    text = (f"{'yes' if v['verdict'] == 'supported' else 'no'}: `sac_alam` {lam[0]:.2g} / {trv[0]:.2g} against "
            + ", ".join(parts))  # fmt: skip
    if paired is not None:
        deltas = " / ".join(report.delta_text(paired, f"{m}_delta") for m in report.ABLATION_OSC)
        text += f"; paired against `{paired['ablation']}`: {deltas}"
    return text + (f" ({pinned})" if pinned else "")


def auroc_text(entries: list[dict]) -> str:
    """Mean calibration AUROC over seeds, then each seed's (marked where lambda sat at its cap)."""
    per_seed, values = [], []
    for e in sorted(entries, key=lambda e: e["seed"]):
        c = e["calibration"]
        if "error" in c:
            per_seed.append("no violation")
            continue
        values.append(c["risk_auroc"])
        pinned = ", at its cap" if c.get("cap_share", 0.0) >= 0.95 else ""
        per_seed.append(f"{c['risk_auroc']:.3f}{pinned}")
    if not values:
        return "—"
    return f"{np.mean(values):.3f} ({' / '.join(per_seed)})"


def ablation_text(deltas: list[dict]) -> str:
    """The headline's ablation cell: per `report.ablation_deltas` row, the return and violation-rate differences
    with their intervals (`report.delta_text`)."""
    text = lambda a, m: report.delta_text(a, m, side=False)  # noqa: E731
    parts = [f"`{a['ablation']}` {text(a, 'return_delta')} / {text(a, 'violation_rate_delta')}" for a in deltas]
    return "; ".join(parts) or "—"


def headline(runs: list[report.RunResult], results: dict) -> str:
    """The summary table of docs/results.md: per task, sac_alam's figures, the verdicts of claims 1-3 and the
    project's three goals, on the means over the seeds committed.

    Args:
        runs: The sweep's finished trials (`report.find_runs`).
        results: This script's evidence (evidence.json): calibration per bundle, the stress test.
    """
    groups = report.group_runs(runs)
    rows = report.aggregate(groups)
    ablations = {(a["task"].split("-")[0], a["ablation"]): a for a in report.ablation_deltas(groups)}
    budget = {r.config["task"].split("-")[0]: int(r.config["train.total_steps"]) for r in runs}
    by_task: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_task.setdefault(r["task"].split("-")[0], {})[r["algo"]] = r
    claims = {(v["task"].split("-")[0], v["claim"]): v for v in report.claim_verdicts(rows)}
    goals = {g["task"].split("-")[0]: g for g in report.goal_verdicts(rows)}
    goals_last = {g["task"].split("-")[0]: g for g in report.goal_verdicts(report.on_last_fifth(rows))}
    entries, stress = grouped(results)
    tasks = [t for t in TASK_NAMES if "sac_alam" in by_task.get(t, {})]

    def x2_text(task: str) -> str:
        on, off = stress.get((task, 2.0, True), []), stress.get((task, 2.0, False), [])
        if not on:
            return "—"
        fallback = {e["key"].get("fallback", "?") for e in entries.get((task, "sac_alam"), [])}
        mean = lambda rs, k: float(np.mean([r[k] for r in rs]))  # noqa: E731
        alone = f"alone {report.num(mean(off, 'violation_rate'), 2)}; " if off else ""
        return (f"{report.num(mean(on, 'violation_rate'), 2)} ({alone}fallback `{'/'.join(sorted(fallback))}` "
                f"{100 * mean(on, 'fallback_fraction'):.0f} % of the steps)")  # fmt: skip

    def steps(task: str) -> str:
        """The column's head: task, budget and seeds (`sac_alam`'s apart when the methods have different counts:
        the verdicts then compare means over different seeds)."""
        counts = sorted({r["n_seeds"] for r in by_task[task].values()})
        n = by_task[task]["sac_alam"]["n_seeds"]
        seeds = f"{counts[0]} seeds" if len(counts) == 1 else f"{counts[0]}-{counts[-1]} seeds, `sac_alam` {n}"
        return f"{TASK_NAMES[task]}, {budget[task] // 1000}k ({seeds})"

    cells = {
        "`sac_alam` return / violation rate": lambda t: _rv(by_task[t]["sac_alam"]["return_mean"],
                                                            by_task[t]["sac_alam"]["violation_rate_mean"]),
        "(1) beats every safe baseline on both": lambda t: claim1_text(claims[(t, 1)]),
        "goal 1: return >= every baseline as safe": lambda t: goal1_text(goals[t], by_task[t], False)
        if t in goals else "—",
        "goal 1 on the last fifth of training": lambda t: goal1_text(goals_last[t], by_task[t], True)
        if t in goals_last else "—",
        "(2) lower `lambda_osc` / `train_violation_osc` than dual ascent": lambda t: claim2_text(
            claims[(t, 2)], ablations.get((t, "alam_ascent"))),
        f"(3) lambda's calibration AUROC (goal 2: >= {AUROC_GOAL})": lambda t: auroc_text(
            entries.get((t, "sac_alam"), [])),
        "`fac`'s lambda AUROC": lambda t: auroc_text(entries.get((t, "fac"), [])),
        "`sac_alam` minus each ablation, paired by seed (95 % interval): return / violation rate":
            lambda t: ablation_text([ablations[(t, a)] for a in report.ABLATIONS if (t, a) in ablations]),
        "goal 3: violation rate behind the monitor at x2 (goal: 0)": x2_text,
    }  # fmt: skip
    lines = ["| | " + " | ".join(steps(t) for t in tasks) + " |", "|---" * (len(tasks) + 1) + "|"]
    for label, cell in cells.items():
        lines.append(f"| {label} | " + " | ".join(cell(t) for t in tasks) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
