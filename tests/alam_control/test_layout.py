"""The house (README "Layout"): which room of alam_control may import which. Read from the source (every import
statement, deferred ones too), so a module that reaches across a wall fails here before it fails on a robot."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "alam_control"
ROOMS = ("config", "learn", "deploy", "experiments", "runtime")
# What each room may import of alam_control besides itself (README "Layout").
ALLOWED = {
    "config": set(),
    "learn": {"config"},
    "deploy": {"config", "learn", "runtime"},
    "experiments": {"config", "learn"},
    "runtime": set(),
}


def imports(path: Path) -> set[str]:
    """The modules a file imports (`from alam_control import learn` counts as alam_control.learn)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def rooms_imported(path: Path) -> set[str]:
    """The parts of alam_control a file imports: a room, `cli`, another top-level name, or "" for the package
    itself (`import alam_control`, for its version)."""
    rooms = set()
    for name in imports(path):
        parts = name.split(".")
        if parts[0] == "alam_control":
            rooms.add(parts[1] if len(parts) > 1 else "")
    return rooms


def test_the_top_level_holds_only_the_rooms_config_and_the_cli() -> None:
    entries = {p.name for p in PACKAGE.iterdir() if p.name != "__pycache__"}
    expected = {*ROOMS, "__init__.py", "cli.py", "losses.py"}
    assert entries == expected, (
        f"new at the top of alam_control/: {sorted(entries - expected)}; put it in a room (learn, deploy, "
        "experiments, runtime) and on the README's map"
    )


@pytest.mark.parametrize("room", ROOMS)
def test_each_room_imports_only_what_the_map_allows(room: str) -> None:
    allowed = ALLOWED[room] | {room}
    for path in sorted((PACKAGE / room).rglob("*.py")):
        # Plain functions of the package (`from alam_control import missing_train_stack`) are no room.
        crossed = {r for r in rooms_imported(path) if r not in allowed and r in (*ROOMS, "cli", "losses")}
        assert not crossed, f"{path.relative_to(REPO)} imports alam_control.{sorted(crossed)} across the {room}/ wall"


def test_the_robot_side_needs_neither_torch_nor_the_simulator() -> None:
    for path in sorted((PACKAGE / "runtime").rglob("*.py")):
        heavy = {name.split(".")[0] for name in imports(path)} & {"torch", "sim", "mujoco", "dm_control", "yaml"}
        assert not heavy, f"{path.relative_to(REPO)} imports {sorted(heavy)}: a robot installs none of them"


def test_the_simulator_knows_nothing_of_the_library() -> None:
    for path in sorted((REPO / "sim").rglob("*.py")):
        assert not rooms_imported(path), f"{path.relative_to(REPO)} imports alam_control"
