"""alam_policy_node's /diagnostics: when to publish (a change of mode or level, a parameter change, or every
diagnostics_period_s), the level and message of a tick, the tick counters and compute-time window, and the
DiagnosticArray they make. No node in here: the node publishes what `Diagnostics.array` builds."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from alam_control.runtime import POLICY, STALLED_LABEL, Bundle, Controller, Tick, risk_signal_caveats

if TYPE_CHECKING:
    from alam_ros.policy_parameters import Settings

# Diagnostic level per fault kind ("<kind>:<source>").
_ERROR_KINDS = ("nonfinite", "size", "coverage", "invalid", "frame")


def fault_level(fault: str | None, mode: str) -> bytes:
    """DiagnosticStatus level for this tick: STALE for stale inputs, ERROR for bad inputs, WARN in FALLBACK."""
    if fault is not None:
        kind = fault.split(":", 1)[0]
        if kind == "stale":
            return DiagnosticStatus.STALE
        return DiagnosticStatus.ERROR if kind in _ERROR_KINDS else DiagnosticStatus.WARN
    return DiagnosticStatus.OK if mode == POLICY else DiagnosticStatus.WARN


def describe(tick: Tick, release_dwell_s: float) -> str:
    """The diagnostic message of a tick: its fault and detail, what FALLBACK waits for, or that the policy drives."""
    if tick.fault is not None:
        return tick.detail if tick.detail.startswith(tick.fault) else f"{tick.fault}: {tick.detail}"
    if tick.label == STALLED_LABEL:
        return "no progress toward the goal under the policy: the stall recovery drives"
    if tick.mode != POLICY:
        return f"waiting for {release_dwell_s} s of risk < risk_low"
    return "policy in control"


@dataclass
class TickStats:
    """Tick counters since configuration, and the compute times of the ticks since the last diagnostic."""

    ticks: int = 0
    """Ticks run."""
    missed: int = 0
    """Control periods without a tick (a timer tick more than 1.5 periods after the last), or, with tick_on other
    than timer, watchdog ticks run because the triggering input was silent."""
    overruns: int = 0
    """Ticks whose computation took longer than the control period."""
    last_compute_ms: float = math.nan
    """Computation time of the latest tick."""
    window: list[float] = field(default_factory=list)
    """Computation times (ms) since the last `take`."""

    def computed(self, elapsed_s: float, period_s: float) -> None:
        """Records one tick's computation time."""
        self.last_compute_ms = elapsed_s * 1e3
        self.window.append(self.last_compute_ms)
        if elapsed_s > period_s:
            self.overruns += 1

    def take(self) -> dict[str, str]:
        """The diagnostic values of the compute window and the counters; starts a new window."""
        count = len(self.window)
        compute = np.asarray(self.window) if self.window else np.full(1, math.nan)
        self.window = []
        return {
            "tick_compute_ms": f"{self.last_compute_ms:.4f}",
            "tick_compute_ms_mean": f"{np.mean(compute):.4f}",
            "tick_compute_ms_p99": f"{np.percentile(compute, 99):.4f}",
            "tick_compute_ms_max": f"{np.max(compute):.4f}",
            "window_ticks": str(count),
            "ticks": str(self.ticks),
            "missed_ticks": str(self.missed),
            "overruns": str(self.overruns),
        }


def diagnostic_array(level: bytes, name: str, message: str, hardware_id: str, values: dict[str, str],
                     stamp: Any) -> DiagnosticArray:  # fmt: skip
    """One DiagnosticStatus with `values` as its key-value pairs, in a DiagnosticArray stamped `stamp`."""
    status = DiagnosticStatus(
        level=level,
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=k, value=v) for k, v in values.items()],
    )
    array = DiagnosticArray(status=[status])
    array.header.stamp = stamp
    return array


class Diagnostics:
    """The policy node's /diagnostics state between configure and cleanup.

    Args:
        name: DiagnosticStatus name ("<node>: risk monitor").
        settings: The node's parameters (diagnostics_period_s, and values reported in every status).
        bundle: The bundle the node runs (its task is the hardware_id).
    """

    def __init__(self, name: str, settings: Settings, bundle: Bundle):
        manifest = bundle.manifest
        self.name, self.hardware_id, self.period_s = name, str(manifest["task"]), settings.diagnostics_period_s
        # What the bundle's calibration saw its risk signal fail at; the node logs the same list at configure.
        self.caveats = risk_signal_caveats(manifest)
        # The values that do not change while configured, last in every status.
        self.fixed = {
            "allow_unsafe_parameters": str(settings.allow_unsafe_parameters).lower(),
            "control_rate_hz": f"{1.0 / settings.period_s:.6g}",
            "tick_on": settings.tick_on,
            "fallback": settings.fallback,
            "bundle": str(bundle.path),
            "task": str(manifest["task"]),
            "config_hash": str(manifest.get("config_hash", "")),
            # What the bundle's calibration saw its risk signal fail at ("" when nothing): a monitor that may not
            # hand over when it should, visible to whoever watches /diagnostics, not only in the start-up log.
            "bundle_caveats": "; ".join(self.caveats),
        }
        self.stats = TickStats()
        self.parameter_changes = 0
        self.last_parameter_change = ""
        self.last_label: str | None = None
        self.last_level: bytes | None = None
        self.last_time = -math.inf

    def due(self, label: str, level: bytes, now: float) -> bool:
        """Whether a tick at `now` publishes: on a change of mode label or level, else every `period_s`."""
        return label != self.last_label or level != self.last_level or now - self.last_time >= self.period_s

    def published(self, label: str, level: bytes, now: float) -> None:
        self.last_label, self.last_level, self.last_time = label, level, now

    def parameters_changed(self, changes: dict[str, Any]) -> str:
        """Counts a run-time parameter change and makes the next tick publish; returns the change as text."""
        self.parameter_changes += 1
        self.last_parameter_change = ", ".join(f"{k}={v}" for k, v in changes.items())
        self.last_time = -math.inf
        return self.last_parameter_change

    def array(self, level: bytes, label: str, message: str, controller: Controller, stamp: Any) -> DiagnosticArray:
        """The DiagnosticArray of the controller's state now; starts a new compute-time window."""
        config = controller.monitor.config
        values = {
            "mode": label,
            "lambda": f"{controller.lam:.6g}",
            "cost_q": f"{controller.cost_q:.6g}",
            "risk_signal": controller.risk_signal,
            "risk": f"{controller.risk:.6g}",
            "risk_high": f"{config.risk_high:.6g}",
            "risk_low": f"{config.risk_low:.6g}",
            **self.stats.take(),  # tick_compute_ms (+ _mean, _p99, _max), window_ticks, ticks, missed_ticks, overruns
            "switches": str(controller.monitor.switches),
            "parameter_changes": str(self.parameter_changes),
            "last_parameter_change": self.last_parameter_change,
            **self.fixed,
        }
        return diagnostic_array(level, self.name, message, self.hardware_id, values, stamp)
