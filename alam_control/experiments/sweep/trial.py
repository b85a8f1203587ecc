"""One trial: running it (resuming from its checkpoint), its state read back from its logs, and the sweep
manifest.

Sweep directory layout::

    SWEEP_DIR/sweep.json              manifest: the grid, each trial's params, resolved config and status
    SWEEP_DIR/trials/<trial name>/    an ordinary `alam train` run directory (`alam_control.learn.rundir`), plus
        worker.pid                    pid of the process running (or that last ran) the trial
        attempts.jsonl                one line per attempt: pid, host, Ray node, whether it resumed, from which step
        trial.log                     the trainer's stdout/stderr (appended across attempts)
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alam_control import config as config_lib
from alam_control.experiments.sweep.spec import TRIALS_DIR, Sweep, SweepError, Trial
from alam_control.learn import rundir

MANIFEST = "sweep.json"
MANIFEST_FORMAT = 1
WORKER_PID = "worker.pid"
ATTEMPTS = "attempts.jsonl"
TRIAL_LOG = "trial.log"

trial_done = rundir.is_finished
"""A trial is finished when its run is: summary.json at ``train.total_steps`` steps (the trainer writes it last)."""


# ----------------------------------------------------------------------------------------------- trial state
def _last_csv_row(path: Path) -> dict[str, str] | None:
    """The last complete row of a CSV log as a dict, reading only its header and tail (logs grow; polls are
    frequent). A row still being written (no trailing newline) is skipped."""
    try:
        with open(path, "rb") as f:
            header = f.readline().decode().strip().split(",")
            size = f.seek(0, os.SEEK_END)
            f.seek(max(size - 16384, 0))
            tail = f.read().decode(errors="replace")
    except OSError:
        return None
    lines = tail.split("\n")[:-1]  # the piece after the final newline is incomplete (or empty)
    if not lines or lines[-1].strip().split(",") == header:
        return None
    values = lines[-1].strip().split(",")
    return dict(zip(header, values, strict=False)) if len(values) == len(header) else None


def _float(row: dict[str, str] | None, key: str) -> float:
    try:
        return float(row[key]) if row and row.get(key) not in (None, "") else math.nan
    except ValueError:
        return math.nan


@dataclass
class Progress:
    """What the driver knows of one trial, polled from its run directory."""

    step: int = 0
    ret: float = math.nan
    """Mean training episode return over the last log interval (train.csv ``episode_return``)."""
    cost: float = math.nan
    """Mean training episode cost over the last log interval (train.csv ``episode_cost``)."""
    eval_ret: float = math.nan
    """Deterministic evaluation return at the last evaluation (eval.csv)."""
    eval_cost: float = math.nan
    attempts: int = 0
    """Lines in attempts.jsonl: how many times a worker has started this trial, across sweep invocations."""


def poll(run_dir: Path) -> Progress:
    """Latest logged step, return and cost of a trial (cheap: CSV tails and a line count)."""
    run_dir = Path(run_dir)
    train = _last_csv_row(run_dir / rundir.TRAIN_LOG)
    ev = _last_csv_row(run_dir / rundir.EVAL_LOG)
    step = max(int(_float(train, "step")) if train else 0, int(_float(ev, "step")) if ev else 0)
    try:
        attempts = sum(1 for line in (run_dir / ATTEMPTS).read_text().splitlines() if line.strip())
    except OSError:
        attempts = 0
    return Progress(
        step,
        _float(train, "episode_return"),
        _float(train, "episode_cost"),
        _float(ev, "return"),
        _float(ev, "cost"),
        attempts,
    )


# ----------------------------------------------------------------------------------------------- the trial
def run_trial(config: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """Run (or continue) one trial; the Ray task body, also callable in-process.

    Resumes from the run directory's latest checkpoint when one exists, which is what makes a Ray retry after a
    lost worker, or ``alam sweep --resume``, continue from the checkpoint rather than from step 0. A directory
    with logs but no checkpoint (killed before the first checkpoint) is cleared first: its rows would otherwise
    be appended to by a fresh run.

    Args:
        config: the resolved config as a plain dict (``config.to_dict``).
        run_dir: absolute run directory (on a cluster: a path every node sees).

    Returns:
        The trainer's summary (``summary.json``).
    """
    from alam_control.learn import checkpoint, trainer

    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    cfg = config_lib.from_dict(config)
    (run / WORKER_PID).write_text(f"{os.getpid()}\n")
    try:
        start_step = checkpoint.load_latest(run)[0]["loop"]["step"]
        resume = True
    except checkpoint.CheckpointError:
        if checkpoint.is_run(run):
            raise  # a corrupt checkpoint is the user's call (the error names the .prev file), never silently redone
        start_step, resume = 0, False
        rundir.discard_logs(run)
    attempt = {"pid": os.getpid(), "host": socket.gethostname(), "node": _ray_node_id(), "resume": resume,
               "start_step": start_step, "time": time.time()}  # fmt: skip
    with open(run / ATTEMPTS, "a") as f:
        f.write(json.dumps(attempt) + "\n")
    if resume and trial_done(run, cfg.train.total_steps):
        return rundir.read_summary(run)  # finished; only the driver had not heard
    with (
        open(run / TRIAL_LOG, "a", buffering=1) as log,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        print(f"--- attempt pid {os.getpid()} on {attempt['host']}: resume={resume} start_step={start_step}")
        return trainer.train(cfg, run, resume=resume, progress=False)


def _ray_node_id() -> str | None:
    """The Ray node this process runs on (hex id), None outside Ray: on a cluster, where each attempt ran."""
    ray = sys.modules.get("ray")
    return ray.get_runtime_context().get_node_id() if ray is not None and ray.is_initialized() else None


# ----------------------------------------------------------------------------------------------- manifest
def _trial_record(trial: Trial, sweep_dir: Path) -> dict[str, Any]:
    return {
        "name": trial.name,
        "params": trial.params,
        "run_dir": str(trial.run_dir.relative_to(sweep_dir)),
        "config": config_lib.to_dict(trial.config),
        "status": "pending",
        "error": None,
        "attempts": 0,
        "step": 0,
    }


def read_manifest(sweep_dir: str | Path) -> dict[str, Any]:
    """The ``sweep.json`` of a sweep directory."""
    path = Path(sweep_dir) / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SweepError(f"{sweep_dir} has no {MANIFEST}: not a sweep directory") from None


def done_trials(sweep_dir: str | Path) -> set[str]:
    """Names of the trials that ``sweep_dir``'s manifest records as done (under the budgets the sweep last ran
    with: `prepare` refreshes the statuses from the run directories when a sweep starts)."""
    return {t["name"] for t in read_manifest(sweep_dir)["trials"] if t["status"] == "done"}


def write_manifest(sweep_dir: Path, manifest: dict[str, Any]) -> None:
    manifest["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    tmp = sweep_dir / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, sweep_dir / MANIFEST)  # atomic: a reader (or a crash) never sees half a manifest


def _without_budgets(grid: Any) -> Any:
    """The grid without the keys a resume may change (`rundir.RESUMABLE`: a per-task budget may be raised) in
    named values."""
    if not isinstance(grid, dict):
        return grid
    return {
        k: {label: {kk: vv for kk, vv in o.items() if kk not in rundir.RESUMABLE} for label, o in v.items()}
        if isinstance(v, dict) else v
        for k, v in grid.items()
    }  # fmt: skip


def _restored_manifest(out: Path) -> dict[str, Any]:
    """What a sweep directory's trials say of the sweep when its manifest is gone: a trial directory per run,
    restored from a committed copy of the small files (config.yaml, eval.csv, summary.json; docs/results.md)."""
    trials = []
    for run in sorted(p for p in (out / TRIALS_DIR).iterdir() if p.is_dir()):
        if not (run / rundir.CONFIG).exists():
            raise SweepError(f"cannot --resume {out}: {run} has no {rundir.CONFIG}")
        trials.append({"name": run.name, "config": config_lib.load_data(run / rundir.CONFIG)})
    return {"trials": trials}


def _check_same_sweep(old: dict[str, Any], sweep: Sweep, partial: bool = False) -> None:
    """Refuse ``--resume`` when the trials or their configs changed (only train.total_steps may, as in `train`).

    ``partial``: ``old`` holds only the trials whose directories exist (`_restored_manifest`): the grid is not
    recorded, and trials not yet started are not new.
    """
    old_trials = {t["name"]: t for t in old.get("trials", [])}
    new_trials = {t.name: t for t in sweep.trials}
    problems = []
    if not partial and _without_budgets(old.get("grid")) != _without_budgets(sweep.grid):
        problems.append(f"grid was {json.dumps(old.get('grid'))}, is now {json.dumps(sweep.grid)}")
    removed, added = sorted(set(old_trials) - set(new_trials)), sorted(set(new_trials) - set(old_trials))
    if removed:
        problems.append(f"trials no longer in the grid: {', '.join(removed)}")
    if added and not partial:
        problems.append(f"new trials: {', '.join(added)}")
    for name in sorted(set(old_trials) & set(new_trials)):
        # The stored config read through today's schema, as a checkpoint's is (`rundir.check_resumable`): a field
        # added since the sweep started takes its default instead of reading as a change.
        stored = config_lib.to_dict(config_lib.from_dict(old_trials[name]["config"]))
        diffs = rundir.resume_differences(config_lib.to_dict(new_trials[name].config), stored)
        if diffs:
            problems.append(f"trial {name}: config differs in {', '.join(diffs)}")
    if problems:
        raise SweepError(
            f"cannot --resume {sweep.out}: the sweep changed since it was started ({'; '.join(problems)}). "
            f"Only {', '.join(rundir.RESUMABLE)} may change on resume; write the changed sweep to another `out:` "
            "(or --out)."
        )


def prepare(sweep: Sweep, resume: bool) -> dict[str, Any]:
    """Create or reopen the sweep directory and return its manifest (statuses refreshed from the run dirs)."""
    out = sweep.out
    has_trials = (out / TRIALS_DIR).is_dir() and any((out / TRIALS_DIR).iterdir())
    if not resume and ((out / MANIFEST).exists() or has_trials):
        raise SweepError(
            f"{out} already holds a sweep; pass --resume to continue it (finished trials are skipped), "
            "or choose another `out:` (or --out)"
        )
    if resume:
        if (out / MANIFEST).exists():
            _check_same_sweep(read_manifest(out), sweep)
        elif has_trials:
            _check_same_sweep(_restored_manifest(out), sweep, partial=True)
        else:
            raise SweepError(f"cannot --resume: {out} has no {MANIFEST} (run the sweep without --resume first)")
    out.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": MANIFEST_FORMAT,
        "name": sweep.name,
        "sweep_file": str(sweep.path),
        "base": str(sweep.base),
        "set": sweep.set,
        "grid": sweep.grid,
        "trials": [_trial_record(t, out) for t in sweep.trials],
    }
    for record, trial in zip(manifest["trials"], sweep.trials, strict=True):
        progress = poll(trial.run_dir)
        record["attempts"], record["step"] = progress.attempts, progress.step
        if trial_done(trial.run_dir, trial.config.train.total_steps):
            record["status"], record["step"] = "done", trial.config.train.total_steps
    write_manifest(out, manifest)
    return manifest
