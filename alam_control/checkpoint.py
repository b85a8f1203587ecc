"""Atomic, safe-to-load checkpoints.

A checkpoint is written to a temporary file in the same directory, fsynced, and renamed over the previous one
(which is kept as ``.prev``), so a process killed at any instant leaves a complete checkpoint behind. Loading uses
``torch.load(weights_only=True)``: tensors and plain containers only, never arbitrary unpickling.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

FORMAT_VERSION = 1
LATEST = "checkpoint.pt"
PREVIOUS = "checkpoint.prev.pt"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, truncated, corrupt or from an incompatible run."""


def save(state: dict[str, Any], directory: str | Path) -> Path:
    """Atomically write ``state`` as ``directory/checkpoint.pt``, keeping the previous one as ``.prev``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    latest, tmp = directory / LATEST, directory / f".{LATEST}.tmp"
    with open(tmp, "wb") as f:
        torch.save({"format_version": FORMAT_VERSION, **state}, f)
        f.flush()
        os.fsync(f.fileno())
    if latest.exists():
        os.replace(latest, directory / PREVIOUS)
    os.replace(tmp, latest)
    _fsync_dir(directory)
    return latest


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_file(path: str | Path) -> dict[str, Any]:
    """Load one checkpoint file with weights-only semantics; corrupt files raise :class:`CheckpointError`."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(err).__name__}: {err})") from err
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(f"{path} is not an alam-control checkpoint")
    if state["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {state['format_version']}, this version reads {FORMAT_VERSION}"
        )
    return state


def load_latest(directory: str | Path) -> tuple[dict[str, Any], Path]:
    """Load ``checkpoint.pt`` from ``directory``, or ``checkpoint.prev.pt`` if the latest is absent.

    A corrupt latest checkpoint is an error (not a silent fallback): the message names the previous file, which
    the user can restore by hand, so no progress is thrown away without them knowing.
    """
    directory = Path(directory)
    latest, previous = directory / LATEST, directory / PREVIOUS
    if latest.exists():
        try:
            return load_file(latest), latest
        except CheckpointError as err:
            hint = (
                f"; the previous checkpoint {previous} exists: move it to {latest} to resume from it"
                if (previous.exists())
                else ""
            )
            raise CheckpointError(f"{err}{hint}") from err
    if previous.exists():  # killed between the two renames of save()
        return load_file(previous), previous
    raise CheckpointError(f"no checkpoint in {directory}")
