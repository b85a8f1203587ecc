"""Time to a safe policy: wall-clock seconds of training until the deterministic evaluation first clears a
task's bar (a return at least the bar's, at a violation rate no higher than the bar's), per method and seed.

Each trial trains in chunks of ``--eval-every`` steps through the real trainer, resuming bit-exactly from its
checkpoint after each chunk (``trainer.train(..., resume=True)``), and stops at the first evaluation that clears
the bar or at ``--budget`` steps. The time reported is the run's own training wall time (``summary.json``
``wall_time_s``, evaluations included, restarts excluded), so a method that needs fewer steps and a faster update
both show.

    .venv/bin/python benchmarks/time_to_safe.py                                      # cart-pole, 3 methods x 3 seeds
    .venv/bin/python benchmarks/time_to_safe.py --task point-safe_goal --budget 60000 --set train.precision=bfloat16

Prints one row per (method, seed) as it finishes, then a table: seeds that reached the bar, median time and steps
to it (over the seeds that reached it). Run directories go to ``--out`` (default runs/time_to_safe).

``--from-sweep DIR`` trains nothing: it reads the finished trials of a sweep (e.g. the evidence grid's committed
docs/results/paper) and prints, per task and algorithm, each trial's first evaluation that clears the task's bar.
Those trials ran to their full budget with evaluations every 3000-10000 steps, so the step is that coarse. Their
wall times are not comparable one by one: the grid ran beside other jobs and was paused (SIGSTOP) for latency
measurements, and a paused trial's clock runs on. So time to the bar is steps to the bar over the algorithm's
pace on that task, its fastest trial's env-steps/s (the least disturbed; evaluations included).

    .venv/bin/python benchmarks/time_to_safe.py --from-sweep docs/results/paper
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from alam_control import config as config_lib  # noqa: E402
from alam_control.experiments import report  # noqa: E402
from alam_control.learn import checkpoint, rundir, trainer  # noqa: E402
from benchmarks import pages  # noqa: E402

# (minimum return, maximum violation rate) of the deterministic evaluation. Cart-pole: the scripted safe swing-up
# returns 368.7 at zero violations (docs/tasks.md); the bar asks for 80 % of it.
BARS: dict[str, tuple[float, float]] = {
    "cartpole-safe_swingup": (300.0, 0.0),
    "point-safe_goal": (20.0, 0.005),
    "walker-safe_walk": (150.0, 0.005),
    "diffdrive-safe_navigate": (12.0, 0.005),
}
CONFIGS = {
    "cartpole-safe_swingup": "cartpole_safe_swingup",
    "point-safe_goal": "point_safe_goal",
    "walker-safe_walk": "walker_safe_walk",
    "diffdrive-safe_navigate": "diffdrive_safe_navigate",
}
METHODS = ("sac_alam", "sac_lag", "fac")


@dataclass
class Outcome:
    method: str
    seed: int
    reached: bool
    steps: int  # steps at the first evaluation that cleared the bar (else the budget)
    wall_s: float  # training wall time to that evaluation
    best: float  # the best evaluation return at a violation rate within the bar's (NaN if none)
    budget: int  # the steps the trial could train


def base_config(task: str, method: str) -> Path:
    """The task's per-method config file (configs/<task>_<alam|sac_lag|fac>.yaml)."""
    suffix = "alam" if method == "sac_alam" else method
    return REPO / "configs" / f"{CONFIGS[task]}_{suffix}.yaml"


def run_trial(
    task: str, method: str, seed: int, bar: tuple[float, float], budget: int, every: int, sets: list[str], out: Path
) -> Outcome:
    """Train chunk by chunk until the bar is cleared or the budget spent (resumes a trial left in ``out``)."""
    run = out / f"{task}-{method}-s{seed}"
    overrides = [f"seed={seed}", f"train.eval_every={every}", f"train.checkpoint_every={every}", *sets]
    while True:
        done = 0
        if (run / rundir.SUMMARY).exists():
            rows = rundir.read_evals(run)
            best = best_safe_return(rows, bar)
            hit = report.time_to_bar(rows, bar)
            if hit is not None:
                return Outcome(method, seed, True, int(hit["step"]), wall_at(run, int(hit["step"])), best, budget)
            done = int(rundir.read_summary(run)["steps"])
        if done >= budget:
            return Outcome(method, seed, False, done, float(rundir.read_summary(run)["wall_time_s"]), best, budget)
        # The next chunk ends at the next evaluation step after learning has started.
        starts = config_lib.load(
            base_config(task, method), [*overrides, f"train.total_steps={budget}"]
        ).train.learning_starts
        target = min(max(done, starts) // every * every + every, budget)
        cfg = config_lib.load(base_config(task, method), [*overrides, f"train.total_steps={target}"])
        trainer.train(cfg, run, resume=checkpoint.is_run(run), progress=False)


def best_safe_return(rows: list[dict[str, float]], bar: tuple[float, float]) -> float:
    """The best evaluation return at a violation rate within the bar's (NaN if none)."""
    return max((r["return"] for r in rows if r["violation_rate"] <= bar[1]), default=math.nan)


def from_sweep(sweep_dir: Path) -> dict[str, list[Outcome]]:
    """Per task with a bar, an Outcome for every finished trial of ``sweep_dir``: time to the bar at the fastest
    pace among the trials of its (task, algorithm), and for a trial that never cleared it, its budget at that pace."""
    runs, _ = report.find_runs(sweep_dir)
    runs = [r for r in runs if r.config.get("task") in BARS]
    pace: dict[tuple[str, str], float] = {}
    for r in runs:
        key = (str(r.config["task"]), report.algo_label(r.config))
        pace[key] = max(pace.get(key, 0.0), float(r.summary["steps"]) / float(r.summary["wall_time_s"]))
    out: dict[str, list[Outcome]] = {}
    for r in runs:
        task, method = str(r.config["task"]), report.algo_label(r.config)
        bar, seed = BARS[task], int(r.config.get("seed", 0))
        hit = report.time_to_bar(r.evals, bar)
        steps = int(hit["step"]) if hit else int(r.summary["steps"])
        time_s, best = steps / pace[(task, method)], best_safe_return(r.evals, bar)
        out.setdefault(task, []).append(
            Outcome(method, seed, hit is not None, steps, time_s, best, int(r.config["train.total_steps"]))
        )
    return out


def table(outcomes: list[Outcome], methods: list[str]) -> str:
    """The Markdown table: per method, seeds that reached the bar, median time and steps to it (over those seeds),
    the best return within the violation bar per seed."""
    lines = [
        "| method | reached | median time to bar (s) | median steps to bar | best return within the violation bar "
        "(per seed) |",
        "|---|---|---|---|---|",
    ]
    for method in methods:
        mine = sorted((o for o in outcomes if o.method == method), key=lambda o: o.seed)
        hit = [o for o in mine if o.reached]
        t = f"{statistics.median(o.wall_s for o in hit):.0f}" if hit else "-"
        s = f"{statistics.median(o.steps for o in hit):.0f}" if hit else "-"
        best = " / ".join("-" if math.isnan(o.best) else f"{o.best:.1f}" for o in mine)
        lines.append(f"| {method} | {len(hit)}/{len(mine)} | {t} | {s} | {best} |")
    return "\n".join(lines)


def wall_at(run: Path, step: int) -> float:
    """Training wall time when ``step`` was reached: the train.csv row of that step (logged before its evaluation)."""
    with open(run / rundir.TRAIN_LOG, newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
    return float(rows[-1]["wall_s"])


def ranked(outcomes: list[Outcome]) -> list[str]:
    """The methods of ``outcomes``, most seeds at the bar first, then the faster median time to it."""
    hits = {m: [o.wall_s for o in outcomes if o.method == m and o.reached] for m in {o.method for o in outcomes}}
    return sorted(hits, key=lambda m: (-len(hits[m]), statistics.median(hits[m]) if hits[m] else math.inf, m))


TIME_TO_SAFE = "time-to-safe"
"""The block of docs/performance.md that ``--from-sweep DIR --page`` rewrites (benchmarks/pages.py)."""


def sweep_table(by_task: dict[str, list[Outcome]]) -> str:
    """One table over every task of `from_sweep` (the page's form): a task column naming its step budget, each
    task's methods `ranked`."""
    rows = []
    for task in (t for t in BARS if t in by_task):
        outcomes = by_task[task]
        label = f"{pages.TASK_NAMES[task]} ({max(o.budget for o in outcomes) // 1000}k)"
        rows += [f"| {label} {line}" for line in table(outcomes, ranked(outcomes)).splitlines()[2:]]
    head = table([], []).splitlines()
    return "\n".join(["| task " + head[0], "|---" + head[1], *rows]) + "\n"


def print_sweep(sweep_dir: Path, page: Path | None) -> None:
    """--from-sweep: one table per task of the sweep's finished trials; with ``page``, also its block there."""
    by_task = from_sweep(sweep_dir)
    if not by_task:
        raise SystemExit(f"{sweep_dir}: no finished trials of a task with a bar ({', '.join(BARS)})")
    for task in sorted(by_task):
        bar, outcomes = BARS[task], by_task[task]
        print(f"\n{task}: bar return >= {bar[0]:g} at violation rate <= {bar[1]:g}; {len(outcomes)} finished trials")
        print(table(outcomes, ranked(outcomes)))
    if page is not None:
        pages.write(page, TIME_TO_SAFE, sweep_table(by_task))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="cartpole-safe_swingup", choices=sorted(BARS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=40_000, help="steps per trial at most")
    parser.add_argument("--eval-every", type=int, default=2_000)
    parser.add_argument("--bar", type=float, nargs=2, metavar=("RETURN", "VIOLATION_RATE"), help="override the bar")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, all trials")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "time_to_safe")
    parser.add_argument("--from-sweep", type=Path, metavar="DIR", help="read a sweep's finished trials, train nothing")
    parser.add_argument("--page", type=Path, help=f"with --from-sweep: rewrite the page's '{TIME_TO_SAFE}' block "
                        "(benchmarks/pages.py), docs/performance.md")  # fmt: skip
    args = parser.parse_args()
    if args.from_sweep is not None:
        print_sweep(args.from_sweep, args.page)
        return

    bar = tuple(args.bar) if args.bar else BARS[args.task]
    sets = [f"train.log_every={args.eval_every}", *args.set]
    outcomes: list[Outcome] = []
    for method in args.methods:
        for seed in args.seeds:
            o = run_trial(args.task, method, seed, bar, args.budget, args.eval_every, sets, args.out)
            outcomes.append(o)
            verdict = f"reached at step {o.steps} after {o.wall_s:.0f} s" if o.reached else f"not within {o.steps}"
            print(f"{method:10s} seed {seed}: {verdict}", flush=True)

    print(
        f"\n{args.task}: bar return >= {bar[0]:g} at violation rate <= {bar[1]:g}; budget {args.budget} steps, "
        f"evaluation every {args.eval_every}; overrides {' '.join(args.set) or 'none'}"
    )
    print(table(outcomes, args.methods))


if __name__ == "__main__":
    main()
