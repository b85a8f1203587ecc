"""A planar 360-degree lidar of any resolution, simulated with MuJoCo ray casts (the ROS sim bridge's LaserScan).

The diff-drive task's own observation uses its model's rangefinders instead (`sim.diffdrive.Physics.ranges`);
this casts a real lidar's full scan from the same site.
"""

from __future__ import annotations

import math

import mujoco as mj
import numpy as np
from dm_control import mujoco


class Lidar:
    """A planar 360-degree lidar simulated with MuJoCo ray casts (mj_multiRay), returning REP 117 ranges.

    Casts from the position of the model's first rangefinder site (the sim's own lidar), excluding the robot's
    body as MuJoCo's rangefinders do; geoms further than range_max are ignored.
    """

    def __init__(self, physics: mujoco.Physics, beams: int, range_min: float, range_max: float, site: str = "ray_00"):
        """Looks up the site the rays start from.

        Raises:
            ValueError: If the model has no site named `site`.
        """
        self.model, self.data = physics.model.ptr, physics.data.ptr
        self.site = mj.mj_name2id(self.model, mj.mjtObj.mjOBJ_SITE, site)
        if self.site < 0:
            raise ValueError(f"the model has no lidar site {site!r}")
        self.body = int(self.model.site_bodyid[self.site])
        self.beams = beams
        self.angle_min = 0.0
        self.angle_increment = 2.0 * math.pi / beams
        self.angles = self.angle_min + self.angle_increment * np.arange(beams)
        self.range_min, self.range_max = range_min, range_max
        self._vec = np.zeros(3 * beams)
        self._dist = np.zeros(beams)
        self._geom = np.zeros(beams, np.int32)

    def scan(self, heading: float) -> np.ndarray:
        """Ranges [beams] in m (float32), beam i at angle_min + i * angle_increment from the robot's heading."""
        world = heading + self.angles
        vec = self._vec.reshape(self.beams, 3)
        vec[:, 0], vec[:, 1] = np.cos(world), np.sin(world)
        pnt = np.array(self.data.site_xpos[self.site], np.float64)
        mj.mj_multiRay(
            self.model,
            self.data,
            pnt,
            self._vec,
            None,
            1,
            self.body,
            self._geom,
            self._dist,
            None,
            self.beams,
            self.range_max,
        )
        ranges = self._dist.copy()
        ranges[(ranges < 0.0) | (ranges > self.range_max)] = np.inf  # no return within range_max
        ranges[ranges < self.range_min] = -np.inf  # closer than the sensor can measure
        return ranges.astype(np.float32)
