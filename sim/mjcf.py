"""The one way a domain builds its MJCF: its model is the file `sim/<domain>.xml`, read here and edited in code.

A domain module calls `load("<domain>", edit)`; `edit` receives the parsed `<mujoco>` element and adds what the
module generates from its own constants (the lidar's rays, N pillars or hazards), so that code and model share
one definition of each number. Numbers written in the file and also named in the module are checked against each
other by the domain's tests. Nothing rebuilds a model per episode: obstacles are mocap bodies that the task moves,
and domain randomization scales the compiled model's parameters (`sim.randomization.ModelRandomizer`).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from dm_control.suite import common
from lxml import etree

Element = etree._Element  # what `edit` receives and `add` returns

_DIR = os.path.dirname(__file__)


def load(domain: str, edit: Callable[[Element], None] | None = None) -> tuple[bytes, dict[str, bytes]]:
    """Returns the MJCF of `sim/<domain>.xml`, changed by `edit`, and its assets, for `Physics.from_xml_string`.

    Args:
        domain: Name of the domain module; its model is the file next to it.
        edit: Called with the root `<mujoco>` element (lxml) before serialization; adds elements with `add`.

    Returns:
        The MJCF as bytes, and the assets its `<include>`s name (dm_control's common skybox, visual, materials).
    """
    root = etree.parse(os.path.join(_DIR, f"{domain}.xml")).getroot()
    if edit is not None:
        edit(root)
    return etree.tostring(root), common.ASSETS


def add(parent: Element, tag: str, **attributes: object) -> Element:
    """Appends a `<tag>` element with `attributes` to `parent` and returns it.

    Values are written with `str()` (a float's shortest repr, which reads back as the same double); format one
    yourself where the model should carry a rounded value. `class_` is written as MJCF's `class` attribute.
    """
    return etree.SubElement(parent, tag, {key.rstrip("_"): str(value) for key, value in attributes.items()})
