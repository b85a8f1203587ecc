"""Deploy-side evaluation of an export bundle in simulation: the policy alone or behind the risk monitor, and
`alam calibrate`, which picks `risk_high` / `risk_low` from how well the risk signal (lambda(s), or Q_c) predicts
upcoming violations.

Everything here drives the sim with the exported ONNX graph and the torch-free runtime, i.e. exactly what runs on
the robot, so the measured effect of monitor + fallback is the deployed one.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import sim
from alam_control.deploy import riskmap
from alam_control.learn import metrics
from alam_control.runtime import (
    POLICY,
    STALLED_LABEL,
    Bundle,
    Controller,
    MonitorConfig,
    Tick,
    default_fallback,
    load_bundle,
)
from alam_control.runtime.bundle import write_manifest
from sim.diffdrive import PILLAR_RADIUS

EVAL_SEED = 20_000  # episode seeds of bundle evaluation: apart from training (seed) and run evaluation seeds


@dataclasses.dataclass
class Rollouts:
    """Per-step records of bundle episodes, concatenated over episodes.

    Attributes:
        risk: float [T] the bundle's risk signal at s_t (its manifest's `risk_signal`: lambda(s_t), or Q_c(s_t, a_t)
            for bundles whose multiplier is not state-wise), also where the fallback drove.
        cost: float [T] c_t of the step taken at s_t.
        labels: bool [T] a violation within the next `horizon` steps (per episode, DESIGN.md section 7).
        fallback: bool [T] the fallback drove step t.
        returns, costs: per-episode sums.
        modes: [T] the controller's ~/mode label at each step ("POLICY", "FALLBACK:risk", ...).
        commands: float64 [T, A] the physical command sent at each step.
        obs: float32 [T, O] the observation the controller received at each step.
        positions: float [T, 2] the state's two coordinates of `riskmap.SLICES` at each step (the diff-drive
            robot's (x, y); the cart-pole's cart position and pole angle), None for tasks without a slice.
        episode: int [T] the episode of each step.
        layouts: per episode, the obstacles (x, y, radius); goals: (episode, x, y) of each goal set.
    """

    risk: np.ndarray
    cost: np.ndarray
    labels: np.ndarray
    fallback: np.ndarray
    returns: list[float]
    costs: list[float]
    modes: list[str] = dataclasses.field(default_factory=list)
    commands: np.ndarray | None = None
    obs: np.ndarray | None = None
    positions: np.ndarray | None = None
    episode: np.ndarray | None = None
    layouts: list[list[tuple[float, float, float]]] = dataclasses.field(default_factory=list)
    goals: list[tuple[int, float, float]] = dataclasses.field(default_factory=list)

    def map_rows(self, period: float) -> list[tuple]:
        """Rows (t, risk, mode, cost, 0, x, y, episode) for `plot_map` ([] without positions)."""
        if self.positions is None:
            return []
        steps = zip(self.risk, self.modes, self.cost, self.positions, self.episode, strict=True)
        return [(k * period, float(r), m, float(c), 0, float(xy[0]), float(xy[1]), int(e))
                for k, (r, m, c, xy, e) in enumerate(steps)]  # fmt: skip

    def violation_steps(self) -> np.ndarray:
        """int [E] the violating steps (cost > 0) of each episode."""
        return np.bincount(self.episode, weights=self.cost > 0).astype(int)

    def summary(self) -> dict[str, float]:
        """return, cost, violation_rate, risk_auroc, fallback_fraction (means over episodes / steps), and
        stalled_fraction: the part of fallback_fraction that the progress watch's recovery drove."""
        return {
            "return": float(np.mean(self.returns)),
            "cost": float(np.mean(self.costs)),
            "violation_rate": float((self.cost > 0).mean()),
            "risk_auroc": metrics.auroc(self.risk, self.labels),
            "fallback_fraction": float(self.fallback.mean()),
            "stalled_fraction": float(np.mean(np.asarray(self.modes) == STALLED_LABEL)) if self.modes else 0.0,
        }


def rollout(
    bundle: Bundle,
    episodes: int,
    seed: int = EVAL_SEED,
    randomize: bool | sim.Randomization = False,
    monitor: MonitorConfig | None = None,
    fallback: str | None = None,
    horizon: int = 20,
    start_in_fallback: bool = False,
    on_frame: Callable[[sim.SafeEnv, Tick], None] | None = None,
) -> Rollouts:
    """Runs the bundle in its task through the deployed `Controller`: the policy alone (`monitor` None: only an
    input fault hands over) or behind the risk monitor, which hands control to `fallback` (None: the robot's own,
    `default_fallback`).

    The controller's clock is sim time (step * control period). It starts in POLICY by default: the sim's inputs
    are sane from the first step, unlike a robot's at start-up (`start_in_fallback` for the robot's behaviour).
    `on_frame(env, tick)` is called at every step with the state and what the controller decided there (a video).

    Raises:
        ValueError: episodes < 1, or a fallback that does not fit the robot.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    manifest = bundle.manifest
    env = sim.load(manifest["task"], seed=seed, randomize=randomize)
    fallback = fallback or default_fallback(manifest)
    controller = Controller(bundle, monitor, fallback, start_in_fallback=start_in_fallback)
    period = float(manifest["control_period_s"])
    view = riskmap.SLICES.get(manifest["task"])  # the two state coordinates a rollout's path is drawn in
    risks, costs, labels, used, returns, ep_costs, modes, commands, observations = [], [], [], [], [], [], [], [], []
    positions: list[tuple[float, float]] = []
    goals: list[tuple[int, float, float]] = []
    layouts: list[list[tuple[float, float, float]]] = []
    episode_index: list[np.ndarray] = []
    try:
        for ep in range(episodes):
            controller.reset(start_in_fallback)
            track = _Track(view.read, ep, positions, goals) if view is not None and view.read else None
            drive = _driver(controller, env, period, modes, commands, on_frame)
            episode = sim.run_episode(env, drive, seed=seed + ep, on_step=track)
            observations.append(episode.obs)
            if track is not None:
                pillars = env.physics.pillar_positions().tolist() if hasattr(env.physics, "pillar_positions") else []
                layouts.append([(x, y, PILLAR_RADIUS) for x, y in pillars])
            episode_index.append(np.full(len(episode.costs), ep))
            risks.append(episode.risk)
            costs.append(episode.costs)
            labels.append(metrics.upcoming_violation_labels(episode.costs, horizon))
            used.append(episode.fallback)
            returns.append(episode.ret)
            ep_costs.append(episode.cost)
    finally:
        env.close()
    return Rollouts(
        np.concatenate(risks), np.concatenate(costs), np.concatenate(labels), np.concatenate(used), returns, ep_costs,
        modes, np.asarray(commands), np.concatenate(observations),
        np.asarray(positions) if positions else None, np.concatenate(episode_index),
        layouts, goals,
    )  # fmt: skip


class _Track:
    """on_step hook: the state's two slice coordinates before each step (`riskmap.Slice.read`), and each new goal
    of a goal task."""

    def __init__(self, read, episode: int, positions: list, goals: list):
        self.read, self.episode, self.positions, self.goals = read, episode, positions, goals

    def __call__(self, env: sim.SafeEnv) -> None:
        physics = env.physics
        self.positions.append(self.read(physics))
        if hasattr(physics, "goal_position"):
            goal = (self.episode, *(round(float(v), 4) for v in physics.goal_position()))
            if not self.goals or self.goals[-1] != goal:
                self.goals.append(goal)


def _driver(controller: Controller, env: sim.SafeEnv, period: float, modes: list[str], commands: list[np.ndarray],
            on_frame: Callable[[sim.SafeEnv, Tick], None] | None = None):  # fmt: skip
    """obs -> sim.Step through the controller, its clock at sim time (tick k at k * period); records each tick's
    ~/mode label and physical command."""
    clock = itertools.count()

    def drive(obs: np.ndarray) -> sim.Step:
        tick = controller.step(next(clock) * period, obs)
        modes.append(tick.label)
        commands.append(tick.command)
        if on_frame is not None:
            on_frame(env, tick)
        return sim.Step(env.action_for(tick.command), tick.risk, tick.mode != POLICY)

    return drive


Pillars = list[tuple[float, float, float]]


def plot_map(trace: list[tuple], episodes: list[Pillars], goals: list[tuple[int, float, float]], out: Path,
             view: riskmap.Slice | None = None) -> Path | None:  # fmt: skip
    """The run seen from above, one panel per episode: walls, pillars, goals, the path coloured by risk (log
    scale), FALLBACK stretches drawn as a wide grey band under the path, violations as red crosses.

    Args:
        trace: Rows as recorded (t, risk, mode, cost, push, x, y, episode).
        episodes: Per episode, the pillars (x, y, radius).
        goals: (episode, x, y) of each goal the robot was given.
        view: the two state coordinates drawn (`riskmap.SLICES`); None: the diff-drive arena.

    Returns:
        The PNG path, or None when the trace has no positions (a joint robot, or no odometry heard).
    """
    rows = [r for r in trace if len(r) >= 8 and math.isfinite(r[5]) and r[7] >= 0]
    if not rows or not episodes:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from matplotlib.colors import LogNorm

    shown = sorted({r[7] for r in rows})[:3]
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown) + 0.8, 4.2), dpi=100, squeeze=False)
    risk = np.array([r[1] for r in rows])
    positive = risk[risk > 0]
    low = max(1e-4, float(positive.min())) if positive.size else 1e-4  # log scale: from the least positive risk
    norm = LogNorm(vmin=low, vmax=max(10 * low, float(risk.max())))
    view = view or riskmap.SLICES["diffdrive-safe_navigate"]
    (x0, x1), (y0, y1) = view.x_range, view.y_range
    for ax, episode in zip(axes[0], shown, strict=True):
        if view.walls:
            ax.plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], color="0.3", lw=1.5)
        for a, b in view.forbidden_x:
            ax.axvspan(a, b, color="tab:red", alpha=0.12, lw=0)
        for x, y, radius in episodes[episode] if episode < len(episodes) else []:
            ax.add_patch(plt.Circle((x, y), radius, color="0.55"))
        part = [r for r in rows if r[7] == episode]
        xy = np.array([(r[5], r[6]) for r in part])
        fallback = np.array([r[2].startswith("FALLBACK") for r in part])
        segments = np.stack([xy[:-1], xy[1:]], axis=1)
        # A coordinate that wraps (the pole angle at +-pi) would draw a line across the whole plot: cut it there.
        wraps = np.abs(np.diff(xy[:, 1])) > 0.5 * (y1 - y0)
        segments[wraps] = np.nan
        if fallback[:-1].any():
            ax.add_collection(LineCollection(segments[fallback[:-1]], colors="0.8", linewidths=9, zorder=1))
        lines = LineCollection(segments, cmap="viridis", norm=norm, linewidths=2.5, zorder=2)
        lines.set_array(np.clip(np.array([r[1] for r in part[:-1]]), norm.vmin, None))
        ax.add_collection(lines)
        violated = np.array([r[3] > 0 for r in part])
        if violated.any():
            ax.scatter(xy[violated, 0], xy[violated, 1], marker="x", color="tab:red", s=25, zorder=3, label="violation")
        ax.scatter(*xy[0], color="k", s=20, zorder=3, label="start")
        g = [(x, y) for e, x, y in goals if e == episode]
        if g:
            ax.scatter(
                [p[0] for p in g], [p[1] for p in g], marker="*", color="tab:green", s=120, zorder=3, label="goals"
            )
        ax.set_xlim(x0 - 0.1, x1 + 0.1)
        ax.set_ylim(y0 - 0.1, y1 + 0.1)
        ax.set_xlabel(view.x_label, fontsize=7)
        ax.set_ylabel(view.y_label, fontsize=7)
        if x1 - x0 == y1 - y0:
            ax.set_aspect("equal")
        ax.set_title(f"episode {episode}  (grey band: FALLBACK)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(loc="lower left", fontsize=6)
    fig.colorbar(lines, ax=axes[0].tolist(), label="risk", shrink=0.8)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def overlay(frame: np.ndarray, text: str, alert: bool = False) -> np.ndarray:
    """A video frame (uint8 [H, W, 3]) with `text` on a dark band at the top, and a red border when `alert` (the
    controller is in FALLBACK): the risk and mode of each frame, readable without the trace beside it."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(np.ascontiguousarray(frame))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, image.width, 16), fill=(0, 0, 0))
    draw.text((4, 2), text, fill=(255, 255, 255))
    if alert:
        draw.rectangle((0, 0, image.width - 1, image.height - 1), outline=(220, 30, 30), width=4)
    return np.asarray(image)


def plot_reliability(table: list[dict[str, float]], result: dict[str, Any], out: str | Path, title: str = "") -> Path:
    """Reliability diagram of a calibration (a small PNG, 450x330 px): the empirical P(violation within H) per
    quantile bin of the risk signal, at the bin's median rank, with the base rate; each bar is labelled with its
    bin's upper risk value.

    Args:
        table: ``reliability_table`` rows; result: the calibration entry (risk_signal, horizon, risk_auroc,
            positive_rate).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.3))
    n = len(table)
    rank = (np.arange(n) + 0.5) / n
    rates = [row["positive_rate"] for row in table]
    ax.bar(rank, rates, width=0.9 / n, color="tab:blue", alpha=0.8, label="P(violation within H | bin)")
    ax.axhline(result["positive_rate"], color="k", linestyle="--", linewidth=0.8, label="base rate")
    for i, row in enumerate(table):
        ax.text(rank[i], rates[i], f"{row['bin_high']:.2g}", ha="center", va="bottom", fontsize=6)
    signal = result.get("risk_signal", "lambda")
    ax.set_xlabel(f"{signal} quantile bin (bar label: bin's upper {signal})", fontsize=8)
    ax.set_ylabel(f"P(violation within {result.get('horizon', '?')} steps)", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, max(max(rates, default=0.0), result["positive_rate"]) * 1.2 + 1e-3)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"{title}  AUROC {result['risk_auroc']:.2f}".strip(), fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


HYSTERESIS = 0.5
"""Default risk_low / risk_high of `pick_thresholds`."""

FLAG_RATIO = 2.0
"""Default false-alarm budget of `pick_thresholds`: flag at most this many times the share of steps that precede a
violation (the issue-12 bar for lambda's share at its cap uses the same factor)."""

DWELLS = (0.0, 0.25, 0.5, 1.0, 2.0)
"""Candidate `release_dwell_s` of the closed-loop check (`pick_dwell`), in seconds: from handing back at the first
calm tick to twice the `MonitorConfig` default."""


def pick_thresholds(
    lam: np.ndarray,
    labels: np.ndarray,
    recall: float,
    hysteresis: float = HYSTERESIS,
    max_flag_ratio: float | None = FLAG_RATIO,
) -> tuple[float, float, dict[str, float]]:
    """risk_high flags at least `recall` of the steps that precede a violation, unless that would flag more than
    `max_flag_ratio` x their share of all steps (the false-alarm budget; None: no budget); risk_low = `hysteresis` x
    risk_high (but at least the 5th percentile of all `lam`, a level states reach), so the monitor releases only
    well below where it engages (a Schmitt trigger).

    Why a budget: a weak signal cannot reach a recall without flagging everything. A diff-drive bundle whose lambda
    ranks violations at AUROC 0.65 (the evidence grid's seed 0 at 400k) reached recall 0.5 only at risk_high
    2.7e-4, where 27 % of all steps are flagged against 7.3 % that precede a violation; the start pose itself sat
    above it, so behind the monitor the retreat fallback parked the robot where lambda stays ~4e-4, above risk_low,
    and it never drove again (FALLBACK 87 % of the time without randomization). With the budget the recall falls
    short of the target instead, and `recall_met` says so: the monitor is then told how little it can catch, not
    made to stop the robot. The budget is met exactly where lambda has no ties at the quantile; ties can flag more.

    Why a ratio for risk_low: lambda is graded in the critic's margin over the threshold (its dual fixed point is
    (rho / eta) max(0, Q_c - d), README "The algorithm"), so risk_low = risk_high / 2 hands back once that margin
    has halved. The earlier rule, a lower quantile of the pre-violation lambdas, fell where a graded lambda
    crowds near 0 (0.0019 for the pushed diff-drive bundle at recall 0.5): the retreating robot never got below it
    and the demo sat in FALLBACK for 72 % of its 45 s.

    Args:
        lam: float [T] the risk signal at each calibration step.
        labels: bool [T] a violation within H steps of it.
        recall: target share of the positives to flag, in (0, 1).
        hysteresis: risk_low / risk_high, in (0, 1].
        max_flag_ratio: flag at most this x labels.mean() of all steps (> 0), or None for no budget.

    Returns:
        (risk_high, risk_low, {"recall": achieved, "flag_rate": fraction of all steps above risk_high,
        "precision": of the flagged steps, "recall_met": 1.0 if the recall target was reached else 0.0,
        "flag_budget": the largest flag rate allowed (1.0 without a budget)}).

    Raises:
        ValueError: If no step precedes a violation (nothing to calibrate on): roll out more episodes or with
            randomization.
    """
    if not 0.0 < recall < 1.0:
        raise ValueError(f"recall must be in (0, 1), got {recall}")
    if not 0.0 < hysteresis <= 1.0:
        raise ValueError(f"hysteresis must be in (0, 1], got {hysteresis}")
    if max_flag_ratio is not None and not max_flag_ratio > 0.0:
        raise ValueError(f"max_flag_ratio must be > 0 (or None for no false-alarm budget), got {max_flag_ratio}")
    positives = lam[labels]
    if positives.size == 0:
        raise ValueError(
            "no violations in the calibration rollouts: nothing to calibrate on; roll out more episodes, or under "
            "wider randomization (`alam calibrate --randomize-width 2`)"
        )
    # The next float below a quantile of the positives' lambdas, so `lam > threshold` flags that share. Not a fixed
    # offset: a graded lambda far below its cap takes values of 1e-8 and less, which an offset of 1e-6 (the earlier
    # rule) pushed below 0, so a recall target of 0.9 flagged every state and the robot never drove.
    # (Below 0 that float is subnormal: training flushes those to zero only while it runs, `cpu.training_settings`.)
    risk_high = float(np.nextafter(np.quantile(positives, 1.0 - recall, method="lower"), -np.inf))
    budget = 1.0 if max_flag_ratio is None else min(1.0, max_flag_ratio * float(labels.mean()))
    if budget < 1.0:
        # The lowest threshold that flags at most `budget` of all steps: lam > the (1 - budget) quantile.
        risk_high = max(risk_high, float(np.quantile(lam, 1.0 - budget, method="higher")))
    # Raised to the 5th percentile of every lambda seen where that is higher: a release level below almost every
    # state's lambda would keep the monitor in FALLBACK (the bundle check refuses one below all of them).
    risk_low = min(risk_high, max(hysteresis * risk_high, float(np.quantile(lam, 0.05))))
    flagged = lam > risk_high
    achieved = float(flagged[labels].mean())
    precision = float(labels[flagged].mean()) if flagged.any() else math.nan
    return risk_high, risk_low, {
        "recall": achieved, "flag_rate": float(flagged.mean()), "precision": precision,
        "recall_met": float(achieved >= recall), "flag_budget": budget,
    }  # fmt: skip


def pick_dwell(violations: np.ndarray, fallback_share: np.ndarray, slack: float = 0.0) -> int:
    """Which release dwell to keep, from closed-loop runs of the same episodes at each candidate: the one with the
    smallest fallback share among those with the fewest violations, or (``slack`` > 0) with no more than the fewest
    plus ``slack`` standard errors of the per-episode difference (paired: the candidates ran the same episodes).

    Why a search and not one default: how long to wait after the risk falls is a property of the robot and its
    fallback. Measured behind the calibrated monitors of the evidence grid's bundles (20 episodes, training ranges,
    dwell 0 / 0.3 / 1 / 2 s; violation rate, fallback share): cart-pole seed 1 0.0069 / 0.0025 / 0.0024 / 0.0069
    at 0.03 / 0.08 / 0.30 / 0.39 (returns 325 / 321 / 237 / 192: the long dwell holds the pole still for
    nothing); diff-drive 0.0138 / 0.0083 / 0.0005 / 0.0002 at 0.51 / 0.55 / 0.60 / 0.64 (a robot that resumes
    at once drives back into the pillar it retreated from).

    Why no slack by default: the monitor is the safety device, and a dwell that is as safe within noise under the
    training ranges need not be under wider ones. With ``slack`` 1 (the one-standard-error rule of model
    selection) the point robot's two bundles kept 0.25 s and 0 s instead of 1 s, and on the stress test's held-out
    episodes at x2 they violated at 0.0076 / 0.0064 against 0.0038 / 0.0014 at 1 s (10 episodes each; returns
    19.1 / 17.6 against 16.4 / 14.4).

    Args:
        violations: float [D, E] violating steps of each of E episodes behind each of D candidates.
        fallback_share: float [D] the share of steps the fallback drove behind each candidate.
        slack: standard errors of violations per episode to trade for less fallback (>= 0).

    Returns:
        The index of the candidate to keep (the first of equal fallback shares).

    Raises:
        ValueError: Shapes that do not match, no candidate or no episode, or a negative slack.
    """
    violations = np.asarray(violations, dtype=float)
    fallback_share = np.asarray(fallback_share, dtype=float)
    if violations.ndim != 2 or 0 in violations.shape or fallback_share.shape != (violations.shape[0],):
        raise ValueError(f"violations must be [D, E] with D, E >= 1 and fallback_share [D], got {violations.shape} "
                         f"and {fallback_share.shape}")  # fmt: skip
    if not slack >= 0.0:
        raise ValueError(f"slack must be >= 0 standard errors, got {slack}")
    best = int(np.argmin(violations.mean(axis=1)))
    diff = violations - violations[best]  # [D, E] paired differences to the fewest
    episodes = violations.shape[1]
    stderr = diff.std(axis=1, ddof=1) / math.sqrt(episodes) if episodes > 1 else np.zeros(len(diff))
    # The fewest itself always passes (difference 0), so some candidate is kept. A difference that one episode alone
    # makes is exactly one standard error (k / E both); the factor keeps rounding from deciding it.
    keep = diff.mean(axis=1) <= slack * stderr * (1.0 + 1e-9)
    return int(np.flatnonzero(keep)[np.argmin(fallback_share[keep])])


def closed_loop(
    bundle: Bundle,
    alone: Rollouts,
    monitor: MonitorConfig,
    episodes: int,
    seed: int,
    randomize: bool | sim.Randomization,
    fallback: str,
    dwells: tuple[float, ...] | None = None,
    dwell_slack: float = 0.0,
) -> dict[str, Any]:
    """The first `episodes` of `alone` (rolled out from `seed` under `randomize`) again, behind `monitor` and
    `fallback`, once per candidate `release_dwell_s` in `dwells` (None: the monitor's own only), keeping the one
    `pick_dwell` picks (with `dwell_slack`).

    Returns:
        {"episodes", "fallback", "engage_ticks", "dwell_slack", "release_dwell_s" (the kept one), "fallback_share",
        "violation_rate", "return" (behind the kept one), "alone_violation_rate", "alone_return", "candidates":
        [{"release_dwell_s", "fallback_share", "violation_rate", "return"}, ...]} (rates over steps, returns mean
        over episodes).
    """
    candidates, per_episode = [], []
    for dwell in dict.fromkeys(float(d) for d in dwells) if dwells else (monitor.release_dwell_s,):  # each once
        at = dataclasses.replace(monitor, release_dwell_s=float(dwell))
        guarded = rollout(bundle, episodes, seed=seed, randomize=randomize, monitor=at, fallback=fallback)
        per_episode.append(guarded.violation_steps())
        candidates.append({
            "release_dwell_s": at.release_dwell_s, "fallback_share": float(guarded.fallback.mean()),
            "violation_rate": float((guarded.cost > 0).mean()), "return": float(np.mean(guarded.returns)),
        })  # fmt: skip
    shares = np.array([c["fallback_share"] for c in candidates])
    kept = candidates[pick_dwell(np.stack(per_episode), shares, dwell_slack)]
    first = alone.episode < episodes
    return {
        "episodes": episodes, "fallback": fallback, "engage_ticks": monitor.engage_ticks, "dwell_slack": dwell_slack,
        **kept,
        "alone_violation_rate": float((alone.cost[first] > 0).mean()),
        "alone_return": float(np.mean(alone.returns[:episodes])),
        "candidates": candidates,
    }  # fmt: skip


def training_ranges(manifest: dict[str, Any]) -> sim.Randomization:
    """The randomization a bundle was trained under (manifest "randomization"); sim's defaults for a bundle
    trained on the nominal model or exported before the manifest recorded it."""
    recorded = manifest.get("randomization")
    return sim.Randomization.from_mapping(recorded) if recorded else sim.Randomization()


def lead_edges(horizon: int) -> tuple[int, ...]:
    """Bins of `metrics.auroc_by_lead` for a horizon H: the violating states, 1-4 steps ahead, then 5 at a time
    up to H (H 20: 0 | 1-4 | 5-9 | 10-14 | 15-19)."""
    inner = [1, *range(5, horizon, 5)] if horizon > 1 else []
    return (0, *inner, horizon)


def calibrate(
    bundle_dir: str | Path,
    episodes: int = 20,
    recall: float = 0.9,
    randomize: bool | sim.Randomization = True,
    horizon: int = 20,
    seed: int = EVAL_SEED,
    hysteresis: float = HYSTERESIS,
    width: float = 1.0,
    max_flag_ratio: float | None = FLAG_RATIO,
    closed_loop_episodes: int = 20,
    fallback: str | None = None,
    dwells: tuple[float, ...] | None = DWELLS,
    dwell_slack: float = 0.0,
) -> dict[str, Any]:
    """Rolls the bundle out (``randomize`` True: under the ranges it was trained under, `training_ranges`, widened
    ``width`` times), measures risk_auroc and reliability, writes risk_high/low (`pick_thresholds`) into its
    manifest. A policy that never violates under its own ranges has nothing to calibrate on there: ``width`` 2
    widens them until it does (the evidence does so), and the manifest records the width. ``max_flag_ratio`` is
    `pick_thresholds`' false-alarm budget.

    Then it runs the first ``closed_loop_episodes`` of the same episodes again behind the monitor those thresholds
    make (default `MonitorConfig` otherwise), handing over to ``fallback`` (None: `default_fallback` for the
    robot), and records what the operating point does there ("closed_loop": fallback share, violation rate and
    return, beside the policy alone on those episodes). Why: thresholds read off open-loop rollouts can hold the
    robot in FALLBACK far longer than their flag rate says (a fallback that parks the robot where the risk stays
    up; the evidence grid's diff-drive bundle flagged 27 % of the steps and sat in FALLBACK for 87 %), and that
    should be seen when the thresholds are written, not on the robot. 0 skips it. It runs once per candidate
    release dwell in ``dwells`` and writes the one `pick_dwell` keeps (``dwell_slack``: standard errors of
    violations to trade for less fallback, 0 by default) as the manifest's ``release_dwell_s``, which
    the monitor then uses unless the node or CLI sets one (None: the `MonitorConfig` default, recorded, not
    written). A dwell from an earlier calibration is dropped whenever none is picked: it was chosen for other
    thresholds.

    The manifest's file hashes are unchanged (only manifest.json is rewritten, atomically).

    Returns:
        The "calibration" entry written to the manifest, with the thresholds (and the release dwell, where one
        was picked) beside it.

    Raises:
        ValueError: ``width`` below 1, or other than 1 without ``randomize`` True; no violation in the rollouts.
    """
    if width < 1.0:
        raise ValueError(f"randomization width must be >= 1 (the training ranges or wider), got {width}")
    if closed_loop_episodes < 0:
        raise ValueError(f"closed_loop_episodes must be >= 0, got {closed_loop_episodes}")
    if width != 1.0 and randomize is not True:
        raise ValueError("a randomization width needs the training ranges (randomize=True) to widen")
    bundle = load_bundle(bundle_dir)
    if randomize is True:
        randomize = training_ranges(bundle.manifest).widened(width)
    data = rollout(bundle, episodes, seed=seed, randomize=randomize, horizon=horizon)
    risk_high, risk_low, quality = pick_thresholds(data.risk, data.labels, recall, hysteresis, max_flag_ratio)
    signal = bundle.risk_signal
    cap = bundle.manifest.get("lambda_max") if signal == "lambda" else None
    table = metrics.reliability_table(data.risk, data.labels)
    result = {
        "episodes": episodes,
        "randomize": bool(randomize),
        "randomize_width": width if randomize else None,
        "horizon": horizon,
        "target_recall": recall,
        "hysteresis": hysteresis,
        # None: no budget (JSON holds no inf).
        "max_flag_ratio": max_flag_ratio if max_flag_ratio is not None and math.isfinite(max_flag_ratio) else None,
        "risk_signal": signal,
        "risk_auroc": metrics.auroc(data.risk, data.labels),
        # How far to trust it: the AUROC of a few violation onsets is mostly noise (10 diff-drive episodes held 5).
        "risk_auroc_interval": list(metrics.auroc_interval(data.risk, data.labels, data.episode)),
        "onsets": len(metrics.violation_onsets(data.cost, data.episode)),
        "violation_rate": float((data.cost > 0).mean()),
        "positive_rate": float(data.labels.mean()),
        "reliability_monotone": float(metrics.is_monotone(table)),
        "reliability_dips": metrics.reliability_dips(table),  # falls beyond 2 standard errors
        # How early it warns: the one AUROC averages violations 0 and H - 1 steps ahead.
        "auroc_by_lead": metrics.auroc_by_lead(data.risk, data.cost, data.episode, lead_edges(horizon)),
        **({"cap_share": metrics.cap_share(data.risk, cap)} if cap is not None else {}),
        **quality,
        "reliability": table,
    }
    manifest = {k: v for k, v in bundle.manifest.items() if k != "release_dwell_s"}
    manifest.update(risk_high=risk_high, risk_low=risk_low, calibration=result)
    if closed_loop_episodes:
        monitor = MonitorConfig.from_manifest(manifest)
        loop = closed_loop(bundle, data, monitor, min(closed_loop_episodes, episodes), seed, randomize,
                           fallback or default_fallback(bundle.manifest), dwells, dwell_slack)  # fmt: skip
        result["closed_loop"] = loop
        if dwells:
            manifest["release_dwell_s"] = loop["release_dwell_s"]
    write_manifest(Path(bundle_dir), manifest)
    extra = {"release_dwell_s": manifest["release_dwell_s"]} if "release_dwell_s" in manifest else {}
    return {"risk_high": risk_high, "risk_low": risk_low, **extra, **result}
