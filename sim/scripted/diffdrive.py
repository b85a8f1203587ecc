"""Scripted safe controller of `diffdrive-safe_navigate`: goal seeking with lidar obstacle avoidance."""

from __future__ import annotations

import math

import numpy as np

from sim.diffdrive import BEAM_ANGLES, BEAM_WIDTH, CLEARANCE, HULL_RADIUS, NUM_BEAMS, OMEGA_MAX, RANGE_MAX, V_MAX
from sim.registry import TASKS

_POINTS_PER_SECTOR = 3  # obstacle points that NavigateController makes of each sector reading
_GOAL_JUMP = 0.3  # m; a goal distance growing by more than this in one step means a new goal


class NavigateController:
    """Scripted goal seeking with lidar obstacle avoidance, from the observation alone (tangent-bug like).

    Needs nothing a ROS robot lacks (goal in the robot frame, lidar sectors), so it could also serve as a fallback.
    Each lidar sector's reading becomes obstacle points at that range across the middle half of the sector (where
    the simulated rays lie; a real scan's return is at most a quarter sector further out, which `margin` covers).
    For each of `num_directions` candidate directions it computes the free travel: how far the robot's center can
    go straight that way before coming within `rho` = hull radius + clearance + margin of an obstacle point. It
    heads for the candidate closest to the goal's bearing among those free for min(goal distance, `lookahead`)
    (the most open one when none is), turning in place when that is more than `turn_in_place` away from its
    heading (the round hull makes turning in place always safe), and caps its speed at `brake_gain` times the free
    travel straight ahead, so it stops short of what it cannot steer around. A short lookahead makes it slide along
    obstacles towards the goal; longer ones (0.3-0.5 m) made it circle in front of gaps it could not resolve.

    Its only state is the direction of a turn in place in progress (hysteresis: without it, the sector readings
    shifting as the robot turns made it dither in place, worst with an action delay); it is forgotten whenever the
    goal moves, so one instance serves episode after episode.

    With the defaults it is the safe policy of `SafeNavigate` (see there for its figures). With `avoid=False` it
    drives straight at the goal, ignoring obstacles; with `clearance=0` it hugs obstacles, as a shortest path would.
    """

    def __init__(
        self,
        avoid: bool = True,
        speed: float = V_MAX,
        clearance: float = CLEARANCE,
        margin: float = 0.06,
        lookahead: float = 0.2,
        turn_gain: float = 3.0,
        turn_in_place: float = 1.0,
        brake_gain: float = 1.5,
        sector_spread: float = 0.5,
        num_directions: int = 72,
    ):
        """Sets the gains.

        Args:
            avoid: Steer around obstacles and brake for them.
            speed: Top forward speed in m/s.
            clearance: Clearance in m to keep from obstacles (the task's CLEARANCE).
            margin: Extra distance in m kept on top of `clearance`, for the sector arcs' coarseness and braking.
            lookahead: Free travel in m that a direction needs (less when the goal is nearer).
            turn_gain: Yaw rate per rad of heading error, in 1/s.
            turn_in_place: Heading error in rad above which the robot stops and turns.
            brake_gain: Forward speed per m of free travel ahead, in 1/s.
            sector_spread: Each sector's reading becomes obstacle points across this fraction of the sector's width
                (1: center and both edges, as the reading's return may lie anywhere in the sector).
            num_directions: Candidate directions, evenly spaced (including straight ahead).
        """
        self._avoid, self._speed = avoid, speed
        self._rho = HULL_RADIUS + clearance + margin
        self._lookahead, self._turn_gain = lookahead, turn_gain
        self._turn_in_place, self._brake_gain = turn_in_place, brake_gain
        self._directions = np.linspace(-math.pi, math.pi, num_directions, endpoint=False)
        self._ahead = num_directions // 2  # index of direction 0
        self._unit = np.stack([np.cos(self._directions), np.sin(self._directions)], axis=1)  # [D, 2]
        offsets = sector_spread * BEAM_WIDTH * np.linspace(-0.5, 0.5, _POINTS_PER_SECTOR)
        point_angles = (BEAM_ANGLES[:, None] + offsets).ravel()
        self._point_dirs = np.stack([np.cos(point_angles), np.sin(point_angles)])  # [2, P]
        self._preference = 0.1 * np.abs(self._directions)  # tie-break towards the current heading
        self._turning = 0.0  # direction of the turn in place in progress (+1 left, -1 right), 0 when none
        self._last_distance = math.inf

    def reset(self) -> None:
        """Forgets the turn in place in progress (it also does so by itself whenever the goal moves)."""
        self._turning = 0.0
        self._last_distance = math.inf

    def free_travel(self, ranges: np.ndarray) -> np.ndarray:
        """Free travel in m along each candidate direction for lidar sector readings [NUM_BEAMS]; [num_directions]."""
        points = self._point_dirs * np.repeat(np.asarray(ranges, np.float64), _POINTS_PER_SECTOR)  # [2, P]
        along = self._unit @ points  # [D, P]
        lateral = self._unit[:, :1] * points[1] - self._unit[:, 1:] * points[0]
        reach = self._rho**2 - lateral**2
        ahead = (along > 0.0) & (reach > 0.0)
        travel = np.where(ahead, along - np.sqrt(np.maximum(reach, 0.0)), np.inf)
        return np.minimum(travel.min(axis=1), RANGE_MAX)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Returns the action [2] in [-1, 1] for a `diffdrive-safe_navigate` observation [29]."""
        distance, cos, sin = (float(v) for v in obs[:3])
        bearing = math.atan2(sin, cos)
        if distance > self._last_distance + _GOAL_JUMP:  # a new goal, or a new episode
            self._turning = 0.0
        self._last_distance = distance
        if not self._avoid:
            target, speed_cap = bearing, self._speed
        else:
            free = self.free_travel(obs[5 : 5 + NUM_BEAMS])
            feasible = free >= min(distance, self._lookahead)
            if feasible.any():
                error = np.abs(np.angle(np.exp(1j * (self._directions - bearing)))) + self._preference
                target = float(self._directions[np.argmin(np.where(feasible, error, np.inf))])
            else:
                target = float(self._directions[np.argmax(free)])
            # Hysteresis: a turn in place goes on the way it started until the target lies on that side or ahead.
            # Without it, the sector readings shifting as the robot turns can flip the choice back and forth and
            # leave the robot dithering in place.
            if abs(target) > self._turn_in_place and target * self._turning < 0.0:
                target = math.copysign(math.pi, self._turning)
            self._turning = math.copysign(1.0, target) if abs(target) > self._turn_in_place else 0.0
            speed_cap = max(0.0, self._brake_gain * float(free[self._ahead]))
        omega = min(max(self._turn_gain * target, -OMEGA_MAX), OMEGA_MAX)
        if abs(target) > self._turn_in_place:
            v = 0.0
        else:
            v = min(self._speed * math.cos(target), speed_cap)
        return np.array([v / V_MAX, omega / OMEGA_MAX])


TASKS.add_safe_policy("diffdrive-safe_navigate", lambda env: NavigateController())
