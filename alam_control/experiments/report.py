"""``alam report SWEEP_DIR``: one table and a few figures from a sweep's trials.

For every finished run directory under SWEEP_DIR (``summary.json`` present) the metrics of DESIGN.md section 7
at the final evaluation are grouped by (task, algorithm, other differing config keys) and summarised over seeds
as a mean with a 95% Student-t interval. Written to the output directory:

    report.md               the table (mean +- half-width of the interval; "—" where undefined, e.g. one seed)
    report.csv              the same numbers, one row per group: <metric>_mean, _ci_low, _ci_high, _n
    curves_<task>.png       evaluation return, cost and probe-mean lambda vs env step: mean line and 95% band
                            over seeds, one line per algorithm (one figure per task)

Unfinished run directories are listed in report.md and left out of the numbers and curves, so a table never
mixes final metrics with mid-training ones. In a sweep directory with its manifest (``sweep.json``), a trial counts
as finished only when the manifest records it as done (not one finished under a budget raised since).
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from alam_control import config as config_lib
from alam_control.experiments.sweep.spec import TRIALS_DIR
from alam_control.experiments.sweep.trial import MANIFEST, done_trials
from alam_control.learn import rundir

METRICS = (
    "return",
    "cost",
    "violation_rate",
    "lambda_osc",
    "cost_osc",
    "train_violation_osc",
    "train_cost",
    "risk_auroc",
)
"""DESIGN.md section 7 names, read from each run's summary.json (the final evaluation + whole-run metrics)."""
CURVES = (
    ("return", "eval return"),
    ("cost", "eval cost (per episode)"),
    ("lambda_probe", "lambda (probe mean, symlog)"),
)
"""eval.csv columns plotted, with their axis labels."""
# Config keys that cannot change what a run learns, so runs that differ only in them are the same experiment.
_NOT_A_SETTING = {"seed", "task", "algo.name", "algo.label", "train.threads", "train.device", "train.compile"}
_DASH = "—"


@dataclass
class RunResult:
    """One finished run: where it is, its flattened config, its summary and its evaluation curve."""

    run_dir: Path
    config: dict[str, Any]
    """Flattened resolved config (``sac.hidden`` -> [64, 64])."""
    summary: dict[str, Any]
    evals: list[dict[str, float]] = field(default_factory=list)
    """eval.csv rows as floats (``step``, ``return``, ``cost``, ``lambda_probe``, ...)."""


def find_runs(sweep_dir: str | Path) -> tuple[list[RunResult], list[Path]]:
    """Every run directory (one holding ``config.yaml``) below ``sweep_dir``, or only below ``sweep_dir/trials``
    when that exists (a sweep directory: what else lives there, e.g. exported bundles with their training record,
    is not a trial).

    Returns:
        (finished runs, sorted by path; unfinished run directories).
    """
    root = Path(sweep_dir)
    # A sweep's manifest knows what a trial's own files cannot: that the sweep's budget was raised after the trial
    # finished (its config.yaml still holds the old budget until the sweep resumes it). Only its "done" count then.
    done = done_trials(root) if (root / MANIFEST).exists() else None  # a committed snapshot has none
    if (root / TRIALS_DIR).is_dir():
        root = root / TRIALS_DIR
    finished, unfinished = [], []
    for cfg_path in sorted(root.rglob(rundir.CONFIG)):
        run = cfg_path.parent
        if not (run / rundir.SUMMARY).exists() or (done is not None and run.name not in done):
            unfinished.append(run)
            continue
        config = config_lib.flatten(yaml.safe_load(cfg_path.read_text()) or {})
        summary = rundir.read_summary(run)
        if summary.get("steps") != config.get("train.total_steps"):
            unfinished.append(run)  # a summary from before the step budget was extended
            continue
        finished.append(RunResult(run, config, summary, rundir.read_evals(run)))
    return finished, unfinished


def interval(values: list[float]) -> tuple[float, float, float, int]:
    """Mean and 95% Student-t interval of the finite entries of ``values``.

    Returns:
        (mean, low, high, n): n finite values; NaN bounds when n < 2, all NaN when n == 0.
    """
    from scipy import stats

    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(x.mean())
    if n == 1:
        return mean, math.nan, math.nan, 1
    half = float(stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half, n


def _value_text(v: Any) -> str:
    if isinstance(v, list | tuple):
        return "x".join(map(str, v))
    return str(v)


def algo_label(config: dict[str, Any]) -> str:
    """The name a run reports under: ``algo.label`` when set (an ablation's name), else ``algo.name``."""
    return str(config.get("algo.label") or config.get("algo.name"))


def group_runs(runs: list[RunResult]) -> dict[tuple[str, str, str], list[RunResult]]:
    """Group runs by (task, algo, setting); algo is :func:`algo_label`, and setting names the other config keys
    that differ between runs of the same task and algo (e.g. ``multiplier.penalty_coef=1.0``), so an ablation grid
    is not averaged into one row. Keys that differ only between tasks or algorithms (a per-task step budget) are
    not settings. Seeds are the replicates."""
    by_algo: dict[tuple[str, str], list[RunResult]] = defaultdict(list)
    for r in runs:
        by_algo[(str(r.config.get("task")), algo_label(r.config))].append(r)
    groups: dict[tuple[str, str, str], list[RunResult]] = defaultdict(list)
    for (task, algo), members in by_algo.items():
        keys = sorted({k for r in members for k in r.config})
        varying = [
            k for k in keys if k not in _NOT_A_SETTING and len({json.dumps(r.config.get(k)) for r in members}) > 1
        ]
        for r in members:
            setting = ",".join(f"{k}={_value_text(r.config.get(k))}" for k in varying)
            groups[(task, algo, setting)].append(r)
    for (task, algo, setting), members in groups.items():
        # Seeds are the replicates: a copied run counted twice would narrow every interval.
        by_seed: dict[str, list[str]] = defaultdict(list)
        for r in members:
            by_seed[json.dumps(r.config.get("seed"))].append(str(r.run_dir))
        repeated = {seed: dirs for seed, dirs in by_seed.items() if len(dirs) > 1}
        if repeated:
            seed, dirs = next(iter(repeated.items()))
            raise ValueError(
                f"{task} {algo}{' ' + setting if setting else ''}: seed {seed} appears in {len(dirs)} runs "
                f"({', '.join(dirs)}); each seed must be one replicate: move the copies out of the sweep directory"
            )
    return dict(sorted(groups.items()))


def aggregate(groups: dict[tuple[str, str, str], list[RunResult]]) -> list[dict[str, Any]]:
    """One row per group: task, algo, setting, n_seeds, seeds and, per metric, mean / ci_low / ci_high / n."""
    rows = []
    for (task, algo, setting), runs in groups.items():
        row: dict[str, Any] = {
            "task": task,
            "algo": algo,
            "setting": setting,
            "n_seeds": len(runs),
            "seeds": ";".join(str(r.config.get("seed")) for r in sorted(runs, key=lambda r: r.config.get("seed", 0))),
        }
        for m in METRICS:
            mean, low, high, n = interval([_as_float(r.summary.get(m)) for r in runs])
            row.update({f"{m}_mean": mean, f"{m}_ci_low": low, f"{m}_ci_high": high, f"{m}_n": n})
        flat = [plateau(r.evals) for r in runs]
        row["plateaued"] = sum(p["plateaued"] == 1.0 for p in flat)
        row["plateau_shown"] = sum(p["shown"] == 1.0 for p in flat)
        row["plateau_gain"] = interval([p["gain"] for p in flat])[0]
        for m in LAST_FIFTH:
            mean, low, high, n = interval([last_fifth(r.evals, m) for r in runs])
            row.update({f"{m}_last_mean": mean, f"{m}_last_ci_low": low, f"{m}_last_ci_high": high, f"{m}_last_n": n})
        # Unconstrained sac logs lambda 0 and has no multiplier to be pinned.
        stuck = [
            multiplier_stuck(r.evals, float(r.config.get("multiplier.lambda_max", 10.0)))
            for r in runs
            if r.config.get("algo.name") != "sac"
        ]
        row["multiplier_stuck"] = sum(bool(k) for k in stuck)
        row["multiplier_stuck_at"] = ";".join(sorted({k for k in stuck if k}))
        rows.append(row)
    return rows


PLATEAU_WINDOW = 0.2
"""Share of a run's evaluations in each of the two windows `plateau` compares."""
PLATEAU_GAIN = 0.05
"""A run has plateaued when its last window gains at most this share of its curve's range over the one before."""


def plateau(evals: list[dict[str, float]], column: str = "return") -> dict[str, float]:
    """Has a learning curve stopped rising? The mean of the last `PLATEAU_WINDOW` of the evaluations against the
    window before it, relative to the range the curve covered (so one rule serves returns of 20 and of 700).

    Plateaued: the gain is at most `PLATEAU_GAIN` of the range, or within two standard errors of the difference of
    the two window means (evaluations of a few episodes are noisy; a rise inside that noise is not a trend). That
    is the absence of a rise, not evidence of a plateau: a curve that swings over its whole range passes it. Shown:
    the rise is bounded, gain + noise <= `PLATEAU_GAIN` (the upper end of the gain's two-standard-error band is
    inside the plateau's tolerance), which a swinging curve fails.

    Args:
        evals: eval.csv rows in step order.

    Returns:
        {"last", "before", "gain" (last - before, over max - min of the curve), "noise" (2 standard errors of
        last - before, same units as gain), "plateaued" (1.0 / 0.0), "shown" (1.0 / 0.0)}; all NaN with fewer
        than 4 evaluations.
    """
    values = np.asarray([_as_float(e.get(column)) for e in evals], dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) < 4:
        return dict.fromkeys(("last", "before", "gain", "noise", "plateaued", "shown"), math.nan)
    k = _window(len(values))
    last, before = values[-k:], values[-2 * k : -k]
    span = float(values.max() - values.min())
    if span == 0.0:
        return {"last": float(last.mean()), "before": float(before.mean()), "gain": 0.0, "noise": 0.0,
                "plateaued": 1.0, "shown": 1.0}  # fmt: skip
    gain = float(last.mean() - before.mean()) / span
    noise = 2.0 * math.sqrt((last.var(ddof=1) + before.var(ddof=1)) / k) / span
    return {"last": float(last.mean()), "before": float(before.mean()), "gain": gain, "noise": noise,
            "plateaued": float(gain <= max(PLATEAU_GAIN, noise)),
            "shown": float(gain + noise <= PLATEAU_GAIN)}  # fmt: skip


def _window(n: int) -> int:
    """Evaluations in each of `plateau`'s two windows (and in `multiplier_stuck`'s one) out of n >= 4."""
    return min(max(2, round(PLATEAU_WINDOW * n)), n // 2)


STUCK_FLOOR = 1e-6
"""A multiplier below this share of its cap reads as 0 (the sigmoid head's output at a logit of about -14)."""
STUCK_CAP_SHARE = 0.95
"""A multiplier with at least this share of its replay states at the cap reads as pinned there."""


def multiplier_stuck(evals: list[dict[str, float]], lambda_max: float) -> str:
    """Was the multiplier pinned at a bound over the last `PLATEAU_WINDOW` of the evaluations? Its `lambda_osc` is
    then ~0 by construction, not because the dual settled, so claim 2 cannot read it as "no oscillation".

    - "at 0 while violating": lambda's mean over the evaluation's visited states below `STUCK_FLOOR` * lambda_max
      at every evaluation of the window while the evaluation policy violated at every one. At 0 where the
      constraint holds is the dual's own answer (the cart-pole's safe policies); while it is violated, dual ascent
      through the sigmoid head has lost its gradient: d lambda / d logit = lambda (1 - lambda / lambda_max) ~ 0.
    - "at the cap": `STUCK_CAP_SHARE` or more of the replay states at the cap at every evaluation of the window.

    Args:
        evals: eval.csv rows in step order (``lambda_mean``, ``violation_rate``, ``replay_cap_share``).
        lambda_max: the run's multiplier cap.

    Returns:
        The bound's name, or "" when not pinned or with fewer than 4 evaluations.
    """
    if len(evals) < 4:
        return ""
    window = evals[-_window(len(evals)) :]

    def every(column: str, test: Any) -> bool:
        values = [_as_float(e.get(column)) for e in window]
        return all(math.isfinite(v) and test(v) for v in values)

    if every("lambda_mean", lambda v: v < STUCK_FLOOR * lambda_max) and every("violation_rate", lambda v: v > 0):
        return "at 0 while violating"
    if every("replay_cap_share", lambda v: v >= STUCK_CAP_SHARE):
        return "at the cap"
    return ""


LAST_FIFTH = ("return", "violation_rate")
"""Final-evaluation metrics also read as each seed's mean over the last `PLATEAU_WINDOW` of its evaluations
(`last_fifth`). The policy still changes from one evaluation to the next, so the final figure depends on where
training stopped: the cart-pole's `sac_alam` seed 0 evaluated 125-371 over its last 20k steps, while 40 episodes
of its final policy span 335-339 (the evaluation is precise, the policy is not settled); the walker's `sac_lag`
ended at 93.6 after evaluations up to 953. A verdict that flips between the two readings is not settled."""


def last_fifth(evals: list[dict[str, float]], column: str) -> float:
    """Mean of ``column`` over the last `PLATEAU_WINDOW` of the evaluations (`plateau`'s last window); NaN with
    fewer than 4 finite values."""
    values = np.asarray([_as_float(e.get(column)) for e in evals], dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) < 4:
        return math.nan
    return float(values[-_window(len(values)) :].mean())


def on_last_fifth(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`aggregate` rows with each `LAST_FIFTH` metric's final-evaluation figures replaced by its last-fifth ones, so
    `claim_verdicts` and `goal_verdicts` can be read on either."""
    stats = ("mean", "ci_low", "ci_high", "n")
    return [{**r, **{f"{m}_{s}": r[f"{m}_last_{s}"] for m in LAST_FIFTH for s in stats}} for r in rows]


def time_to_bar(evals: list[dict[str, float]], bar: tuple[float, float]) -> dict[str, float] | None:
    """The first evaluation that clears ``bar`` = (minimum return, maximum violation rate): when a run first had a
    safe policy (benchmarks/time_to_safe.py).

    Args:
        evals: eval.csv rows in step order.

    Returns:
        That eval.csv row, or None when no evaluation clears the bar.
    """
    return next((row for row in evals if row["return"] >= bar[0] and row["violation_rate"] <= bar[1]), None)


SAFE_BASELINES = ("sac_lag", "sac_pid_lag", "fac")
"""The constrained baselines claim 1 compares SAC-ALaM with (unconstrained `sac` is not a safe-RL baseline)."""
DUAL_ASCENT = ("fac", "alam_ascent")
"""The multipliers trained by dual ascent whose oscillations claim 2 says SAC-ALaM removes."""


def claim_verdicts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Claims 1 and 2 of docs/results.md per task, on the means of `aggregate` rows (one setting per algo).

    - Claim 1, "beats safe-RL baselines in both safety and return": supported when sac_alam's mean return is at
      least, and its mean violation rate at most, those of every one of `SAFE_BASELINES` present (a baseline with a
      higher return at more violations is not beaten, nor one with fewer violations at a lower return).
      `undominated` lists the baselines it does not beat; `separated`, those whose return interval is disjoint
      from sac_alam's; `separated_safety`, those whose violation-rate interval is (unpaired 95 % t-intervals
      that do not overlap: a conservative reading of a difference between two methods).
    - Claim 2, "removes the oscillations of dual ascent": sac_alam's `lambda_osc` and `train_violation_osc` are
      both below those of every `DUAL_ASCENT` variant present. A variant whose multiplier `multiplier_stuck` finds
      pinned at a bound on every seed has no oscillation to remove (its `lambda_osc` is ~0 because it failed
      another way): it is left out of the comparison and named in `pinned`. n/a when sac_alam's own multiplier is
      pinned on any seed, or no variant is left.

    Returns:
        One dict per task with a sac_alam row: task, claim (1 or 2), verdict ("supported", "not supported" or
        "n/a" when a compared row is missing or its mean undefined), and the figures it rests on.
    """
    by_task: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        by_task[r["task"]][r["algo"]] = r
    verdicts = []
    for task, algos in sorted(by_task.items()):
        alam = algos.get("sac_alam")
        if alam is None:
            continue
        baselines = [algos[a] for a in SAFE_BASELINES if a in algos]
        if baselines and _finite(alam, *baselines):
            ret, viol = alam["return_mean"], alam["violation_rate_mean"]
            undominated = [
                b["algo"] for b in baselines if not (ret >= b["return_mean"] and viol <= b["violation_rate_mean"])
            ]
            separated = [b["algo"] for b in baselines if _disjoint(alam, b, "return")]
            separated_safety = [b["algo"] for b in baselines if _disjoint(alam, b, "violation_rate")]
            verdicts.append({
                "task": task, "claim": 1, "verdict": "not supported" if undominated else "supported",
                "undominated": undominated, "separated": separated, "separated_safety": separated_safety,
                "sac_alam": (ret, viol),
                "baselines": {b["algo"]: (b["return_mean"], b["violation_rate_mean"]) for b in baselines},
            })  # fmt: skip
        else:
            verdicts.append({"task": task, "claim": 1, "verdict": "n/a"})
        present = [algos[a] for a in DUAL_ASCENT if a in algos]
        pinned = [r for r in present if _pinned_on_every_seed(r)]
        ascent = [r for r in present if r not in pinned]
        if ascent and not alam.get("multiplier_stuck"):
            metrics_ = ("lambda_osc", "train_violation_osc")
            pairs = [(alam[f"{m}_mean"], r[f"{m}_mean"]) for m in metrics_ for r in ascent]
            if any(not (math.isfinite(a) and math.isfinite(b)) for a, b in pairs):
                verdict = "n/a"
            else:
                verdict = "supported" if all(a < b for a, b in pairs) else "not supported"
            verdicts.append({
                "task": task, "claim": 2, "verdict": verdict,
                **{m: (alam[f"{m}_mean"], {r["algo"]: r[f"{m}_mean"] for r in ascent}) for m in metrics_},
                "pinned": {r["algo"]: r["multiplier_stuck_at"] for r in pinned},
            })  # fmt: skip
        else:
            verdicts.append({"task": task, "claim": 2, "verdict": "n/a",
                             "pinned": {r["algo"]: r["multiplier_stuck_at"] for r in pinned}})  # fmt: skip
    return verdicts


def _finite(*rows: dict[str, Any]) -> bool:
    """Every row has a finite mean return and violation rate (a comparison with NaN would read as a verdict)."""
    return all(math.isfinite(_as_float(r.get(f"{m}_mean"))) for r in rows for m in ("return", "violation_rate"))


def _pinned_on_every_seed(row: dict[str, Any]) -> bool:
    return int(row.get("multiplier_stuck", 0)) == int(row.get("n_seeds", 0)) > 0


GOAL_TASKS = 3
"""Issue 19's goal: sac_alam meets `goal_verdicts` on at least this many of the four tasks."""


def goal_verdicts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The project's goal per task, on means: sac_alam's return is at least that of every safe baseline whose
    violation rate is no higher than sac_alam's (weaker than claim 1, which also needs sac_alam to be the safer).

    Returns:
        One dict per task with a sac_alam row and at least one safe baseline: task, verdict ("met" / "not met";
        "n/a" when a compared mean is undefined),
        ``as_safe`` (the baselines at a violation rate no higher than sac_alam's; the goal holds vacuously, and
        says so, when none is) and ``beaten_by`` (those of them with a higher return).
    """
    by_task: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        by_task[r["task"]][r["algo"]] = r
    out = []
    for task, algos in sorted(by_task.items()):
        alam, baselines = algos.get("sac_alam"), [algos[a] for a in SAFE_BASELINES if a in algos]
        if alam is None or not baselines:
            continue
        if not _finite(alam, *baselines):
            out.append({"task": task, "verdict": "n/a", "as_safe": [], "beaten_by": []})
            continue
        as_safe = [b for b in baselines if b["violation_rate_mean"] <= alam["violation_rate_mean"]]
        beaten_by = [b["algo"] for b in as_safe if b["return_mean"] > alam["return_mean"]]
        out.append({"task": task, "verdict": "not met" if beaten_by else "met",
                    "as_safe": [b["algo"] for b in as_safe], "beaten_by": beaten_by})  # fmt: skip
    return out


ABLATIONS = {
    "alam_nopenalty": "the actor's PHR quadratic penalty (the actor keeps the linear lambda * g)",
    "alam_ascent": "the multiplier's regression toward the dual target (dual ascent instead)",
}
"""The SAC-ALaM ablations of the evidence grid: label -> the component the ablation removes."""
ABLATION_OSC = ("lambda_osc", "train_violation_osc")
"""Claim 2's measures, also compared per seed by `ablation_deltas`."""


def _disjoint(a: dict[str, Any], b: dict[str, Any], metric: str) -> bool:
    """Whether two `aggregate` rows' intervals of ``metric`` do not overlap (False where either is missing)."""
    low_a, high_a = a.get(f"{metric}_ci_low", math.nan), a.get(f"{metric}_ci_high", math.nan)
    low_b, high_b = b.get(f"{metric}_ci_low", math.nan), b.get(f"{metric}_ci_high", math.nan)
    return low_a > high_b or high_a < low_b


def ablation_deltas(groups: dict[tuple[str, str, str], list[RunResult]]) -> list[dict[str, Any]]:
    """What each component of SAC-ALaM buys: per task and `ABLATIONS` entry, sac_alam minus the ablation, paired
    by seed (both trained with the same seed: its environment draws, network init and replay sampling), final and
    over the last fifth (`last_fifth`), and claim 2's oscillation measures (`ABLATION_OSC`: against `alam_ascent`
    they are claim 2's comparison, paired). A difference above 0 means sac_alam is higher: better on return, worse
    on violation rate and oscillation. Pairing removes what a seed shares between the two runs from the interval.

    Returns:
        One row per (task, ablation, setting) with both runs on at least one seed: task, ablation, setting,
        n (paired seeds), seeds, and ``m_delta_{mean, ci_low, ci_high, n}`` (`interval` of the per-seed
        differences) for each `LAST_FIFTH` and `ABLATION_OSC` metric m, ``m_last_delta_{...}`` for the former.
    """
    rows = []
    for (task, algo, setting), ablated in groups.items():
        if algo not in ABLATIONS or (task, "sac_alam", setting) not in groups:
            continue
        base = {json.dumps(r.config.get("seed")): r for r in groups[(task, "sac_alam", setting)]}
        pairs = sorted(
            ((base[k], r) for r in ablated if (k := json.dumps(r.config.get("seed"))) in base),
            key=lambda p: p[0].config.get("seed", 0),
        )
        if not pairs:
            continue
        row: dict[str, Any] = {"task": task, "ablation": algo, "setting": setting, "n": len(pairs),
                               "seeds": ";".join(str(a.config.get("seed")) for a, _ in pairs)}  # fmt: skip
        reads = [(f"{m}_delta", lambda r, m=m: _as_float(r.summary.get(m))) for m in LAST_FIFTH + ABLATION_OSC]
        reads += [(f"{m}_last_delta", lambda r, m=m: last_fifth(r.evals, m)) for m in LAST_FIFTH]
        for key, read in reads:
            mean, low, high, n = interval([read(a) - read(b) for a, b in pairs])
            row.update({f"{key}_mean": mean, f"{key}_ci_low": low, f"{key}_ci_high": high, f"{key}_n": n})
        rows.append(row)
    return rows


def delta_text(row: dict[str, Any], key: str, side: bool = True) -> str:
    """An `ablation_deltas` figure as table text: signed mean ± half-width and, with ``side``, whether the interval
    lies above 0, below 0 or spans it."""
    mean, low, high, n = _stats(row, key)
    if n == 0:
        return _DASH
    sign = "+" if mean > 0 else ""
    if n == 1:
        return f"{sign}{num(mean, 3)} (1 seed)"
    text = f"{sign}{num(mean, 3)} ± {num((high - low) / 2.0, 2)}"
    if not side:
        return text
    return text + (" (above 0)" if low > 0 else " (below 0)" if high < 0 else " (spans 0)")


def _as_float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def num(x: float, sig: int) -> str:
    """``sig`` significant digits in fixed notation (an interval of 210 reads better than 2.1e+02); scientific
    notation only for very large or small magnitudes."""
    if not math.isfinite(x):
        return _DASH
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    if mag >= 6 or mag < -3:
        return f"{x:.{sig}g}"
    return f"{x:.{max(sig - 1 - mag, 0)}f}"


def _stats(row: dict[str, Any], key: str) -> tuple[float, float, float, int]:
    """A row's `interval` figures stored under ``key`` (``key_mean``, ``key_ci_low``, ``key_ci_high``, ``key_n``)."""
    return row[f"{key}_mean"], row[f"{key}_ci_low"], row[f"{key}_ci_high"], row[f"{key}_n"]


def _cell(row: dict[str, Any], metric: str) -> str:
    mean, low, high, n = _stats(row, metric)
    if n == 0:
        return _DASH
    text = f"{num(mean, 4)} ± {num((high - low) / 2.0, 2)}"
    return text if n == row["n_seeds"] else f"{text} ({n}/{row['n_seeds']})"  # some seeds undefined (e.g. AUROC)


def to_markdown(
    rows: list[dict[str, Any]],
    sweep_dir: Path,
    unfinished: list[Path],
    figures: list[Path],
    ablations: list[dict[str, Any]] | None = None,
) -> str:
    """The report as Markdown: the table, the verdicts, the ablations (`ablation_deltas`), the figures, and the
    runs left out."""
    with_setting = any(r["setting"] for r in rows)
    head = ["task", "algo"] + (["setting"] if with_setting else []) + ["n"] + list(METRICS) + ["plateaued"]
    lines = [
        f"# Sweep report: {sweep_dir}",
        "",
        "Final evaluation of each run (DESIGN.md section 7 metrics): mean ± half-width of the 95% Student-t "
        f"interval over seeds ({_DASH}: undefined, e.g. a single seed; (k/n): metric defined for k of n seeds).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    for r in rows:
        cells = [r["task"], r["algo"]] + ([r["setting"] or _DASH] if with_setting else []) + [str(r["n_seeds"])]
        flat = f"{r['plateaued']}/{r['n_seeds']} ({num(r['plateau_gain'], 2)}; shown {r['plateau_shown']})"
        lines.append("| " + " | ".join(cells + [_cell(r, m) for m in METRICS] + [flat]) + " |")
    lines += [
        "",
        f"*plateaued*: seeds whose last {PLATEAU_WINDOW:.0%} of evaluations gain at most {PLATEAU_GAIN:.0%} of their "
        "return curve's range over the window before, or no more than two standard errors of that difference (in "
        "brackets: the mean gain, as a share of the range; *shown*: seeds whose gain plus those two standard errors "
        f"is at most {PLATEAU_GAIN:.0%}, i.e. a plateau the evaluations bound, which a curve swinging over its range "
        "fails; the rest of the plateaued seeds show no rise, not a plateau).",
    ]
    last = on_last_fifth(rows)
    lines += _last_fifth_lines(rows, last, with_setting) + _claim_lines(rows, last) + _goal_lines(rows, last)
    lines += _ablation_lines(ablations)
    if figures:
        lines += ["", "## Learning curves", ""]
        lines += [f"![{p.stem}]({p.name})" for p in figures]
    if unfinished:
        lines += ["", f"Left out (unfinished): {', '.join(str(p) for p in unfinished)}"]
    return "\n".join(lines) + "\n"


def _last_fifth_lines(rows: list[dict[str, Any]], last: list[dict[str, Any]], with_setting: bool) -> list[str]:
    """Return and violation rate at the final evaluation beside their `on_last_fifth` readings."""
    head = ["task", "algo"] + (["setting"] if with_setting else []) + ["n"]
    head += ["return, final", "return, last fifth", "violation_rate, final", "violation_rate, last fifth"]
    lines = [
        "",
        f"## Return and violation rate over the last {PLATEAU_WINDOW:.0%} of training",
        "",
        "Each seed's mean over its last evaluations (the plateau test's last window), then mean ± half-width over "
        "seeds: a reading that does not hang on where training stopped.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    for r, q in zip(rows, last, strict=True):
        cells = [r["task"], r["algo"]] + ([r["setting"] or _DASH] if with_setting else []) + [str(r["n_seeds"])]
        cells += [_cell(r, "return"), _cell(q, "return"), _cell(r, "violation_rate"), _cell(q, "violation_rate")]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _claim_lines(rows: list[dict[str, Any]], last: list[dict[str, Any]]) -> list[str]:
    """`claim_verdicts` on the final evaluation and on the last fifth, with the figures of the former."""
    verdicts = claim_verdicts(rows)
    if not verdicts:
        return []
    again = {(v["task"], v["claim"]): v["verdict"] for v in claim_verdicts(last)}
    lines = ["", "## Claims (on means over seeds)", ""]
    lines += ["| task | claim | verdict | on the last fifth | figures (final evaluation) |", "|---|---|---|---|---|"]
    lines += [f"| {v['task']} | {v['claim']} | {v['verdict']} | {again[(v['task'], v['claim'])]} "
              f"| {_verdict_figures(v)} |" for v in verdicts]  # fmt: skip
    return lines + ["", "Claim 2 reads whole-run measures, so its two verdicts agree by construction."]


def _goal_lines(rows: list[dict[str, Any]], last: list[dict[str, Any]]) -> list[str]:
    """`goal_verdicts` on the final evaluation and on the last fifth."""
    goals = goal_verdicts(rows)
    if not goals:
        return []
    goals_last = {g["task"]: g for g in goal_verdicts(last)}
    met = sum(g["verdict"] == "met" for g in goals)
    met_last = sum(g["verdict"] == "met" for g in goals_last.values())
    lines = [
        "",
        f"## Goal: sac_alam's return >= every safe baseline's at a violation rate no higher "
        f"(met on {met} of {len(goals)} tasks, on the last fifth {met_last}; the goal is {GOAL_TASKS} of 4)",
        "",
        "| task | verdict | baselines as safe as sac_alam | of them with a higher return | on the last fifth: verdict, "
        "as safe, higher return |",
        "|---|---|---|---|---|",
    ]
    for g in goals:
        as_safe, beaten_by = ", ".join(g["as_safe"]) or "none (vacuous)", ", ".join(g["beaten_by"]) or _DASH
        again = _goal_text(goals_last[g["task"]])
        lines.append(f"| {g['task']} | {g['verdict']} | {as_safe} | {beaten_by} | {again} |")
    return lines


def _ablation_lines(ablations: list[dict[str, Any]] | None) -> list[str]:
    """`ablation_deltas` as a table."""
    if not ablations:
        return []
    lines = [
        "",
        "## Ablations: sac_alam minus each ablation, paired by seed",
        "",
        "Per seed, sac_alam's figure minus the ablation's (same seed), then mean ± half-width of the 95% t-interval "
        "over the seeds both have; in brackets whether the interval lies above 0, below 0 or spans it. Above 0 "
        "is better for return, worse for violation rate and the oscillations (claim 2's measures: against "
        "`alam_ascent`, claim 2's comparison paired by seed). "
        + " ".join(f"`{a}` removes {what}." for a, what in ABLATIONS.items()),
        "",
        "| task | ablation | seeds | return, final | return, last fifth | violation_rate, final "
        "| violation_rate, last fifth | lambda_osc | train_violation_osc |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for a in ablations:
        name = f"{a['ablation']} {a['setting']}".strip()
        keys = ["return_delta", "return_last_delta", "violation_rate_delta", "violation_rate_last_delta"]
        cells = [delta_text(a, k) for k in keys + [f"{m}_delta" for m in ABLATION_OSC]]
        lines.append(f"| {a['task']} | {name} | {a['n']} | " + " | ".join(cells) + " |")
    return lines


def _goal_text(g: dict[str, Any]) -> str:
    return f"{g['verdict']}; {', '.join(g['as_safe']) or 'none'}; {', '.join(g['beaten_by']) or _DASH}"


def _verdict_figures(v: dict[str, Any]) -> str:
    """The numbers a `claim_verdicts` entry rests on, as table text (a dash when a compared row is missing)."""
    if "sac_alam" in v:  # claim 1
        ret, viol = v["sac_alam"]
        others = ", ".join(f"{a} {num(r, 4)} / {num(x, 2)}" for a, (r, x) in v["baselines"].items())
        text = f"return / violation rate: sac_alam {num(ret, 4)} / {num(viol, 2)}; {others}"
        if v["undominated"]:
            text += f"; not beaten: {', '.join(v['undominated'])}"
        return text + f"; return intervals disjoint from: {', '.join(v['separated']) or 'none'}"
    if "lambda_osc" in v:  # claim 2
        parts = []
        for m in ("lambda_osc", "train_violation_osc"):
            alam, others = v[m]
            parts.append(f"{m} {num(alam, 2)} vs " + ", ".join(f"{a} {num(x, 2)}" for a, x in others.items()))
        return "; ".join(parts + _pinned_text(v))
    return "; ".join(_pinned_text(v)) or _DASH


def _pinned_text(v: dict[str, Any]) -> list[str]:
    pinned = v.get("pinned") or {}
    if not pinned:
        return []
    return [f"left out, multiplier pinned on every seed: {', '.join(f'{a} ({k})' for a, k in pinned.items())}"]


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    fields = (
        ["task", "algo", "setting", "n_seeds", "seeds"]
        + [f"{m}_{s}" for m in METRICS for s in ("mean", "ci_low", "ci_high", "n")]
        + [f"{m}_last_{s}" for m in LAST_FIFTH for s in ("mean", "ci_low", "ci_high", "n")]
        + ["plateaued", "plateau_shown", "plateau_gain", "multiplier_stuck", "multiplier_stuck_at"]
    )
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def curve_band(runs: list[RunResult], column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean and 95% band over seeds of an eval.csv column at each evaluation step.

    Returns:
        (steps [K], mean [K], low [K], high [K]); the band is NaN at steps with fewer than 2 finite values.
    """
    by_step: dict[float, list[float]] = defaultdict(list)
    for r in runs:
        for e in r.evals:
            by_step[e["step"]].append(e.get(column, math.nan))
    steps = np.array(sorted(by_step))
    stats = np.array([interval(by_step[s])[:3] for s in steps]).reshape(-1, 3)
    return steps, stats[:, 0], stats[:, 1], stats[:, 2]


def plot_curves(groups: dict[tuple[str, str, str], list[RunResult]], out_dir: Path) -> list[Path]:
    """One PNG per task (900x300 px): return, cost and lambda vs step, a line + band per algorithm."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, and no GUI backend picked up from the environment
    import matplotlib.pyplot as plt

    paths = []
    for task in sorted({k[0] for k in groups}):
        fig, axes = plt.subplots(1, len(CURVES), figsize=(9, 3), dpi=100)
        for (t, algo, setting), runs in groups.items():
            if t != task:
                continue
            label = f"{algo} {setting}".strip() + f" (n={len(runs)})"
            for ax, (column, _) in zip(axes, CURVES, strict=True):
                steps, mean, low, high = curve_band(runs, column)
                if not len(steps):
                    continue
                if column == "lambda_probe":  # multipliers are >= 0; a wide interval must not draw below 0
                    low = np.maximum(low, 0.0)
                (line,) = ax.plot(steps, mean, label=label, linewidth=1.2)
                ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        for ax, (_, ylabel) in zip(axes, CURVES, strict=True):
            ax.set_xlabel("env step")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=7)
            ax.xaxis.label.set_size(8)
            ax.yaxis.label.set_size(8)
        # A diverging multiplier (fac's reaches 1e6) would flatten every other lambda curve on a linear axis.
        axes[-1].set_yscale("symlog", linthresh=0.01)
        axes[0].legend(fontsize=6)
        fig.suptitle(task, fontsize=9)
        fig.tight_layout()
        path = out_dir / f"curves_{task}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


def report(sweep_dir: str | Path, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Aggregate the finished runs below ``sweep_dir`` and write report.md, report.csv and curves_<task>.png.

    Returns:
        ``{"rows": [...], "markdown": str, "files": [Path, ...], "unfinished": [Path, ...]}``.

    Raises:
        FileNotFoundError: ``sweep_dir`` has no finished run.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"{sweep_dir} is not a directory")
    runs, unfinished = find_runs(sweep_dir)
    if not runs:
        raise FileNotFoundError(
            f"no finished run under {sweep_dir} ({len(unfinished)} unfinished): a run is finished when its "
            f"{rundir.SUMMARY} records train.total_steps steps"
        )
    out = Path(out_dir) if out_dir else sweep_dir
    out.mkdir(parents=True, exist_ok=True)
    groups = group_runs(runs)
    rows = aggregate(groups)
    figures = plot_curves(groups, out)
    ablations = ablation_deltas(groups)
    markdown = to_markdown(rows, sweep_dir, unfinished, figures, ablations)
    (out / "report.md").write_text(markdown)
    write_csv(rows, out / "report.csv")
    return {"rows": rows, "ablations": ablations, "markdown": markdown, "unfinished": unfinished,
            "files": [out / "report.md", out / "report.csv", *figures]}  # fmt: skip
