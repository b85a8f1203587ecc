"""Typed, frozen run configuration loaded from YAML.

One dataclass per concern; every field has a one-line docstring right under it. Loading is strict: an unknown
key or a value of the wrong type is an error that names the dotted key (``sac.batch_size``), because a typo in a
safety experiment must never silently fall back to a default.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from sim.randomization import Randomization

ALGOS = ("sac", "sac_lag", "sac_pid_lag", "fac", "sac_alam")
AlgoName = Literal["sac", "sac_lag", "sac_pid_lag", "fac", "sac_alam"]


class ConfigError(ValueError):
    """A config file or override that cannot be turned into a valid :class:`Config`."""


@dataclass(frozen=True)
class AlgoConfig:
    """Which algorithm runs, and the ablation switches of the network multipliers."""

    name: AlgoName = "sac_alam"
    """One of sac, sac_lag, sac_pid_lag, fac, sac_alam (DESIGN.md section 3)."""
    actor_penalty: Literal["phr", "linear"] | None = None
    """Actor's constraint term: 'phr' = psi_rho(lam, g), 'linear' = lam * g. None = the algorithm's default."""
    multiplier_update: Literal["regression", "ascent"] | None = None
    """Network multiplier update: regression to the dual target, or dual gradient ascent. None = default."""
    label: str | None = None
    """The name this run is reported under (`alam report`'s algo column, learning-curve legends); None = `name`.
    Changes nothing in training: it lets an ablation (e.g. sac_alam with multiplier_update ascent) be its own row."""


@dataclass(frozen=True)
class SACConfig:
    """Soft actor-critic core shared by every algorithm."""

    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the actor and of each critic head."""
    gamma: float = 0.99
    """Reward discount."""
    reward_scale: float = 1.0
    """Factor on the reward in the critic target (logs and evaluations keep the task's reward). The penalty
    defaults (multiplier.penalty_coef, lambda_max) assume rewards of order 1 per step, as dm-control's; a task whose
    per-step reward is far smaller (diffdrive-safe_navigate: at most 0.05 m of progress a step) needs it raised, or
    the cost terms drown the reward and the actor learns to stand still."""
    tau: float = 0.005
    """Polyak rate of the critic target networks."""
    batch_size: int = 256
    """Minibatch size per gradient update."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critic ensemble (reward twins and cost critic)."""
    alpha_lr: float = 3e-4
    """Adam learning rate of log(alpha)."""
    init_alpha: float = 0.1
    """Initial entropy temperature."""
    target_entropy: float | None = None
    """Entropy target for automatic tuning; None = -action_dim."""
    autotune_alpha: bool = True
    """Tune alpha toward target_entropy; False keeps init_alpha fixed."""
    normalize_obs: bool = False
    """Fit a fixed observation affine map on the warm-up data (baked into the export either way)."""
    log_std_min: float = -5.0
    """Lower clamp of the actor's log standard deviation."""
    log_std_max: float = 2.0
    """Upper clamp of the actor's log standard deviation."""


@dataclass(frozen=True)
class CostConfig:
    """The cost critic Q_c and the state-wise constraint g(s, a) = Q_c(s, a) - d <= 0."""

    critic: Literal["first_violation", "sum"] = "first_violation"
    """What Q_c estimates. 'first_violation': E[gamma_c^T], T the steps to the next violation, in [0, 1] (target
    c + (1 - c) gamma_c Q_c'); 'sum': the discounted cost sum E[sum_k gamma_c^k c_k] of DESIGN.md's first draft
    (target c + gamma_c Q_c'). Measured with 'sum': Q_c exceeded d on 98 % of the diff-drive robot's visited states
    while the policy's true cost-to-go did on 22 %, and its scale (up to 1 / (1 - gamma_c) = 33) made the dual rise
    ~666x faster than it could fall, so lambda sat at its cap. The bounded 'first_violation' value has the same
    scale on every task and a threshold with a meaning: d = gamma_c^H is "the next violation is H steps away"."""
    gamma: float = 0.97
    """Cost discount gamma_c (short horizon: the constraint is about upcoming violations)."""
    threshold: float | None = None
    """d, the bound on Q_c; None = gamma_c ** train.risk_horizon for the 'first_violation' critic (a margin of H
    steps to the next violation, the same H that labels risk), the task's declared cost_threshold for 'sum'."""
    clip_target: bool = True
    """Clip the TD target to the critic's range ([0, 1], or >= 0 for 'sum'): a non-negative cost cannot have a
    negative value, and bootstrapped values outside the range must not feed back (DESIGN.md section 3)."""


@dataclass(frozen=True)
class MultiplierConfig:
    """Lagrange multipliers: scalar (sac_lag, sac_pid_lag) or a network lambda_phi(s) (fac, sac_alam).

    Every constraint term in the actor is multiplied by the batch's mean |Q| (detached), so lambda is a price in
    units of the task's own value scale: the same rho and lambda_max work on a cart-pole (|Q| ~ 50) and on the
    diff-drive robot (|Q| ~ 1), and sac.reward_scale changes the critic's numbers but not the trade-off."""

    hidden: tuple[int, ...] = (256, 256)
    """Hidden widths of the multiplier network."""
    lr: float = 3e-4
    """Adam learning rate of the multiplier network."""
    penalty_coef: float = 1.0
    """rho of the PHR penalty and of the dual target. With the 'first_violation' critic g lies in [-d, 1 - d], so
    one method-of-multipliers step moves lambda by at most rho in either direction; rho is also the quadratic
    price the actor sees before lambda has caught up. Measured on the cart-pole (64x64, seed 0, an earlier build
    with a squared-error multiplier loss): rho 10 was over-cautious (return 168 at 25k steps vs 276 at 20k with 1)."""
    dual_decay: float | None = None
    """eta, the leak of the dual step lam_hat = max(0, (1 - eta) lambda_phibar + rho g): a Tikhonov
    regularisation -(eta / 2 rho) lambda^2 of the dual. Its fixed point lambda = rho max(0, g) / eta is graded in
    g instead of jumping between 0 and the cap, and the dual converges without oscillating, at the price of a
    constraint slack of eta lambda / rho. None = rho g_max / lambda_max (at most 0.5), g_max = the largest g the
    critic can produce (1 - d for 'first_violation'): lambda then maps Q_c in [d, g_max + d] linearly onto
    [0, lambda_max].
    0 = the classical method of multipliers."""
    dual_interval: int = 1
    """Update the multiplier every this many agent updates."""
    target_tau: float = 0.005
    """Polyak rate of lambda_phibar, the copy the dual target is built from (1.0 = no copy)."""
    lambda_max: float = 10.0
    """Cap of every multiplier, by construction: the network outputs lambda_max * sigmoid(.), the scalar
    multipliers are clamped. With the default eta it also sets the actor's price of risk, (lambda_max / g_max + rho)
    per unit of Q_c above d at the dual's fixed point. Measured (cart-pole, 64x64, 40k steps, seed 0): 10 reached
    return 370 at cost 0 from 15k steps on; 100 was safe from 20k on but over-cautious (return 150 at 40k)."""
    init_bias: float = -5.0
    """Output bias of the multiplier network before its sigmoid: lambda starts at lambda_max * 0.0067."""
    scalar_init: float = 0.0
    """Initial value of a scalar multiplier."""
    scalar_lr: float = 0.01
    """Step size of scalar dual ascent (sac_lag) and the I gain of the PID Lagrangian."""
    pid_kp: float = 0.1
    """P gain of the PID Lagrangian (Stooke et al. 2020)."""
    pid_kd: float = 0.0
    """D gain of the PID Lagrangian."""
    pid_delta_decay: float = 0.9
    """EMA decay of the PID's derivative signal."""


@dataclass(frozen=True)
class TrainConfig:
    """The training loop: budget, evaluation, logging and checkpoints."""

    total_steps: int = 60_000
    """Environment steps to train for."""
    learning_starts: int = 2_000
    """Uniform-random exploration steps before the first update."""
    buffer_size: int = 1_000_000
    """Replay capacity (transitions); capped at total_steps."""
    updates_per_step: int = 1
    """Update-to-data ratio."""
    eval_every: int = 5_000
    """Evaluate deterministically every this many steps (and at the end)."""
    eval_episodes: int = 5
    """Episodes per evaluation."""
    checkpoint_every: int = 5_000
    """Write an atomic checkpoint every this many steps (and at the end)."""
    log_every: int = 1_000
    """Write training scalars every this many steps."""
    probe_size: int = 256
    """States drawn once from the buffer to track lambda across training (lambda_osc)."""
    risk_horizon: int = 20
    """H of risk_auroc: a violation within the next H steps (also the margin of the default threshold d)."""
    risk_window: int = 10_000
    """Most recent replay transitions on which each evaluation scores lambda as a risk signal (replay_* metrics)."""
    threads: int = 2
    """torch intra-op threads (at most; see adapt_threads)."""
    adapt_threads: bool = True
    """Every 500 steps, run with the cores other processes leave free (alam_control.learn.cpu): 2 threads beside a busy
    process slowed an update 3-6x, 1 thread did not. The thread count does not change the numbers."""
    device: str = "cpu"
    """torch device."""
    compile: bool = False
    """torch.compile the update step."""
    precision: Literal["auto", "float32", "bfloat16"] = "float32"
    """Matmul precision of the hidden layers in a gradient update. 'bfloat16' runs them in bf16 with fp32
    accumulation (output layers, losses, optimizer state and acting stay float32): ~2x faster matmuls on CPUs with
    native bf16 (avx512_bf16 / AMX), slower where it is emulated. 'auto': bfloat16 where the CPU has it natively,
    else float32 (summary.json records which ran). Evaluation, export and deployment are float32."""


@dataclass(frozen=True)
class Config:
    """A whole run: task x algorithm x hyper-parameters."""

    task: str = "cartpole-safe_swingup"
    """Registered task name (sim.ALL_TASKS)."""
    seed: int = 0
    """Seeds networks, replay sampling, exploration and the environment."""
    randomize: bool = False
    """Domain randomization of the training environment (ranges in `randomization`)."""
    randomization: Randomization = field(default_factory=Randomization)
    """Domain randomization ranges, used where `randomize` is true (training) or asked for (evaluation)."""
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    """Algorithm selection."""
    sac: SACConfig = field(default_factory=SACConfig)
    """SAC core."""
    cost: CostConfig = field(default_factory=CostConfig)
    """Cost critic and constraint."""
    multiplier: MultiplierConfig = field(default_factory=MultiplierConfig)
    """Multiplier strategy parameters."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Training loop."""


def _type_name(tp: Any) -> str:
    """A readable name of an annotation: "number", "one of ['phr', 'linear']", "number or null"."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arm) for arm in typing.get_args(tp))
    if origin is Literal:
        return f"one of {list(typing.get_args(tp))}"
    if origin is tuple:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    names = {type(None): "null", float: "number", int: "integer", str: "string", bool: "true/false"}
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


def validate(cfg: Config) -> None:
    """Cross-field checks that types alone cannot express."""
    import sim  # the registry (sim.randomization above already imported the package)

    if cfg.task not in sim.TASKS:
        raise ConfigError(f"task: unknown task {cfg.task!r}; valid tasks: {', '.join(sim.ALL_TASKS)}")
    for key, value, low, high, low_open, high_open in _ranges(cfg):
        below = value < low or (low_open and value == low)
        above = value > high or (high_open and value == high)
        if below or above:
            raise ConfigError(f"{key} must be {_interval(low, high, low_open, high_open)}, got {value}")
    for key, widths in {"sac.hidden": cfg.sac.hidden, "multiplier.hidden": cfg.multiplier.hidden}.items():
        if not widths or min(widths) < 1:
            raise ConfigError(f"{key} must list one or more layer widths >= 1, got {list(widths)}")
    if cfg.sac.log_std_min >= cfg.sac.log_std_max:
        raise ConfigError(f"sac.log_std_min ({cfg.sac.log_std_min}) must be < sac.log_std_max ({cfg.sac.log_std_max})")
    if cfg.train.learning_starts >= cfg.train.total_steps:
        raise ConfigError(
            f"train.learning_starts ({cfg.train.learning_starts}) must be < train.total_steps "
            f"({cfg.train.total_steps}): the run would make no update"
        )
    if cfg.train.buffer_size < cfg.sac.batch_size:
        raise ConfigError(
            f"train.buffer_size ({cfg.train.buffer_size}) must be >= sac.batch_size ({cfg.sac.batch_size})"
        )
    _check_device(cfg.train.device)
    d = cfg.cost.threshold
    if d is not None and not (d >= 0 and (cfg.cost.critic == "sum" or d < 1)):  # finite: checked on loading
        bound = ">= 0" if cfg.cost.critic == "sum" else "in [0, 1) for the first_violation critic (its range)"
        raise ConfigError(f"cost.threshold must be {bound}, got {d}")
    if cfg.train.learning_starts < cfg.sac.batch_size:
        raise ConfigError(
            f"train.learning_starts ({cfg.train.learning_starts}) must be >= sac.batch_size ({cfg.sac.batch_size})"
        )
    network = cfg.algo.name in ("fac", "sac_alam")
    if not network and (cfg.algo.actor_penalty or cfg.algo.multiplier_update):
        raise ConfigError(
            f"algo.actor_penalty / algo.multiplier_update apply to network multipliers (fac, sac_alam), "
            f"not to {cfg.algo.name}"
        )


def _ranges(cfg: Config) -> list[tuple[str, float, float, float, bool, bool]]:
    """(key, value, low, high, low open, high open) of every numeric field: the allowed range of each."""
    inf = math.inf
    s, c, m, t = cfg.sac, cfg.cost, cfg.multiplier, cfg.train
    rows = [
        ("seed", cfg.seed, 0, inf, False, False),
        ("sac.gamma", s.gamma, 0.0, 1.0, True, True),
        ("sac.reward_scale", s.reward_scale, 0.0, inf, True, False),
        ("sac.tau", s.tau, 0.0, 1.0, True, False),
        ("sac.batch_size", s.batch_size, 1, inf, False, False),
        ("sac.actor_lr", s.actor_lr, 0.0, inf, True, False),
        ("sac.critic_lr", s.critic_lr, 0.0, inf, True, False),
        ("sac.alpha_lr", s.alpha_lr, 0.0, inf, True, False),
        ("sac.init_alpha", s.init_alpha, 0.0, inf, True, False),
        ("cost.gamma", c.gamma, 0.0, 1.0, True, True),
        ("multiplier.lr", m.lr, 0.0, inf, True, False),
        ("multiplier.penalty_coef", m.penalty_coef, 0.0, inf, True, False),
        ("multiplier.dual_interval", m.dual_interval, 1, inf, False, False),
        ("multiplier.target_tau", m.target_tau, 0.0, 1.0, True, False),
        ("multiplier.lambda_max", m.lambda_max, 0.0, inf, True, False),
        ("multiplier.scalar_init", m.scalar_init, 0.0, inf, False, False),
        ("multiplier.scalar_lr", m.scalar_lr, 0.0, inf, False, False),  # 0: a PID without its I term
        ("multiplier.pid_kp", m.pid_kp, 0.0, inf, False, False),
        ("multiplier.pid_kd", m.pid_kd, 0.0, inf, False, False),
        ("multiplier.pid_delta_decay", m.pid_delta_decay, 0.0, 1.0, False, True),
        ("train.total_steps", t.total_steps, 1, inf, False, False),
        ("train.learning_starts", t.learning_starts, 0, inf, False, False),
        ("train.buffer_size", t.buffer_size, 1, inf, False, False),
        ("train.updates_per_step", t.updates_per_step, 1, inf, False, False),
        ("train.eval_every", t.eval_every, 1, inf, False, False),
        ("train.eval_episodes", t.eval_episodes, 1, inf, False, False),
        ("train.checkpoint_every", t.checkpoint_every, 1, inf, False, False),
        ("train.log_every", t.log_every, 1, inf, False, False),
        ("train.probe_size", t.probe_size, 1, inf, False, False),
        ("train.risk_horizon", t.risk_horizon, 1, inf, False, False),
        ("train.risk_window", t.risk_window, 1, inf, False, False),
        ("train.threads", t.threads, 1, 1024, False, False),
    ]
    if m.dual_decay is not None:
        rows.append(("multiplier.dual_decay", m.dual_decay, 0.0, 1.0, False, True))
    return rows


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    if high == math.inf:
        return f"{'>' if low_open else '>='} {low:g}"
    return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def _check_device(device: str) -> None:
    """cpu, or cuda / cuda:N (whether this machine has that GPU is checked when training starts:
    `check_device_available`, so a sweep can be written on one machine for another)."""
    if device == "cpu":
        return
    import torch  # only for a GPU device: the config module itself does not need torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"train.device: {device!r} is not a torch device; use cpu or cuda[:N]") from None
    if parsed.type != "cuda":
        raise ConfigError(f"train.device must be cpu or cuda[:N], got {device!r}")


def check_device_available(device: str) -> None:
    """Raises ConfigError (naming train.device) if torch cannot use `device` on this machine."""
    if device == "cpu":
        return
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = torch.device(device).index or 0
    if index >= count:
        raise ConfigError(
            f"train.device is {device!r} but torch sees {count} CUDA GPU(s) on this machine; use cpu"
            + (f" or cuda:0..{count - 1}" if count else "")
        )


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
