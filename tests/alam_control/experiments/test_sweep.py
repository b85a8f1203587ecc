"""`alam sweep`: sweep files, trial names, the manifest and --resume rules, the live table, the trial body
(resume from checkpoint), real sweeps on a local Ray with a worker killed mid-run and a driver interrupted, and
one on a simulated three-node cluster whose node running the trial is removed."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from alam_control import cli
from alam_control import config as config_lib
from alam_control.config import ConfigError
from alam_control.experiments import sweep
from alam_control.learn import checkpoint, rundir, trainer

REPO = Path(__file__).resolve().parents[3]
SMOKE = REPO / "configs" / "smoke.yaml"


def _write_sweep(path: Path, **fields) -> Path:
    data = {"base": str(SMOKE), "grid": {"seed": [0, 1]}, "out": str(path.parent / "out"), **fields}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ----------------------------------------------------------------------------------------------- sweep files
def test_grid_expands_in_order_with_readable_names_and_resolved_configs(tmp_path: Path) -> None:
    path = _write_sweep(
        tmp_path / "s.yaml",
        name="ablation",
        set={"multiplier.penalty_coef": 0.5, "train.total_steps": 400},
        grid={"algo.name": ["sac_lag", "sac_alam"], "seed": [0, 1], "sac.hidden": [[16, 16]]},
    )
    s = sweep.load(path)
    assert s.name == "ablation" and s.out == (tmp_path / "out").absolute()
    assert [t.name for t in s.trials] == [
        "algo.name=sac_lag,seed=0,sac.hidden=16x16",
        "algo.name=sac_lag,seed=1,sac.hidden=16x16",
        "algo.name=sac_alam,seed=0,sac.hidden=16x16",
        "algo.name=sac_alam,seed=1,sac.hidden=16x16",
    ]
    t = s.trials[2]
    assert t.params == {"algo.name": "sac_alam", "seed": 0, "sac.hidden": [16, 16]}
    assert t.run_dir == s.out / "trials" / t.name
    assert (t.config.algo.name, t.config.seed, t.config.sac.hidden) == ("sac_alam", 0, (16, 16))
    assert t.config.multiplier.penalty_coef == 0.5 and t.config.train.total_steps == 400
    assert t.config.sac.batch_size == 32  # from the base (smoke.yaml)
    assert t.config.train.threads == 1  # one torch thread per trial by default
    assert sweep.load(path, out=tmp_path / "elsewhere").trials[0].run_dir.parent == tmp_path / "elsewhere" / "trials"

    # A sweep's set: may change the per-trial thread count (Ray then reserves that many CPUs per trial).
    assert sweep.load(_write_sweep(tmp_path / "t.yaml", set={"train.threads": 2})).trials[0].config.train.threads == 2


def test_a_named_axis_applies_its_overrides_together_and_names_trials_by_label(tmp_path: Path) -> None:
    path = _write_sweep(
        tmp_path / "s.yaml",
        set={"train.total_steps": 400},
        grid={
            "seed": [0],
            "task": {"cp": {"task": "cartpole-safe_swingup"}, "dd": {"task": "diffdrive-safe_navigate",
                                                                       "sac.reward_scale": 10.0}},
            "algo": {"sac": {"algo.name": "sac"},
                     "ascent": {"algo.name": "sac_alam", "algo.multiplier_update": "ascent", "algo.label": "ascent"}},
        },
    )  # fmt: skip
    s = sweep.load(path)
    assert [t.name for t in s.trials] == [
        "seed=0,task=cp,algo=sac",
        "seed=0,task=cp,algo=ascent",
        "seed=0,task=dd,algo=sac",
        "seed=0,task=dd,algo=ascent",
    ]
    dd_ascent = s.trials[3]
    assert dd_ascent.params == {"seed": 0, "task": "dd", "algo": "ascent"}
    c = dd_ascent.config
    assert (c.task, c.sac.reward_scale, c.algo.name, c.algo.multiplier_update, c.algo.label) == (
        "diffdrive-safe_navigate", 10.0, "sac_alam", "ascent", "ascent")  # fmt: skip
    assert s.trials[0].config.sac.reward_scale == 1.0  # the cart-pole trials do not get the diff-drive's scale
    assert s.grid["algo"]["ascent"]["algo.multiplier_update"] == "ascent"  # kept as written, for the manifest

    # The repo's evidence grid: 7 algorithms x 4 tasks x 5 seeds, seeds varying slowest.
    paper = sweep.load(REPO / "configs" / "sweeps" / "paper.yaml")
    assert len(paper.trials) == 140 and paper.trials[0].name == "seed=0,task=cartpole,algo=sac"
    assert paper.trials[28].name == "seed=1,task=cartpole,algo=sac"
    # The diff-drive's margin applies to every algorithm of its cells, and to no other task.
    thresholds = {(t.config.task, t.config.cost.threshold) for t in paper.trials}
    assert ("diffdrive-safe_navigate", 0.1608) in thresholds and ("cartpole-safe_swingup", None) in thresholds
    assert len({th for task, th in thresholds if task == "diffdrive-safe_navigate"}) == 1
    labels = {(t.config.algo.name, t.config.algo.actor_penalty, t.config.algo.multiplier_update, t.config.algo.label)
              for t in paper.trials}  # fmt: skip
    assert ("sac_alam", "linear", None, "alam_nopenalty") in labels
    assert ("sac_alam", None, "ascent", "alam_ascent") in labels


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"algo": {}}, "grid.algo: expected at least one named value"),
        ({"algo": {"a b": {"algo.name": "sac"}}}, "label 'a b' must be a string"),
        ({"algo": {"x": "sac"}}, "grid.algo.x: expected a mapping of dotted config key"),
        ({"algo": {"x": {"train.total_steps": 5}}}, "grid.algo.x sets train.total_steps, also in set:"),
        ({"algo": {"x": {"algo.nme": "sac"}}}, "algo.nme"),
    ],
)
def test_bad_named_axes_are_named(tmp_path: Path, grid: dict, message: str) -> None:
    path = _write_sweep(tmp_path / "s.yaml", set={"train.total_steps": 400}, grid={"seed": [0], **grid})
    with pytest.raises((sweep.SweepError, ConfigError), match=message.replace("(", r"\(")):
        sweep.load(path)


def test_base_is_found_relative_to_the_sweep_file_and_name_defaults_to_the_stem(tmp_path: Path) -> None:
    (tmp_path / "configs" / "sweeps").mkdir(parents=True)
    (tmp_path / "configs" / "base.yaml").write_text(SMOKE.read_text())
    path = tmp_path / "configs" / "sweeps" / "mine.yaml"
    path.write_text(yaml.safe_dump({"base": "../base.yaml", "grid": {"seed": [3]}}))
    s = sweep.load(path)
    assert s.name == "mine" and s.base == (tmp_path / "configs" / "base.yaml").resolve()
    assert s.out == Path.cwd() / "runs" / "sweeps" / "mine"
    # The repo's own sweep files load and name their trials.
    assert [t.name for t in sweep.load(REPO / "configs" / "sweeps" / "smoke.yaml").trials] == ["seed=0", "seed=1"]
    example = sweep.load(REPO / "configs" / "sweeps" / "example.yaml")
    assert len(example.trials) == 12 and example.trials[0].name == "algo.name=sac,seed=0"


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"grids": {"seed": [0]}}, sweep.SweepError, "unknown sweep key(s) grids"),
        ({"grid": {"sac.batchsize": [32, 64]}}, ConfigError, "sac.batchsize"),
        ({"grid": {"seed": [0], "train.total_step": [100]}}, ConfigError, "train.total_step"),
        ({"set": {"sac.gama": 0.9}}, ConfigError, "sac.gama"),
        ({"grid": {"seed": []}}, sweep.SweepError, "grid.seed: expected a non-empty list"),
        ({"grid": {"seed": 3}}, sweep.SweepError, "grid.seed: expected a non-empty list"),
        ({"grid": {}}, sweep.SweepError, "grid: expected a non-empty mapping"),
        ({"grid": {"seed": [1, 1]}}, sweep.SweepError, "grid.seed lists 1 more than once"),
        ({"set": {"seed": 1}}, sweep.SweepError, "seed is both in set: and grid:"),
        ({"grid": {"train.total_steps": ["many"]}}, ConfigError, "train.total_steps: expected an integer"),
        ({"grid": {"algo.name": ["sac", "ppo"]}}, ConfigError, "trial algo.name=ppo"),
        ({"grid": {"seed.value": [1]}}, ConfigError, "seed: expected an integer"),
        ({"grid": {"train.threads.n": [1]}}, ConfigError, "train.threads.n: threads is not a config section"),
        ({"base": "no/such/config.yaml"}, sweep.SweepError, "base config 'no/such/config.yaml' not found"),
        ({"name": "a b"}, sweep.SweepError, "name: 'a b'"),
    ],
)
def test_bad_sweep_files_are_refused_naming_the_key(tmp_path: Path, fields: dict, error: type, message: str) -> None:
    with pytest.raises(error) as info:
        sweep.load(_write_sweep(tmp_path / "s.yaml", **fields))
    assert message in str(info.value)


def test_sweep_files_and_bases_are_read_by_the_config_loader(tmp_path: Path) -> None:
    # The strict YAML reader of alam_control.config: a key written twice is an error, not "the last one wins".
    twice = tmp_path / "twice.yaml"
    twice.write_text(f"base: {SMOKE}\ngrid:\n  seed: [0]\ngrid:\n  seed: [1]\n")
    with pytest.raises(sweep.SweepError, match=r"duplicate key 'grid' \(line 4\)"):
        sweep.load(twice)
    base = tmp_path / "base.yaml"
    base.write_text(SMOKE.read_text() + "sac:\n  gamma: 0.9\n")  # a second `sac:` would replace the first
    with pytest.raises(ConfigError, match="duplicate key 'sac'"):
        sweep.load(_write_sweep(tmp_path / "s.yaml", base=str(base)))
    base.write_text("")
    with pytest.raises(ConfigError, match="the file is empty"):
        sweep.load(_write_sweep(tmp_path / "s.yaml", base=str(base)))


def test_trial_names_are_sanitized_bounded_and_deterministic() -> None:
    assert sweep.trial_name({"task": "a/b c", "randomize": True, "cost.threshold": None}) == (
        "task=a_b_c,randomize=true,cost.threshold=null"
    )
    long = {"sac.hidden": [256] * 40, "seed": 1}
    name = sweep.trial_name(long)
    assert len(name) <= 120 and name == sweep.trial_name(dict(long))
    assert name != sweep.trial_name({**long, "seed": 2})


def test_started_trials_then_those_named_first_then_the_grid_order(tmp_path: Path) -> None:
    s = sweep.load(_write_sweep(tmp_path / "s.yaml", grid={"algo.name": ["sac", "sac_alam"], "seed": [0, 1, 2]}))
    first = sweep.parse_first(s, ["seed=1", "algo.name=sac_alam"])
    assert first == [{"seed": "1"}, {"algo.name": "sac_alam"}]
    order = sweep.queue_order(s.trials, {"algo.name=sac_alam,seed=2"}, first)
    assert [t.name for t in order] == [
        "algo.name=sac_alam,seed=2",  # started: its checkpoint is lost with runs/ if the sitting ends first
        "algo.name=sac,seed=1",  # the first filter, in the grid's order
        "algo.name=sac_alam,seed=1",
        "algo.name=sac_alam,seed=0",  # the second
        "algo.name=sac,seed=0",  # the rest
        "algo.name=sac,seed=2",
    ]
    assert sweep.queue_order(s.trials, set(), []) == s.trials
    assert [t.name for t in sweep.queue_order(s.trials, set(), sweep.parse_first(s, ["algo.name=sac_alam,seed=0"]))][
        :2
    ] == ["algo.name=sac_alam,seed=0", "algo.name=sac,seed=0"]  # every pair of a filter must match


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seed", "expected key=value"),
        ("seed=1,", "expected key=value"),
        ("=1", "expected key=value"),
        ("task=walker", "task is no axis of the grid (seed)"),
        ("seed=7", "matches no trial"),
    ],
)
def test_a_first_filter_that_cannot_mean_what_it_says_is_refused(tmp_path: Path, text: str, message: str) -> None:
    path = _write_sweep(tmp_path / "s.yaml")
    with pytest.raises(sweep.SweepError, match=re.escape(message)):
        sweep.parse_first(sweep.load(path), [text])
    # The CLI names it before starting Ray or writing the sweep directory.
    assert cli.main(["sweep", "--config", str(path), "--first", text]) == 2
    assert not (tmp_path / "out").exists()


def test_the_cli_refuses_bad_files_before_starting_ray(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = _write_sweep(tmp_path / "s.yaml", grid={"sac.batchsize": [32]})
    assert cli.main(["sweep", "--config", str(path)]) == 2
    assert "sac.batchsize" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------- manifest
def test_resume_from_restored_trial_directories_without_the_manifest(tmp_path: Path) -> None:
    # A later sitting without runs/: the committed small files of a finished trial are copied back (no sweep.json,
    # no checkpoint); --resume counts it done and starts the rest.
    s = sweep.load(_write_sweep(tmp_path / "s.yaml"))
    done = s.out / "trials" / "seed=0"
    done.mkdir(parents=True)
    config_lib.save(s.trials[0].config, done / "config.yaml")
    (done / "summary.json").write_text(json.dumps({"steps": s.trials[0].config.train.total_steps}))
    manifest = sweep.prepare(s, resume=True)
    assert [(t["name"], t["status"]) for t in manifest["trials"]] == [("seed=0", "done"), ("seed=1", "pending")]
    # Restored trials are checked as a manifest's would be: a changed config, or a trial the grid no longer has.
    (s.out / "sweep.json").unlink()
    with pytest.raises(sweep.SweepError, match=r"trial seed=0: config differs in sac\.gamma"):
        sweep.prepare(sweep.load(_write_sweep(tmp_path / "s.yaml", set={"sac.gamma": 0.9})), resume=True)
    (s.out / "trials" / "seed=7").mkdir()
    config_lib.save(s.trials[0].config, s.out / "trials" / "seed=7" / "config.yaml")
    with pytest.raises(sweep.SweepError, match="trials no longer in the grid: seed=7"):
        sweep.prepare(s, resume=True)


def test_existing_sweep_is_not_overwritten_and_resume_refuses_a_changed_sweep(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = _write_sweep(tmp_path / "s.yaml")
    s = sweep.load(path)
    sweep.prepare(s, resume=False)
    manifest = sweep.read_manifest(s.out)
    assert manifest["grid"] == {"seed": [0, 1]}
    assert [(t["name"], t["status"], t["run_dir"]) for t in manifest["trials"]] == [
        ("seed=0", "pending", "trials/seed=0"),
        ("seed=1", "pending", "trials/seed=1"),
    ]
    assert config_lib.from_dict(manifest["trials"][1]["config"]) == s.trials[1].config

    assert cli.main(["sweep", "--config", str(path)]) == 2
    assert "already holds a sweep; pass --resume" in capsys.readouterr().err

    with pytest.raises(sweep.SweepError, match="new trials: seed=2"):
        sweep.prepare(sweep.load(_write_sweep(tmp_path / "s.yaml", grid={"seed": [0, 1, 2]})), resume=True)
    with pytest.raises(sweep.SweepError, match=r"trial seed=0: config differs in sac\.gamma"):
        sweep.prepare(sweep.load(_write_sweep(tmp_path / "s.yaml", set={"sac.gamma": 0.9})), resume=True)
    with pytest.raises(sweep.SweepError, match="has no sweep.json"):
        sweep.prepare(sweep.load(_write_sweep(tmp_path / "s.yaml"), out=tmp_path / "fresh"), resume=True)
    # Extending the step budget is allowed, as for `alam train --resume`.
    sweep.prepare(sweep.load(_write_sweep(tmp_path / "s.yaml", set={"train.total_steps": 800})), resume=True)
    # A sweep started before a config field existed (its sweep.json lacks the key) still resumes: the field takes
    # its default, as in a checkpoint's config (randomization.push_* were added while a sweep ran).
    manifest = sweep.read_manifest(s.out)
    for trial in manifest["trials"]:
        del trial["config"]["randomization"]["push_rate"]
    sweep.write_manifest(s.out, manifest)
    sweep.prepare(sweep.load(_write_sweep(tmp_path / "s.yaml", set={"train.total_steps": 800})), resume=True)


def test_resume_allows_a_raised_budget_inside_a_named_axis_and_nothing_else(tmp_path: Path) -> None:
    def named(steps: int, gamma: float = 0.99) -> Path:
        task = {"cp": {"task": "cartpole-safe_swingup", "train.total_steps": steps, "sac.gamma": gamma}}
        return _write_sweep(tmp_path / "s.yaml", grid={"seed": [0], "task": task})

    sweep.prepare(sweep.load(named(400)), resume=False)
    sweep.prepare(sweep.load(named(800)), resume=True)  # the per-task budget was raised: allowed
    with pytest.raises(sweep.SweepError, match="grid was"):
        sweep.prepare(sweep.load(named(400, gamma=0.9)), resume=True)


def test_resume_skips_finished_trials_without_starting_ray(tmp_path: Path) -> None:
    s = sweep.load(_write_sweep(tmp_path / "s.yaml"))
    sweep.prepare(s, resume=False)
    for t in s.trials:
        t.run_dir.mkdir(parents=True)
        (t.run_dir / "summary.json").write_text(json.dumps({"steps": t.config.train.total_steps}))
    # A second driver on the same sweep directory is refused while the first is alive (here: this process).
    lock = s.out / sweep.DRIVER_LOCK
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    with pytest.raises(sweep.SweepError, match=f"another alam sweep \\(pid {os.getpid()}\\) is running"):
        sweep.run(s, resume=True, stream=io.StringIO())
    dead = next(p for p in range(999_999, 0, -1) if not Path(f"/proc/{p}").exists())
    lock.write_text(json.dumps({"pid": dead, "host": socket.gethostname()}))  # left by a killed driver
    out = io.StringIO()
    assert sweep.run(s, resume=True, stream=out) == 0  # would fail without Ray if it tried to start it
    assert not lock.exists()
    assert "2 already finished, skipped" in out.getvalue() and "nothing to run" in out.getvalue()
    assert [t["status"] for t in sweep.read_manifest(s.out)["trials"]] == ["done", "done"]
    # A summary from a shorter budget (before `train.total_steps` was raised) is not finished.
    (s.trials[1].run_dir / "summary.json").write_text(json.dumps({"steps": 100}))
    assert not sweep.trial_done(s.trials[1].run_dir, s.trials[1].config.train.total_steps)


# ----------------------------------------------------------------------------------------------- trial body
def test_trial_resumes_from_its_checkpoint_and_a_checkpointless_dir_starts_clean(tmp_path: Path) -> None:
    cfg = config_lib.load(SMOKE, ["train.total_steps=400"])
    run = tmp_path / "trial"
    trainer.train(cfg, run, progress=False)  # checkpoint at 400: the "first attempt"
    longer = config_lib.to_dict(config_lib.load(SMOKE, ["train.total_steps=600"]))
    summary = sweep.run_trial(longer, str(run))
    assert summary["steps"] == 600
    attempts = [json.loads(line) for line in (run / "attempts.jsonl").read_text().splitlines()]
    assert attempts == [{**attempts[0], "pid": os.getpid(), "resume": True, "start_step": 400}]
    assert "resumed" in (run / "trial.log").read_text() and "at step 400" in (run / "trial.log").read_text()
    with open(run / "train.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [200, 300, 400, 500, 600]
    assert sweep.run_trial(longer, str(run))["steps"] == 600  # finished: returns its summary, trains nothing

    # Killed before its first checkpoint: logs but no checkpoint. A fresh start must not append to them.
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "train.csv").write_text("step,critic_loss\n200,1.0\n300,1.0\n")
    sweep.run_trial(config_lib.to_dict(cfg), str(stale))
    with open(stale / "train.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [200, 300, 400]


# ----------------------------------------------------------------------------------------------- live table
def _rows(s: sweep.Sweep) -> list:
    rows = [sweep.Row(t) for t in s.trials]
    rows[0].state, rows[0].progress = "DONE", sweep.Progress(step=600, eval_ret=12.5, eval_cost=3.0, attempts=1)
    rows[1].state, rows[1].progress = "RUNNING", sweep.Progress(step=300, ret=7.0, cost=1.0, attempts=2)
    rows[1].attempts_at_submit = 0
    return rows


def test_live_table_lines_eta_and_plain_output_off_a_terminal(tmp_path: Path) -> None:
    s = sweep.load(_write_sweep(tmp_path / "s.yaml"))
    lines = sweep.render_table(_rows(s), elapsed_s=30.0, rate=30.0)
    assert lines[0].split() == ["trial", "state", "try", "step", "ret", "cost", "eval", "ret", "eval", "cost"]
    assert lines[1].split() == ["seed=0", "DONE", "600/600", "-", "-", "12.5", "3.0"]
    assert lines[2].split() == ["seed=1", "RUNNING", "2", "300/600", "7.0", "1.0", "-", "-"]
    # 300 of 1200 steps left at 30 steps/s: 10 s.
    assert lines[3] == "[30s] 1 done, 1 running | steps 900/1200 | 30 steps/s | ETA 10s"
    assert sweep.format_duration(3725) == "1h02m05s" and sweep.format_duration(float("nan")) == "?"

    plain = io.StringIO()
    table = sweep.LiveTable(plain, refresh_s=60.0)
    table.show(lines)
    table.show(lines)  # within the refresh period: not repeated off a terminal
    table.event("seed=1: done")
    assert "\x1b" not in plain.getvalue()
    assert plain.getvalue().count("ETA") == 1 and plain.getvalue().endswith("seed=1: done\n")

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    table = sweep.LiveTable(tty)
    table.show(lines)
    table.show(lines)
    assert f"\x1b[{len(lines)}F\x1b[J" in tty.getvalue()  # redrawn in place


def test_step_meter_counts_only_forward_moves() -> None:
    # Trial 2 had 175k steps recorded from an older budget and restarts at 0: the rate must not go negative or
    # stall; the steps it trains again count.
    meter = sweep.StepMeter([300, 175_000, 0])
    assert meter.update([300, 175_000, 0]) == 0
    assert meter.update([300, 0, 0]) == 0  # went back: nothing subtracted
    assert meter.update([300, 56_000, 100]) == 56_100
    assert meter.update([300, 60_000, 100]) == 60_100


def test_poll_reads_the_latest_logged_step_and_eval(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("step,episode_return,episode_cost\n100,1.0,2.0\n200,3.0,4.0\n300,5.")
    (tmp_path / "eval.csv").write_text("step,return,cost\n200,9.0,0.0\n")
    (tmp_path / "attempts.jsonl").write_text('{"pid": 1}\n{"pid": 2}\n')
    p = sweep.poll(tmp_path)
    assert (p.step, p.ret, p.cost, p.eval_ret, p.eval_cost, p.attempts) == (200, 3.0, 4.0, 9.0, 0.0, 2)
    assert sweep.poll(tmp_path / "missing").step == 0


# ----------------------------------------------------------------------------------------------- real sweeps
def _tiny_sweep(tmp_path: Path, total_steps: int = 1200) -> Path:
    return _write_sweep(
        tmp_path / "tiny.yaml",
        name="tiny",
        set={"train.total_steps": total_steps, "train.checkpoint_every": 200, "train.eval_every": 600},
        out=str(tmp_path / "sweep"),
    )


def _start(path: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "alam_control.cli", "sweep", "--config", str(path), "--refresh", "1", *extra],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


# Generous waits: starting Ray and a trial (torch, dm_control imports) took > 90 s on this 2-core machine with two
# trainings beside the test run; a wait only bounds a hang, it does not weaken what the tests assert.
WAIT_S = 300.0


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"sweep ended before {path} appeared:\n{proc.stdout.read()}"
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout} s"
        time.sleep(0.01)


def _attempts(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "attempts.jsonl").read_text().splitlines()]


def _steps(run: Path, name: str) -> list[int]:
    with open(run / name) as f:
        return [int(r["step"]) for r in csv.DictReader(f)]


def test_sweep_on_ray_survives_a_killed_worker_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("ray")
    pytest.importorskip("matplotlib")
    path = _tiny_sweep(tmp_path)
    s = sweep.load(path)
    victim = s.trials[1].run_dir
    proc = _start(path)
    _wait_for(victim / checkpoint.LATEST, proc)  # at least one checkpoint: mid-run
    worker = int((victim / "worker.pid").read_text())
    os.kill(worker, signal.SIGKILL)
    killed_at = checkpoint.load_latest(victim)[0]["loop"]["step"]  # nothing writes it any more
    out, _ = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0, out
    assert 0 < killed_at < 1200

    # The killed trial ran twice: first in the killed worker, then in a new one that resumed from the checkpoint.
    first, second = _attempts(victim)
    assert first["pid"] == worker and (first["resume"], first["start_step"]) == (False, 0)
    assert second["pid"] != worker and (second["resume"], second["start_step"]) == (True, killed_at)
    assert f"from checkpoint.pt at step {killed_at}" in (victim / "trial.log").read_text()  # the trainer's word
    assert checkpoint.load_latest(victim)[0]["loop"]["step"] == 1200
    assert json.loads((victim / "summary.json").read_text())["steps"] == 1200
    # The log keeps the first worker's rows up to the checkpoint and continues after it: one row per 100 steps
    # from learning_starts (200) to the end, none repeated (a restart from 0 would have had to drop them).
    assert _steps(victim, "train.csv") == list(range(200, 1201, 100))
    assert _steps(victim, "eval.csv") == [600, 1200]
    assert len(_attempts(s.trials[0].run_dir)) == 1  # the other trial was untouched
    assert "seed=1: worker lost; retrying from its last checkpoint" in out
    assert "2/2 trials done" in out
    assert all("\x1b" not in line for line in out.splitlines() if "ETA" in line)  # plain lines off a terminal
    assert [t["status"] for t in sweep.read_manifest(s.out)["trials"]] == ["done", "done"]

    # The resumed trial ends exactly where an uninterrupted run of the same config ends.
    straight = tmp_path / "straight"
    reference = trainer.train(s.trials[1].config, straight, progress=False)
    resumed = rundir.read_summary(victim)
    assert (resumed["return"], resumed["cost"], resumed["train_cost"]) == (
        reference["return"],
        reference["cost"],
        reference["train_cost"],
    )

    assert cli.main(["report", str(s.out)]) == 0
    assert "| cartpole-safe_swingup | sac_alam | 2 |" in capsys.readouterr().out
    assert (s.out / "report.md").exists() and (s.out / "report.csv").exists()
    assert (s.out / "curves_cartpole-safe_swingup.png").read_bytes()[:4] == b"\x89PNG"


def test_interrupted_sweep_resumes_unfinished_trials_and_skips_finished_ones(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    path = _tiny_sweep(tmp_path, total_steps=1600)
    s = sweep.load(path)
    done_trial, cut_trial = (t.run_dir for t in s.trials)
    proc = _start(path, "--max-concurrent", "1")  # seed=0 first, then seed=1
    _wait_for(cut_trial / checkpoint.LATEST, proc)
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "--resume" in out
    cut_at = checkpoint.load_latest(cut_trial)[0]["loop"]["step"]
    assert 0 < cut_at < 1600 and not (cut_trial / "summary.json").exists()
    summary_before = (done_trial / "summary.json").read_bytes()
    statuses = {t["name"]: t["status"] for t in sweep.read_manifest(s.out)["trials"]}
    assert statuses == {"seed=0": "done", "seed=1": "interrupted"}

    again = subprocess.run(
        [sys.executable, "-m", "alam_control.cli", "sweep", "--config", str(path), "--resume"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 already finished, skipped" in again.stdout
    assert len(_attempts(done_trial)) == 1 and (done_trial / "summary.json").read_bytes() == summary_before
    last = _attempts(cut_trial)[-1]
    assert (last["resume"], last["start_step"]) == (True, cut_at)
    assert json.loads((cut_trial / "summary.json").read_text())["steps"] == 1600
    assert _steps(cut_trial, "train.csv") == list(range(200, 1601, 100))


def test_trials_named_first_run_first_and_a_started_one_before_them_on_resume(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    path = _tiny_sweep(tmp_path, total_steps=1600)
    s = sweep.load(path)
    seed0, seed1 = (t.run_dir for t in s.trials)
    proc = _start(path, "--max-concurrent", "1", "--first", "seed=1")
    _wait_for(seed1 / checkpoint.LATEST, proc)
    assert not seed0.exists()  # the grid's first trial waits: seed=1 was named first
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    again = subprocess.run(
        [sys.executable, "-m", "alam_control.cli", "sweep", "--config", str(path), "--resume", "--max-concurrent",
         "1", "--first", "seed=0"],
        cwd=REPO, capture_output=True, text=True, timeout=WAIT_S,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    # seed=1 had begun, so it finishes before seed=0 starts though seed=0 is named first now.
    resumed, started = _attempts(seed1)[-1], _attempts(seed0)[0]
    assert resumed["resume"] and resumed["time"] < started["time"]
    assert (seed0 / "summary.json").exists() and (seed1 / "summary.json").exists()


def test_a_failing_trial_is_reported_and_the_others_finish(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    # A GPU this machine does not have passes config validation (a sweep may be written for another machine) and
    # fails inside the worker, with a named error.
    path = _write_sweep(
        tmp_path / "fail.yaml",
        set={"train.total_steps": 400},
        grid={"train.device": ["cpu", "cuda:99"]},
        out=str(tmp_path / "sweep"),
    )
    proc = _start(path)
    out, _ = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 1, out
    records = {t["name"]: t for t in sweep.read_manifest(tmp_path / "sweep")["trials"]}
    assert records["train.device=cpu"]["status"] == "done"
    bad = records["train.device=cuda_99"]  # ":" is not safe in a directory name
    assert bad["status"] == "failed" and "train.device is 'cuda:99'" in bad["error"]
    assert "train.device=cuda_99: FAILED" in out and "rerun with --resume" in out
    assert len(_attempts(tmp_path / "sweep" / "trials" / "train.device=cuda_99")) == 1  # not retried


def test_a_trial_on_a_lost_node_resumes_on_another_node_and_ends_as_an_uninterrupted_run(tmp_path: Path) -> None:
    """A Ray cluster of a head and two worker nodes on this machine (ray.cluster_utils); the node running the trial
    is removed mid-run. Ray retries the trial on the other node, which resumes from the checkpoint (the run
    directory is on a filesystem every node sees, as a real cluster needs)."""
    pytest.importorskip("ray")
    import threading

    import ray
    from ray.cluster_utils import Cluster

    total = 1200
    path = _write_sweep(
        tmp_path / "nodes.yaml",
        grid={"seed": [0]},
        set={"train.total_steps": total, "train.checkpoint_every": 200, "train.eval_every": 600},
        out=str(tmp_path / "sweep"),
    )
    s = sweep.load(path)
    run = s.trials[0].run_dir
    # The head has no CPUs, so the trial runs on a worker node. The GCS declares a silent node dead after 3 missed
    # 0.5 s health checks (default 5 x 3 s), so Ray does not go on offering the lost node's free CPU to the retry.
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False,
                        "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 3}},
    )  # fmt: skip
    lost: dict = {}

    def lose_the_trials_node() -> None:
        try:
            deadline = time.monotonic() + WAIT_S
            while not (run / checkpoint.PREVIOUS).exists():  # two checkpoints: mid-run, updates under way
                assert time.monotonic() < deadline, f"the trial wrote no second checkpoint within {WAIT_S} s"
                time.sleep(0.01)
            attempt = _attempts(run)[-1]
            node = next(n for n in workers if n.node_id == attempt["node"])
            cluster.remove_node(node, allow_graceful=False)  # its raylet and agents, SIGKILLed
            with contextlib.suppress(ProcessLookupError):
                os.kill(attempt["pid"], signal.SIGKILL)  # and its worker (Ray's would exit on noticing the raylet)
            lost.update(node=node.node_id, pid=attempt["pid"], step=checkpoint.load_latest(run)[0]["loop"]["step"])
        except BaseException as err:  # reported by the main thread, which is running the sweep
            lost["error"] = err

    try:
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        watcher = threading.Thread(target=lose_the_trials_node, daemon=True)
        watcher.start()
        out = io.StringIO()
        code = sweep.run(s, address=cluster.address, stream=out)
        watcher.join(timeout=5)
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert "error" not in lost, lost.get("error")
    assert code == 0, out.getvalue()
    assert 0 < lost["step"] < total
    first, second = _attempts(run)
    other = next(n.node_id for n in workers if n.node_id != lost["node"])
    assert (first["node"], first["pid"], first["resume"]) == (lost["node"], lost["pid"], False)
    assert (second["node"], second["resume"], second["start_step"]) == (other, True, lost["step"])
    assert "seed=0: worker lost; retrying from its last checkpoint" in out.getvalue()
    assert [t["status"] for t in sweep.read_manifest(s.out)["trials"]] == ["done"]
    assert _steps(run, "train.csv") == list(range(200, total + 1, 100))  # no row lost or repeated

    straight = tmp_path / "straight"
    reference = trainer.train(s.trials[0].config, straight, progress=False)
    resumed = rundir.read_summary(run)
    same = {"wall_time_s": None}  # the only figure that may differ; json.dumps compares NaN (risk_auroc) too
    assert json.dumps({**resumed, **same}) == json.dumps({**reference, **same})
    a, _ = checkpoint.load_latest(straight)
    b, _ = checkpoint.load_latest(run)
    for part in ("actor", "critic", "multiplier"):
        for name, tensor in a["agent"][part].items():
            assert torch.equal(tensor, b["agent"][part][name]), f"{part}.{name} differs after the node was lost"
