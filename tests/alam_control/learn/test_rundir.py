"""The run directory format: log truncation on resume, summaries, the one resume rule, a run read back."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from alam_control import config as config_lib
from alam_control.learn import checkpoint, rundir, trainer

REPO = Path(__file__).resolve().parents[3]
SMOKE = REPO / "configs" / "smoke.yaml"


def test_the_file_names_are_the_documented_format() -> None:
    # Renaming any of these orphans every existing run directory (and docs/, scripts that read them).
    assert (rundir.CONFIG, rundir.TRAIN_LOG, rundir.EVAL_LOG, rundir.TENSORBOARD, rundir.SUMMARY) == (
        "config.yaml", "train.csv", "eval.csv", "tb", "summary.json")  # fmt: skip
    assert (checkpoint.LATEST, checkpoint.PREVIOUS) == ("checkpoint.pt", "checkpoint.prev.pt")


def test_truncate_keeps_the_header_and_the_rows_up_to_the_checkpoint(tmp_path: Path) -> None:
    log = tmp_path / rundir.TRAIN_LOG
    log.write_text("step,loss\n100,1.0\n200,2.0\n300,3.0\n")
    rundir.truncate_csv(log, 200)
    assert log.read_text() == "step,loss\n100,1.0\n200,2.0\n"
    rundir.truncate_csv(tmp_path / "missing.csv", 200)  # nothing to truncate: no error, no file
    assert not (tmp_path / "missing.csv").exists()


def test_a_run_is_finished_only_at_its_step_budget(tmp_path: Path) -> None:
    assert not rundir.is_finished(tmp_path, 600)  # no summary
    rundir.write_summary(tmp_path, {"steps": 400, "return": float("nan")})
    assert not rundir.is_finished(tmp_path, 600)  # a summary from before the budget was raised
    assert rundir.is_finished(tmp_path, 400)
    assert rundir.read_summary(tmp_path)["steps"] == 400
    (tmp_path / rundir.SUMMARY).write_text('{"steps": 4')
    assert not rundir.is_finished(tmp_path, 400)
    with pytest.raises(ValueError, match=r"summary\.json is not valid JSON"):
        rundir.read_summary(tmp_path)
    (tmp_path / rundir.SUMMARY).write_text("[400]")
    with pytest.raises(ValueError, match="not a run summary"):
        rundir.read_summary(tmp_path)


def test_summaries_are_strict_json_and_read_back_nan(tmp_path: Path) -> None:
    """A NaN metric (an AUROC with no violation to rank) is written as null, which `jq` and C++ parsers accept, and
    read back as NaN; a summary of an older run with a bare NaN still reads."""
    rundir.write_summary(tmp_path, {"steps": 400, "risk_auroc": float("nan"), "return": 1.5, "precision": "float32"})

    def no_constants(name: str) -> None:
        raise ValueError(f"{name} in a summary")

    text = (tmp_path / rundir.SUMMARY).read_text()
    assert json.loads(text, parse_constant=no_constants)["risk_auroc"] is None
    summary = rundir.read_summary(tmp_path)
    assert math.isnan(summary["risk_auroc"]) and summary["return"] == 1.5 and summary["precision"] == "float32"
    assert not list(tmp_path.glob("*.tmp"))  # written through a temp file, renamed
    (tmp_path / rundir.SUMMARY).write_text('{"steps": 400, "risk_auroc": NaN}')
    assert math.isnan(rundir.read_summary(tmp_path)["risk_auroc"])


def test_only_the_step_budget_may_change_on_resume() -> None:
    cfg = config_lib.to_dict(config_lib.load(SMOKE))
    longer = config_lib.to_dict(config_lib.load(SMOKE, ["train.total_steps=900"]))
    other = config_lib.to_dict(config_lib.load(SMOKE, ["train.total_steps=900", "sac.gamma=0.9", "seed=3"]))
    assert rundir.resume_differences(longer, cfg) == []
    assert rundir.resume_differences(other, cfg) == ["sac.gamma", "seed"]

    state = {"config": cfg, "loop": {"step": 600}}
    rundir.check_resumable(config_lib.load(SMOKE, ["train.total_steps=900"]), state, Path("checkpoint.pt"))
    with pytest.raises(checkpoint.CheckpointError, match=r"differs from the checkpointed run in sac\.gamma"):
        rundir.check_resumable(config_lib.load(SMOKE, ["sac.gamma=0.9"]), state, Path("checkpoint.pt"))
    with pytest.raises(checkpoint.CheckpointError, match="already at step 600"):
        rundir.check_resumable(config_lib.load(SMOKE, ["train.total_steps=400"]), state, Path("checkpoint.pt"))


def test_discard_logs_leaves_nothing_a_fresh_run_would_append_to(tmp_path: Path) -> None:
    for name in (rundir.CONFIG, rundir.TRAIN_LOG, rundir.EVAL_LOG, rundir.SUMMARY, "worker.pid"):
        (tmp_path / name).write_text("x")
    (tmp_path / rundir.TENSORBOARD).mkdir()
    (tmp_path / rundir.TENSORBOARD / "events").write_text("x")
    rundir.discard_logs(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["worker.pid"]  # not a run-dir file: not ours to delete


def test_the_loop_state_of_a_checkpoint_reads_back(smoke_run: Path) -> None:
    state, _ = checkpoint.load_latest(smoke_run)
    assert isinstance(state["loop"], dict)  # checkpoints keep plain containers (weights_only loading)
    loop = trainer.LoopState.from_dict(state["loop"])
    assert loop.step == 600 and dataclasses.asdict(loop) == state["loop"]
    # The dict every checkpoint so far has written, key for key.
    old = {"step": 400, "episodes": 3, "ep_return": 1.5, "ep_cost": 2.0, "train_cost": 7.0, "wall": 3.25}
    assert dataclasses.asdict(trainer.LoopState.from_dict(old)) == old
    summary = json.loads((smoke_run / rundir.SUMMARY).read_text())
    assert (summary["steps"], summary["train_cost"]) == (loop.step, loop.train_cost)


def test_load_run_reads_the_weights_and_builds_the_env_it_is_asked_for(smoke_run: Path) -> None:
    import sim

    run = rundir.load_run(smoke_run)
    state, path = checkpoint.load_latest(smoke_run)
    assert run.path == path and run.state["loop"] == state["loop"]
    assert run.config == config_lib.from_dict(state["config"])
    for name, tensor in run.agent.actor.state_dict().items():
        assert tensor.equal(state["agent"]["actor"][name]), name
    seeds = []

    def make_env(cfg: config_lib.Config) -> sim.SafeEnv:
        seeds.append(cfg.seed)
        return sim.load(cfg.task, seed=cfg.seed + 5)

    assert rundir.load_run(smoke_run, make_env).env.spec.name == run.config.task and seeds == [run.config.seed]
