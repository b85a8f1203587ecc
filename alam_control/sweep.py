"""Experiment grids on Ray: ``alam sweep --config configs/sweeps/NAME.yaml``.

A sweep file names a base config, optional fixed overrides and a grid::

    name: cartpole_algos            # optional; default: the file's stem
    base: ../cartpole_safe_swingup_alam.yaml   # relative to this file, the working directory or the repo
    set:                            # optional fixed overrides (dotted keys)
      train.total_steps: 20000
    grid:                           # dotted key -> list of values; trials = cartesian product, in this order
      algo.name: [sac, sac_alam]
      seed: [0, 1, 2]
    out: runs/sweeps/cartpole_algos # optional; default runs/sweeps/<name>

A grid axis may instead be a mapping of *named values*, each a set of dotted overrides applied together (an
algorithm variant that is two keys, or a task with its own step budget); the trial is named by the label::

    grid:
      task:
        cartpole: {task: cartpole-safe_swingup, train.total_steps: 15000}
        walker: {task: walker-safe_walk, train.total_steps: 20000}
      algo:
        sac: {algo.name: sac}
        alam_ascent: {algo.name: sac_alam, algo.multiplier_update: ascent, algo.label: alam_ascent}

Sweep directory layout::

    SWEEP_DIR/sweep.json              manifest: the grid, each trial's params, resolved config and status
    SWEEP_DIR/trials/<trial name>/    an ordinary `alam train` run directory, plus
        worker.pid                    pid of the process running (or that last ran) the trial
        attempts.jsonl                one line per attempt: pid, host, whether it resumed, and from which step
        trial.log                     the trainer's stdout/stderr (appended across attempts)

Every trial resumes from its run directory's latest checkpoint when one exists, so a Ray retry after a lost
worker, and ``--resume`` after an interrupted sweep, continue where the checkpoint left off instead of starting
over. Finished trials (``summary.json`` at ``train.total_steps``) are skipped.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import itertools
import json
import math
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from alam_control import config as config_lib
from alam_control.config import Config, ConfigError

REPO = Path(__file__).resolve().parents[1]
MANIFEST = "sweep.json"
DRIVER_LOCK = "driver.lock"
TRIALS_DIR = "trials"
MANIFEST_FORMAT = 1
SWEEP_KEYS = ("name", "base", "set", "grid", "out")
# Trials default to one torch thread each: two trials then share two cores without oversubscription (two trials
# at 2 threads each on 2 cores would thrash). A sweep's `set:` or `grid:` may change it; each trial then asks
# Ray for train.threads CPUs.
TRIAL_DEFAULTS: dict[str, Any] = {"train.threads": 1}
LOCAL_OBJECT_STORE_BYTES = 128 * 1024**2  # trials return a small summary dict; Ray's default (30% of RAM) is waste
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]")
_MAX_NAME = 120  # well below the 255-byte file name limit


class SweepError(ValueError):
    """A sweep file, sweep directory or cluster that cannot run the sweep as asked."""


@dataclass(frozen=True)
class Trial:
    """One point of the grid: an ordinary training run in ``run_dir``."""

    name: str
    """Deterministic, readable directory name built from ``params`` (``algo.name=sac,seed=1``)."""
    params: dict[str, Any]
    """This trial's grid values, in the grid's key order."""
    config: Config
    """The resolved config (base + set + trial defaults + params), validated."""
    run_dir: Path
    """Absolute run directory (SWEEP_DIR/trials/<name>)."""


@dataclass(frozen=True)
class Sweep:
    """A parsed, validated sweep file with its expanded trials."""

    name: str
    path: Path
    """The sweep file."""
    base: Path
    """The resolved base config file."""
    set: dict[str, Any]
    grid: dict[str, list[Any] | dict[str, dict[str, Any]]]
    """Axis -> list of values, or -> {label: {dotted key: value}} for a named axis."""
    out: Path
    """Absolute sweep directory."""
    trials: list[Trial] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------- sweep files
def _apply_dotted(data: dict[str, Any], key: str, value: Any, where: str) -> None:
    """``data[a][b][c] = value`` for ``key = 'a.b.c'``; unknown leaves are caught later by config validation."""
    node = data
    parts = key.split(".")
    if not all(parts):
        raise SweepError(f"{where}: {key!r} is not a dotted config key")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise SweepError(f"{where}: {key}: {part} is not a config section")
        node = child
    node[parts[-1]] = copy.deepcopy(value)


def _resolve_base(base: str, sweep_file: Path) -> Path:
    """The base config path, tried relative to the sweep file, the working directory, then the repo root."""
    candidates = (
        [Path(base)] if Path(base).is_absolute() else [sweep_file.parent / base, Path.cwd() / base, REPO / base]
    )
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise SweepError(f"{sweep_file}: base config {base!r} not found (tried {', '.join(map(str, candidates))})")


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "x".join(_format_value(v) for v in value)  # sac.hidden [64, 64] -> 64x64
    if value is None:
        return "null"
    return str(value)


def _check_named_axis(path: Path, key: str, values: dict[str, Any], fixed: dict[str, Any]) -> None:
    """A named grid axis: non-empty, labels safe in a directory name, each value a mapping of dotted overrides
    that do not repeat a key of ``set:``."""
    if not values:
        raise SweepError(f"{path}: grid.{key}: expected at least one named value")
    for label, overrides in values.items():
        if not isinstance(label, str) or not label or _NAME_UNSAFE.search(label):
            raise SweepError(f"{path}: grid.{key}: label {label!r} must be a string of letters, digits and ._=,+-")
        if not isinstance(overrides, dict):
            raise SweepError(
                f"{path}: grid.{key}.{label}: expected a mapping of dotted config key -> value, got {overrides!r}"
            )
        both = sorted(set(overrides) & set(fixed))
        if both:
            raise SweepError(f"{path}: grid.{key}.{label} sets {', '.join(both)}, also in set:; keep it in one")


def trial_overrides(grid: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The dotted overrides of one grid point: ``{key: value}`` for a list axis, the named value's mapping for a
    named axis (later axes win where two set the same key)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        out.update(grid[key][value] if isinstance(grid[key], dict) else {key: value})
    return out


def trial_name(params: dict[str, Any]) -> str:
    """``{'algo.name': 'sac', 'seed': 1}`` -> ``algo.name=sac,seed=1``; characters unsafe in paths become ``_``.

    Names longer than 120 characters are cut and suffixed with a hash of the params, so they stay unique and
    deterministic (``--resume`` finds trials by name).
    """
    name = _NAME_UNSAFE.sub("_", ",".join(f"{k}={_format_value(v)}" for k, v in params.items()))
    if len(name) > _MAX_NAME:
        digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
        name = f"{name[: _MAX_NAME - 11]}-{digest}"
    return name


def load(path: str | Path, out: str | Path | None = None) -> Sweep:
    """Parse and validate a sweep file and build every trial's config (strict, before any Ray work).

    Args:
        path: the sweep YAML.
        out: sweep directory; overrides the file's ``out`` (default ``runs/sweeps/<name>``, relative to the
            working directory like ``alam train``'s ``runs/``).

    Raises:
        SweepError / ConfigError: unknown top-level keys, a grid that is not a mapping of non-empty lists,
            duplicate values, a key both in ``set`` and ``grid``, or any trial config that does not validate
            (the message names the trial and the offending key).
    """
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"sweep file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise SweepError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise SweepError(f"{path}: the top level must be a mapping")
    unknown = sorted(set(data) - set(SWEEP_KEYS))
    if unknown:
        raise SweepError(f"{path}: unknown sweep key(s) {', '.join(unknown)}; valid keys: {', '.join(SWEEP_KEYS)}")
    if "base" not in data or not isinstance(data["base"], str):
        raise SweepError(f"{path}: `base:` (path of the base config) is required")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name or _NAME_UNSAFE.search(name):
        raise SweepError(f"{path}: name: {name!r} must be a non-empty string of letters, digits and ._=,+-")
    fixed = data.get("set") or {}
    if not isinstance(fixed, dict):
        raise SweepError(f"{path}: set: expected a mapping of dotted key -> value, got {fixed!r}")
    grid = data.get("grid")
    if not isinstance(grid, dict) or not grid:
        raise SweepError(f"{path}: grid: expected a non-empty mapping of dotted key -> list of values")
    for key, values in grid.items():
        if isinstance(values, dict):
            _check_named_axis(path, key, values, fixed)
            continue
        if not isinstance(values, list) or not values:
            raise SweepError(
                f"{path}: grid.{key}: expected a non-empty list of values or a mapping of named values, got {values!r}"
            )
        seen = [json.dumps(v, sort_keys=True) for v in values]
        dupes = sorted({v for v in seen if seen.count(v) > 1})
        if dupes:
            raise SweepError(f"{path}: grid.{key} lists {', '.join(dupes)} more than once")
        if key in fixed:
            raise SweepError(f"{path}: {key} is both in set: and grid:; keep it in one")
    base = _resolve_base(data["base"], path)
    try:
        base_data = yaml.safe_load(base.read_text()) or {}
    except yaml.YAMLError as err:
        raise SweepError(f"{base}: not valid YAML: {err}") from err
    if not isinstance(base_data, dict):
        raise SweepError(f"{base}: the top level must be a mapping")
    out_dir = Path(out if out is not None else data.get("out", Path("runs") / "sweeps" / name)).absolute()

    trials: list[Trial] = []
    keys = list(grid)
    for combo in itertools.product(*(list(grid[k]) for k in keys)):  # a named axis iterates over its labels
        params = dict(zip(keys, combo, strict=True))
        tname = trial_name(params)
        cfg_data = copy.deepcopy(base_data)
        for key, value in {**TRIAL_DEFAULTS, **fixed, **trial_overrides(grid, params)}.items():
            _apply_dotted(cfg_data, key, value, f"{path}: trial {tname}")
        try:
            cfg = config_lib.from_dict(cfg_data)
        except ConfigError as err:
            raise ConfigError(f"{path}: trial {tname} (base {base.name}): {err}") from err
        trials.append(Trial(tname, params, cfg, out_dir / TRIALS_DIR / tname))
    names = [t.name for t in trials]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise SweepError(f"{path}: grid values give the same trial directory name: {', '.join(clashes)}")
    grid = {k: (copy.deepcopy(v) if isinstance(v, dict) else list(v)) for k, v in grid.items()}
    return Sweep(name, path.absolute(), base, dict(fixed), grid, out_dir, trials)


# ----------------------------------------------------------------------------------------------- trial state
def trial_done(run_dir: Path, total_steps: int) -> bool:
    """A trial is finished when its summary.json records ``total_steps`` steps (the trainer writes it last)."""
    path = Path(run_dir) / "summary.json"
    if not path.exists():
        return False
    try:
        return json.loads(path.read_text()).get("steps") == total_steps
    except (json.JSONDecodeError, OSError):
        return False


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
    train = _last_csv_row(run_dir / "train.csv")
    ev = _last_csv_row(run_dir / "eval.csv")
    step = max(int(_float(train, "step")) if train else 0, int(_float(ev, "step")) if ev else 0)
    try:
        attempts = sum(1 for line in (run_dir / "attempts.jsonl").read_text().splitlines() if line.strip())
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
    import shutil

    from alam_control import checkpoint, trainer

    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    cfg = config_lib.from_dict(config)
    (run / "worker.pid").write_text(f"{os.getpid()}\n")
    try:
        start_step = checkpoint.load_latest(run)[0]["loop"]["step"]
        resume = True
    except checkpoint.CheckpointError:
        if (run / checkpoint.LATEST).exists() or (run / checkpoint.PREVIOUS).exists():
            raise  # a corrupt checkpoint is the user's call (the error names the .prev file), never silently redone
        start_step, resume = 0, False
        for name in ("train.csv", "eval.csv", "summary.json", "config.yaml"):
            (run / name).unlink(missing_ok=True)
        shutil.rmtree(run / "tb", ignore_errors=True)
    attempt = {"pid": os.getpid(), "host": socket.gethostname(), "resume": resume, "start_step": start_step,
               "time": time.time()}  # fmt: skip
    with open(run / "attempts.jsonl", "a") as f:
        f.write(json.dumps(attempt) + "\n")
    if resume and trial_done(run, cfg.train.total_steps):
        return json.loads((run / "summary.json").read_text())  # finished; only the driver had not heard
    with (
        open(run / "trial.log", "a", buffering=1) as log,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        print(f"--- attempt pid {os.getpid()} on {attempt['host']}: resume={resume} start_step={start_step}")
        return trainer.train(cfg, run, resume=resume, progress=False)


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


def _write_manifest(sweep_dir: Path, manifest: dict[str, Any]) -> None:
    manifest["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    tmp = sweep_dir / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, sweep_dir / MANIFEST)  # atomic: a reader (or a crash) never sees half a manifest


def _without_budgets(grid: Any) -> Any:
    """The grid with train.total_steps dropped from named values (a per-task budget may be raised on resume)."""
    if not isinstance(grid, dict):
        return grid
    return {
        k: {label: {kk: vv for kk, vv in o.items() if kk != "train.total_steps"} for label, o in v.items()}
        if isinstance(v, dict) else v
        for k, v in grid.items()
    }  # fmt: skip


def _check_same_sweep(old: dict[str, Any], sweep: Sweep) -> None:
    """Refuse ``--resume`` when the trials or their configs changed (only train.total_steps may, as in `train`)."""
    old_trials = {t["name"]: t for t in old.get("trials", [])}
    new_trials = {t.name: t for t in sweep.trials}
    problems = []
    if _without_budgets(old.get("grid")) != _without_budgets(sweep.grid):
        problems.append(f"grid was {json.dumps(old.get('grid'))}, is now {json.dumps(sweep.grid)}")
    removed, added = sorted(set(old_trials) - set(new_trials)), sorted(set(new_trials) - set(old_trials))
    if removed:
        problems.append(f"trials no longer in the grid: {', '.join(removed)}")
    if added:
        problems.append(f"new trials: {', '.join(added)}")
    for name in sorted(set(old_trials) & set(new_trials)):
        new = config_lib.to_dict(new_trials[name].config)
        diffs = config_lib.differences(old_trials[name]["config"], new, ignore=("train.total_steps",))
        if diffs:
            problems.append(f"trial {name}: config differs in {', '.join(diffs)}")
    if problems:
        raise SweepError(
            f"cannot --resume {sweep.out}: the sweep changed since it was started ({'; '.join(problems)}). "
            "Only train.total_steps may change on resume; write the changed sweep to another `out:` (or --out)."
        )


def _prepare(sweep: Sweep, resume: bool) -> dict[str, Any]:
    """Create or reopen the sweep directory and return its manifest (statuses refreshed from the run dirs)."""
    out = sweep.out
    has_trials = (out / TRIALS_DIR).is_dir() and any((out / TRIALS_DIR).iterdir())
    if not resume and ((out / MANIFEST).exists() or has_trials):
        raise SweepError(
            f"{out} already holds a sweep; pass --resume to continue it (finished trials are skipped), "
            "or choose another `out:` (or --out)"
        )
    if resume:
        if not (out / MANIFEST).exists():
            raise SweepError(f"cannot --resume: {out} has no {MANIFEST} (run the sweep without --resume first)")
        _check_same_sweep(read_manifest(out), sweep)
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
    _write_manifest(out, manifest)
    return manifest


# ----------------------------------------------------------------------------------------------- live table
def _fmt_num(x: float, width: int) -> str:
    return f"{'-' if math.isnan(x) else f'{x:.1f}':>{width}}"


def format_duration(seconds: float) -> str:
    """``3725 -> '1h02m05s'``; NaN/inf -> ``'?'``."""
    if not math.isfinite(seconds):
        return "?"
    seconds = max(int(round(seconds)), 0)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


@dataclass
class _Row:
    trial: Trial
    state: str = "PENDING"
    """PENDING (not submitted), QUEUED (submitted, no worker yet), RUNNING, DONE, FAILED, INTERRUPTED."""
    progress: Progress = field(default_factory=Progress)
    attempts_at_submit: int = 0
    error: str | None = None


def render_table(rows: Sequence[_Row], elapsed_s: float, rate: float, max_rows: int = 30) -> list[str]:
    """The live table: one line per trial (state, attempt, step/total, train return/cost, last eval) + totals.

    Args:
        rows: the trials.
        elapsed_s: seconds since this sweep invocation started.
        rate: aggregate env-steps/s over all trials since then (NaN before there is any).
        max_rows: beyond this many trials, PENDING and DONE rows are folded into the totals line.
    """
    width = min(max((len(r.trial.name) for r in rows), default=5), 48)
    head = (
        f"{'trial':<{width}}  {'state':<11} {'try':>3} {'step':>15}  "
        f"{'ret':>7} {'cost':>7}  {'eval ret':>8} {'eval cost':>9}"
    )
    lines = [head]
    shown = rows if len(rows) <= max_rows else [r for r in rows if r.state not in ("PENDING", "DONE")]
    for r in shown:
        tries = r.progress.attempts - r.attempts_at_submit if r.state in ("RUNNING", "QUEUED") else 0
        p, total = r.progress, r.trial.config.train.total_steps
        name = r.trial.name if len(r.trial.name) <= width else r.trial.name[: width - 1] + "~"
        lines.append(
            f"{name:<{width}}  {r.state:<11} {tries if tries else '':>3} {f'{p.step}/{total}':>15}  "
            f"{_fmt_num(p.ret, 7)} {_fmt_num(p.cost, 7)}  {_fmt_num(p.eval_ret, 8)} {_fmt_num(p.eval_cost, 9)}"
        )
    counts = {s: sum(r.state == s for r in rows) for s in ("DONE", "RUNNING", "QUEUED", "PENDING", "FAILED")}
    done_steps = sum(r.progress.step for r in rows)
    all_steps = sum(r.trial.config.train.total_steps for r in rows)
    eta = (all_steps - done_steps) / rate if rate > 0 else math.nan
    state = ", ".join(f"{v} {k.lower()}" for k, v in counts.items() if v)
    lines.append(
        f"[{format_duration(elapsed_s)}] {state} | steps {done_steps}/{all_steps} | "
        f"{'-' if not rate > 0 else f'{rate:.0f}'} steps/s | ETA {format_duration(eta)}"
    )
    return lines


class LiveTable:
    """Redraws the table in place on a terminal; on a pipe or file prints plain lines (no escape codes): one per
    trial state change at once, and the whole table every ``refresh_s`` seconds."""

    def __init__(self, stream: TextIO, refresh_s: float | None = None):
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.refresh_s = refresh_s if refresh_s is not None else (2.0 if self.tty else 30.0)
        self._drawn = 0
        self._last_print = -math.inf

    def event(self, text: str) -> None:
        """A one-off line (trial finished, failed, retried); on a terminal printed above the table."""
        if self.tty and self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")  # up to the table's first line, clear to the end
            self._drawn = 0
        self.stream.write(text + "\n")
        self.stream.flush()

    def show(self, lines: list[str], force: bool = False) -> None:
        now = time.monotonic()
        if not self.tty and not force and now - self._last_print < self.refresh_s:
            return
        self._last_print = now
        if self.tty and self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()
        self._drawn = len(lines) if self.tty else 0


# ----------------------------------------------------------------------------------------------- the driver
def _init_ray(address: str | None):
    """Start a local Ray (no address) or connect to a cluster (``auto`` or ``ray://host:port``)."""
    try:
        import ray
    except ImportError as err:
        raise SweepError("alam sweep runs on Ray, which is not installed: pip install -e '.[sweep]'") from err
    import logging

    if address is None:
        ray.init(
            address="local",  # always a fresh Ray of our own, never a cluster that happens to run on this machine
            include_dashboard=False,
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            logging_level=logging.WARNING,
        )
    else:
        ray.init(address=address, logging_level=logging.WARNING)
    return ray


def _error_text(err: BaseException) -> str:
    cause = getattr(err, "cause", None)  # RayTaskError wraps the trial's own exception
    text = f"{type(cause).__name__}: {cause}" if cause is not None else f"{type(err).__name__}: {err}"
    return text.strip().splitlines()[0][:300] if text.strip() else type(err).__name__


def run(
    sweep: Sweep,
    address: str | None = None,
    max_concurrent: int | None = None,
    resume: bool = False,
    max_retries: int = 3,
    refresh_s: float | None = None,
    stream: TextIO | None = None,
) -> int:
    """Run every unfinished trial of ``sweep`` on Ray and keep a live table until all have ended.

    Args:
        address: None starts a local Ray on this machine (all its cores); ``auto`` or ``ray://host:port``
            submits to an existing cluster (trial directories must then be on a filesystem every node sees).
        max_concurrent: at most this many trials submitted at once (None: Ray's CPU count decides).
        resume: continue an existing sweep directory: finished trials are skipped, unfinished ones resume from
            their checkpoints.
        max_retries: Ray retries of a trial whose worker process or node died; each retry resumes from the
            trial's last checkpoint.
        refresh_s: table refresh period (default 2 s on a terminal, 30 s otherwise).
        stream: where the table goes (default stdout).

    Returns:
        Exit code: 0 when every trial finished, 1 when some failed, 130 when interrupted (Ctrl-C).
    """
    if max_concurrent is not None and max_concurrent < 1:
        raise SweepError(f"--max-concurrent must be >= 1, got {max_concurrent}")
    _check_no_other_driver(sweep.out)
    manifest = _prepare(sweep, resume)
    lock = sweep.out / DRIVER_LOCK
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    try:
        return _drive(sweep, manifest, address, max_concurrent, max_retries, LiveTable(stream or sys.stdout, refresh_s))
    finally:
        lock.unlink(missing_ok=True)


def _check_no_other_driver(sweep_dir: Path) -> None:
    """Two drivers on one sweep directory would run the same trials twice into the same run directories."""
    try:
        other = json.loads((sweep_dir / DRIVER_LOCK).read_text())
    except (OSError, json.JSONDecodeError):
        return
    if other.get("host") == socket.gethostname() and Path(f"/proc/{other.get('pid')}").exists():
        raise SweepError(f"another alam sweep (pid {other['pid']}) is running on {sweep_dir}; wait for it or stop it")
    # A lock left by a driver that was killed (or runs on another machine, which we cannot check) is not proof
    # of a live driver; the trials' own checkpoints keep a mistaken second start from losing work.


def _drive(
    sweep: Sweep,
    manifest: dict[str, Any],
    address: str | None,
    max_concurrent: int | None,
    max_retries: int,
    table: LiveTable,
) -> int:
    """The driver loop of :func:`run`: submit, wait, poll, redraw, record."""
    rows = [_Row(t) for t in sweep.trials]
    for row, record in zip(rows, manifest["trials"], strict=True):
        row.progress = poll(row.trial.run_dir)
        if record["status"] == "done":
            row.state, row.progress.step = "DONE", row.trial.config.train.total_steps
    todo = [r for r in rows if r.state != "DONE"]
    skipped = len(rows) - len(todo)
    table.event(
        f"sweep {sweep.name}: {len(rows)} trials in {sweep.out}"
        + (f" ({skipped} already finished, skipped)" if skipped else "")
    )
    if not todo:
        table.event("nothing to run")
        return 0

    def save_manifest() -> None:
        for record, row in zip(manifest["trials"], rows, strict=True):
            record["status"], record["error"] = row.state.lower(), row.error
            record["step"], record["attempts"] = row.progress.step, row.progress.attempts
        _write_manifest(sweep.out, manifest)

    ray = None
    exit_code = 0
    inflight: dict[Any, _Row] = {}
    previous_handler = signal.getsignal(signal.SIGINT)
    try:
        ray = _init_ray(address)
        cpus = ray.cluster_resources().get("CPU", 0)
        need = max(r.trial.config.train.threads for r in todo)
        if need > cpus:
            raise SweepError(f"a trial needs train.threads = {need} CPUs, the Ray cluster has {cpus:g}")
        remote = ray.remote(run_trial)
        # Ctrl-C sets a flag checked once per loop pass: a KeyboardInterrupt raised inside ray.wait or Ray's own
        # handlers can be lost, and then the sweep would run on. Installed after ray.init, so it is ours that runs.
        interrupted: list[int] = []
        signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
        limit = max_concurrent or len(todo)
        queue = list(todo)
        t0 = time.monotonic()
        baseline = sum(r.progress.step for r in rows)  # steps already done before this invocation
        saved_signature: list[tuple[str, int]] = []
        saved_at = -math.inf
        while queue or inflight:
            if interrupted:
                raise KeyboardInterrupt
            while queue and len(inflight) < limit:
                row = queue.pop(0)
                row.attempts_at_submit = row.progress.attempts
                ref = remote.options(
                    num_cpus=row.trial.config.train.threads, max_retries=max_retries, retry_exceptions=False
                ).remote(config_lib.to_dict(row.trial.config), str(row.trial.run_dir))
                inflight[ref] = row
                row.state = "QUEUED"
            signature = [(r.state, r.progress.attempts) for r in rows]
            if signature != saved_signature or time.monotonic() - saved_at > 30.0:  # steps: refreshed twice a minute
                save_manifest()
                saved_signature, saved_at = signature, time.monotonic()
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=min(table.refresh_s, 2.0))
            for ref in ready:
                row = inflight.pop(ref)
                try:
                    ray.get(ref)
                    row.state = "DONE"
                    row.progress = poll(row.trial.run_dir)
                    row.progress.step = row.trial.config.train.total_steps
                    table.event(f"{row.trial.name}: done")
                except Exception as err:  # the trial's exception, or a worker lost more than max_retries times
                    row.state, row.error, exit_code = "FAILED", _error_text(err), 1
                    table.event(f"{row.trial.name}: FAILED: {row.error} (see {row.trial.run_dir}/trial.log)")
            for row in inflight.values():
                before = row.progress.attempts
                row.progress = poll(row.trial.run_dir)
                if row.progress.attempts > row.attempts_at_submit:
                    if row.state == "RUNNING" and row.progress.attempts > before:
                        table.event(f"{row.trial.name}: worker lost; retrying from its last checkpoint")
                    row.state = "RUNNING"
            elapsed = time.monotonic() - t0
            rate = (sum(r.progress.step for r in rows) - baseline) / elapsed if elapsed > 0 else math.nan
            table.show(render_table(rows, elapsed, rate), force=bool(ready))
        save_manifest()  # the last loop pass already showed the final table
        elapsed = time.monotonic() - t0
        failed = [r.trial.name for r in rows if r.state == "FAILED"]
        table.event(
            f"sweep {sweep.name}: {sum(r.state == 'DONE' for r in rows)}/{len(rows)} trials done in "
            f"{format_duration(elapsed)}" + (f"; failed: {', '.join(failed)} (rerun with --resume)" if failed else "")
        )
        return exit_code
    except KeyboardInterrupt:
        for ref, row in inflight.items():
            ray.cancel(ref, force=True)  # kills the worker (inflight is empty until Ray is up); checkpoints stay
            row.state, row.progress = "INTERRUPTED", poll(row.trial.run_dir)
        save_manifest()
        table.event(
            f"interrupted: finished trials and every trial's last checkpoint are kept; continue with "
            f"`alam sweep --config {sweep.path} --out {sweep.out} --resume`"
        )
        return 130
    finally:
        signal.signal(signal.SIGINT, previous_handler)
        if ray is not None and address is None:
            ray.shutdown()  # our own local Ray; a cluster's stays up for the next sweep
