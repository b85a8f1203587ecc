"""The run directory: the one module that names its files, writes its logs and reads a run back.

Layout (`alam train`, each sweep trial, what `alam eval`/`export`/`report` read)::

    RUN_DIR/config.yaml          the resolved config (loadable with alam_control.config.load)
    RUN_DIR/train.csv            training scalars every train.log_every steps
    RUN_DIR/eval.csv             deterministic evaluation every train.eval_every steps
    RUN_DIR/tb/                  TensorBoard events (the same scalars, tagged train/<name> and eval/<name>)
    RUN_DIR/checkpoint.pt        latest atomic checkpoint (+ checkpoint.prev.pt, the one before it)
    RUN_DIR/summary.json         final metrics (DESIGN.md section 7), written last

A run is finished when its summary records ``train.total_steps`` steps: a summary from before the step budget was
raised on resume is not. Only ``train.total_steps`` may differ between a run and the config it is resumed with.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alam_control import config as config_lib
from alam_control import strict_json

if TYPE_CHECKING:
    import sim
    from alam_control.config import Config
    from alam_control.learn.agent import Agent

CONFIG = "config.yaml"
TRAIN_LOG = "train.csv"
EVAL_LOG = "eval.csv"
TENSORBOARD = "tb"
CHECKPOINT = "checkpoint.pt"
PREVIOUS_CHECKPOINT = "checkpoint.prev.pt"
BEST_CHECKPOINT = "best.pt"  # the weights at the best safe evaluation (`trainer.is_new_best`)
SAFE_VIOLATION_RATE = 0.005
"""An evaluation at this violation rate or below is safe enough for `BEST_CHECKPOINT` (issue 12's bar for a safe
policy: the scripted safe policies' return at violation_rate <= 0.005)."""
SUMMARY = "summary.json"
LOGS = {"train": TRAIN_LOG, "eval": EVAL_LOG}
"""Log kind (the TensorBoard tag prefix) -> its CSV file."""
RESUMABLE = ("train.total_steps",)
"""The config keys a resume may change: anything else would silently mix two experiments in one run."""


# ----------------------------------------------------------------------------------------------- logs
class RunLogger:
    """CSV + TensorBoard scalars. On resume, rows after the checkpoint's step are dropped (they will be redone)."""

    def __init__(self, run_dir: Path, resume_step: int | None):
        from torch.utils.tensorboard import SummaryWriter  # slow import; only where training runs

        self.run_dir = run_dir
        if resume_step is not None:
            for name in LOGS.values():
                truncate_csv(run_dir / name, resume_step)
        self.tb = SummaryWriter(str(run_dir / TENSORBOARD), purge_step=None if resume_step is None else resume_step + 1)

    def write(self, kind: str, step: int, scalars: dict[str, float]) -> None:
        """One row of ``kind`` ("train" or "eval"); the CSV's columns are those of its first row."""
        path = self.run_dir / LOGS[kind]
        row = {"step": step, **scalars}
        new = not path.exists() or path.stat().st_size == 0
        with open(path, "a", newline="") as f:
            if new:
                fields = list(row)
            else:
                with open(path, newline="") as r:
                    fields = next(csv.reader(r))
            writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)
        for k, v in scalars.items():
            self.tb.add_scalar(f"{kind}/{k}", v, step)

    def close(self) -> None:
        self.tb.close()


def truncate_csv(path: Path, last_step: int) -> None:
    """Drop the rows of a CSV log after ``last_step`` (the checkpoint a resume starts from)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= last_step]
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(kept)


def read_evals(run_dir: Path) -> list[dict[str, float]]:
    """eval.csv rows as floats (``step``, ``return``, ``cost``, ``lambda_probe``, ...; NaN for empty cells), [] when
    there is none."""
    path = Path(run_dir) / EVAL_LOG
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) if v not in ("", None) else math.nan for k, v in r.items()} for r in csv.DictReader(f)]


def discard_logs(run_dir: Path) -> None:
    """Delete the logs, summary and config of a run that has no checkpoint (killed before its first one), so a
    fresh start does not append to rows it will write again."""
    for name in (*LOGS.values(), SUMMARY, CONFIG):
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / TENSORBOARD, ignore_errors=True)


# ----------------------------------------------------------------------------------------------- summary
def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    """Writes summary.json atomically (temp file + rename: a finished run is never half-written) as strict JSON:
    a NaN metric (an AUROC with no violation to rank) is written as null, which `read_summary` reads back as NaN."""
    path = Path(run_dir) / SUMMARY
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(strict_json(summary), indent=2, allow_nan=False))
    os.replace(tmp, path)


def read_summary(run_dir: Path) -> dict[str, Any]:
    """The run's summary.json.

    Raises:
        FileNotFoundError: There is none (the run has not finished).
        ValueError: It is not valid JSON or not a JSON object (a hand edit, a disk that filled up).
    """
    path = Path(run_dir) / SUMMARY
    try:
        summary = json.loads(path.read_text())  # older runs hold a bare NaN, which Python's json reads
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}); rerun or remove that run") from None
    if not isinstance(summary, dict):
        raise ValueError(f"{path} is not a run summary (a JSON object)")
    return {k: math.nan if v is None else v for k, v in summary.items()}


def is_finished(run_dir: Path, total_steps: int) -> bool:
    """True when the run's summary.json records ``total_steps`` steps (the trainer writes it last); a missing or
    unreadable summary is not finished."""
    try:
        return read_summary(run_dir).get("steps") == total_steps
    except (OSError, ValueError):
        return False


# ----------------------------------------------------------------------------------------------- resume
def resume_differences(new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    """The dotted config keys that forbid resuming a run of config ``old`` with config ``new`` (both nested dicts,
    ``config.to_dict``): every difference but those in :data:`RESUMABLE`."""
    return config_lib.differences(new, old, ignore=RESUMABLE)


def check_resumable(cfg: Config, state: dict[str, Any], path: Path) -> None:
    """Refuse to resume the checkpoint ``state`` (read from ``path``) with ``cfg``.

    Raises:
        CheckpointError: The configs differ in more than :data:`RESUMABLE` (the keys are named), or the run is
            already past ``cfg.train.total_steps``.
    """
    from alam_control.learn.checkpoint import CheckpointError

    saved = config_lib.to_dict(config_lib.from_dict(state["config"]))
    diffs = resume_differences(config_lib.to_dict(cfg), saved)
    if diffs:
        raise CheckpointError(
            f"cannot resume: config differs from the checkpointed run in {', '.join(diffs)} "
            f"(only {', '.join(RESUMABLE)} may change on resume)"
        )
    if state["loop"]["step"] > cfg.train.total_steps:
        raise CheckpointError(
            f"cannot resume with train.total_steps {cfg.train.total_steps}: the run is already at step "
            f"{state['loop']['step']} ({path.name}); give a total of at least that"
        )


# ----------------------------------------------------------------------------------------------- a run, read back
@dataclass(frozen=True)
class Run:
    """A run read back from its latest checkpoint (what `alam eval --run-dir` and `alam export` work on)."""

    config: Config
    """The config stored in the checkpoint, i.e. the one the weights were trained with."""
    agent: Agent
    """The agent with the checkpoint's weights."""
    env: sim.SafeEnv
    """An environment of the run's task (built by ``make_env``; it also gave the agent its dimensions)."""
    state: dict[str, Any]
    """The whole checkpoint (``loop``, ``evals``, ``buffer``, ...)."""
    path: Path
    """The checkpoint file that was read (checkpoint.pt, or checkpoint.prev.pt after a kill between renames)."""


def load_run(
    run_dir: str | Path, make_env: Callable[[Config], sim.SafeEnv] | None = None, which: str = "latest"
) -> Run:
    """The run's latest checkpoint (``which`` "best": its best safe evaluation's, `checkpoint.load_best`) as a
    config, an agent with its weights and an env of its task.

    The config is the one stored in the checkpoint (see `checkpoint.run_config`); an edited `config.yaml` beside it
    is reported, not obeyed.

    Args:
        make_env: builds the env from the run's config (e.g. with evaluation seeds or randomization); default
            ``sim.load(cfg.task, seed=cfg.seed)``.

    Raises:
        CheckpointError: No checkpoint, a corrupt one, or one without a valid config.
    """
    import torch

    import sim
    from alam_control.learn import checkpoint, trainer

    if which not in ("latest", "best"):
        raise ValueError(f"which must be 'latest' or 'best', got {which!r}")
    state, path = checkpoint.load_latest(run_dir) if which == "latest" else checkpoint.load_best(run_dir)
    cfg = checkpoint.run_config(state, path)
    env = make_env(cfg) if make_env is not None else sim.load(cfg.task, seed=cfg.seed)
    agent = trainer.build_agent(cfg, env, torch.Generator().manual_seed(cfg.seed))
    agent.load_state_dict(state["agent"])
    return Run(cfg, agent, env, state, path)
