"""Strict config loading: unknown keys and wrong types are errors naming the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim
from alam_control import config as config_lib
from alam_control.config import Config, ConfigError

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


def test_defaults_and_nested_values(tmp_path: Path) -> None:
    cfg = config_lib.load(write(tmp_path, "seed: 3\nsac:\n  hidden: [64, 32]\n  gamma: 0.98\n"))
    assert cfg.seed == 3 and cfg.sac.hidden == (64, 32) and cfg.sac.gamma == 0.98
    assert cfg.sac.batch_size == Config().sac.batch_size


@pytest.mark.parametrize(
    "text, key",
    [
        ("sed: 1\n", "sed"),
        ("sac:\n  batchsize: 64\n", "sac.batchsize"),
        ("multiplier:\n  penalty_coeff: 2\n", "multiplier.penalty_coeff"),
    ],
)
def test_unknown_keys_are_rejected_by_name(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"unknown config key\(s\) {key}\b"):
        config_lib.load(write(tmp_path, text))


@pytest.mark.parametrize(
    "text, key",
    [
        ("sac:\n  batch_size: 64.5\n", "sac.batch_size"),
        ("sac:\n  batch_size: true\n", "sac.batch_size"),
        ("sac:\n  gamma: fast\n", "sac.gamma"),
        ("randomize: 1\n", "randomize"),
        ("algo:\n  name: ppo\n", "algo.name"),
        ("sac:\n  hidden: 256\n", "sac.hidden"),
        ("sac:\n  hidden: [256, x]\n", r"sac.hidden\[1\]"),
        ("sac: 3\n", "sac"),
    ],
)
def test_wrong_types_are_rejected_by_name(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^.*{key}: "):
        config_lib.load(write(tmp_path, text))


def test_int_is_accepted_for_float_and_null_for_optional(tmp_path: Path) -> None:
    cfg = config_lib.load(write(tmp_path, "sac:\n  reward_scale: 1\n  target_entropy: null\ncost:\n  threshold: 0\n"))
    assert isinstance(cfg.sac.reward_scale, float) and cfg.sac.target_entropy is None and cfg.cost.threshold == 0.0


def test_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 1\n")
    cfg = config_lib.load(path, ["seed=7", "multiplier.penalty_coef=2.5", "sac.hidden=[8, 8]", "algo.name=fac"])
    assert (cfg.seed, cfg.multiplier.penalty_coef, cfg.sac.hidden, cfg.algo.name) == (7, 2.5, (8, 8), "fac")
    with pytest.raises(ConfigError, match="sac.nope"):
        config_lib.load(path, ["sac.nope=1"])
    with pytest.raises(ConfigError, match="key=value"):
        config_lib.load(path, ["seed"])


def test_cross_field_validation(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="algo.actor_penalty"):
        config_lib.from_dict({"algo": {"name": "sac_lag", "actor_penalty": "phr"}})
    with pytest.raises(ConfigError, match="multiplier.penalty_coef must be > 0"):
        config_lib.from_dict({"multiplier": {"penalty_coef": 0}})
    with pytest.raises(ConfigError, match=r"'lagrangian' is not one of \['phr', 'linear'\] or null"):
        config_lib.from_dict({"algo": {"name": "sac_alam", "actor_penalty": "lagrangian"}})
    with pytest.raises(ConfigError, match="sac.reward_scale must be > 0"):
        config_lib.from_dict({"sac": {"reward_scale": -1.0}})
    with pytest.raises(ConfigError, match="learning_starts"):
        config_lib.from_dict({"train": {"learning_starts": 10}})


@pytest.mark.parametrize(
    "data, message",
    [
        ({"multiplier": {"lambda_max": 0.0}}, "multiplier.lambda_max must be > 0"),
        ({"multiplier": {"lambda_max": float("inf")}}, "multiplier.lambda_max: must be a finite number"),
        ({"multiplier": {"lr": -1e-3}}, "multiplier.lr must be > 0"),
        ({"multiplier": {"dual_decay": 1.0}}, r"multiplier.dual_decay must be in \[0, 1\)"),
        ({"sac": {"gamma": 1.5}}, r"sac.gamma must be in \(0, 1\)"),
        ({"cost": {"gamma": 1.0}}, r"cost.gamma must be in \(0, 1\)"),
        ({"cost": {"threshold": -0.1}}, "cost.threshold must be"),
        ({"cost": {"threshold": 1.0}}, "cost.threshold must be in \\[0, 1\\) for the first_violation critic"),
        ({"train": {"risk_horizon": 0}}, "train.risk_horizon must be >= 1"),
        ({"train": {"risk_window": 0}}, "train.risk_window must be >= 1"),
        ({"sac": {"hidden": []}}, r"sac.hidden must list one or more layer widths >= 1, got \[\]"),
        ({"sac": {"hidden": [0]}}, "sac.hidden must list one or more layer widths >= 1"),
        ({"sac": {"actor_lr": float("nan")}}, "sac.actor_lr: must be a finite number"),
        ({"sac": {"actor_lr": -1.0}}, "sac.actor_lr must be > 0"),
        ({"train": {"buffer_size": 0}}, "train.buffer_size must be >= 1"),
        ({"train": {"buffer_size": 100}}, r"train.buffer_size \(100\) must be >= sac.batch_size"),
        ({"train": {"learning_starts": 70000}}, "the run would make no update"),
        ({"train": {"device": "tpu"}}, "train.device"),
        ({"sac": {"log_std_min": 3.0}}, "sac.log_std_min"),
    ],
)
def test_out_of_range_values_are_rejected_by_name(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_lib.from_dict(data)


def test_a_sum_critic_accepts_a_threshold_above_one() -> None:
    cfg = config_lib.from_dict({"cost": {"critic": "sum", "threshold": 2.0}})
    assert cfg.cost.threshold == 2.0


def test_save_load_round_trip_and_hash(tmp_path: Path) -> None:
    cfg = config_lib.from_dict({"seed": 5, "sac": {"hidden": [32, 32]}, "algo": {"actor_penalty": "linear"}})
    config_lib.save(cfg, tmp_path / "out.yaml")
    again = config_lib.load(tmp_path / "out.yaml")
    assert again == cfg
    assert config_lib.config_hash(again) == config_lib.config_hash(cfg)
    assert config_lib.config_hash(config_lib.from_dict({"seed": 6})) != config_lib.config_hash(cfg)


@pytest.mark.parametrize(
    "text, message",
    [
        ("task: cartpole-safe_swingup\nsac:\n  hidden: [1, 2\n", r"not valid YAML: expected ',' or '\]'.* \(line 4\)$"),
        ("task: cartpole-safe_swingup\nseed: 1\nseed: 2\n", r"not valid YAML: duplicate key 'seed' \(line 3\)$"),
        ("- 1\n- 2\n", "the top level must be a mapping$"),
        ("", "the file is empty; a config needs at least `task:`"),
    ],
)
def test_malformed_files_are_named_errors_with_their_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"cfg\.yaml: " + message):
        config_lib.load(write(tmp_path, text))


def test_a_missing_file_is_a_named_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found: .*nope.yaml"):
        config_lib.load(tmp_path / "nope.yaml")


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path: Path) -> None:
    config_lib.load(path)


def test_unknown_task_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown task 'cartpole-swingup'; valid tasks: cartpole-safe_swingup"):
        config_lib.load(write(tmp_path, "task: cartpole-swingup\n"))


@pytest.mark.parametrize(
    "text, key",
    [
        ("randomization:\n  mass: [1.3, 0.7]\n", "randomization.mass"),
        ("randomization:\n  action_delay: [0, 1.5]\n", r"randomization.action_delay\[1\]"),
        ("randomization:\n  obs_noise: -1\n", "randomization.obs_noise"),
        ("randomization:\n  gravity: [0.9, 1.1]\n", "randomization.gravity"),
    ],
)
def test_bad_randomization_ranges_are_rejected_by_name(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        config_lib.load(write(tmp_path, text))


def test_randomization_ranges_load(tmp_path: Path) -> None:
    text = "randomize: true\nrandomization:\n  mass: [0.5, 2]\n  action_delay: [1, 3]\n"
    cfg = config_lib.load(write(tmp_path, text))
    assert cfg.randomize and cfg.randomization.mass == (0.5, 2.0) and cfg.randomization.action_delay == (1, 3)


# --- property: every field, any invalid value -> a ConfigError that names the field ----------------------------

_FIELDS = []


def _walk(cls: type, prefix: str = "") -> None:
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            _walk(tp, f"{prefix}{f.name}.")
        else:
            _FIELDS.append((f"{prefix}{f.name}", tp))


_walk(config_lib.Config)
_WITH_OPTIONALS = config_lib.from_dict({"multiplier": {"dual_decay": 0.1}})  # optional fields set, so ranged too
_RANGES = {key: (low, high, lo_open, hi_open) for key, _, low, high, lo_open, hi_open in
           config_lib.validation._ranges(_WITH_OPTIONALS)}  # fmt: skip
# Strings whose every value is valid: nothing invalid to draw but the wrong type.
_FREE_TEXT = {"algo.label", "train.device"}


def _invalid(key: str, tp) -> st.SearchStrategy:
    """Values that must be refused for `key` of annotation `tp`."""
    import math
    import typing

    wrong_type = st.one_of(st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=2),
                           st.just([["nested"]]))  # fmt: skip
    args = typing.get_args(tp)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), tp) if optional else tp
    origin = typing.get_origin(base)
    if base is bool:
        return st.one_of(
            wrong_type, st.integers(), st.text(max_size=4), st.floats(allow_subnormal=False, allow_nan=False)
        )
    if base in (int, float):
        values = [wrong_type, st.text(min_size=1, max_size=4).filter(lambda t: not _is_number(t)), st.booleans(),
                  st.sampled_from([math.nan, math.inf, -math.inf])]  # fmt: skip
        if base is int:
            values.append(
                st.floats(allow_subnormal=False, allow_nan=False, allow_infinity=False).filter(lambda x: x != int(x))
            )
        if key in _RANGES:
            low, high, lo_open, hi_open = _RANGES[key]
            # Closed ends: a margin beyond the bound (hypothesis cannot step to the next float without subnormals).
            below = st.floats(allow_subnormal=False, max_value=low if lo_open else low - 1e-6, allow_nan=False,
                              allow_infinity=False)  # fmt: skip
            above = st.floats(allow_subnormal=False, min_value=high if hi_open else high + 1e-6, allow_nan=False,
                              allow_infinity=False)  # fmt: skip
            if base is int:
                below = st.integers(max_value=int(low) - (0 if lo_open else 1))
                above = st.integers(min_value=int(high) + (0 if hi_open else 1)) if high != math.inf else st.nothing()
            values += [below, above if high != math.inf else st.nothing()]
        return st.one_of(values)
    if origin is tuple:
        bad_items = st.lists(st.one_of(st.text(min_size=1, max_size=3), wrong_type), min_size=1, max_size=3)
        values = [wrong_type, st.text(min_size=1, max_size=4), bad_items]
        if key.endswith("hidden"):
            values += [st.just([]), st.lists(st.integers(max_value=0), min_size=1, max_size=3)]
        return st.one_of(values)
    if origin is typing.Literal:
        return st.one_of(wrong_type, st.text(max_size=8).filter(lambda t: t not in typing.get_args(base)))
    if base is str:
        if key == "task":
            return st.one_of(wrong_type, st.text(max_size=12).filter(lambda t: t not in sim.TASKS))
        return wrong_type  # free text: only the type can be wrong
    raise AssertionError(f"no invalid-value strategy for {key}: {tp}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_invalid_value_of_any_field_is_a_named_error(data) -> None:
    key, tp = data.draw(st.sampled_from(_FIELDS), label="field")
    value = data.draw(_invalid(key, tp), label="value")
    nested: dict = {}
    node = nested
    *sections, leaf = key.split(".")
    for section in sections:
        node = node.setdefault(section, {})
    node[leaf] = value
    with pytest.raises(ConfigError) as err:
        config_lib.from_dict(nested)
    assert key in str(err.value) or (key.startswith("randomization.") and "randomization" in str(err.value)), (
        key, value, str(err.value))  # fmt: skip


# Numeric fields with no range of their own: any finite value is meaningful (or a rule elsewhere checks them).
_UNBOUNDED = {
    "multiplier.init_bias",  # the multiplier's initial logit: any real
    "sac.log_std_min", "sac.log_std_max",  # any reals with min < max (checked as a pair)
    "sac.target_entropy",  # any real; None = -action_dim
    "cost.threshold",  # its range depends on cost.critic (checked in validate)
    # sim.Randomization checks its own fields (tests/sim/test_tasks.py, test_bad_randomization_ranges_are_named)
    "randomization.obs_noise", "randomization.push_rate", "randomization.push_duration_s",
    "randomization.push_strength",
}  # fmt: skip


def test_every_numeric_field_has_a_range() -> None:
    """The property test above draws out-of-range values from config._ranges: a field missing there would be
    untested, so a numeric field must be either ranged or listed as unbounded here, with its reason."""
    import typing

    numeric = {
        key for key, tp in _FIELDS if typing.get_origin(tp) is not tuple and {int, float} & {tp, *typing.get_args(tp)}
    }
    assert numeric - set(_RANGES) - _UNBOUNDED == set()
    assert set(_RANGES) & _UNBOUNDED == set()


@pytest.mark.parametrize(
    "data",
    [
        {"seed": 0},
        {"sac": {"tau": 1.0}, "multiplier": {"target_tau": 1.0}},  # (0, 1]: a hard target copy is allowed
        {"multiplier": {"scalar_init": 0.0, "scalar_lr": 0.0, "pid_kp": 0.0, "pid_kd": 0.0, "pid_delta_decay": 0.0}},
        {"multiplier": {"dual_decay": 0.0}},
        {"train": {"threads": 1}},
        {"train": {"threads": 1024}},
        {"sac": {"hidden": [1]}, "multiplier": {"hidden": [1]}},
        {"sac": {"log_std_min": 1.9}},  # just below log_std_max (2)
        {"train": {"buffer_size": 256, "learning_starts": 256}},  # both equal to the batch
        {"train": {"learning_starts": 59999}},  # one update before the end of 60000 steps
        {"cost": {"threshold": 0.0}},
        {"cost": {"critic": "sum", "threshold": 0.0}},
        {"algo": {"name": "fac", "actor_penalty": "phr", "multiplier_update": "ascent"}},
        {"train": {"device": "cuda:0"}},  # a GPU name is valid here; whether this machine has it is checked later
    ],
)
def test_values_at_the_edges_of_their_ranges_are_accepted(data: dict) -> None:
    config_lib.from_dict(data)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"train": {"threads": 1025}}, r"train.threads must be in \[1, 1024\], got 1025"),  # RANGE_SPEC: low ends
        ({"multiplier": {"hidden": []}}, r"multiplier.hidden must list one or more layer widths >= 1, got \[\]"),
        ({"sac": {"log_std_min": 2.0}}, r"sac.log_std_min \(2.0\) must be < sac.log_std_max \(2.0\)"),
        ({"train": {"learning_starts": 60000}}, r"train.learning_starts \(60000\) must be < train.total_steps"),
        ({"train": {"buffer_size": 255}}, r"train.buffer_size \(255\) must be >= sac.batch_size \(256\)"),
        ({"train": {"learning_starts": 255}}, r"train.learning_starts \(255\) must be >= sac.batch_size \(256\)"),
        ({"cost": {"critic": "sum", "threshold": -1.0}}, "cost.threshold must be >= 0, got -1.0"),
        ({"algo": {"name": "sac_lag", "multiplier_update": "ascent"}}, "not to sac_lag"),
        ({"train": {"device": "meta"}}, r"train.device must be cpu or cuda\[:N\], got 'meta'"),
        ({"task": "nope"}, "valid tasks: cartpole-safe_swingup, diffdrive-safe_navigate, "),
    ],
)
def test_values_just_outside_their_ranges_are_named_errors(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_lib.from_dict(data)


@pytest.mark.parametrize(
    "data, overrides, message",
    [
        (
            {"sac": {"foo": 1, "bar": 2}},
            [],
            r"^unknown config key\(s\) sac.bar, sac.foo; valid keys here: "
            r"sac.actor_lr, sac.alpha_lr, ",
        ),  # fmt: skip
        ({"cost": {"critic": "foo"}}, [], r"^cost.critic: 'foo' is not one of \['first_violation', 'sum'\]$"),
        ({"cost": {"threshold": "abc"}}, [], r"^cost.threshold: 'abc' is not a number or null$"),
        ({"sac": {"hidden": "wide"}}, [], r"^sac.hidden: expected a list, got 'wide'$"),
        ({"sac": 5}, [], r"^sac: expected a mapping, got 5$"),
        ({}, ["=1"], r"^--set '' is not a dotted config key$"),
        ({}, ["sac.gamma"], r"^--set expects key=value, got 'sac.gamma'$"),
        ({"seed": 3}, ["seed.x=1"], r"^--set seed.x: seed is not a config section$"),
    ],
)
def test_bad_values_and_overrides_are_named(data: dict, overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_lib.from_dict(data, overrides)


def test_override_values_may_hold_an_equals_sign_and_dotted_values_apply() -> None:
    assert config_lib.parse_overrides(["task=a=b"]) == [("task", "a=b")]
    assert config_lib.from_dict({}, values={"sac.gamma": 0.9, "train.threads": 2}).sac.gamma == 0.9


# The ranges as a user reads them in the error message, written out here (not read from config.validation): a
# bound or an open / closed end changed by mistake there changes the message and fails this test.
RANGE_SPEC = {
    "seed": (">= 0", -1),
    "sac.gamma": ("in (0, 1)", 1.0),
    "sac.reward_scale": ("> 0", 0.0),
    "sac.tau": ("in (0, 1]", 0.0),
    "sac.batch_size": (">= 1", 0),
    "sac.actor_lr": ("> 0", 0.0),
    "sac.critic_lr": ("> 0", 0.0),
    "sac.alpha_lr": ("> 0", 0.0),
    "sac.init_alpha": ("> 0", 0.0),
    "cost.gamma": ("in (0, 1)", 0.0),
    "multiplier.lr": ("> 0", 0.0),
    "multiplier.penalty_coef": ("> 0", 0.0),
    "multiplier.dual_interval": (">= 1", 0),
    "multiplier.target_tau": ("in (0, 1]", 0.0),
    "multiplier.lambda_max": ("> 0", 0.0),
    "multiplier.scalar_init": (">= 0", -1.0),
    "multiplier.scalar_lr": (">= 0", -1.0),
    "multiplier.pid_kp": (">= 0", -1.0),
    "multiplier.pid_kd": (">= 0", -1.0),
    "multiplier.pid_delta_decay": ("in [0, 1)", 1.0),
    "multiplier.dual_decay": ("in [0, 1)", 1.0),
    "train.total_steps": (">= 1", 0),
    "train.learning_starts": (">= 0", -1),
    "train.buffer_size": (">= 1", 0),
    "train.updates_per_step": (">= 1", 0),
    "train.eval_every": (">= 1", 0),
    "train.eval_episodes": (">= 1", 0),
    "train.checkpoint_every": (">= 1", 0),
    "train.log_every": (">= 1", 0),
    "train.probe_size": (">= 1", 0),
    "train.risk_horizon": (">= 1", 0),
    "train.risk_window": (">= 1", 0),
    "train.threads": ("in [1, 1024]", 0),
}


def test_the_range_spec_covers_every_ranged_field() -> None:
    assert set(RANGE_SPEC) == set(_RANGES)


@pytest.mark.parametrize("key", sorted(RANGE_SPEC))
def test_each_range_reads_as_written(key: str) -> None:
    interval, outside = RANGE_SPEC[key]
    section, _, name = key.rpartition(".")
    data = {section: {name: outside}} if section else {name: outside}
    with pytest.raises(ConfigError, match=f"^{re.escape(f'{key} must be {interval}, got {outside}')}$"):
        config_lib.from_dict(data)
