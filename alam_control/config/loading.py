"""Loading a run configuration: strict YAML, typed coercion into the schema's dataclasses, dotted-key overrides,
and the canonical dict, hash and YAML file a run is saved with.

Loading is strict: an unknown key or a value of the wrong type is an error that names the dotted key
(``sac.batch_size``), because a typo in a safety experiment must never silently fall back to a default.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from alam_control.config.schema import Config, ConfigError
from alam_control.config.validation import validate


def _type_name(tp: Any) -> str:
    """A readable name of a field's annotation, for "<key>: <value> is not <name>" (the message of a union field;
    `_coerce` words the others itself): "a number", "one of ['phr', 'linear']", "a number or null"."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arm) for arm in typing.get_args(tp))
    if origin is Literal:
        return f"one of {list(typing.get_args(tp))}"
    names = {type(None): "null", float: "a number", int: "an integer", str: "a string", bool: "true/false"}
    return names.get(tp) or getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and return it in canonical form (lists -> tuples)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(tp):
            try:
                return _coerce(value, arm, key)
            except ConfigError:
                pass
        raise ConfigError(f"{key}: {value!r} is not {_type_name(tp)}")
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{key}: {value!r} is not one of {list(typing.get_args(tp))}")
        return value
    if origin is tuple:
        (item_tp, _ellipsis) = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value))
    if tp is type(None):
        if value is not None:
            raise ConfigError(f"{key}: expected null, got {value!r}")
        return None
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return _build(tp, value, key + ".")
    # bool is a subclass of int: reject True where an int or float is meant, and 1 where a bool is meant.
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{key}: must be a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported annotation {tp!r} for {key}")


def _build(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {', '.join(prefix + k for k in unknown)}; "
            f"valid keys here: {', '.join(sorted(prefix + n for n in names))}"
        )
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in data.items()}
    try:
        cfg = cls(**kwargs)
    except TypeError as err:  # pragma: no cover - all fields have defaults
        raise ConfigError(f"{prefix or 'config'}: {err}") from err
    except ValueError as err:  # a dataclass's own range checks (e.g. Randomization) name the key themselves
        raise ConfigError(str(err)) from err
    return cfg


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """``data[a][b][c] = value`` for ``dotted = 'a.b.c'``, creating sections on the way (an unknown key is named
    when the config is built from ``data``).

    Raises:
        ConfigError: An empty part (``a..b``), or a part that holds a value, not a section.
    """
    parts = dotted.split(".")
    if not all(parts):
        raise ConfigError(f"{dotted!r} is not a dotted config key")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{dotted}: {part} is not a config section")
        node = child
    node[parts[-1]] = value


def parse_overrides(overrides: list[str]) -> list[tuple[str, Any]]:
    """Parse ``key.sub=value`` strings; values are YAML scalars (``1e-3``, ``true``, ``[64, 64]``)."""
    parsed = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        parsed.append((key.strip(), yaml.safe_load(raw)))
    return parsed


def from_dict(data: dict[str, Any], overrides: list[str] | None = None, values: dict[str, Any] | None = None) -> Config:
    """Build a validated :class:`Config` from plain data, then ``values`` (dotted key -> parsed value, e.g. a
    sweep's ``set:`` and grid point), then ``--set`` style ``overrides`` (``key=value`` strings)."""
    data = json.loads(json.dumps(data or {}))  # deep copy; YAML scalars are JSON-safe
    for key, value in (values or {}).items():
        set_dotted(data, key, json.loads(json.dumps(value)))
    for key, value in parse_overrides(overrides or []):
        try:
            set_dotted(data, key, value)
        except ConfigError as err:
            raise ConfigError(f"--set {err}") from None
    cfg = _build(Config, data)
    validate(cfg)
    return cfg


class _StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last one silently: a second
    `sac:` section would replace the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (line {key_node.start_mark.line + 1})", key_node.start_mark
                )
            seen[key] = True
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> Any:
    """A YAML file parsed strictly (a key given twice is an error); None for an empty file.

    Raises:
        ConfigError: The file is missing, not UTF-8 or not valid YAML (the message names the file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except yaml.MarkedYAMLError as err:
        where = f" (line {err.problem_mark.line + 1})" if err.problem_mark and "line" not in str(err.problem) else ""
        raise ConfigError(f"{path}: not valid YAML: {err.problem}{where}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None


def load_data(path: str | Path) -> dict[str, Any]:
    """A config file's plain data, unvalidated (:func:`from_dict` builds the config from it).

    Raises:
        ConfigError: As :func:`read_yaml`, or the file is empty or not a mapping.
    """
    data = read_yaml(path)
    if data is None:
        raise ConfigError(f"{path}: the file is empty; a config needs at least `task:` (see configs/*.yaml)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data


def load(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Load a YAML config file (strict) and apply overrides."""
    data = load_data(path)
    try:
        return from_dict(data, overrides)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config data as dotted keys: ``{"sac": {"gamma": 0.9}} -> {"sac.gamma": 0.9}``."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def differences(a: dict[str, Any], b: dict[str, Any], ignore: tuple[str, ...] = ()) -> list[str]:
    """The dotted keys (sorted) whose values differ between two nested config dicts, less those in `ignore`."""
    x, y = flatten(a), flatten(b)
    return sorted(k for k in set(x) | set(y) if k not in ignore and x.get(k) != y.get(k))


def to_dict(cfg: Config) -> dict[str, Any]:
    """Plain nested dict (tuples as lists), the inverse of :func:`from_dict`."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def config_hash(cfg: Config) -> str:
    """sha256 of the canonical JSON form: identifies the training config in checkpoints and bundles."""
    return hashlib.sha256(json.dumps(to_dict(cfg), sort_keys=True).encode()).hexdigest()


def save(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML (loadable by :func:`load`)."""
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
