"""The live terminal table of a running sweep: one line per trial and a totals line with the ETA."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

from alam_control.experiments.sweep.spec import Trial
from alam_control.experiments.sweep.trial import Progress


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
class StepMeter:
    """Env-steps trained since the driver started, from the trials' step counters.

    Only forward moves count: a trial can restart below the step recorded for it (its checkpoint lost, or a budget
    raised after it had trained under the old one and run again from step 0), and a difference of sums would then
    subtract the steps it had before and show a rate near 0 for the rest of the sitting.
    """

    last: list[int]
    """Each trial's step at the previous update (the driver's rows, in order)."""
    trained: int = 0

    def update(self, steps: Sequence[int]) -> int:
        """Add each trial's advance since the last update; a trial that went back starts counting from there."""
        self.trained += sum(max(now - before, 0) for before, now in zip(self.last, steps, strict=True))
        self.last = list(steps)
        return self.trained


@dataclass
class Row:
    """One trial's line in the table: its state as the driver knows it."""

    trial: Trial
    state: str = "PENDING"
    """PENDING (not submitted), QUEUED (submitted, no worker yet), RUNNING, DONE, FAILED, INTERRUPTED."""
    progress: Progress = field(default_factory=Progress)
    attempts_at_submit: int = 0
    """``progress.attempts`` when this invocation submitted the trial (the ``try`` column counts from it)."""
    error: str | None = None
    """The first line of a FAILED trial's error."""


def render_table(rows: Sequence[Row], elapsed_s: float, rate: float, max_rows: int = 30) -> list[str]:
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
