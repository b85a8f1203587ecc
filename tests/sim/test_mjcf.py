"""`sim.mjcf`, the one way a domain builds its MJCF, and the model files next to the domain modules."""

from __future__ import annotations

import os

import mujoco
import numpy as np
from dm_control import mujoco as dm_mujoco
from dm_control.suite import cartpole as suite_cartpole
from dm_control.suite import walker as suite_walker
from lxml import etree

import sim
from sim import mjcf
from sim.cartpole import X_MAX

DOMAINS = ("cartpole", "diffdrive", "point_goal", "walker_speed")


def compiled(model_and_assets: tuple) -> bytes:
    """The compiled model as MuJoCo's binary MJB: equal bytes, equal model."""
    model = dm_mujoco.Physics.from_xml_string(*model_and_assets).model.ptr
    buffer = np.zeros(mujoco.mj_sizeModel(model), np.uint8)
    mujoco.mj_saveModel(model, None, buffer)
    return buffer.tobytes()


def test_every_domain_has_its_model_file() -> None:
    assert {name.split("-")[0] for name in sim.ALL_TASKS} == {"cartpole", "diffdrive", "point", "walker"}
    for domain in DOMAINS:
        assert os.path.isfile(os.path.join(os.path.dirname(sim.__file__), f"{domain}.xml"))
        xml, assets = mjcf.load(domain)
        assert etree.fromstring(xml).tag == "mujoco" and "./common/materials.xml" in assets


def test_load_applies_the_edit() -> None:
    def edit(root: mjcf.Element) -> None:
        mjcf.add(root.find("worldbody"), "geom", name="extra", type="sphere", size=0.25, class_="obstacle")

    model = dm_mujoco.Physics.from_xml_string(*mjcf.load("diffdrive", edit)).model
    geom = model.name2id("extra", "geom")
    assert model.geom_size[geom, 0] == 0.25
    assert model.geom_conaffinity[geom] == 1  # from class "obstacle": `class_` was written as `class`
    assert b'name="extra"' not in mjcf.load("diffdrive")[0]  # each load reads the file afresh


def test_add_writes_floats_that_read_back_exactly() -> None:
    root = etree.Element("mujoco")
    value = 0.1 + 0.2  # 0.30000000000000004: a rounded repr would be another double
    element = mjcf.add(root, "geom", size=value, class_="ray")
    assert float(element.get("size")) == value and element.get("class") == "ray" and element.getparent() is root


def test_vendored_models_are_dm_controls() -> None:
    """walker_speed.xml is dm_control's walker.xml; cartpole.xml is dm_control's cart-pole plus the band posts."""
    assert compiled(mjcf.load("walker_speed")) == compiled(suite_walker.get_model_and_assets())

    def without_posts(root: mjcf.Element) -> None:
        worldbody = root.find("worldbody")
        for geom in worldbody.findall("geom[@name]"):
            if geom.get("name").startswith("band_"):
                worldbody.remove(geom)

    assert compiled(mjcf.load("cartpole", without_posts)) == compiled(suite_cartpole.get_model_and_assets())
    model = sim.load("cartpole-safe_swingup").physics.model
    for name, x in (("band_left", -X_MAX), ("band_right", X_MAX)):
        geom = model.name2id(name, "geom")
        assert model.geom_pos[geom, 0] == x
        assert model.geom_contype[geom] == model.geom_conaffinity[geom] == 0  # drawn only
