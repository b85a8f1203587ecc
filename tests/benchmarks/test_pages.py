"""benchmarks/pages.py: a generated block replaces the text between its markers and nothing else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import pages

BEGIN, END = pages.markers("t")


def test_splice_rewrites_only_between_the_markers_and_block_reads_it_back(tmp_path: Path) -> None:
    page = f"intro\n{BEGIN}\nold\n{END}\nafter\n"
    new = pages.splice(page, "t", "| new |\n")
    assert new == f"intro\n{BEGIN}\n| new |\n{END}\nafter\n"
    assert pages.block(new, "t") == "| new |\n"
    path = tmp_path / "page.md"
    path.write_text(page)
    pages.write(path, "t", "| x |\n")
    assert path.read_text() == f"intro\n{BEGIN}\n| x |\n{END}\nafter\n"


@pytest.mark.parametrize(
    "page",
    ["no markers", f"{END}\n{BEGIN}\n", f"{BEGIN}\n{BEGIN}\n{END}\n", f"{BEGIN}\n{END}\n{END}\n",
     f"{pages.markers('other')[0]}\n{END}\n"],
)  # fmt: skip
def test_a_page_without_one_pair_of_markers_in_order_is_refused_and_left_alone(page: str, tmp_path: Path) -> None:
    path = tmp_path / "page.md"
    path.write_text(page)
    with pytest.raises(ValueError, match="<!-- t: begin -->"):
        pages.write(path, "t", "| new |\n")
    assert path.read_text() == page


@pytest.mark.parametrize("script", ["evidence.py", "time_to_safe.py"])
def test_the_scripts_that_write_pages_run_as_make_sweep_readout_calls_them(script: str) -> None:
    """`make sweep-readout` sends their output to /dev/null: a script that no longer runs its main would leave the
    pages as they were, silently."""
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, f"benchmarks/{script}", "--help"], cwd=repo, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0 and "--page" in done.stdout, done.stderr
