"""The robot's install: the package without its `train` extra, plus the ROS 2 wheels. No torch, mujoco or
dm-control; the policy node from that install drives the simulated robot (the sim bridge runs from the main
environment, as a simulator beside a robot would)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nav_msgs.msg import Odometry
from ros_harness import SENSOR_QOS, wait_until
from std_msgs.msg import String

REPO = Path(__file__).resolve().parents[2]
TRAINED_BUNDLE = REPO / "bundles" / "diffdrive"
STARTUP_S = 30.0
TRAIN_ONLY = ("torch", "mujoco", "dm-control", "scipy", "gymnasium", "tensorboard", "matplotlib", "onnx")


@pytest.fixture(scope="module")
def lean(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A fresh venv with `pip install '<repo>[ros]'` (no train extra): its python, install time and size."""
    root = tmp_path_factory.mktemp("lean")
    # Build from a copy of what the distribution holds, so the build writes nothing into the repository.
    source = root / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info", "test")
    for part in ("alam_control", "sim", "ros2_ws/src/alam_ros"):
        shutil.copytree(REPO / part, source / part, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    venv = root / "venv"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    pip = subprocess.run([python, "-m", "pip", "install", "-q", f"{source}[ros]"], capture_output=True, text=True,
                         timeout=900)  # fmt: skip
    seconds = time.perf_counter() - t0
    assert pip.returncode == 0, pip.stdout[-2000:] + pip.stderr[-3000:]
    size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file() and not f.is_symlink())
    listed = subprocess.run([python, "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True)
    print(f"\nruntime-only install: {seconds:.0f} s, {size / 2**20:.0f} MiB on disk")
    return {"python": python, "packages": {p["name"].lower() for p in json.loads(listed.stdout)}, "venv": venv}


def _lean_env(ros_env: dict[str, str]) -> dict[str, str]:
    """The test environment without the repository on PYTHONPATH: the node imports what was installed."""
    env = dict(ros_env)
    env.pop("PYTHONPATH", None)
    return env


def test_runtime_install_has_no_training_stack(lean: dict) -> None:
    assert {"alam-control", "numpy", "onnxruntime"} <= lean["packages"]
    assert not set(TRAIN_ONLY) & lean["packages"], sorted(set(TRAIN_ONLY) & lean["packages"])
    # Training commands say what is missing instead of a traceback.
    result = subprocess.run([str(Path(lean["python"]).parent / "alam"), "train", "--config", "x.yaml"],
                            capture_output=True, text=True, timeout=60, cwd=lean["venv"])  # fmt: skip
    assert result.returncode == 2 and "pip install 'alam-control[train" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_node_from_the_runtime_install_drives_the_simulated_robot(lean, ros_env, start_node, harness) -> None:
    mode = harness.listen(String, "/alam_policy_node/mode")
    odom = harness.listen(Odometry, "odom", SENSOR_QOS)
    start_node("sim_bridge", task="diffdrive-safe_navigate", seed=0, real_time_factor=2.0)
    node = start_node("policy_node", python=lean["python"], env=_lean_env(ros_env), bundle_dir=TRAINED_BUNDLE,
                      fallback="retreat")  # fmt: skip
    t_policy = wait_until(lambda: any(m.data == "POLICY" for m in mode.since(0.0)), STARTUP_S)
    assert t_policy, node.output()[-3000:]

    def moving() -> bool:
        return any(abs(m.twist.twist.linear.x) + abs(m.twist.twist.angular.z) > 1e-3 for m in odom.since(t_policy))

    assert wait_until(moving, 10.0), "the policy's commands did not move the robot"
    where = subprocess.run([lean["python"], "-c", "import alam_control.runtime as r; print(r.__file__)"],
                           capture_output=True, text=True, env=_lean_env(ros_env), cwd=lean["venv"])  # fmt: skip
    assert where.stdout.startswith(str(lean["venv"])), where.stdout  # the installed copy, not the working tree
    assert "Traceback" not in node.output()


def test_sim_bridge_on_the_runtime_install_names_what_is_missing(lean, ros_env, start_node) -> None:
    bridge = start_node("sim_bridge", python=lean["python"], env=_lean_env(ros_env))
    assert bridge.wait(timeout=STARTUP_S) == 1
    assert "pip install 'alam-control[train" in bridge.output() and "Traceback" not in bridge.output()
