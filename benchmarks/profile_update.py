"""Where one gradient update's time goes: wall time per update and a torch.profiler per-op table.

Builds the real Agent (256x256 MLPs, batch 256 by default, the throughput benchmark's setting) on random data of
the task's shapes and times ``agent.update`` alone (no environment), so the figures are the update's own cost.

    .venv/bin/python benchmarks/profile_update.py --algo sac_alam --table 15
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import sim
from alam_control import config as config_lib
from alam_control.learn.buffer import Batch
from alam_control.learn.trainer import build_agent


def make_agent(task: str, algo: str, hidden: int, batch: int, overrides: dict | None = None):
    cfg = config_lib.from_dict(
        {
            "task": task,
            "algo": {"name": algo},
            "sac": {"hidden": [hidden, hidden], "batch_size": batch},
            "multiplier": {"hidden": [hidden, hidden]},
            **(overrides or {}),
        }
    )
    env = sim.load(task, seed=0)
    agent = build_agent(cfg, env, torch.Generator().manual_seed(0))
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    g = torch.Generator().manual_seed(1)
    batch_ = Batch(
        obs=torch.randn(batch, obs_dim, generator=g),
        action=torch.rand(batch, act_dim, generator=g) * 2 - 1,
        reward=torch.rand(batch, generator=g),
        cost=(torch.rand(batch, generator=g) < 0.05).float(),
        next_obs=torch.randn(batch, obs_dim, generator=g),
        terminated=torch.zeros(batch),
    )
    return agent, batch_


def time_updates(agent, batch, n: int, repeats: int = 5) -> list[float]:
    """Median-friendly samples: ms per update over ``n`` updates, ``repeats`` times (after 20 untimed updates, which
    also compile the update under ``--compile``)."""
    for _ in range(20):
        agent.update(batch)
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(n):
            agent.update(batch)
        out.append((time.perf_counter() - t) / n * 1e3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="cartpole-safe_swingup")
    parser.add_argument("--algo", default="sac_alam")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--precision", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--table", type=int, default=0, help="print the top-N ops of a torch.profiler run")
    parser.add_argument("--compile", action="store_true", help="train.compile: the update under torch.compile")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    train = {"precision": args.precision, "compile": args.compile}
    agent, batch = make_agent(args.task, args.algo, args.hidden, args.batch, {"train": train})
    samples = time_updates(agent, batch, args.updates)
    print(
        f"{args.algo} {args.precision}{' compiled' if args.compile else ''} {args.hidden}x{args.hidden} batch "
        f"{args.batch}, {args.threads} threads: "
        f"{statistics.median(samples):.2f} ms/update (median of {len(samples)} x {args.updates}; "
        f"min {min(samples):.2f}, max {max(samples):.2f})"
    )
    if args.table:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.updates):
                agent.update(batch)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.table))


if __name__ == "__main__":
    main()
