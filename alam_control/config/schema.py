"""The run configuration's schema: one frozen dataclass per concern, a one-line docstring under every field.

`alam_control.config.loading` reads YAML into these classes strictly and `alam_control.config.validation` checks
what types alone cannot; `alam_control.config` re-exports all three.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

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
    units of the task's own value scale: the same rho and lambda_max work on a cart-pole (|Q| 23-53 over training)
    and on the diff-drive robot (|Q| 1.7-2.5), and sac.reward_scale changes the critic's numbers but not the
    trade-off."""

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
