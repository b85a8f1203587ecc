"""The thread governor: its rule, its /proc reading, and the claim it rests on (threads do not change numbers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from alam_control import config as config_lib
from alam_control.learn import cpu
from alam_control.learn.agent import Agent
from alam_control.learn.buffer import Batch


@pytest.mark.parametrize(
    ("others", "cpus", "max_threads", "expected"),
    [
        (0.0, 2, 2, 2),
        (0.3, 2, 2, 2),  # a light background job: keep both threads
        (0.6, 2, 2, 1),
        (2.0, 2, 2, 1),  # never below one
        (-0.1, 2, 2, 2),  # jitter in the counters
        (0.0, 8, 4, 4),  # never above the configured count
        (3.2, 8, 8, 5),
    ],
)
def test_threads_for_uses_the_cores_others_leave_free(others, cpus, max_threads, expected) -> None:
    assert cpu.threads_for(others, cpus, max_threads) == expected


def test_governor_follows_the_other_processes_load(monkeypatch: pytest.MonkeyPatch) -> None:
    applied: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", applied.append)
    # (busy jiffies, own jiffies, all jiffies), summed over CPUs: 2 CPUs x 100 jiffies per interval.
    samples = iter(
        [(0, 0, 0), (190, 180, 200), (380, 280, 400), (570, 460, 600), (570, 460, 600), None, (760, 640, 800)]
    )
    governor = cpu.ThreadGovernor(2, read=lambda: next(samples), cpus=2)
    assert governor.update() == 2 and governor.others == pytest.approx(0.1)  # we took 180 of 190 busy
    assert governor.update() == 1 and governor.others == pytest.approx(0.9)  # others took 90
    assert governor.update() == 2 and governor.others == pytest.approx(0.1)
    assert governor.update() == 2  # no time elapsed: no decision
    assert governor.update() == 2  # no sample: unchanged
    assert applied == [1, 2]


def test_read_proc_parses_linux_stat_files(tmp_path: Path) -> None:
    stat, own = tmp_path / "stat", tmp_path / "self_stat"
    stat.write_text("cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 50 2 25 400 10 1 1 0 0 0\n")
    # A command name with ') ' in it must not shift the fields; utime 70, stime 9.
    own.write_text("4242 (py) thon) S 1 4242 4242 0 -1 4194560 100 0 0 0 70 9 0 0 20 0 3 0 100 0 0\n")
    sample = cpu.read_proc(stat, own)
    assert sample is not None
    busy, mine, total = sample
    assert busy == 100 + 5 + 50 + 3 + 2 and mine == 79
    assert total == 100 + 5 + 50 + 800 + 20 + 3 + 2 + 0  # the first 8 fields (guest time is inside user)
    assert cpu.read_proc(tmp_path / "missing", own) is None


def test_one_and_two_threads_give_bit_identical_updates() -> None:
    """The governor may switch threads mid-run only because this holds (kill-and-resume stays exact)."""
    cfg = config_lib.from_dict({"algo": {"name": "sac_alam"}, "sac": {"hidden": [64, 64], "batch_size": 64}})
    g = torch.Generator().manual_seed(1)
    batch = Batch(
        torch.randn(64, 5, generator=g),
        torch.rand(64, 1, generator=g),
        torch.rand(64, generator=g),
        torch.zeros(64),
        torch.randn(64, 5, generator=g),
        torch.zeros(64),
    )
    before = torch.get_num_threads()
    params = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            torch.manual_seed(0)
            agent = Agent(5, 1, cfg, cost_threshold=0.5, generator=torch.Generator().manual_seed(0))
            for _ in range(3):
                agent.update(batch)
            params.append(torch.cat([p.detach().flatten() for p in agent.critic.parameters()]))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(params[0], params[1])


def test_native_bf16_reads_cpu_flags(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert not cpu.native_bf16(info)
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n")
    assert cpu.native_bf16(info)
    info.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")  # aarch64 (e.g. Graviton3)
    assert cpu.native_bf16(info)
    assert not cpu.native_bf16(tmp_path / "missing")


def test_auto_precision_is_bf16_only_on_a_native_bf16_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    assert cpu.resolve_precision("float32", "cpu") == "float32"
    assert cpu.resolve_precision("bfloat16", "cpu") == "bfloat16"
    monkeypatch.setattr(cpu, "native_bf16", lambda: True)
    assert cpu.resolve_precision("auto", "cpu") == "bfloat16"
    assert cpu.resolve_precision("auto", "cuda") == "float32"
    monkeypatch.setattr(cpu, "native_bf16", lambda: False)
    assert cpu.resolve_precision("auto", "cpu") == "float32"


def test_training_settings_are_the_callers_again_afterwards() -> None:
    """Threads and the subnormal flush are process-wide: a process that trains and goes on gets its own back."""
    torch.set_num_threads(1)
    torch.set_flush_denormal(False)
    assert not cpu.denormals_flushed() and np.nextafter(0.0, -np.inf) < 0.0
    with cpu.training_settings(2):
        assert torch.get_num_threads() == 2 and cpu.denormals_flushed()
        assert np.nextafter(0.0, -np.inf) == 0.0  # what had broken a later calibration threshold
    assert torch.get_num_threads() == 1 and not cpu.denormals_flushed()
    with pytest.raises(RuntimeError), cpu.training_settings(2):  # also when training fails
        raise RuntimeError
    assert torch.get_num_threads() == 1 and not cpu.denormals_flushed()
    torch.set_flush_denormal(True)  # a caller that flushes keeps flushing
    with cpu.training_settings(1):
        pass
    assert cpu.denormals_flushed()
    torch.set_flush_denormal(False)
