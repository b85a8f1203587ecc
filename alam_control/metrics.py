"""Metric definitions of DESIGN.md section 7, as pure numpy functions."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def upcoming_violation_labels(costs: np.ndarray, horizon: int) -> np.ndarray:
    """Label step t positive when a violation (c > 0) occurs at one of steps t .. t+horizon-1.

    Args:
        costs: ``[T]`` per-step costs of one episode.
        horizon: H, steps to look ahead (>= 1).

    Returns:
        ``[T]`` bool.
    """
    viol = (np.asarray(costs) > 0).astype(np.int64)
    # Windowed count by cumulative sums: ahead[t] = sum(viol[t : t + H]).
    csum = np.concatenate([[0], np.cumsum(viol)])
    t = np.arange(len(viol))
    ahead = csum[np.minimum(t + horizon, len(viol))] - csum[t]
    return ahead > 0


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
