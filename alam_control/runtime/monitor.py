"""The risk monitor (DESIGN.md section 6): decides, each control tick, whether the policy or the fallback drives.

A plain class with an explicit clock, so the same code runs in the ROS node, in `alam eval --monitor`, and in
unit tests that step time by hand.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

POLICY = "POLICY"
FALLBACK = "FALLBACK"
_LABELS: dict[str, str] = {}  # reason -> "FALLBACK:<reason>"


@dataclasses.dataclass(frozen=True)
class MonitorConfig:
    """Thresholds of the monitor.

    Attributes:
        risk_high: Risk above which the monitor counts towards FALLBACK.
        risk_low: Risk below which the monitor counts towards POLICY again (risk_low <= risk_high: hysteresis).
        engage_ticks: Consecutive ticks above risk_high before handing over. 1 by default: lambda warns only a
            few ticks ahead (AUROC 0.79-0.97 for 1-4 steps before a violation, ~0.57 for 5-9 on the diff-drive),
            and every tick of debounce spends that warning. Measured behind the calibrated monitors of the evidence
            grid's bundles (2026-12-06, 20-30 episodes per row, violation rate at engage_ticks 3 -> 1, fallback
            share): diff-drive 400k x1 0.0124 -> 0.0003 (0.47 -> 0.61), x2 0.0106 -> 0.0020 (0.49 -> 0.69);
            point seeds 0 / 1 x1 0.0027 / 0.0031 -> 0.0001 / 0.0004 (+0.04 each), x2 0.0038 / 0.0053 -> 0.0016 /
            0.0026; cart-pole seed 1 x1 0.0080 -> 0.0024 (0.23 -> 0.30), x2 0.0190 -> 0.0139. The shipped
            diff-drive bundle, whose violations come from pushes that override any command, moved within noise
            (x1 0.073 -> 0.071, x2 0.134 -> 0.146). Raise it where single-tick spikes of the signal hand over too
            often.
        release_dwell_s: Seconds of risk below risk_low (and no fault) before handing back. `alam calibrate`
            picks one per bundle from closed-loop runs (`calibration.pick_dwell` says why it differs by robot)
            and writes it to the manifest; 1.0 where it has not.
    """

    risk_high: float
    risk_low: float
    engage_ticks: int = 1
    release_dwell_s: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.risk_high) and math.isfinite(self.risk_low)):
            raise ValueError(f"risk_high and risk_low must be finite, got {self.risk_high}, {self.risk_low}")
        if self.risk_low > self.risk_high:
            raise ValueError(f"risk_low ({self.risk_low}) must be <= risk_high ({self.risk_high})")
        if self.engage_ticks < 1:
            raise ValueError(f"engage_ticks must be >= 1, got {self.engage_ticks}")
        if not self.release_dwell_s >= 0.0:
            raise ValueError(f"release_dwell_s must be >= 0, got {self.release_dwell_s}")

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], overrides: dict[str, Any] | None = None) -> MonitorConfig:
        """The monitor a bundle runs behind: each field from `overrides` (a node parameter, a CLI flag) when given
        (not None), else the bundle's calibrated value (`risk_high` / `risk_low`, and `release_dwell_s` where
        `alam calibrate` picked one), else the class default.

        This is the one place for that rule (node, `alam eval --monitor`, the demo and the benchmarks call it).

        Raises:
            ValueError: Naming the field: an unknown override, a threshold neither given nor calibrated, a value
                that is not a finite number, risk_low > risk_high.
        """
        given = {k: v for k, v in (overrides or {}).items() if v is not None}
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(given) - fields)
        if unknown:
            raise ValueError(f"unknown monitor setting(s) {unknown}; known: {sorted(fields)}")
        values: dict[str, Any] = {}
        for name in ("risk_high", "risk_low"):
            value = given.get(name, manifest.get(name))
            if value is None:
                raise ValueError(
                    f"{name} is required: the bundle has no calibrated {name} (run `alam calibrate`, or set {name})"
                )
            values[name] = value
        if "release_dwell_s" in manifest:
            values["release_dwell_s"] = manifest["release_dwell_s"]
        values.update(given)
        for name, value in values.items():
            kind = int if name == "engage_ticks" else float
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number, got {value!r}")
            values[name] = kind(value)
        return cls(**values)


class RiskMonitor:
    """Hysteresis between POLICY and FALLBACK.

    - POLICY -> FALLBACK when risk > risk_high for `engage_ticks` consecutive ticks (reason "risk"), or at once
      on a fault (reason: the fault, e.g. "stale:odom", "nonfinite:scan").
    - FALLBACK -> POLICY only once risk < risk_low with no fault for `release_dwell_s` without interruption.

    Attributes:
        mode: POLICY or FALLBACK.
        reason: Why the monitor is in FALLBACK ("" in POLICY): the latest fault while faults persist,
            "recovering" during the release dwell after a fault cleared, "risk" or "startup" otherwise.
        switches: Number of mode changes so far.
    """

    def __init__(self, config: MonitorConfig, start_in_fallback: bool = True):
        """Args:
        config: Thresholds.
        start_in_fallback: Start in FALLBACK ("startup") so the policy takes over only after a dwell of
            good inputs; a robot should not act on its first, possibly partial, observation.
        """
        self.config = config
        self.mode = FALLBACK if start_in_fallback else POLICY
        self.reason = "startup" if start_in_fallback else ""
        self.switches = 0
        self._above = 0
        self._calm_since: float | None = None

    def update(self, now: float, risk: float | None, fault: str | None = None) -> str:
        """Advances one tick.

        Args:
            now: Monotonic time in seconds (sim or wall clock, but one clock throughout).
            risk: The risk signal (lambda) this tick; None or non-finite counts as a fault.
            fault: A reason the inputs cannot be trusted this tick, or None.

        Returns:
            The mode for this tick.
        """
        if fault is None and (risk is None or not math.isfinite(risk)):
            fault = "nonfinite:risk"
        cfg = self.config
        if fault is not None:
            self._above = 0
            self._calm_since = None
            self._enter(FALLBACK, fault)
            return self.mode
        if self.mode == POLICY:
            self._above = self._above + 1 if risk > cfg.risk_high else 0
            if self._above >= cfg.engage_ticks:
                self._above = 0
                self._enter(FALLBACK, "risk")
            return self.mode
        # FALLBACK: wait for a calm dwell.
        if self.reason not in ("risk", "startup"):
            # The fault has cleared: say so, so an operator watching ~/mode does not chase a fault that is gone.
            self.reason = "recovering"
        if risk < cfg.risk_low:
            if self._calm_since is None:
                self._calm_since = now
            if now - self._calm_since >= cfg.release_dwell_s:
                self._calm_since = None
                self._enter(POLICY, "")
        else:
            self._calm_since = None
            if self.reason == "recovering":
                self.reason = "risk"  # the fault cleared, but risk keeps us here
        return self.mode

    def label(self) -> str:
        """ "POLICY" or "FALLBACK:<reason>", as published on ~/mode (formatted once per reason: a tick formats no
        strings)."""
        if self.mode == POLICY:
            return POLICY
        label = _LABELS.get(self.reason)
        if label is None:
            label = _LABELS[self.reason] = f"{FALLBACK}:{self.reason}"
        return label

    def _enter(self, mode: str, reason: str) -> None:
        if mode != self.mode:
            self.switches += 1
        self.mode, self.reason = mode, reason
