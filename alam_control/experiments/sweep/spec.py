"""Sweep files: parsing, validation and the grid's expansion into trials (before any Ray work).

A sweep file names a base config, optional fixed overrides and a grid::

    name: cartpole_algos            # optional; default: the file's stem
    base: ../cartpole_safe_swingup_alam.yaml   # relative to this file, the working directory or the repo
    set:                            # optional fixed overrides (dotted keys)
      train.total_steps: 20000
    grid:                           # dotted key -> list of values; trials = cartesian product, in this order
      algo.name: [sac, sac_alam]
      seed: [0, 1, 2]
    out: runs/sweeps/cartpole_algos # optional; default runs/sweeps/<name>

A grid axis may instead be a mapping of *named values*, each a set of dotted overrides applied together (an
algorithm variant that is two keys, or a task with its own step budget); the trial is named by the label::

    grid:
      task:
        cartpole: {task: cartpole-safe_swingup, train.total_steps: 15000}
        walker: {task: walker-safe_walk, train.total_steps: 20000}
      algo:
        sac: {algo.name: sac}
        alam_ascent: {algo.name: sac_alam, algo.multiplier_update: ascent, algo.label: alam_ascent}

The files and each trial's config go through `alam_control.config` (its strict YAML reader, dotted keys and
validation), so a sweep accepts exactly what `alam train --config ... --set ...` accepts.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alam_control import config as config_lib
from alam_control.config import Config, ConfigError

REPO = Path(__file__).resolve().parents[3]
TRIALS_DIR = "trials"
"""Sweep directory subfolder that holds one run directory per trial."""
SWEEP_KEYS = ("name", "base", "set", "grid", "out")
# Trials default to one torch thread each: two trials then share two cores without oversubscription (two trials
# at 2 threads each on 2 cores would thrash). A sweep's `set:` or `grid:` may change it; each trial then asks
# Ray for train.threads CPUs.
TRIAL_DEFAULTS: dict[str, Any] = {"train.threads": 1}
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]")
_MAX_NAME = 120  # well below the 255-byte file name limit


class SweepError(ValueError):
    """A sweep file, sweep directory or cluster that cannot run the sweep as asked."""


@dataclass(frozen=True)
class Trial:
    """One point of the grid: an ordinary training run in ``run_dir``."""

    name: str
    """Deterministic, readable directory name built from ``params`` (``algo.name=sac,seed=1``)."""
    params: dict[str, Any]
    """This trial's grid values, in the grid's key order."""
    config: Config
    """The resolved config (base + set + trial defaults + params), validated."""
    run_dir: Path
    """Absolute run directory (SWEEP_DIR/trials/<name>)."""


@dataclass(frozen=True)
class Sweep:
    """A parsed, validated sweep file with its expanded trials."""

    name: str
    path: Path
    """The sweep file."""
    base: Path
    """The resolved base config file."""
    set: dict[str, Any]
    grid: dict[str, list[Any] | dict[str, dict[str, Any]]]
    """Axis -> list of values, or -> {label: {dotted key: value}} for a named axis."""
    out: Path
    """Absolute sweep directory."""
    trials: list[Trial] = field(default_factory=list)


def _resolve_base(base: str, sweep_file: Path) -> Path:
    """The base config path, tried relative to the sweep file, the working directory, then the repo root."""
    candidates = (
        [Path(base)] if Path(base).is_absolute() else [sweep_file.parent / base, Path.cwd() / base, REPO / base]
    )
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise SweepError(f"{sweep_file}: base config {base!r} not found (tried {', '.join(map(str, candidates))})")


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "x".join(_format_value(v) for v in value)  # sac.hidden [64, 64] -> 64x64
    if value is None:
        return "null"
    return str(value)


def _check_named_axis(path: Path, key: str, values: dict[str, Any], fixed: dict[str, Any]) -> None:
    """A named grid axis: non-empty, labels safe in a directory name, each value a mapping of dotted overrides
    that do not repeat a key of ``set:``."""
    if not values:
        raise SweepError(f"{path}: grid.{key}: expected at least one named value")
    for label, overrides in values.items():
        if not isinstance(label, str) or not label or _NAME_UNSAFE.search(label):
            raise SweepError(f"{path}: grid.{key}: label {label!r} must be a string of letters, digits and ._=,+-")
        if not isinstance(overrides, dict):
            raise SweepError(
                f"{path}: grid.{key}.{label}: expected a mapping of dotted config key -> value, got {overrides!r}"
            )
        both = sorted(set(overrides) & set(fixed))
        if both:
            raise SweepError(f"{path}: grid.{key}.{label} sets {', '.join(both)}, also in set:; keep it in one")


def trial_overrides(grid: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The dotted overrides of one grid point: ``{key: value}`` for a list axis, the named value's mapping for a
    named axis (later axes win where two set the same key)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        out.update(grid[key][value] if isinstance(grid[key], dict) else {key: value})
    return out


def trial_name(params: dict[str, Any]) -> str:
    """``{'algo.name': 'sac', 'seed': 1}`` -> ``algo.name=sac,seed=1``; characters unsafe in paths become ``_``.

    Names longer than 120 characters are cut and suffixed with a hash of the params, so they stay unique and
    deterministic (``--resume`` finds trials by name).
    """
    name = _NAME_UNSAFE.sub("_", ",".join(f"{k}={_format_value(v)}" for k, v in params.items()))
    if len(name) > _MAX_NAME:
        digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
        name = f"{name[: _MAX_NAME - 11]}-{digest}"
    return name


def parse_first(sweep: Sweep, texts: list[str]) -> list[dict[str, str]]:
    """``alam sweep --first``: each text ``key=value[,key=value...]`` names grid values (``task=cartpole``,
    ``seed=3,task=walker``) as the trial names write them.

    Raises:
        SweepError: a key that is no grid axis, a malformed pair, or a text that matches no trial of the grid
            (a typo would otherwise change nothing, silently).
    """
    filters = []
    for text in texts:
        pairs = [part.partition("=") for part in text.split(",")]
        if not all(k and eq and v for k, eq, v in pairs):
            raise SweepError(f"--first {text!r}: expected key=value[,key=value...] over the grid's axes")
        wanted = {k: v for k, _, v in pairs}
        unknown = sorted(set(wanted) - set(sweep.grid))
        if unknown:
            raise SweepError(f"--first {text!r}: {', '.join(unknown)} is no axis of the grid ({', '.join(sweep.grid)})")
        if not any(matches(t, wanted) for t in sweep.trials):
            raise SweepError(f"--first {text!r} matches no trial of {sweep.path}")
        filters.append(wanted)
    return filters


def matches(trial: Trial, wanted: dict[str, str]) -> bool:
    """Whether ``trial``'s grid values are those of ``wanted`` (values compared as trial names write them)."""
    return all(_format_value(trial.params[k]) == v for k, v in wanted.items())


def queue_order(trials: list[Trial], started: set[str], first: list[dict[str, str]]) -> list[Trial]:
    """The order unfinished trials are submitted in: those already ``started`` (a checkpoint to resume: what they
    trained is lost with ``runs/`` if a sitting ends before they finish), then those each `parse_first` filter
    matches, filter by filter, then the rest; the grid's order within each group."""

    def rank(trial: Trial) -> int:
        if trial.name in started:
            return 0
        return next((1 + i for i, wanted in enumerate(first) if matches(trial, wanted)), 1 + len(first))

    return sorted(trials, key=rank)  # stable: the grid's order within a rank


def load(path: str | Path, out: str | Path | None = None) -> Sweep:
    """Parse and validate a sweep file and build every trial's config (strict, before any Ray work).

    Args:
        path: the sweep YAML.
        out: sweep directory; overrides the file's ``out`` (default ``runs/sweeps/<name>``, relative to the
            working directory like ``alam train``'s ``runs/``).

    Raises:
        SweepError / ConfigError: unknown top-level keys, a grid that is not a mapping of non-empty lists,
            duplicate values, a key both in ``set`` and ``grid``, or any trial config that does not validate
            (the message names the trial and the offending key).
    """
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"sweep file not found: {path}")
    try:
        data = config_lib.read_yaml(path) or {}  # the config files' strict YAML: a key given twice is an error
    except ConfigError as err:
        raise SweepError(str(err)) from None
    if not isinstance(data, dict):
        raise SweepError(f"{path}: the top level must be a mapping")
    unknown = sorted(set(data) - set(SWEEP_KEYS))
    if unknown:
        raise SweepError(f"{path}: unknown sweep key(s) {', '.join(unknown)}; valid keys: {', '.join(SWEEP_KEYS)}")
    if "base" not in data or not isinstance(data["base"], str):
        raise SweepError(f"{path}: `base:` (path of the base config) is required")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name or _NAME_UNSAFE.search(name):
        raise SweepError(f"{path}: name: {name!r} must be a non-empty string of letters, digits and ._=,+-")
    fixed = data.get("set") or {}
    if not isinstance(fixed, dict):
        raise SweepError(f"{path}: set: expected a mapping of dotted key -> value, got {fixed!r}")
    grid = data.get("grid")
    if not isinstance(grid, dict) or not grid:
        raise SweepError(f"{path}: grid: expected a non-empty mapping of dotted key -> list of values")
    for key, values in grid.items():
        if isinstance(values, dict):
            _check_named_axis(path, key, values, fixed)
            continue
        if not isinstance(values, list) or not values:
            raise SweepError(
                f"{path}: grid.{key}: expected a non-empty list of values or a mapping of named values, got {values!r}"
            )
        seen = [json.dumps(v, sort_keys=True) for v in values]
        dupes = sorted({v for v in seen if seen.count(v) > 1})
        if dupes:
            raise SweepError(f"{path}: grid.{key} lists {', '.join(dupes)} more than once")
        if key in fixed:
            raise SweepError(f"{path}: {key} is both in set: and grid:; keep it in one")
    base = _resolve_base(data["base"], path)
    base_data = config_lib.load_data(base)  # read once, as `alam train --config` reads it
    out_dir = Path(out if out is not None else data.get("out", Path("runs") / "sweeps" / name)).absolute()

    trials: list[Trial] = []
    keys = list(grid)
    for combo in itertools.product(*(list(grid[k]) for k in keys)):  # a named axis iterates over its labels
        params = dict(zip(keys, combo, strict=True))
        tname = trial_name(params)
        try:
            cfg = config_lib.from_dict(base_data, values={**TRIAL_DEFAULTS, **fixed, **trial_overrides(grid, params)})
        except ConfigError as err:
            raise ConfigError(f"{path}: trial {tname} (base {base.name}): {err}") from err
        trials.append(Trial(tname, params, cfg, out_dir / TRIALS_DIR / tname))
    names = [t.name for t in trials]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise SweepError(f"{path}: grid values give the same trial directory name: {', '.join(clashes)}")
    grid = {k: (copy.deepcopy(v) if isinstance(v, dict) else list(v)) for k, v in grid.items()}
    return Sweep(name, path.absolute(), base, dict(fixed), grid, out_dir, trials)
