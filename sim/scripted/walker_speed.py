"""Scripted safe controller of `walker-safe_walk`: LQR balance about a standing equilibrium (it stands still)."""

from __future__ import annotations

import mujoco as mj
import numpy as np
import scipy.linalg
import scipy.optimize

from sim.registry import TASKS
from sim.walker_speed import TORSO_Z0, Physics, SafeWalk, get_model_and_assets


def _joint_angles(obs: np.ndarray) -> tuple[float, np.ndarray]:
    """Torso pitch in (-pi, pi] and the six joint angles from dm_control's `orientations` (pitch = atan2(xz, xx))."""
    pitch = np.arctan2(obs[1:14:2], obs[0:14:2])  # torso, r thigh, r leg, r foot, l thigh, l leg, l foot
    joints = pitch[[0, 1, 2, 0, 4, 5]] - pitch[[1, 2, 3, 4, 5, 6]]  # parent minus child (joint axes are -y)
    return float(pitch[0]), (joints + np.pi) % (2.0 * np.pi) - np.pi  # joint ranges lie within (-pi, pi)


class StandController:
    """Scripted balance: discrete-time LQR about a standing equilibrium, both legs driven alike.

    The equilibrium has the torso upright, the knees bent by `knee` (off their limit at 0, so they stay
    controllable) and the feet (almost) flat; its height, hip angle and a slight foot tilt are found by inverse
    dynamics such that the unactuated root needs no force and the ankles no torque (center of pressure under the
    ankles, leaving the weak ankles their whole range for balancing), which gives the feed-forward torques. The
    model is linearized there by finite differences (`mjd_transitionFD`, feet in contact), over one control step
    with zero-order hold, and restricted to mirror-symmetric motions (left = right): full-state LQR would pull one
    foot up, which the linearized contact allows and the floor does not. Left-right differences get a PD term.
    The state (x position aside) is read off the observation: pitch and joint angles from the orientations,
    height, and qvel.

    It keeps the walker standing still: reward 1/6 per step with speed ~0 (see `SafeWalk` for the figures). A
    scripted gait was out of reach at 40 Hz torque control: PD posture control (the gains tried) fell within 1-3 s
    even from rest, and stiffer gains oscillated. Under domain randomization it falls in ~15 % of episodes, most
    with a one-step action delay and unequal left/right legs; a design for the delayed model (the last action as
    extra state) stood under delay but fell without it.
    """

    def __init__(
        self,
        knee: float = -0.3,
        position_weight: float = 10.0,
        pitch_weight: float = 10.0,
        velocity_weight: float = 1.0,
        action_weight: float = 100.0,
        difference_gain: float = 1.0,
        difference_damping: float = 0.05,
    ):
        """Builds the controller for the nominal model.

        Args:
            knee: Knee angle of the equilibrium in rad.
            position_weight: LQR state cost of height and joint angles (m, rad).
            pitch_weight: LQR state cost of the torso pitch (rad).
            velocity_weight: LQR state cost of the velocities.
            action_weight: LQR cost of the (symmetric) actions; large, so the gains also hold with one step of
                action delay.
            difference_gain: PD gain on left-right joint angle differences, action per rad.
            difference_damping: PD gain on left-right joint velocity differences, action per rad/s.
        """
        self._difference_gain, self._difference_damping = difference_gain, difference_damping
        physics = Physics.from_xml_string(*get_model_and_assets())
        model, data = physics.model.ptr, physics.data.ptr

        def pose(z: float, hip: float, tilt: float) -> np.ndarray:
            ankle = -hip - knee - tilt  # foot pitch = torso pitch (0) - hip - knee - ankle
            return np.array([z, 0.0, 0.0, hip, knee, ankle, hip, knee, ankle])

        def unbalanced(p: np.ndarray) -> np.ndarray:
            data.qpos[:], data.qvel[:], data.qacc[:] = pose(*p), 0.0, 0.0
            mj.mj_inverse(model, data)
            return data.qfrc_inverse[[0, 2, 5]].copy()  # rootz force, rooty torque, ankle torque

        # Start from the feet pressed 5 cm into the floor: further up they hang free and no height balances.
        solution = scipy.optimize.least_squares(unbalanced, [-0.05, 0.1, 0.0], x_scale=[0.01, 0.1, 0.01]).x
        residual = unbalanced(solution)
        if np.abs(residual).max() > 1e-6:
            raise RuntimeError(f"no standing equilibrium found: unbalanced forces {residual}")
        self._u0 = data.qfrc_inverse[3:] / model.actuator_gear[:, 0]
        q0 = data.qpos.copy()
        data.ctrl[:] = self._u0
        mj.mj_forward(model, data)
        nv = model.nv
        a, b = np.zeros((2 * nv, 2 * nv)), np.zeros((2 * nv, model.nu))
        mj.mjd_transitionFD(model, data, 1e-6, True, a, b, None, None)
        steps = round(SafeWalk.control_timestep / model.opt.timestep)
        a_step = np.linalg.matrix_power(a, steps)
        b_step = sum(np.linalg.matrix_power(a, k) for k in range(steps)) @ b

        # Symmetric coordinates: positions (rootz, rooty, hip, knee, ankle), velocities (rootz, rootx, rooty, hip,
        # knee, ankle); rootx position is left out (nothing depends on it).
        mirror = np.zeros((9, 6))
        mirror[:3, :3] = np.eye(3)
        mirror[3:6, 3:] = mirror[6:9, 3:] = np.eye(3)
        full = scipy.linalg.block_diag(mirror[:, [0, 2, 3, 4, 5]], mirror)
        inverse = np.linalg.pinv(full)
        a_sym = inverse @ a_step @ full
        b_sym = inverse @ b_step @ np.vstack([np.eye(3), np.eye(3)])
        q = np.diag([position_weight, pitch_weight] + [position_weight] * 3 + [velocity_weight] * 6)
        r = action_weight * np.eye(3)
        p = scipy.linalg.solve_discrete_are(a_sym, b_sym, q, r)
        self._gain = np.linalg.solve(r + b_sym.T @ p @ b_sym, b_sym.T @ p @ a_sym)
        self._x0 = np.concatenate([[TORSO_Z0 + q0[0], 0.0], q0[3:6], np.zeros(6)])
        physics.free()

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Returns the action [6] in [-1, 1] for a walker observation [24]."""
        pitch, joints = _joint_angles(obs)
        qvel = obs[15:24]
        right, left = joints[:3], joints[3:]
        x = np.concatenate([[obs[14], pitch], (right + left) / 2, qvel[:3], (qvel[3:6] + qvel[6:9]) / 2])
        u = -self._gain @ (x - self._x0)
        # Drive each leg towards the other's angles.
        d = self._difference_gain * (left - right) / 2 + self._difference_damping * (qvel[6:9] - qvel[3:6]) / 2
        return np.clip(self._u0 + np.concatenate([u + d, u - d]), -1.0, 1.0)


TASKS.add_safe_policy("walker-safe_walk", lambda env: StandController())
