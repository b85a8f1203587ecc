"""Shared fixtures: one tiny trained run and its export bundle per test session (each takes ~10 s to make)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import sim  # noqa: F401  (imported before dm_control elsewhere, so sim picks the headless OpenGL backend)
from alam_control import config as config_lib
from alam_control.deploy import export
from alam_control.learn import trainer

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "configs" / "smoke.yaml"


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 600-step sac_alam run on the cart-pole with observation normalization on."""
    run = tmp_path_factory.mktemp("smoke") / "run"
    trainer.train(config_lib.load(SMOKE, ["sac.normalize_obs=true"]), run, progress=False)
    return run


@pytest.fixture(scope="session")
def smoke_bundle(smoke_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The export bundle of `smoke_run` (treat as read-only; copy it to modify)."""
    out = tmp_path_factory.mktemp("bundle") / "cartpole"
    export.export(smoke_run, out)
    return out


@pytest.fixture
def one_torch_thread():
    """For tests of tiny tensors: a second intra-op thread only adds spin-waits when other jobs share the CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
