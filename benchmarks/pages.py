"""Tables that the benchmark scripts write into the docs, so a page shows what the committed data says.

A page marks each generated block with two HTML comments, which Markdown does not render:

    <!-- NAME: begin -->
    | the table ... |
    <!-- NAME: end -->

`write` replaces the text between them and nothing else; `block` reads it back (the docs' consistency tests).
"""

from __future__ import annotations

from pathlib import Path

TASK_NAMES = {"cartpole-safe_swingup": "cart-pole", "point-safe_goal": "point-goal", "walker-safe_walk": "walker",
              "diffdrive-safe_navigate": "diff-drive"}  # fmt: skip
"""How the docs' tables name the tasks, in the order their columns and rows take."""


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}: begin -->", f"<!-- {name}: end -->"


def _span(page: str, name: str) -> tuple[int, int]:
    """Where the block's text starts (after its begin line) and ends (at its end marker).

    Raises:
        ValueError: not exactly one begin and one end marker, in that order.
    """
    begin, end = markers(name)
    at, until = page.find(begin), page.find(end)
    if page.count(begin) != 1 or page.count(end) != 1 or until < at:
        raise ValueError(f"the page needs one {begin} line, then one {end} line")
    return at + len(begin) + 1, until


def block(page: str, name: str) -> str:
    """The text of the block ``name`` (its lines between the markers)."""
    start, stop = _span(page, name)
    return page[start:stop]


def splice(page: str, name: str, text: str) -> str:
    """``page`` with the block ``name`` replaced by ``text`` (which ends in a newline)."""
    start, stop = _span(page, name)
    return page[:start] + text + page[stop:]


def write(path: Path, name: str, text: str) -> None:
    """Rewrite the block ``name`` of the page at ``path``; a page without its markers is left as it was."""
    path.write_text(splice(path.read_text(), name, text))
