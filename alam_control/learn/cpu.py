"""Intra-op threads for training on a CPU that other processes may share.

With 2 torch threads on a 2-core machine, every parallel op of an update ends at a barrier that waits for both
threads. When another process holds one core, the second thread waits for a scheduler time slice at each barrier,
and the update slows down 3-6x (measured, sac_alam 256x256 bf16: 9.1 ms/update quiet, 53 ms beside one busy
process). One thread is immune (11.9 ms beside the same process). So the trainer asks :class:`ThreadGovernor`
every few seconds how much CPU the *other* processes take, and runs with the cores they leave free.

Changing the thread count does not change the numbers: a 2-thread and a 1-thread update are bit-identical on this
machine (``tests/alam_control/learn/test_cpu.py`` checks it), so kill-and-resume stays exact.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

Sample = tuple[float, float, float]  # jiffies so far: (busy, all CPUs; this process; busy + idle, all CPUs)


def denormals_flushed() -> bool:
    """Whether this thread's CPU flushes subnormal floats to zero (the state `torch.set_flush_denormal` sets; torch
    has no getter): the smallest subnormal double, plus 0, reads 0 then."""
    return float(np.float64(5e-324) + np.float64(0.0)) == 0.0


@contextlib.contextmanager
def training_settings(threads: int) -> Iterator[None]:
    """Within: ``threads`` intra-op threads and subnormals flushed to zero; after: the caller's settings again.

    Flushing: tiny gradients late in training become subnormal floats, which the CPU handles ~100x slower (measured:
    a sac_alam update went from 15.3 to 10.9 ms with flushing on), and flushing them changes nothing training
    needs. Both settings are process-wide (the flush is the CPU's floating-point mode, so numpy and MuJoCo see it
    too), so a process that trains and then goes on (a test session, a sweep worker, a script that calibrates the
    bundle it has just trained) gets its own back: under the flush, `np.nextafter(0.0, -inf)` reads -0.0, which
    had set a calibration threshold that missed lambda-0 states in a later test.
    """
    before_threads, before_flushed = torch.get_num_threads(), denormals_flushed()
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_num_threads(before_threads)
        torch.set_flush_denormal(before_flushed)


def threads_for(others: float, cpus: int, max_threads: int) -> int:
    """Threads to use when other processes keep ``others`` cores busy: the free cores, rounded, in [1, max].

    Rounding (not flooring) keeps 2 threads beside a light background job (a ROS node at 0.3 cores), where a
    barrier rarely waits, and drops to 1 once the others take half a core or more.
    """
    free = cpus - max(others, 0.0)
    return max(1, min(max_threads, int(free + 0.5)))


def read_proc(stat: Path = Path("/proc/stat"), self_stat: Path = Path("/proc/self/stat")) -> Sample | None:
    """One CPU-time sample from Linux /proc, or None where there is none (macOS, Windows, a locked-down sandbox)."""
    try:
        fields = [float(x) for x in stat.read_text().splitlines()[0].split()[1:]]
        own = self_stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest time is inside user)
    # utime and stime are fields 14 and 15 of /proc/self/stat, i.e. 12 and 13 after the ')' of the command name.
    return total - idle, float(own[11]) + float(own[12]), total


def native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU has bf16 matmul instructions (x86 avx512_bf16 / amx_bf16, Arm bf16), read from Linux's
    /proc/cpuinfo; False where that cannot be read. Elsewhere bf16 is emulated and slower than float32."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def resolve_precision(precision: str, device: str) -> str:
    """``train.precision`` as run: 'auto' is 'bfloat16' on a CPU with native bf16 (:func:`native_bf16`), else
    'float32' (GPUs too: bf16 there is untested here)."""
    if precision != "auto":
        return precision
    return "bfloat16" if torch.device(device).type == "cpu" and native_bf16() else "float32"


class ThreadGovernor:
    """Sets torch's intra-op threads from the CPU share the other processes took since the last call.

    Args:
        max_threads: the configured ``train.threads``; never exceeded.
        read: the sampler (``read_proc`` by default; tests pass a fake).
        cpus: the machine's CPU count.
    """

    def __init__(self, max_threads: int, read: Callable[[], Sample | None] = read_proc, cpus: int | None = None):
        self.max_threads, self.read = max_threads, read
        self.cpus = cpus or os.cpu_count() or 1
        self.threads = max_threads
        self.others = 0.0
        self._last = read()

    def update(self) -> int:
        """Re-decide and apply the thread count; returns it (unchanged when no sample is available)."""
        now = self.read()
        if now is None or self._last is None:
            self._last = now
            return self.threads
        busy, own, total = (a - b for a, b in zip(now, self._last, strict=True))
        self._last = now
        if total <= 0:
            return self.threads
        self.others = (busy - own) / (total / self.cpus)  # in cores: busy jiffies per elapsed jiffy of one CPU
        threads = threads_for(self.others, self.cpus, self.max_threads)
        if threads != self.threads:
            torch.set_num_threads(threads)
            self.threads = threads
        return threads
