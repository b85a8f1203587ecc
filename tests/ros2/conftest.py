"""ROS 2 test harness: nodes under test run as subprocesses; a test-side rclpy node publishes crafted inputs and
records what the nodes publish.

Each test gets its own ROS_DOMAIN_ID (from the pid and a counter) with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST,
so tests (and concurrent sessions) do not hear each other. Small bundles come from smoke training runs made once
per session (~10 s each).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 rclpy is not installed (pip install -e '.[ros]')")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install -e '.[export]')")

from ros_harness import Harness  # noqa: E402

import sim  # noqa: E402, F401  (before dm_control: headless OpenGL backend)

REPO = Path(__file__).resolve().parents[2]
PACKAGE_SRC = REPO / "ros2_ws" / "src" / "alam_ros"
SMOKE = REPO / "configs" / "smoke.yaml"
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
if str(PACKAGE_SRC) not in sys.path:  # alam_ros without `pip install -e .`
    sys.path.insert(0, str(PACKAGE_SRC))

_domains = itertools.count()


# ------------------------------------------------------------------------------------------------------ bundles


def _train_and_export(task: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from alam_control import config as config_lib
    from alam_control.deploy import export
    from alam_control.learn import trainer

    root = tmp_path_factory.mktemp(task.split("-")[0])
    trainer.train(config_lib.load(SMOKE, [f"task={task}"]), root / "run", progress=False)
    export.export(root / "run", root / "bundle")
    return root / "bundle"


@pytest.fixture(scope="session")
def diffdrive_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An (untrained) smoke bundle of diffdrive-safe_navigate, without calibrated risk thresholds."""
    return _train_and_export("diffdrive-safe_navigate", tmp_path_factory)


@pytest.fixture(scope="session")
def cartpole_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An (untrained) smoke bundle of cartpole-safe_swingup (joint interface)."""
    return _train_and_export("cartpole-safe_swingup", tmp_path_factory)


# ------------------------------------------------------------------------------------------------ node processes


class NodeProcess:
    """A node under test: `python -m alam_ros.<module> --ros-args -p ...`, output to a log file."""

    def __init__(self, module: str, params: dict[str, Any], env: dict[str, str], log: Path, python: str = ""):
        """python: another interpreter (a second install), run outside the repository so that `-m` imports what
        that install holds, not the working tree."""
        args = [python or sys.executable, "-m", f"alam_ros.{module}", "--ros-args"]
        for name, value in params.items():
            args += ["-p", f"{name}:={_param(value)}"]
        self.log = log
        self._file = open(log, "w")  # noqa: SIM115  (closed in stop)
        cwd = Path(python).parent if python else REPO
        self.proc = subprocess.Popen(args, env=env, stdout=self._file, stderr=subprocess.STDOUT, cwd=cwd)

    def output(self) -> str:
        self._file.flush()
        return self.log.read_text()

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._file.flush()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._file.close()
        return self.proc.returncode


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_param(v) for v in value) + "]"
    return str(value)


@pytest.fixture
def ros_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Environment of this test's processes: its own ROS_DOMAIN_ID, localhost discovery, alam_ros importable."""
    domain = 1 + (os.getpid() * 7 + next(_domains)) % 100
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(PACKAGE_SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONUNBUFFERED"] = "1"
    env["RCUTILS_COLORIZED_OUTPUT"] = "0"
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


@pytest.fixture
def start_node(ros_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest):
    """start_node(module, [python=, env=,] **params) -> NodeProcess; all are stopped (SIGINT) at teardown, logs
    shown on failure."""
    procs: list[NodeProcess] = []

    def start(module: str, python: str = "", env: dict[str, str] | None = None, **params: Any) -> NodeProcess:
        """python / env: another interpreter and environment (a second install) for this node."""
        proc = NodeProcess(module, params, env or ros_env, tmp_path / f"{module}_{len(procs)}.log", python)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        for proc in procs:
            print(f"----- {proc.log.name}\n{proc.log.read_text()[-6000:]}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report


@pytest.fixture
def harness(ros_env: dict[str, str]):
    h = Harness(int(ros_env["ROS_DOMAIN_ID"]))
    yield h
    h.close()
