"""The sweep driver: submits the unfinished trials to Ray, waits, polls their run directories for the live table,
and records each trial's status in the manifest.

Every trial resumes from its run directory's latest checkpoint when one exists, so a Ray retry after a lost
worker or node, and ``--resume`` after an interrupted sweep, continue where the checkpoint left off instead of
starting over. Finished trials (``summary.json`` at ``train.total_steps``) are skipped.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from alam_control import config as config_lib
from alam_control.experiments.sweep.spec import Sweep, SweepError, parse_first, queue_order
from alam_control.experiments.sweep.table import LiveTable, Row, StepMeter, format_duration, render_table
from alam_control.experiments.sweep.trial import poll, prepare, run_trial, write_manifest

DRIVER_LOCK = "driver.lock"
LOCAL_OBJECT_STORE_BYTES = 128 * 1024**2  # trials return a small summary dict; Ray's default (30% of RAM) is waste


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
    first: list[str] | None = None,
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
        first: ``key=value[,...]`` filters over the grid (`spec.parse_first`): the unfinished trials they match
            run before the rest, after those already started (`spec.queue_order`).

    Returns:
        Exit code: 0 when every trial finished, 1 when some failed, 130 when interrupted (Ctrl-C).
    """
    if max_concurrent is not None and max_concurrent < 1:
        raise SweepError(f"--max-concurrent must be >= 1, got {max_concurrent}")
    filters = parse_first(sweep, first or [])
    _check_no_other_driver(sweep.out)
    manifest = prepare(sweep, resume)
    lock = sweep.out / DRIVER_LOCK
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    try:
        table = LiveTable(stream or sys.stdout, refresh_s)
        return _drive(sweep, manifest, address, max_concurrent, max_retries, table, filters)
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
    first: list[dict[str, str]],
) -> int:
    """The driver loop of :func:`run`: submit, wait, poll, redraw, record."""
    rows = [Row(t) for t in sweep.trials]
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
        write_manifest(sweep.out, manifest)

    ray = None
    exit_code = 0
    inflight: dict[Any, Row] = {}
    previous_handler = signal.getsignal(signal.SIGINT)
    try:
        ray = _init_ray(address)
        cpus = ray.cluster_resources().get("CPU", 0)
        need = max(r.trial.config.train.threads for r in todo)
        if need > cpus:
            raise SweepError(f"a trial needs train.threads = {need} CPUs, the Ray cluster has {cpus:g}")
        remote = ray.remote(run_trial)  # by module path: workers import alam_control.experiments.sweep.trial
        # Ctrl-C sets a flag checked once per loop pass: a KeyboardInterrupt raised inside ray.wait or Ray's own
        # handlers can be lost, and then the sweep would run on. Installed after ray.init, so it is ours that runs.
        interrupted: list[int] = []
        signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
        limit = max_concurrent or len(todo)
        by_name = {r.trial.name: r for r in todo}
        started = {r.trial.name for r in todo if r.progress.step > 0}
        queue = [by_name[t.name] for t in queue_order([r.trial for r in todo], started, first)]
        t0 = time.monotonic()
        meter = StepMeter([r.progress.step for r in rows])  # counts from where each trial stands now
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
            trained = meter.update([r.progress.step for r in rows])
            rate = trained / elapsed if elapsed > 0 else math.nan
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
