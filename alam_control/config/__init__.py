"""Typed, frozen run configuration loaded from YAML (`alam_control.config`, imported as ``config_lib``).

- `schema`: one frozen dataclass per concern (`Config` and its sections), every field with a one-line docstring.
- `loading`: strict YAML, typed coercion that names the dotted key of a bad value, ``--set`` overrides, the
  canonical dict, config hash and saved YAML, `flatten` / `differences` for resume checks and reports.
- `validation`: cross-field and range checks, and the device checks.

The names below are the package's interface; every part of alam_control (and the tests) imports from here.
Imports `sim` (its task registry and randomization ranges) and yaml; torch only to check a GPU device.
"""

from __future__ import annotations

from alam_control.config.loading import (
    config_hash,
    differences,
    flatten,
    from_dict,
    load,
    load_data,
    parse_overrides,
    read_yaml,
    save,
    set_dotted,
    to_dict,
)
from alam_control.config.schema import (
    ALGOS,
    AlgoConfig,
    AlgoName,
    Config,
    ConfigError,
    CostConfig,
    MultiplierConfig,
    SACConfig,
    TrainConfig,
)
from alam_control.config.validation import check_device_available, validate

__all__ = [
    "ALGOS",
    "AlgoConfig",
    "AlgoName",
    "Config",
    "ConfigError",
    "CostConfig",
    "MultiplierConfig",
    "SACConfig",
    "TrainConfig",
    "check_device_available",
    "config_hash",
    "differences",
    "flatten",
    "from_dict",
    "load",
    "load_data",
    "parse_overrides",
    "read_yaml",
    "save",
    "set_dotted",
    "to_dict",
    "validate",
]
