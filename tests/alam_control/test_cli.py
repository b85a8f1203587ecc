"""`alam` under bad input: each case exits 2 with a message that names the problem, before any work is done and
without a traceback (issue: nothing lost, nothing silently wrong)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from alam_control import cli
from alam_control import config as config_lib
from alam_control.learn import trainer

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "configs" / "smoke.yaml"


def run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"", "the file is empty; a config needs at least `task:`"),
        (b"task: cartpole-safe_swingup\nsac:\n  gamma: 0.9\nsac:\n  tau: 0.01\n", "duplicate key 'sac' (line 4)"),
        (b"task: cartpole-safe_swingup\nsac:\n  gamma: 0.9\n  gamma: 0.8\n", "duplicate key 'gamma' (line 4)"),
        (b"task: cartpole-safe_swingup\n# caf\xe9\n", "not UTF-8 text"),
        (b"task: cartpole-safe_swingup\ntrain:\n  device: cuda:99\n", "train.device is 'cuda:99' but torch sees"),
        (b"task: cartpole-safe_swingup\nsac:\n  actor_lr: .nan\n", "sac.actor_lr: must be a finite number"),
    ],
)
def test_bad_config_files_are_named_errors(text: bytes, message: str, tmp_path: Path, capsys) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(text)
    code, err = run(["train", "--config", str(path), "--run-dir", str(tmp_path / "run"), "--no-progress"], capsys)
    assert code == 2 and message in err, err
    if "device" not in message:
        assert str(path) in err  # the file is named
    assert not (tmp_path / "run" / "train.csv").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["eval", "--bundle", "B", "--episodes", "0"], "argument --episodes: must be >= 1, got 0"),
        (["calibrate", "--bundle", "B", "--episodes", "0"], "argument --episodes: must be >= 1, got 0"),
        (["eval", "--run-dir", "R", "--video", "/no/such/dir/v.mp4"], "folder /no/such/dir does not exist"),
        (["riskmap", "--bundle", "B", "--out", "/no/such/dir/x.png"], "folder /no/such/dir does not exist"),
        (["calibrate", "--bundle", "B", "--episodes", "abc"], "argument --episodes: not an integer: 'abc'"),
        # Before the fix: rollouts ran, the manifest was rewritten, and only then did the plot fail.
        (["calibrate", "--bundle", "B", "--plot", "rel.txt"], ".txt is not an image format matplotlib writes"),
        (["calibrate", "--bundle", "B", "--horizon", "-1"], "argument --horizon: must be >= 1, got -1"),
        (["eval", "--bundle", "B", "--fallback", "stop"], "--fallback act(s) only with --monitor"),
        (
            ["eval", "--bundle", "B", "--risk-high", "0.5", "--engage-ticks", "2"],
            "--risk-high, --engage-ticks act(s) only with --monitor",
        ),
        (["eval", "--run-dir", "R", "--plot", "map.png"], "--plot draws a bundle's episodes"),
        (["train", "--resume", "--run-dir", "/no/such/dir/run"], "--resume --run-dir /no/such/dir/run: does not exist"),
    ],
)
def test_arguments_are_checked_before_any_work(argv: list[str], message: str, capsys) -> None:
    code, err = run(argv, capsys)
    assert code == 2 and message in err, err
    assert not Path("/no/such/dir").exists()


def test_a_figure_path_without_a_suffix_is_reported_as_written(tmp_path: Path) -> None:
    assert cli._figure_file(str(tmp_path / "map")) == str(tmp_path / "map.png")
    assert cli._figure_file(str(tmp_path / "map.svg")) == str(tmp_path / "map.svg")


def test_report_names_a_corrupt_summary(tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "sweep" / "run-a"
    run_dir.mkdir(parents=True)
    shutil.copy(SMOKE, run_dir / "config.yaml")
    (run_dir / "summary.json").write_text('{"return": 1.0, "cost"')
    code, err = run(["report", str(tmp_path / "sweep")], capsys)
    assert code == 2 and f"{run_dir / 'summary.json'} is not valid JSON" in err, err


def test_resume_with_a_smaller_budget_is_a_named_error(tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "run"
    trainer.train(config_lib.load(SMOKE, ["train.total_steps=600"]), run_dir, progress=False)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    argv = ["train", "--resume", "--run-dir", str(run_dir), "--set", "train.total_steps=400", "--no-progress"]
    code, err = run(argv, capsys)
    assert code == 2 and "cannot resume with train.total_steps 400: the run is already at step 600" in err, err
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


def test_eval_of_a_bundle_with_a_bad_manifest_is_a_named_error(tmp_path: Path, capsys) -> None:
    bundle = Path(shutil.copytree(REPO / "bundles" / "diffdrive", tmp_path / "b"))
    manifest = json.loads((bundle / "manifest.json").read_text())
    (bundle / "manifest.json").write_text(json.dumps(dict(manifest, risk_high=1e9)))
    code, err = run(["eval", "--bundle", str(bundle), "--monitor", "--episodes", "1"], capsys)
    assert code == 2 and "manifest_sha256" in err, err


def test_help_texts_name_the_runtime_fallbacks_and_the_safe_rate(capsys: pytest.CaptureFixture[str]) -> None:
    from alam_control.learn import rundir
    from alam_control.runtime import FALLBACKS

    assert cli.SAFE_RATE == rundir.SAFE_VIOLATION_RATE
    with pytest.raises(SystemExit):
        cli.main(["eval", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert " | ".join(FALLBACKS) in out and f"violation rate <= {rundir.SAFE_VIOLATION_RATE}" in out
