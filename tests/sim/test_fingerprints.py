"""Regression fingerprints of every task: a refactor of `sim/` must leave the physics bit-identical.

Per task, three rollouts of STEPS steps from `sim.load(name, seed=SEED)`: fixed uniform actions with domain
randomization off, the same with the default randomization on, and the registered scripted safe policy (nominal
model). Each rollout is hashed (sha256, first 16 hex digits) over the bytes of the reset observation and draw, then
per step the observation, reward, cost, flags and constraint values. So any change of a model, a task's reward,
constraint, initial state or observation, the randomization, or a scripted controller changes a fingerprint.

The scripted safe policies' arithmetic depends on the CPU in its last bits: with the same packages the point and
walker safe-policy hashes differed on an AMD EPYC VM without AVX-512 (2026-12-07) while every physics-only hash
matched, and the walker's exact hash changes with OpenBLAS's kernel (`OPENBLAS_CORETYPE` Haswell, Sandybridge:
its LQR gain goes through BLAS/LAPACK). Hashing the rollout's values at 6 decimals was not enough: on an AVX-512
EPYC VM the walker's still differed (its contacts grow an action's last bits over the rollout, and a 6-decimal
boundary is crossed). So the safe policy's action is rounded to `SAFE_POLICY_DECIMALS` decimals before it acts,
and the rollout is hashed exactly: on that VM the four safe-policy hashes are the same under the default kernels,
`OPENBLAS_CORETYPE` Haswell / Sandybridge / Prescott, and numpy with its AVX-512, AVX2 and FMA3 paths disabled
(`NPY_DISABLE_CPU_FEATURES`); at 6 decimals the walker's differed between three of them. A controller or task
change still moves them, unless no action of the 50 steps changes enough to cross a 1e-4 rounding boundary.

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
SAFE_POLICY_DECIMALS = 4  # the action's decimals; 6 still let the walker's rollout depend on the CPU

# Recorded with mujoco 3.17.0, numpy 2.4.6, dm-control 1.0.50 (safe_policy: 2026-12-07).
FINGERPRINTS = {
    "cartpole-safe_swingup": {
        "nominal": "2e3986e00f71cba0",
        "randomized": "0912ce538e8b28ce",
        "safe_policy": "92f70f1d59d8dcd2",
    },
    "diffdrive-safe_navigate": {
        "nominal": "3ab82ffdd3621e82",
        "randomized": "6d2178a4e1dc6346",
        "safe_policy": "4b9387066ece4f0e",
    },
    "point-safe_goal": {
        "nominal": "af72a72c441183e4",
        "randomized": "98efd923dc75bb09",
        "safe_policy": "c52734cc9c87680e",
    },
    "walker-safe_walk": {
        "nominal": "1f44c12bbb6c9b9c",
        "randomized": "2e36458b2f295752",
        "safe_policy": "b01d83281b9c6d96",
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
    for action in actions:
        if policy is not None:
            # Rounded before it acts (+ 0.0 turns a rounded -0.0 into 0.0): the CPU's last bit of the controller's
            # arithmetic must not enter the physics, where the walker's contacts grow it over the rollout.
            action = np.round(np.asarray(policy(obs), np.float64), SAFE_POLICY_DECIMALS) + 0.0
            digest.update(action.tobytes())
        obs, reward, cost, terminated, truncated, info = env.step(action)
        digest.update(obs.tobytes())
        digest.update(struct.pack("<dd??", reward, cost, terminated, truncated))
        digest.update(np.array(list(info["constraints"].values()), np.float64).tobytes())
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
