"""Atomic, checksummed, safe-to-load checkpoints.

A checkpoint is written to a temporary file in the same directory, fsynced, and renamed over the previous one
(which is kept as ``.prev``), so a process killed at any instant leaves a complete checkpoint behind. The file is
torch.save's archive followed by a 40-byte trailer (``CHECKSUM_MAGIC`` + sha256 of the archive), verified on every
load: a flipped bit is a named error, not other weights (torch's zip reader does not check its CRCs). Loading uses
``torch.load(weights_only=True)``: tensors and plain containers only, never arbitrary unpickling. Files of format 1
(no trailer) still load.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from alam_control.learn import rundir

if TYPE_CHECKING:
    from alam_control.config import Config

FORMAT_VERSION = 2  # 2: sha256 trailer; 1: plain torch.save (still read)
LATEST = rundir.CHECKPOINT
PREVIOUS = rundir.PREVIOUS_CHECKPOINT
BEST = rundir.BEST_CHECKPOINT
CHECKSUM_MAGIC = b"ALAMSHA2"  # 8 bytes, then the 32-byte digest: the last 40 bytes of a checkpoint file


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, truncated, corrupt or from an incompatible run."""


class _HashingWriter(io.RawIOBase):
    """A write-only stream that passes bytes to `file` and hashes them on the way (no second copy in memory)."""

    def __init__(self, file: Any):
        self.file, self.digest = file, hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.digest.update(data)
        return self.file.write(data)


def save(state: dict[str, Any], directory: str | Path) -> Path:
    """Atomically write ``state`` as ``directory/checkpoint.pt``, keeping the previous one as ``.prev``.

    Raises:
        CheckpointError: The file could not be written (e.g. the disk is full); the previous checkpoints are
            untouched and no temporary file is left behind.
    """
    directory = Path(directory)
    latest, tmp = directory / LATEST, _write(state, directory, LATEST)
    if latest.exists():
        os.replace(latest, directory / PREVIOUS)
    os.replace(tmp, latest)
    _fsync_dir(directory)
    return latest


def save_best(state: dict[str, Any], directory: str | Path) -> Path:
    """Atomically write ``state`` as ``directory/best.pt``, replacing the previous best (a kill mid-write leaves
    it whole). Raises CheckpointError as `save` does."""
    directory = Path(directory)
    best = directory / BEST
    os.replace(_write(state, directory, BEST), best)
    _fsync_dir(directory)
    return best


def _write(state: dict[str, Any], directory: Path, name: str) -> Path:
    """``state`` as a checksummed, fsynced temporary file ``directory/.name.tmp``; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{name}.tmp"
    try:
        with open(tmp, "wb") as f:
            writer = _HashingWriter(f)
            torch.save({"format_version": FORMAT_VERSION, **state}, writer)
            f.write(CHECKSUM_MAGIC + writer.digest.digest())
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(
            f"could not write a checkpoint in {directory}: {err.strerror or err} (the previous {name} is intact)"
        ) from None
    return tmp


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_error(err: Exception) -> str:
    """torch.load's error in one short line: its type and reason. A weights-only unpickling failure's message is a
    paragraph around one reason ("Unsupported operand 103", "Unsupported global: GLOBAL pathlib.PosixPath ...") that
    advises `weights_only=False`: wrong for a damaged file and unsafe for a foreign one, so it is left out."""
    text = str(err)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    detail = lines[0].split(". Please use")[0] if lines else ""
    detail = detail if len(detail) <= 200 else detail[:197] + "..."
    return f"{type(err).__name__}: {detail}" if detail else type(err).__name__


def load_file(path: str | Path) -> dict[str, Any]:
    """Load one checkpoint file, verifying its checksum, with weights-only semantics.

    Raises:
        CheckpointError: Missing, truncated, corrupt (checksum mismatch) or not an alam-control checkpoint.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except OSError as err:
        raise CheckpointError(f"checkpoint {path} cannot be read: {err.strerror or err}") from None
    payload, trailer = data[:-40], data[-40:]
    checked = trailer[:8] == CHECKSUM_MAGIC
    if checked and hashlib.sha256(payload).digest() != trailer[8:]:
        raise CheckpointError(f"checkpoint {path} is corrupt: its sha256 does not match the one written with it")
    try:
        state = torch.load(io.BytesIO(payload if checked else data), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - whatever torch.load raises on bytes it cannot read (a text file: KeyError)
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({_load_error(err)})") from err
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(f"{path} is not an alam-control checkpoint")
    version = state["format_version"]
    if version not in (1, FORMAT_VERSION) or (version == FORMAT_VERSION and not checked):
        raise CheckpointError(
            f"{path} has checkpoint format {version}{'' if checked else ' without its checksum'}; this version "
            f"reads formats 1 and {FORMAT_VERSION}"
        )
    return state


def run_config(state: dict[str, Any], path: Path) -> Config:
    """The training config stored in a checkpoint: what eval and export must use, since the weights were trained
    with it. A `config.yaml` beside the checkpoint that differs from it (a hand edit) is reported on stderr and
    not obeyed.

    Raises:
        CheckpointError: The checkpoint holds no valid config.
    """
    import sys

    from alam_control import config as config_lib

    try:
        cfg = config_lib.from_dict(state["config"])
    except (KeyError, config_lib.ConfigError) as err:
        raise CheckpointError(f"{path} holds no valid training config: {err}") from None
    edited = path.parent / rundir.CONFIG
    if edited.is_file():
        try:
            on_disk = config_lib.to_dict(config_lib.load(edited))
        except config_lib.ConfigError as err:
            print(f"note: {edited} is not a valid config ({err}); using the one stored in {path.name}", file=sys.stderr)
            return cfg
        stored = config_lib.to_dict(cfg)
        changed = config_lib.differences(stored, on_disk)
        if changed:
            print(
                f"note: {edited} differs from the config stored in {path.name} ({', '.join(changed)}); "
                "using the stored one, which the weights were trained with",
                file=sys.stderr,
            )
    return cfg


def is_run(directory: str | Path) -> bool:
    """True if `directory` holds a checkpoint of either name (also when a kill left only the previous one)."""
    directory = Path(directory)
    return (directory / LATEST).exists() or (directory / PREVIOUS).exists()


def load_best(directory: str | Path) -> tuple[dict[str, Any], Path]:
    """Load ``best.pt``: the weights at the run's best evaluation among those at a violation rate of at most
    `rundir.SAFE_VIOLATION_RATE`.

    Raises:
        CheckpointError: None was kept (no evaluation was that safe, or the run predates best.pt), or it is
            corrupt.
    """
    path = Path(directory) / BEST
    if not path.exists():
        raise CheckpointError(
            f"no {BEST} in {directory}: no evaluation of this run had a violation rate of at most "
            f"{rundir.SAFE_VIOLATION_RATE} (or it was trained before runs kept one); use its latest checkpoint"
        )
    return load_file(path), path


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
        warnings.warn(f"{latest} is missing: loaded the previous checkpoint {previous}", stacklevel=2)
        return load_file(previous), previous
    raise CheckpointError(f"no checkpoint in {directory}")
