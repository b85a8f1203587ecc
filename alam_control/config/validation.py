"""Cross-field checks of a run configuration that types alone cannot express: the task exists, every number in
its range, layer widths, learning starts within the budget, the device."""

from __future__ import annotations

import math

from alam_control.config.schema import Config, ConfigError


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
