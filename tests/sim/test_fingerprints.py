"""Regression fingerprints of every task: a refactor of `sim/` must leave the physics bit-identical.

Per task, three rollouts of STEPS steps from `sim.load(name, seed=SEED)`: fixed uniform actions with domain
randomization off, the same with the default randomization on, and the registered scripted safe policy (nominal
model). Each rollout is hashed (sha256, first 16 hex digits) over the bytes of the reset observation and draw, then
per step the observation, reward, cost, flags and constraint values. So any change of a model, a task's reward,
constraint, initial state or observation, the randomization, or a scripted controller changes a fingerprint.

The scripted safe policies' arithmetic depends on the CPU in the last bit: with the same packages the point and
walker safe-policy hashes differed on an AMD EPYC VM without AVX-512 (2026-12-07) while every physics-only hash
matched. On that VM the walker's exact hash also changes with OpenBLAS's kernel (`OPENBLAS_CORETYPE` Haswell
against Sandybridge: its LQR gain goes through BLAS/LAPACK); point's does not, so its CPU-dependent path is another
one (numpy's SIMD-dispatched reductions are the likely one; not checked). So the safe-policy rollouts are hashed
at `SAFE_POLICY_DECIMALS` decimals: a controller or task change still moves them, a CPU's rounding does not.

A deliberate change (or a MuJoCo or numpy upgrade that changes the numerics) updates them: run
`.venv/bin/python tests/sim/test_fingerprints.py` and paste its output over FINGERPRINTS, saying why in the commit.
"""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest

import sim

STEPS = 50
SEED = 7
MODES = ("nominal", "randomized", "safe_policy")
SAFE_POLICY_DECIMALS = 6

# Recorded with mujoco 3.17.0, numpy 2.4.6, dm-control 1.0.50 (safe_policy at SAFE_POLICY_DECIMALS: 2026-12-07).
FINGERPRINTS = {
    "cartpole-safe_swingup": {
        "nominal": "2e3986e00f71cba0",
        "randomized": "0912ce538e8b28ce",
        "safe_policy": "652063ed5495e721",
    },
    "diffdrive-safe_navigate": {
        "nominal": "3ab82ffdd3621e82",
        "randomized": "6d2178a4e1dc6346",
        "safe_policy": "06ac00134835577a",
    },
    "point-safe_goal": {
        "nominal": "af72a72c441183e4",
        "randomized": "98efd923dc75bb09",
        "safe_policy": "bbcd0dffc09515d7",
    },
    "walker-safe_walk": {
        "nominal": "1f44c12bbb6c9b9c",
        "randomized": "2e36458b2f295752",
        "safe_policy": "73b906388c11fd87",
    },
}


def fingerprint(name: str, mode: str) -> str:
    """Hash of one rollout of task `name`; mode "nominal", "randomized" or "safe_policy"."""
    env = sim.load(name, seed=SEED, randomize=mode == "randomized")
    digest = hashlib.sha256()
    obs, info = env.reset()
    digest.update(obs.tobytes())
    digest.update(json.dumps(info.get("randomization"), sort_keys=True).encode())
    actions = np.random.default_rng(SEED).uniform(-1.0, 1.0, (STEPS, *env.action_space.shape))
    policy = sim.TASKS.safe_policy(env) if mode == "safe_policy" else None

    def data(x: np.ndarray | float) -> np.ndarray:
        """The values hashed: exact, or rounded for a safe-policy rollout (+ 0.0 turns a rounded -0.0 into 0.0)."""
        x = x if isinstance(x, np.ndarray) else np.asarray(x, np.float64)  # an observation keeps its dtype
        return x if policy is None else np.round(x, SAFE_POLICY_DECIMALS) + 0.0

    for action in actions:
        if policy is not None:
            action = np.asarray(policy(obs), np.float64)
            digest.update(data(action).tobytes())
        obs, reward, cost, terminated, truncated, info = env.step(action)
        digest.update(data(obs).tobytes())
        digest.update(data([reward, cost]).tobytes() + struct.pack("<??", terminated, truncated))
        digest.update(data(list(info["constraints"].values())).tobytes())
    env.close()
    return digest.hexdigest()[:16]


def current() -> dict[str, dict[str, str]]:
    return {name: {mode: fingerprint(name, mode) for mode in MODES} for name in sim.ALL_TASKS}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sim.ALL_TASKS)
def test_rollout_fingerprint_is_unchanged(name: str, mode: str) -> None:
    assert name in FINGERPRINTS, f"no fingerprint for {name}: run tests/sim/test_fingerprints.py and add its row"
    assert fingerprint(name, mode) == FINGERPRINTS[name][mode], (
        f"{name} ({mode}) rolls out differently than recorded: the physics, task or controller changed "
        "(see the module docstring for a deliberate change)"
    )


if __name__ == "__main__":
    print(json.dumps(current(), indent=4))
