"""End-to-end training: a tiny run per algorithm, kill-and-resume equality, and the error paths of a run dir."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from alam_control import cli
from alam_control import config as config_lib
from alam_control.learn import checkpoint, cpu, trainer

REPO = Path(__file__).resolve().parents[3]
SMOKE = REPO / "configs" / "smoke.yaml"

ALGO_VARIANTS = {
    "sac": [],
    "sac_lag": [],
    "sac_pid_lag": [],
    "fac": [],
    "sac_alam": [],
    "alam_no_penalty": ["algo.name=sac_alam", "algo.actor_penalty=linear"],
    "alam_dual_ascent": ["algo.name=sac_alam", "algo.multiplier_update=ascent"],
}


@pytest.mark.parametrize("variant", list(ALGO_VARIANTS))
def test_tiny_training_run(variant: str, tmp_path: Path) -> None:
    overrides = ALGO_VARIANTS[variant] or [f"algo.name={variant}"]
    cfg = config_lib.load(SMOKE, overrides)
    threads = torch.get_num_threads()
    summary = trainer.train(cfg, tmp_path / "run", progress=False)

    assert summary["steps"] == cfg.train.total_steps
    assert torch.get_num_threads() == threads and not cpu.denormals_flushed()  # the process's settings are back
    for key in ("return", "cost", "violation_rate", "lambda_probe", "train_cost", "wall_time_s"):
        assert math.isfinite(summary[key]), key
    assert 0.0 <= summary["violation_rate"] <= 1.0
    run = tmp_path / "run"
    assert config_lib.load(run / "config.yaml") == cfg  # the resolved config is saved beside the logs
    with open(run / "train.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [200, 300, 400, 500, 600]
    assert all(math.isfinite(float(r["critic_loss"])) for r in rows)
    if cfg.algo.name != "sac":
        assert all(math.isfinite(float(r["lambda"])) and float(r["lambda"]) >= 0 for r in rows)
    assert any((run / "tb").iterdir())
    state, _ = checkpoint.load_latest(run)  # weights_only load
    assert state["loop"]["step"] == cfg.train.total_steps
    with open(run / "eval.csv") as f:
        evals = list(csv.DictReader(f))
    if cfg.algo.name != "sac":  # lambda scored on labelled replay states, defined while the buffer has both classes
        assert 0.0 <= float(evals[-1]["replay_positive_share"]) <= 1.0
        assert 0.0 <= float(evals[-1]["replay_cap_share"]) <= 1.0
        assert math.isfinite(float(evals[-1]["replay_risk_auroc"]))


def test_default_threshold_is_the_h_step_margin_of_the_first_violation_critic() -> None:
    import sim

    env = sim.load("cartpole-safe_swingup", seed=0)
    cfg = config_lib.from_dict({"train": {"risk_horizon": 10}})
    assert trainer.cost_threshold_for(cfg, env) == pytest.approx(0.97**10)
    summed = config_lib.from_dict({"cost": {"critic": "sum"}})
    assert trainer.cost_threshold_for(summed, env) == env.spec.cost_threshold
    fixed = config_lib.from_dict({"cost": {"threshold": 0.3}})
    assert trainer.cost_threshold_for(fixed, env) == 0.3


def test_randomized_training_logs_its_draws(tmp_path: Path) -> None:
    cfg = config_lib.load(SMOKE, ["randomize=true", "randomization.mass=[0.5, 0.6]", "train.total_steps=400"])
    trainer.train(cfg, tmp_path / "run", progress=False)
    with open(tmp_path / "run" / "train.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(0.5 <= float(r["dr_mass_scale"]) <= 0.6 for r in rows)
    assert all(float(r["dr_action_delay"]) in (0.0, 1.0) for r in rows)


def _alam(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "alam_control.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


RESUME_SET = ["--set", "train.total_steps=2400", "--set", "train.checkpoint_every=200", "--no-progress"]


def test_sigkill_then_resume_ends_with_identical_parameters(tmp_path: Path) -> None:
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    done = _alam("train", "--config", str(SMOKE), "--run-dir", str(straight), *RESUME_SET)
    assert done.returncode == 0, done.stderr

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "alam_control.cli",
            "train",
            "--config",
            str(SMOKE),
            "--run-dir",
            str(killed),
            *RESUME_SET,
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not (killed / "checkpoint.prev.pt").exists():  # two checkpoints written: well into training
        assert proc.poll() is None and time.monotonic() < deadline, "run ended before it could be killed"
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    killed_at = checkpoint.load_latest(killed)[0]["loop"]["step"]
    assert 0 < killed_at < 2400

    resumed = _alam("train", "--resume", "--run-dir", str(killed), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert f"at step {killed_at}" in resumed.stdout

    a, _ = checkpoint.load_latest(straight)
    b, _ = checkpoint.load_latest(killed)
    assert a["loop"]["step"] == b["loop"]["step"] == 2400
    for part in ("actor", "critic", "critic_target", "multiplier"):
        for name, tensor in a["agent"][part].items():
            assert torch.equal(tensor, b["agent"][part][name]), f"{part}.{name} differs after resume"
    assert torch.equal(a["agent"]["log_alpha"], b["agent"]["log_alpha"])
    assert torch.equal(a["buffer"]["obs"], b["buffer"]["obs"])
    # The evaluation log after resume has no duplicated rows and ends where the straight run ends.
    with open(straight / "eval.csv") as f1, open(killed / "eval.csv") as f2:
        assert list(csv.DictReader(f1)) == list(csv.DictReader(f2))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("finished") / "run"
    trainer.train(config_lib.load(SMOKE), run, progress=False)
    return run


def test_corrupt_checkpoint_is_reported_and_the_previous_one_named(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.yaml", checkpoint.LATEST, checkpoint.PREVIOUS):
        (run / name).write_bytes((finished_run / name).read_bytes())
    data = (run / checkpoint.LATEST).read_bytes()
    (run / checkpoint.LATEST).write_bytes(data[: len(data) // 2])  # truncated, as a full disk would leave it
    assert cli.main(["train", "--resume", "--run-dir", str(run), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "corrupt or truncated" in err and checkpoint.PREVIOUS in err
    (run / checkpoint.LATEST).write_bytes(b"not a checkpoint at all")
    with pytest.raises(checkpoint.CheckpointError, match="corrupt"):
        checkpoint.load_latest(run)


def _copy_run(finished_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    return run


def test_a_flipped_bit_is_a_named_error_that_points_to_the_previous_checkpoint(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = _copy_run(finished_run, tmp_path)
    data = bytearray((run / checkpoint.LATEST).read_bytes())
    data[len(data) // 3] ^= 0x04  # one bit, inside a tensor: torch alone would load other weights
    (run / checkpoint.LATEST).write_bytes(bytes(data))
    assert cli.main(["eval", "--run-dir", str(run), "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert "sha256 does not match" in err and checkpoint.PREVIOUS in err, err
    assert cli.main(["export", "--run-dir", str(run), "--out", str(tmp_path / "bundle")]) == 2
    assert "sha256" in capsys.readouterr().err and not (tmp_path / "bundle").exists()


def test_a_dir_holding_only_the_previous_checkpoint_is_a_run(finished_run: Path, tmp_path: Path) -> None:
    run = _copy_run(finished_run, tmp_path)
    (run / checkpoint.LATEST).unlink()  # a kill between the two renames of checkpoint.save
    csv_before = (run / "train.csv").read_text()
    with pytest.raises(FileExistsError, match="already holds a run"):
        trainer.train(config_lib.load(SMOKE), run, progress=False)
    assert (run / "train.csv").read_text() == csv_before and (run / checkpoint.PREVIOUS).exists()


def test_a_full_disk_during_a_checkpoint_is_a_named_error_and_leaves_no_temp_file(
    finished_run: Path, tmp_path: Path, monkeypatch
) -> None:
    run = _copy_run(finished_run, tmp_path)
    before = (run / checkpoint.LATEST).read_bytes()

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", full_disk)
    with pytest.raises(checkpoint.CheckpointError, match="No space left on device.*intact"):
        checkpoint.save({"x": torch.ones(2)}, run)
    assert not list(run.glob(".*.tmp")) and (run / checkpoint.LATEST).read_bytes() == before


def test_eval_and_export_use_the_config_the_weights_were_trained_with(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = _copy_run(finished_run, tmp_path)
    trained = config_lib.load(run / "config.yaml")
    edited = (run / "config.yaml").read_text().replace("hidden:\n  - 32\n  - 32", "hidden:\n  - 8")
    edited = edited.replace("threshold: null", "threshold: 0.9")
    assert edited.count("- 8") >= 1 and "threshold: 0.9" in edited
    (run / "config.yaml").write_text(edited)
    assert cli.main(["export", "--run-dir", str(run), "--out", str(tmp_path / "bundle")]) == 0
    err = capsys.readouterr().err
    assert "cost.threshold" in err and "sac.hidden" in err and "using the stored one" in err, err
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert manifest["config_hash"] == config_lib.config_hash(trained)
    assert manifest["cost_threshold"] == pytest.approx(trained.cost.gamma**trained.train.risk_horizon)
    assert cli.main(["eval", "--run-dir", str(run), "--episodes", "1"]) == 0  # no size-mismatch traceback


def test_is_new_best_keeps_the_highest_return_among_safe_evaluations() -> None:
    def evals(*pairs: tuple[float, float]) -> list[dict[str, float]]:
        return [{"return": r, "violation_rate": v} for r, v in pairs]

    assert trainer.is_new_best(evals((10.0, 0.0)))
    assert trainer.is_new_best(evals((10.0, 0.0), (11.0, 0.005)))  # at the bar is safe
    assert not trainer.is_new_best(evals((10.0, 0.0), (99.0, 0.0051)))  # above it is not, whatever its return
    assert not trainer.is_new_best(evals((10.0, 0.0), (10.0, 0.0)))  # a tie keeps the earlier one
    assert trainer.is_new_best(evals((99.0, 0.5), (10.0, 0.0)))  # an unsafe higher return does not count
    assert not trainer.is_new_best(evals((12.0, 0.0), (99.0, 0.5), (11.0, 0.0)))
    assert not trainer.is_new_best(evals((math.nan, math.nan)))


def test_best_checkpoint_is_the_best_safe_evaluation_and_export_ships_it(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The evaluations' return / violation rate, scripted (a tiny run learns nothing): the best safe one is at 300.
    script = iter([(5.0, 0.5), (3.0, 0.0), (4.0, 0.004), (9.0, 0.01), (1.0, 0.0), (2.0, 0.0)])
    real = trainer._evaluation

    def scripted(*args: object) -> dict[str, float]:
        ret, viol = next(script)
        return {**real(*args), "return": ret, "violation_rate": viol}

    monkeypatch.setattr(trainer, "_evaluation", scripted)
    run = tmp_path / "run"
    trainer.train(config_lib.load(SMOKE, ["train.eval_every=100", "train.learning_starts=100"]), run, progress=False)
    state, _ = checkpoint.load_best(run)
    assert state["loop"]["step"] == 300 and "buffer" not in state
    latest, _ = checkpoint.load_latest(run)
    assert latest["loop"]["step"] == 600
    assert any(not torch.equal(state["agent"]["actor"][k], v) for k, v in latest["agent"]["actor"].items())
    assert cli.main(["export", "--run-dir", str(run), "--out", str(tmp_path / "b"), "--checkpoint", "best"]) == 0
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert (manifest["checkpoint"], manifest["train_step"]) == ("best", 300)
    assert cli.main(["eval", "--run-dir", str(run), "--checkpoint", "best", "--episodes", "1"]) == 0
    assert cli.main(["eval", "--bundle", str(tmp_path / "b"), "--checkpoint", "best"]) == 2  # a bundle has one
    assert "--checkpoint picks a run's weights" in capsys.readouterr().err
    # No best.pt (a run where no evaluation was safe, or an older one): a named error, not the latest weights.
    (run / "best.pt").unlink()
    assert cli.main(["export", "--run-dir", str(run), "--out", str(tmp_path / "c"), "--checkpoint", "best"]) == 2
    err = capsys.readouterr().err
    assert "no best.pt" in err and "violation rate of at most 0.005" in err and "latest checkpoint" in err, err
    assert not (tmp_path / "c").exists()
    assert cli.main(["eval", "--run-dir", str(run), "--checkpoint", "best"]) == 2
    assert "no best.pt" in capsys.readouterr().err


def test_checkpoint_with_pickled_object_is_refused(tmp_path: Path) -> None:
    """weights_only semantics: a checkpoint that would run arbitrary code on load is rejected."""
    torch.save({"format_version": checkpoint.FORMAT_VERSION, "evil": Path("/")}, tmp_path / checkpoint.LATEST)
    with pytest.raises(checkpoint.CheckpointError, match="corrupt") as err:
        checkpoint.load_latest(tmp_path)
    # The reason in one line, without torch's advice to load with weights_only=False.
    assert str(err.value).endswith("(UnpicklingError: Unsupported global: GLOBAL pathlib.PosixPath was not an "
                                   "allowed global by default)")  # fmt: skip


def test_a_text_file_in_place_of_a_checkpoint_is_reported_as_corrupt(tmp_path: Path) -> None:
    (tmp_path / checkpoint.LATEST).write_text("hello\n")  # torch.load raised a bare KeyError on this
    with pytest.raises(checkpoint.CheckpointError, match="corrupt or truncated"):
        checkpoint.load_latest(tmp_path)
    (tmp_path / checkpoint.LATEST).write_bytes(b"garbage\n")  # a pickle opcode torch's weights-only loader refuses
    with pytest.raises(checkpoint.CheckpointError) as err:
        checkpoint.load_latest(tmp_path)
    assert str(err.value) == (f"checkpoint {tmp_path / checkpoint.LATEST} is corrupt or truncated (UnpicklingError: "
                              "Unsupported operand 103)")  # fmt: skip


def test_loading_the_previous_checkpoint_says_so(finished_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / checkpoint.PREVIOUS).write_bytes((finished_run / checkpoint.LATEST).read_bytes())
    with pytest.warns(UserWarning, match="missing: loaded the previous checkpoint"):
        _, path = checkpoint.load_latest(run)
    assert path.name == checkpoint.PREVIOUS


def test_resume_refuses_a_changed_config(finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = cli.main(["train", "--resume", "--run-dir", str(finished_run), "--set", "sac.gamma=0.9", "--no-progress"])
    assert code == 2
    assert "sac.gamma" in capsys.readouterr().err


def test_existing_run_is_not_overwritten(finished_run: Path, capsys: pytest.CaptureFixture) -> None:
    before = (finished_run / checkpoint.LATEST).read_bytes()
    assert cli.main(["train", "--config", str(SMOKE), "--run-dir", str(finished_run), "--no-progress"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert (finished_run / checkpoint.LATEST).read_bytes() == before


def test_resume_can_extend_the_step_budget(finished_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.yaml", checkpoint.LATEST):
        (run / name).write_bytes((finished_run / name).read_bytes())
    cfg = config_lib.load(run / "config.yaml", ["train.total_steps=800"])
    summary = trainer.train(cfg, run, resume=True, progress=False)
    assert summary["steps"] == 800


def test_eval_cli_prints_metrics_and_records_video(finished_run: Path, tmp_path: Path) -> None:
    video = tmp_path / "eval.mp4"
    out = _alam("eval", "--run-dir", str(finished_run), "--episodes", "1", "--video", str(video))
    assert out.returncode == 0, out.stderr
    result = yaml.safe_load(out.stdout)  # JSON is YAML
    assert result["episodes"] == 1 and 0.0 <= result["violation_rate"] <= 1.0
    assert video.stat().st_size > 10_000


def test_evaluate_samples_actions_only_when_asked(smoke_run: Path) -> None:
    """`evaluate` rolls out the mean action by default (repeatable); `deterministic=False` samples as in training
    (benchmarks/policy_shift.py compares the two)."""
    import sim

    cfg = config_lib.load(smoke_run / "config.yaml")
    env = sim.load(cfg.task, seed=0)
    agent = trainer.build_agent(cfg, env, torch.Generator().manual_seed(0))
    agent.load_state_dict(checkpoint.load_latest(smoke_run)[0]["agent"])
    first, again = (trainer.evaluate(agent, env, 1, 7, 20) for _ in range(2))
    sampled = trainer.evaluate(agent, env, 1, 7, 20, deterministic=False)
    assert json.dumps(first) == json.dumps(again)  # json.dumps compares a NaN AUROC too
    assert sampled["return"] != first["return"]
