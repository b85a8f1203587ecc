"""The risk monitor (DESIGN.md section 6): decides, each control tick, whether the policy or the fallback drives.

A plain class with an explicit clock, so the same code runs in the ROS node, in `alam eval --monitor`, and in
unit tests that step time by hand.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from typing import Any

import numpy as np

POLICY = "POLICY"
FALLBACK = "FALLBACK"
STALLED = "stalled"  # the reason while the progress watch's recovery drives
STALLED_LABEL = f"{FALLBACK}:{STALLED}"  # its ~/mode label
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
        stall_s: Navigation robots (`ProgressWatch`): seconds of POLICY driving with less than 2 cm of travel
            and 0.2 rad of turn, outside `goal_tolerance_m` of the goal, before the recovery drives; 0 turns the
            watch off. Why a watch at all: a goal-seeking policy can park or dither behind an obstacle at low
            risk, where the risk monitor cannot see it (`benchmarks/stalls.py`).
        recover_s: Seconds the recovery drives before the policy gets the robot back.
        goal_tolerance_m: Distance to the goal's center within which standing still is arrival, not a stall
            (0.3 m: the simulated tasks' goal radius; a robot's own goal tolerance belongs here).
    """

    risk_high: float
    risk_low: float
    engage_ticks: int = 1
    release_dwell_s: float = 1.0
    stall_s: float = 2.0
    recover_s: float = 1.5
    goal_tolerance_m: float = 0.3

    def __post_init__(self) -> None:
        if not (math.isfinite(self.risk_high) and math.isfinite(self.risk_low)):
            raise ValueError(f"risk_high and risk_low must be finite, got {self.risk_high}, {self.risk_low}")
        if self.risk_low > self.risk_high:
            raise ValueError(f"risk_low ({self.risk_low}) must be <= risk_high ({self.risk_high})")
        if self.engage_ticks < 1:
            raise ValueError(f"engage_ticks must be >= 1, got {self.engage_ticks}")
        for name in ("release_dwell_s", "stall_s", "recover_s", "goal_tolerance_m"):
            value = getattr(self, name)
            if not 0.0 <= value < math.inf:
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")

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


class ProgressWatch:
    """A progress checker for goal-seeking robots: notices when the policy drives but the robot gets nowhere, and
    then drives a short recovery (reason "stalled"), after which the policy gets the robot back.

    Why: a navigation policy can stop short of its goal and stay there, parked or dithering back and forth behind
    an obstacle, at low risk; the risk monitor cannot see that (`benchmarks/stalls.py`, docs/results.md
    "Standstill"). Like Nav2's progress checker, the watch judges travel over a window: the robot is stalled when,
    over the last `stall_s` seconds of POLICY ticks, its pose moved less than `MOVE_M` and turned less than
    `TURN_RAD` (turning on the spot is progress for a diff-drive base) while it is farther than `goal_tolerance_m`
    from the goal. The pose is dead-reckoned from the observation's own velocity entry, so the same rule runs on
    a robot (odometry twist) and in simulation; dithering that nets no travel counts as stalled.

    The recovery changes what the policy sees so that it picks a new way: the diff-drive base turns on the spot
    at half its yaw-rate limit, away from the goal's side (a round hull turns in place without sweeping new
    ground); a planar point robot is pushed toward the goal at half force, and away from each hazard closer than
    `HAZARD_CLEAR_M` by its depth (hazards are costs, not obstacles: a push straight at the goal crossed them). It
    runs under the risk monitor: a hand-over for risk or a fault pre-empts it and resets the watch.

    Measured with `benchmarks/stalls.py` (with and `--no-watch` without it; docs/results/stalls.txt) behind each
    navigation bundle's calibrated monitor, 40 randomized episodes (seeds 995000+; the defaults were picked among
    stall_s 1 / 2 / 4 and recover_s 1.5 / 3 on seeds 990000+), return / violation rate without -> with: the shipped
    diff-drive bundle 12.30 / 0.0771 -> 12.67 / 0.0791 (stuck episodes, 5 s or more stalled, 4 -> 0); point
    `sac_alam` seeds 0-2 19.04 / 0.0009 -> 19.25 / 0.0009, 13.98 / 0.0006 -> 15.82 / 0.0008, 14.82 / 0.0002 ->
    16.94 / 0.0004; return up on 10 of 11 bundles (one never stalls). The cost: a policy that is safe only because
    it stands still gets moving. The two bundles whose multiplier is pinned at its cap (diff-drive `fac` seed 1,
    point `fac` seed 0, stalled 69 % / 68 % of the time) violate more with it, 0.0133 -> 0.0243 and 0.0069 ->
    0.0125; set stall_s 0 for such a policy.
    """

    MOVE_M = 0.02
    TURN_RAD = 0.2
    HAZARD_CLEAR_M = 0.8  # m from a hazard's center: the point robot's push turns away inside it (as "evade")

    def __init__(self, manifest: dict[str, Any]):
        """Args:
        manifest: A navigation bundle's manifest: `obs_layout` with `velocity` and `goal` ((distance, cos, sin)
            of the goal's bearing: a diff-drive base, velocity (v, omega) in the robot frame) or `goal_vector`
            ((x, y) to the goal: a planar point robot, velocity (x, y) in the same frame).

        Raises:
            ValueError: The observation has no velocity or goal entry (`for_bundle` returns None there instead).
        """
        layout = manifest.get("obs_layout") or {}
        if "velocity" not in layout or not ({"goal", "goal_vector"} & set(layout)):
            raise ValueError(f"the progress watch needs 'velocity' and a goal in obs_layout; got {sorted(layout)}")
        self._velocity = slice(*layout["velocity"])
        self._unicycle = "goal" in layout
        self._goal = slice(*layout["goal" if self._unicycle else "goal_vector"])
        self._hazards = slice(*layout["hazard_vectors"]) if "hazard_vectors" in layout else None
        self._high = np.asarray(manifest["action_high"], np.float64)
        # Half the yaw-rate limit (diff drive), half the force limit (point robot).
        self._scale = 0.5 * self._high
        self.recoveries = 0
        self.reset()

    @classmethod
    def for_bundle(cls, manifest: dict[str, Any]) -> ProgressWatch | None:
        """The watch for a navigation bundle, None for a robot without a goal (a joint robot)."""
        layout = manifest.get("obs_layout") or {}
        if "velocity" in layout and {"goal", "goal_vector"} & set(layout):
            return cls(manifest)
        return None

    def reset(self) -> None:
        """Forgets the window and any recovery in progress (the policy lost control, or a new episode)."""
        self._pose = (0.0, 0.0, 0.0)  # dead-reckoned x, y, heading since the window began
        self._window: deque[tuple[float, float, float, float]] = deque()  # (now, x, y, heading) per tick
        self._recover_until = -math.inf
        self._sign = 1.0

    def update(self, now: float, obs: np.ndarray, config: MonitorConfig) -> bool:
        """Advances one POLICY tick; True when the recovery drives this tick (`command` says how).

        Args:
            now: Seconds, the monitor's clock.
            obs: float [O], the finite observation the policy saw this tick.
            config: The live thresholds (stall_s 0: never stalled).
        """
        if now < self._recover_until:
            return True
        goal = obs[self._goal]
        distance = float(goal[0]) if self._unicycle else math.hypot(float(goal[0]), float(goal[1]))
        if config.stall_s <= 0.0 or distance <= config.goal_tolerance_m:
            self._window.clear()  # arrived: standing still is the point
            return False
        x, y, heading = self._pose
        if self._window:
            dt = now - self._window[-1][0]
            velocity = obs[self._velocity]
            if self._unicycle:
                v, omega = float(velocity[0]), float(velocity[1])
                x, y, heading = x + v * math.cos(heading) * dt, y + v * math.sin(heading) * dt, heading + omega * dt
            else:
                x, y = x + float(velocity[0]) * dt, y + float(velocity[1]) * dt
        self._pose = (x, y, heading)
        window = self._window
        window.append((now, x, y, heading))
        while len(window) > 1 and window[1][0] <= now - config.stall_s:
            window.popleft()  # keep the newest tick at least stall_s old as the window's start
        start, x0, y0, heading0 = window[0]
        if now - start < config.stall_s or math.hypot(x - x0, y - y0) >= self.MOVE_M:
            return False
        if abs(heading - heading0) >= self.TURN_RAD:
            return False
        self.recoveries += 1
        self._window.clear()
        self._recover_until = now + config.recover_s
        # Turn away from the goal's side: sin of the goal's bearing (the point robot's sign is unused).
        self._sign = -1.0 if float(goal[2 if self._unicycle else 1]) >= 0.0 else 1.0
        return True

    def command(self, obs: np.ndarray) -> np.ndarray:
        """The recovery's command [A] in physical units for this tick (inside the actuators' range)."""
        if self._unicycle:
            return np.array([0.0, self._sign * self._scale[1]])
        goal = np.asarray(obs[self._goal], np.float64)
        push = goal / max(math.hypot(*goal), 1e-6)
        if self._hazards is not None:  # away from each hazard within HAZARD_CLEAR_M, by its depth
            h = np.asarray(obs[self._hazards], np.float64).reshape(-1, 2)  # [N, 2] hazard centers - robot
            d = np.maximum(np.linalg.norm(h, axis=1), 1e-6)
            depth = np.maximum(self.HAZARD_CLEAR_M - d, 0.0) / self.HAZARD_CLEAR_M
            push = push - (depth / d) @ h
        return np.clip(self._scale * push, -self._high, self._high)
