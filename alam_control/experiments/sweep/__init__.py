"""Experiment grids on Ray: ``alam sweep --config configs/sweeps/NAME.yaml`` (docs/sweeps.md).

- `spec`: the sweep file, parsed and validated, its grid expanded into trials (`load`, `Sweep`, `Trial`).
- `trial`: one trial run (resuming from its checkpoint), its progress read from its log tails (`poll`), and the
  sweep manifest `sweep.json` (`prepare`, `read_manifest`, the `--resume` rules).
- `table`: the live terminal table (`render_table`, `LiveTable`).
- `driver`: Ray: `run` submits the unfinished trials, retries lost workers and keeps the table and manifest.

Every trial is an ordinary run directory (`alam_control.learn.rundir`) that resumes from its latest checkpoint when it
has one, so a Ray retry after a lost worker or node, and ``--resume`` after an interrupted sweep, continue from
the checkpoint instead of starting over.
"""

from __future__ import annotations

from alam_control.experiments.sweep.driver import DRIVER_LOCK, LOCAL_OBJECT_STORE_BYTES, run
from alam_control.experiments.sweep.spec import (
    REPO,
    SWEEP_KEYS,
    TRIAL_DEFAULTS,
    TRIALS_DIR,
    Sweep,
    SweepError,
    Trial,
    load,
    parse_first,
    queue_order,
    trial_name,
    trial_overrides,
)
from alam_control.experiments.sweep.table import LiveTable, Row, StepMeter, format_duration, render_table
from alam_control.experiments.sweep.trial import (
    ATTEMPTS,
    MANIFEST,
    MANIFEST_FORMAT,
    TRIAL_LOG,
    WORKER_PID,
    Progress,
    done_trials,
    poll,
    prepare,
    read_manifest,
    run_trial,
    trial_done,
    write_manifest,
)

__all__ = [
    "ATTEMPTS",
    "DRIVER_LOCK",
    "LOCAL_OBJECT_STORE_BYTES",
    "MANIFEST",
    "MANIFEST_FORMAT",
    "REPO",
    "SWEEP_KEYS",
    "TRIALS_DIR",
    "TRIAL_DEFAULTS",
    "TRIAL_LOG",
    "WORKER_PID",
    "LiveTable",
    "Progress",
    "Row",
    "StepMeter",
    "Sweep",
    "SweepError",
    "Trial",
    "format_duration",
    "load",
    "parse_first",
    "poll",
    "prepare",
    "queue_order",
    "read_manifest",
    "render_table",
    "run",
    "run_trial",
    "done_trials",
    "trial_done",
    "trial_name",
    "trial_overrides",
    "write_manifest",
]
