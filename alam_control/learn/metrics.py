"""Metric definitions of DESIGN.md section 7, as pure numpy functions."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def upcoming_violation_labels(costs: np.ndarray, horizon: int, episode_ends: np.ndarray | None = None) -> np.ndarray:
    """Label step t positive when a violation (c > 0) occurs at one of steps t .. t+horizon-1 of its episode.

    Args:
        costs: ``[T]`` per-step costs, one episode or several in a row.
        horizon: H, steps to look ahead (>= 1).
        episode_ends: ``[T]`` bool, step t is the last of its episode (None = ``costs`` is one episode). A
            violation never labels steps of an earlier episode.

    Returns:
        ``[T]`` bool.
    """
    costs = np.asarray(costs)
    if episode_ends is None:
        viol = (costs > 0).astype(np.int64)
        # Windowed count by cumulative sums: ahead[t] = sum(viol[t : t + H]).
        csum = np.concatenate([[0], np.cumsum(viol)])
        t = np.arange(len(viol))
        ahead = csum[np.minimum(t + horizon, len(viol))] - csum[t]
        return ahead > 0
    cuts = np.flatnonzero(np.asarray(episode_ends, dtype=bool)[:-1]) + 1
    # np.split returns at least one part (an empty record gives one empty part), so concatenate always has input.
    return np.concatenate([upcoming_violation_labels(part, horizon) for part in np.split(costs, cuts)])


def reliability_table(risk: np.ndarray, labels: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Empirical P(violation within H | risk in bin) over quantile bins of the risk signal.

    Ties make bins merge (a signal at 0 on most states has one bin for them all).

    Returns:
        One row per non-empty bin: bin_low, bin_high, steps, positive_rate.
    """
    risk, labels = np.asarray(risk, dtype=np.float64), np.asarray(labels, dtype=bool)
    edges = np.unique(np.quantile(risk, np.linspace(0.0, 1.0, bins + 1)))
    if len(edges) < 2:
        return [{"bin_low": float(risk.min()), "bin_high": float(risk.max()), "steps": len(risk),
                 "positive_rate": float(labels.mean())}]  # fmt: skip
    which = np.clip(np.searchsorted(edges, risk, side="right") - 1, 0, len(edges) - 2)
    rows = []
    for b in range(len(edges) - 1):
        mask = which == b
        if mask.any():
            rows.append(
                {
                    "bin_low": float(edges[b]),
                    "bin_high": float(edges[b + 1]),
                    "steps": int(mask.sum()),
                    "positive_rate": float(labels[mask].mean()),
                }
            )
    return rows


def is_monotone(table: list[dict[str, float]]) -> bool:
    """Whether P(violation within H) never falls from one reliability bin to the next (higher risk)."""
    rates = [row["positive_rate"] for row in table]
    return all(b >= a for a, b in zip(rates[:-1], rates[1:], strict=True))


def reliability_dips(table: list[dict[str, float]], z: float = 2.0) -> int:
    """How many times P(violation within H) falls from one reliability bin to the next by more than ``z`` standard
    errors of the difference.

    `is_monotone` fails on any fall, and with 5000 states a bin one violating state can make the difference; this
    counts only the falls sampling cannot explain. The standard errors are the binomial ones, as if states were
    independent; states of one episode are not, so the true errors are larger and this count errs towards finding
    dips, not hiding them.
    """
    dips = 0
    for a, b in zip(table[:-1], table[1:], strict=True):
        pa, pb = a["positive_rate"], b["positive_rate"]
        se = math.sqrt(pa * (1.0 - pa) / a["steps"] + pb * (1.0 - pb) / b["steps"])
        dips += pa - pb > z * se
    return dips


def risk_quality(risk: np.ndarray, labels: np.ndarray, cap: float | None = None) -> dict[str, float]:
    """How well a risk signal ranks "a violation within H steps", on any labelled states.

    Returns:
        ``risk_auroc``, ``positive_share`` (share of states that precede a violation within H),
        ``reliability_monotone`` (1.0 / 0.0, over decile bins) and, with ``cap``, ``cap_share`` (share of states
        with risk >= 0.95 cap: a multiplier stuck at its cap shows here even when it still ranks).
    """
    risk, labels = np.asarray(risk, dtype=np.float64), np.asarray(labels, dtype=bool)
    out = {
        "risk_auroc": auroc(risk, labels),
        "positive_share": float(labels.mean()) if len(labels) else math.nan,
        "reliability_monotone": float(is_monotone(reliability_table(risk, labels))) if len(risk) else math.nan,
    }
    if cap is not None:
        out["cap_share"] = cap_share(risk, cap)
    return out


def cap_share(risk: np.ndarray, cap: float) -> float:
    """Share of states with risk >= 0.95 cap (NaN when empty)."""
    risk = np.asarray(risk, dtype=np.float64)
    return float((risk >= 0.95 * cap).mean()) if len(risk) else math.nan


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (ties counted half); NaN when only one class is present."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    # Mann-Whitney U from average ranks (handles ties exactly).
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores))
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg_rank = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg_rank, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def violation_onsets(costs: np.ndarray, episode: np.ndarray) -> np.ndarray:
    """Violation onsets: steps with c > 0 whose previous step in the same episode had none (or that open it).

    Args:
        costs: ``[T]`` per-step costs of several episodes in a row; episode: ``[T]`` the episode of each step.

    Returns:
        ``[K]`` int, the onset steps in order.
    """
    viol, episode = np.asarray(costs) > 0, np.asarray(episode)
    starts = np.ones(len(viol), dtype=bool)
    starts[1:] = (~viol[:-1]) | (episode[1:] != episode[:-1])
    return np.flatnonzero(viol & starts)


def steps_to_violation(costs: np.ndarray, episode: np.ndarray) -> np.ndarray:
    """Steps from each state to the next violation of its episode: 0 at a violating step, -1 when none follows.

    Args:
        costs: ``[T]`` per-step costs of several episodes in a row; episode: ``[T]`` the episode of each step.

    Returns:
        ``[T]`` int64.
    """
    viol, episode = np.asarray(costs) > 0, np.asarray(episode)
    t = np.arange(len(viol))
    # The next violating step at or after t over the whole record (len(viol) when none) ...
    following = np.minimum.accumulate(np.where(viol, t, len(viol))[::-1])[::-1]
    # ... counts only when it lies in t's own episode (episodes are contiguous).
    found = following < len(viol)
    found[found] = episode[following[found]] == episode[found]
    return np.where(found, following - t, -1).astype(np.int64)


def auroc_by_lead(
    scores: np.ndarray, costs: np.ndarray, episode: np.ndarray, edges: Sequence[int]
) -> list[dict[str, float]]:
    """How early a risk signal ranks a violation: AUROC of the positives whose next violation is ``lo`` to
    ``hi - 1`` steps ahead (``lo = 0``: the violating states themselves) against every state with no violation in
    the next ``edges[-1]`` steps of its episode.

    The AUROC of "a violation within H steps" averages these bins; a signal that only rises as the violation
    begins scores high in the first bins and near 0.5 in the last ones, which the one number hides.

    Args:
        scores, costs, episode: ``[T]`` each.
        edges: increasing bin edges in steps; the last is H (`calibration.lead_edges(H)`).

    Returns:
        One row per bin: {"lead_low", "lead_high" (exclusive), "positives", "auroc"} (auroc NaN when empty).
    """
    scores = np.asarray(scores, np.float64)
    lead = steps_to_violation(costs, episode)
    horizon = edges[-1]
    negative = (lead < 0) | (lead >= horizon)
    rows = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        positive = (lead >= low) & (lead < high)
        keep = positive | negative
        rows.append({
            "lead_low": int(low), "lead_high": int(high), "positives": int(positive.sum()),
            "auroc": auroc(scores[keep], positive[keep]),
        })  # fmt: skip
    return rows


def auroc_interval(
    scores: np.ndarray,
    labels: np.ndarray,
    episode: np.ndarray,
    level: float = 0.95,
    draws: int = 1000,
    seed: int = 0,
    min_positive_episodes: int = 5,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `auroc` over whole episodes.

    States within an episode are not independent (the ~H states before one violation share its label), so the
    resampling unit is the episode: with a handful of violation onsets the interval is wide, as it should be.
    With positives in fewer than `min_positive_episodes` episodes it is undefined: every draw that has positives
    at all holds the same one or two violations, and the percentiles come out narrow around them (one violating
    cart-pole episode gave 0.793-0.796).

    Args:
        scores, labels, episode: ``[T]`` each; episode is the episode index of each state.

    Returns:
        (low, high); NaN, NaN when fewer than 2 episodes, fewer than `min_positive_episodes` with a positive
        label, or no draw has both classes.
    """
    scores, labels, episode = np.asarray(scores, np.float64), np.asarray(labels, bool), np.asarray(episode)
    ids, inverse = np.unique(episode, return_inverse=True)
    if len(ids) < 2 or len(np.unique(inverse[labels])) < min_positive_episodes:
        return math.nan, math.nan
    members = [np.flatnonzero(inverse == k) for k in range(len(ids))]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        idx = np.concatenate([members[k] for k in rng.integers(len(ids), size=len(ids))])
        value = auroc(scores[idx], labels[idx])
        if not math.isnan(value):
            values.append(value)
    if not values:
        return math.nan, math.nan
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def _second_half(values: Sequence[float]) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values[len(values) // 2 :]


def lambda_osc(probe_means: Sequence[float]) -> float:
    """Mean |change| of the probe-mean lambda between consecutive evaluations over the second half of training,
    divided by the mean probe-mean lambda over that window (NaN when fewer than 2 points or a zero mean)."""
    window = _second_half(probe_means)
    if len(window) < 2 or not np.mean(window) > 0:
        return math.nan
    return float(np.mean(np.abs(np.diff(window))) / np.mean(window))


def cost_osc(eval_costs: Sequence[float]) -> float:
    """Std of the evaluation episode cost over the second half of training (NaN when empty)."""
    window = _second_half(eval_costs)
    return float(np.std(window)) if len(window) else math.nan


def train_violation_osc(steps: Sequence[float], train_costs: Sequence[float]) -> float:
    """Mean |change| of the training violation rate between consecutive evaluation windows over the second half
    of training: the cost side of oscillation that is still seen when every evaluation is violation-free.

    Args:
        steps: [E] env steps at each evaluation.
        train_costs: [E] cumulative training cost at each evaluation (NaN where not recorded: windows touching it
            are skipped).

    Returns:
        The mean of |r_{k+1} - r_k| over the rates r_k = (C_k - C_{k-1}) / (t_k - t_{k-1}) of the windows ending in
        the second half of the evaluations; NaN with fewer than 2 such rates.
    """
    t, c = np.asarray(steps, np.float64), np.asarray(train_costs, np.float64)
    rates = np.diff(c) / np.diff(t)  # window k ends at evaluation k + 1
    rates = _second_half(np.concatenate([[np.nan], rates]))
    changes = np.abs(np.diff(rates))
    changes = changes[np.isfinite(changes)]
    return float(changes.mean()) if len(changes) else math.nan
