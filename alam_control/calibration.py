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
from pathlib import Path
from typing import Any

import numpy as np

import sim
from alam_control import metrics
from alam_control.runtime import POLICY, Bundle, Controller, MonitorConfig, load_bundle
from alam_control.runtime.bundle import write_manifest

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

    def summary(self) -> dict[str, float]:
        """return, cost, violation_rate, risk_auroc, fallback_fraction (means over episodes / steps)."""
        return {
            "return": float(np.mean(self.returns)),
            "cost": float(np.mean(self.costs)),
            "violation_rate": float((self.cost > 0).mean()),
            "risk_auroc": metrics.auroc(self.risk, self.labels),
            "fallback_fraction": float(self.fallback.mean()),
        }


def rollout(
    bundle: Bundle,
    episodes: int,
    seed: int = EVAL_SEED,
    randomize: bool | sim.Randomization = False,
    monitor: MonitorConfig | None = None,
    fallback: str = "stop",
    horizon: int = 20,
    start_in_fallback: bool = False,
) -> Rollouts:
    """Runs the bundle in its task through the deployed `Controller`: the policy alone (`monitor` None: only an
    input fault hands over) or behind the risk monitor, which hands control to `fallback`.

    The controller's clock is sim time (step * control period). It starts in POLICY by default: the sim's inputs
    are sane from the first step, unlike a robot's at start-up (`start_in_fallback` for the robot's behaviour).

    Raises:
        ValueError: episodes < 1, or a fallback that does not fit the robot.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    manifest = bundle.manifest
    env = sim.load(manifest["task"], seed=seed, randomize=randomize)
    controller = Controller(bundle, monitor, fallback, start_in_fallback=start_in_fallback)
    period = float(manifest["control_period_s"])
    risks, costs, labels, used, returns, ep_costs, modes, commands, observations = [], [], [], [], [], [], [], [], []
    try:
        for ep in range(episodes):
            controller.reset(start_in_fallback)
            episode = sim.run_episode(env, _driver(controller, env, period, modes, commands), seed=seed + ep)
            observations.append(episode.obs)
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
    )  # fmt: skip


def _driver(controller: Controller, env: sim.SafeEnv, period: float, modes: list[str], commands: list[np.ndarray]):
    """obs -> sim.Step through the controller, its clock at sim time (tick k at k * period); records each tick's
    ~/mode label and physical command."""
    clock = itertools.count()

    def drive(obs: np.ndarray) -> sim.Step:
        tick = controller.step(next(clock) * period, obs)
        modes.append(tick.label)
        commands.append(tick.command)
        return sim.Step(env.action_for(tick.command), tick.risk, tick.mode != POLICY)

    return drive


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


def pick_thresholds(lam: np.ndarray, labels: np.ndarray, recall: float) -> tuple[float, float, dict[str, float]]:
    """risk_high flags at least `recall` of the steps that precede a violation; risk_low is the threshold with
    half the remaining miss rate, (1 + recall) / 2, so the monitor releases only well below where it engages.

    Returns:
        (risk_high, risk_low, {"recall": achieved, "flag_rate": fraction of all steps above risk_high,
        "precision": of the flagged steps}).

    Raises:
        ValueError: If no step precedes a violation (nothing to calibrate on): roll out more episodes or with
            randomization.
    """
    if not 0.0 < recall < 1.0:
        raise ValueError(f"recall must be in (0, 1), got {recall}")
    positives = lam[labels]
    if positives.size == 0:
        raise ValueError("no violations in the calibration rollouts; use more episodes or --randomize")
    # Thresholds just below a quantile of the positives' lambdas, so `lam > threshold` flags that share.
    risk_high = float(np.quantile(positives, 1.0 - recall, method="lower")) - 1e-6
    risk_low = min(risk_high, float(np.quantile(positives, (1.0 - recall) / 2, method="lower")) - 1e-6)
    flagged = lam > risk_high
    achieved = float(flagged[labels].mean())
    precision = float(labels[flagged].mean()) if flagged.any() else math.nan
    return risk_high, risk_low, {"recall": achieved, "flag_rate": float(flagged.mean()), "precision": precision}


def calibrate(
    bundle_dir: str | Path,
    episodes: int = 20,
    recall: float = 0.9,
    randomize: bool | sim.Randomization = True,
    horizon: int = 20,
    seed: int = EVAL_SEED,
) -> dict[str, Any]:
    """Rolls the bundle out, measures risk_auroc and reliability, writes risk_high/low into its manifest.

    The manifest's file hashes are unchanged (only manifest.json is rewritten, atomically).

    Returns:
        The "calibration" entry written to the manifest.
    """
    bundle = load_bundle(bundle_dir)
    data = rollout(bundle, episodes, seed=seed, randomize=randomize, horizon=horizon)
    risk_high, risk_low, quality = pick_thresholds(data.risk, data.labels, recall)
    signal = bundle.risk_signal
    cap = bundle.manifest.get("lambda_max") if signal == "lambda" else None
    table = metrics.reliability_table(data.risk, data.labels)
    result = {
        "episodes": episodes,
        "randomize": bool(randomize),
        "horizon": horizon,
        "target_recall": recall,
        "risk_signal": signal,
        "risk_auroc": metrics.auroc(data.risk, data.labels),
        "violation_rate": float((data.cost > 0).mean()),
        "positive_rate": float(data.labels.mean()),
        "reliability_monotone": float(metrics.is_monotone(table)),
        **({"cap_share": metrics.cap_share(data.risk, cap)} if cap is not None else {}),
        **quality,
        "reliability": table,
    }
    manifest = dict(bundle.manifest, risk_high=risk_high, risk_low=risk_low, calibration=result)
    write_manifest(Path(bundle_dir), manifest)
    return {"risk_high": risk_high, "risk_low": risk_low, **result}
