"""The training loop: rollout -> buffer -> agent.update -> evaluate / checkpoint / log.

`train` reads top to bottom as that loop; what it writes (config.yaml, train.csv, eval.csv, tb/, checkpoint.pt,
best.pt, summary.json) is the run directory format of `alam_control.learn.rundir`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import sim
from alam_control import config as config_lib
from alam_control.config import Config
from alam_control.learn import checkpoint, cpu, metrics, rundir
from alam_control.learn.agent import Agent
from alam_control.learn.buffer import ReplayBuffer

EVAL_SEED_OFFSET = 1_000_000  # evaluation episodes never share seeds with training episodes
THREAD_CHECK_EVERY = 500  # steps between two thread decisions (~5 s of training at 100 steps/s)


def cost_threshold_for(cfg: Config, env: sim.SafeEnv) -> float:
    """d: the config's override; else gamma_c^H for the 'first_violation' critic (the next violation at least
    H = train.risk_horizon steps away), the task's declared cost_threshold for the 'sum' critic."""
    if cfg.cost.threshold is not None:
        return cfg.cost.threshold
    if cfg.cost.critic == "first_violation":
        return cfg.cost.gamma**cfg.train.risk_horizon
    return env.spec.cost_threshold


def build_agent(cfg: Config, env: sim.SafeEnv, generator: torch.Generator) -> Agent:
    """The agent for ``cfg`` on ``env`` (networks initialised from ``cfg.seed``)."""
    torch.manual_seed(cfg.seed)  # initial weights only; every later draw goes through ``generator``
    obs_dim = env.observation_space.shape[0]
    act_dim = env.action_space.shape[0]
    return Agent(obs_dim, act_dim, cfg, cost_threshold_for(cfg, env), generator, cfg.train.device)


def evaluate(
    agent: Agent,
    env: sim.SafeEnv,
    episodes: int,
    seed: int,
    risk_horizon: int,
    on_frame: Callable[[sim.SafeEnv], None] | None = None,
    deterministic: bool = True,
) -> dict[str, float]:
    """The deterministic policy (``deterministic`` False: actions sampled, as in training) for ``episodes``
    episodes seeded ``seed, seed+1, ...``.

    Returns:
        ``return`` and ``cost`` (means per episode), ``violation_rate`` (fraction of steps with c > 0),
        ``lambda_mean`` (mean lambda over visited states) and ``risk_auroc`` (lambda(s_t) as a score for a
        violation within the next ``risk_horizon`` steps; NaN when no step or every step is labelled positive).
    """
    returns, costs, lams, labels = [], [], [], []
    steps = violations = 0
    for ep in range(episodes):
        episode = sim.run_episode(env, lambda obs: agent.act(obs, deterministic=deterministic), seed + ep, on_frame)
        # One batched forward per episode for lambda(s_t) instead of one per step.
        lams.append(agent.lambdas(episode.obs).cpu().numpy())
        labels.append(metrics.upcoming_violation_labels(episode.costs, risk_horizon))
        returns.append(episode.ret)
        costs.append(episode.cost)
        steps += len(episode.costs)
        violations += int((episode.costs > 0).sum())
    return {
        "return": float(np.mean(returns)),
        "cost": float(np.mean(costs)),
        "violation_rate": violations / max(steps, 1),
        "lambda_mean": float(np.concatenate(lams).mean()),
        "risk_auroc": metrics.auroc(np.concatenate(lams), np.concatenate(labels)),
    }


def replay_risk(agent: Agent, buffer: ReplayBuffer, horizon: int, window: int) -> dict[str, float]:
    """lambda(s) as a risk score on the last ``window`` replay states, labelled "a violation within ``horizon``
    steps" from what the (recent, exploring) policy then did.

    Unlike the deterministic evaluation, whose risk_auroc is NaN once a policy stops violating, these states keep
    both classes while exploration still finds the constraint, so calibration stays measurable when the policy
    is safe.

    Returns:
        ``replay_risk_auroc``, ``replay_positive_share``, ``replay_reliability_monotone`` and
        ``replay_cap_share`` (share with lambda >= 0.95 lambda_max), see :func:`metrics.risk_quality`.
    """
    if not agent.constrained or len(buffer) == 0:
        return {}
    obs, cost, ends = buffer.recent(window)
    labels = metrics.upcoming_violation_labels(cost, horizon, ends)
    lam = agent.lambdas(obs).cpu().numpy()
    quality = metrics.risk_quality(lam, labels, cap=agent.cfg.multiplier.lambda_max)
    return {f"replay_{k}": v for k, v in quality.items()}


@dataclass
class LoopState:
    """The training loop's counters. Checkpoints store it as a plain dict (``dataclasses.asdict``: they hold only
    tensors and plain containers, see `checkpoint`); :meth:`from_dict` reads it back."""

    step: int = 0
    """Env steps taken."""
    episodes: int = 0
    """Training episodes finished."""
    ep_return: float = 0.0
    """Return of the episode in progress, so far."""
    ep_cost: float = 0.0
    """Cost of the episode in progress, so far."""
    train_cost: float = 0.0
    """Cost incurred while training, all episodes (DESIGN.md section 7 ``train_cost``)."""
    wall: float = 0.0
    """Training wall time in seconds, summed over every attempt of the run (resumes included)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoopState:
        """The inverse of ``dataclasses.asdict``; a key missing from an older checkpoint takes its default."""
        return cls(**{f.name: data.get(f.name, f.default) for f in dataclasses.fields(cls)})


class TrainLog:
    """What the loop reports, kept out of its body: the update metrics and finished episodes gathered between two
    train.csv rows, the eval.csv rows, the progress bar, and the wall clock (continued across resumes)."""

    def __init__(self, run_dir: Path, loop: LoopState, resume: bool, total_steps: int, progress: bool):
        self.logger = rundir.RunLogger(run_dir, loop.step if resume else None)
        self.bar = _progress_bar(total_steps, loop.step, progress)
        self.pending: dict[str, list[torch.Tensor]] = {}
        """Update metric -> its value at each update since the last train.csv row (averaged into the row)."""
        self.recent: list[tuple[float, float]] = []
        """(return, cost) of the episodes finished since the last train.csv row."""
        self.t_start, self.step_at_start, self.wall_before = time.perf_counter(), loop.step, loop.wall

    def wall(self) -> float:
        """Training wall time so far: earlier attempts' plus this one's."""
        return self.wall_before + time.perf_counter() - self.t_start

    def add_update(self, scalars: dict[str, torch.Tensor]) -> None:
        """The metrics of one ``agent.update`` (0-d tensors, averaged at the next train.csv row)."""
        for k, v in scalars.items():
            self.pending.setdefault(k, []).append(v)

    def add_episode(self, ret: float, cost: float) -> None:
        """A finished training episode's return and cost."""
        self.recent.append((ret, cost))

    def train_row(self, loop: LoopState, env: sim.SafeEnv, threads: int) -> None:
        """A train.csv row at ``loop.step``: the mean of each update metric and of the finished episodes since the
        previous row (none before learning starts), the run's train_cost, the current episode's randomization draw,
        the throughput and the torch threads in use."""
        if not self.pending:
            return
        wall = self.wall()
        scalars = {k: float(torch.stack(v).mean()) for k, v in self.pending.items()}
        if self.recent:
            scalars["episode_return"] = float(np.mean([r for r, _ in self.recent]))
            scalars["episode_cost"] = float(np.mean([c for _, c in self.recent]))
        scalars["train_cost"] = loop.train_cost
        if env.randomization is not None:  # the current episode's draw, as mean scale per parameter kind
            scalars.update({f"dr_{k}": v for k, v in sim.randomization.summarize(env.randomization).items()})
        scalars["steps_per_s"] = (loop.step - self.step_at_start) / max(time.perf_counter() - self.t_start, 1e-9)
        scalars["wall_s"] = wall
        scalars["threads"] = threads
        self.logger.write("train", loop.step, scalars)
        self.bar.set_postfix(
            ret=f"{scalars.get('episode_return', math.nan):.1f}",
            cost=f"{scalars.get('episode_cost', math.nan):.1f}",
            lam=f"{scalars.get('lambda', 0.0):.3g}",
            refresh=False,
        )
        self.pending.clear()
        self.recent.clear()

    def eval_row(self, step: int, result: dict[str, float]) -> dict[str, float]:
        """An eval.csv row; returns it with its step (the form checkpoints keep the evaluations in)."""
        self.logger.write("eval", step, result)
        self.bar.write(
            f"eval @ {step}: return {result['return']:.1f}  cost {result['cost']:.1f}  "
            f"violation_rate {result['violation_rate']:.3f}  lambda_probe {result['lambda_probe']:.3g}"
        )
        return {"step": step, **result}

    def tick(self) -> None:
        """One env step done (the progress bar)."""
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
        self.logger.close()


def train(cfg: Config, run_dir: str | Path, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train ``cfg`` in ``run_dir``; with ``resume`` continue bit-exactly from its latest checkpoint.

    Returns:
        The final summary (also written to ``summary.json``).
    """
    config_lib.check_device_available(cfg.train.device)
    with cpu.training_settings(cfg.train.threads):
        return _train(cfg, Path(run_dir), resume, progress)


def _train(cfg: Config, run_dir: Path, resume: bool, progress: bool) -> dict[str, Any]:
    """`train`'s body, under `cpu.training_settings`."""
    tc = cfg.train
    if not resume and checkpoint.is_run(run_dir):
        raise FileExistsError(f"{run_dir} already holds a run; pass --resume to continue it or pick another --run-dir")
    run_dir.mkdir(parents=True, exist_ok=True)

    env = sim.load(cfg.task, seed=cfg.seed, randomize=cfg.randomization if cfg.randomize else False)
    eval_env = sim.load(cfg.task, seed=cfg.seed + EVAL_SEED_OFFSET)
    generator = torch.Generator().manual_seed(cfg.seed)
    agent = build_agent(cfg, env, generator)
    act_dim = env.action_space.shape[0]
    buffer = ReplayBuffer(min(tc.buffer_size, tc.total_steps), env.observation_space.shape[0], act_dim, tc.device)
    loop, evals, probe = LoopState(), [], None
    if resume:
        loop, evals, probe, obs = _restore(cfg, run_dir, agent, buffer, generator, env)
    else:
        obs, _ = env.reset(seed=cfg.seed)
    config_lib.save(cfg, run_dir / rundir.CONFIG)
    log = TrainLog(run_dir, loop, resume, tc.total_steps, progress)
    governor = cpu.ThreadGovernor(tc.threads) if tc.adapt_threads else None

    while loop.step < tc.total_steps:
        if loop.step < tc.learning_starts:
            action = (torch.rand(act_dim, generator=generator) * 2.0 - 1.0).numpy()
        else:
            action = agent.act(obs)
        next_obs, reward, cost, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, reward, cost, next_obs, terminated)
        loop.ep_return += reward
        loop.ep_cost += cost
        loop.train_cost += cost
        obs = next_obs
        if terminated or truncated:
            log.add_episode(loop.ep_return, loop.ep_cost)
            loop.episodes += 1
            loop.ep_return = loop.ep_cost = 0.0
            obs, _ = env.reset()
        loop.step += 1

        if loop.step == tc.learning_starts:
            probe = _start_learning(cfg, agent, buffer, generator)
        if loop.step >= tc.learning_starts:
            for _ in range(tc.updates_per_step):
                log.add_update(agent.update(buffer.sample(cfg.sac.batch_size, generator)))
        if governor is not None and loop.step % THREAD_CHECK_EVERY == 0:
            governor.update()
        if loop.step % tc.log_every == 0:
            log.train_row(loop, env, torch.get_num_threads())
        if loop.step % tc.eval_every == 0 or loop.step == tc.total_steps:
            result = _evaluation(cfg, agent, eval_env, buffer, probe)
            evals.append(log.eval_row(loop.step, {**result, "train_cost": loop.train_cost}))
            if is_new_best(evals):  # the weights `alam export --checkpoint best` ships
                checkpoint.save_best(_best_snapshot(cfg, agent, loop, evals), run_dir)
        if loop.step % tc.checkpoint_every == 0 or loop.step == tc.total_steps:
            loop.wall = log.wall()
            checkpoint.save(_snapshot(cfg, agent, buffer, generator, env, obs, loop, evals, probe), run_dir)
        log.tick()
    log.close()

    summary = summarize(evals, loop, cfg, agent.precision)
    rundir.write_summary(run_dir, summary)
    return summary


def _restore(
    cfg: Config, run_dir: Path, agent: Agent, buffer: ReplayBuffer, generator: torch.Generator, env: sim.SafeEnv
) -> tuple[LoopState, list[dict[str, float]], torch.Tensor | None, np.ndarray]:
    """Load the latest checkpoint into the agent, buffer, generator and env (after `rundir.check_resumable`).

    Returns:
        (loop state, evaluations so far, probe states [P, O] or None before learning started, current obs [O]).
    """
    state, path = checkpoint.load_latest(run_dir)
    rundir.check_resumable(cfg, state, path)
    agent.load_state_dict(state["agent"])
    buffer.load_state_dict(state["buffer"])
    generator.set_state(state["generator"])
    env.set_state(state["env"])
    loop = LoopState.from_dict(state["loop"])
    print(f"resumed {run_dir} from {path.name} at step {loop.step}")
    return loop, list(state["evals"]), state["probe"], state["obs"].numpy()


def _start_learning(cfg: Config, agent: Agent, buffer: ReplayBuffer, generator: torch.Generator) -> torch.Tensor:
    """At ``train.learning_starts``: fit the observation normalizer (if on) to the random-action buffer and draw the
    fixed probe set of states whose mean lambda is ``lambda_probe`` (DESIGN.md section 7).

    Returns:
        The probe states [train.probe_size, O].
    """
    if cfg.sac.normalize_obs:
        agent.obs_norm.fit(buffer.observations())
    idx = torch.randperm(len(buffer), generator=generator)[: cfg.train.probe_size]
    return buffer.observations()[idx].clone()


def _evaluation(
    cfg: Config, agent: Agent, eval_env: sim.SafeEnv, buffer: ReplayBuffer, probe: torch.Tensor | None
) -> dict[str, float]:
    """One eval.csv row: :func:`evaluate` on the evaluation seeds, ``lambda_probe`` and :func:`replay_risk`."""
    tc = cfg.train
    result = evaluate(agent, eval_env, tc.eval_episodes, cfg.seed + EVAL_SEED_OFFSET, tc.risk_horizon)
    result["lambda_probe"] = float(agent.lambdas(probe).mean()) if probe is not None else 0.0
    result.update(replay_risk(agent, buffer, tc.risk_horizon, tc.risk_window))
    return result


def is_new_best(evals: list[dict[str, float]], bar: float = rundir.SAFE_VIOLATION_RATE) -> bool:
    """Is the last evaluation safe (violation rate <= ``bar``) with a higher return than every earlier safe one?

    Why keep it: a constrained policy still changes from one evaluation to the next (the evidence grid's cart-pole
    `sac_alam` evaluated 125-371 over its last 20k steps at 0 violations; a re-run reached 402-407 at 48-54k and
    ended at 347 at 0.045), so the last checkpoint is where training stopped, not the best policy it found. The
    pick rests on a few evaluation episodes: a bundle's figures come from `alam calibrate` / `alam eval --bundle`
    on other episodes.
    """
    *before, last = evals
    if not last["violation_rate"] <= bar:
        return False
    return all(e["return"] < last["return"] for e in before if e["violation_rate"] <= bar)


def _best_snapshot(cfg: Config, agent: Agent, loop: LoopState, evals: list[dict[str, float]]) -> dict[str, Any]:
    """What loading and exporting need of a checkpoint: all of best.pt, and the part of `_snapshot` it shares."""
    return {
        "config": config_lib.to_dict(cfg),
        "config_hash": config_lib.config_hash(cfg),
        "agent": agent.state_dict(),
        "loop": dataclasses.asdict(loop),
        "evals": list(evals),
    }


def _snapshot(
    cfg: Config,
    agent: Agent,
    buffer: ReplayBuffer,
    generator: torch.Generator,
    env: sim.SafeEnv,
    obs: np.ndarray,
    loop: LoopState,
    evals: list[dict[str, float]],
    probe: torch.Tensor | None,
) -> dict[str, Any]:
    """Everything a bit-exact resume needs, as tensors and plain containers (see `checkpoint`)."""
    return {
        **_best_snapshot(cfg, agent, loop, evals),
        "buffer": buffer.state_dict(),
        "generator": generator.get_state(),
        "env": env.get_state(),
        "obs": torch.as_tensor(obs),
        "probe": probe,
    }


def summarize(evals: list[dict[str, float]], loop: LoopState, cfg: Config, precision: str) -> dict[str, Any]:
    """Final metrics: the last evaluation plus lambda_osc, cost_osc, train_violation_osc, train_cost, wall time and
    the update's matmul precision as run (``train.precision`` resolved)."""
    final = evals[-1] if evals else {}
    return {
        "task": cfg.task,
        "algo": cfg.algo.name,
        "seed": cfg.seed,
        "steps": loop.step,
        **{k: v for k, v in final.items() if k != "step"},
        "lambda_osc": metrics.lambda_osc([e["lambda_probe"] for e in evals]),
        "cost_osc": metrics.cost_osc([e["cost"] for e in evals]),
        "train_violation_osc": metrics.train_violation_osc(
            [e["step"] for e in evals], [e.get("train_cost", math.nan) for e in evals]
        ),
        "train_cost": loop.train_cost,
        "wall_time_s": loop.wall,
        "precision": precision,
    }


def _progress_bar(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, dynamic_ncols=True, unit="step", smoothing=0.05)
