"""The ``alam`` command: ``alam train`` and ``alam eval``."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def _train(args: argparse.Namespace) -> int:
    from alam_control import config as config_lib
    from alam_control import trainer

    run_dir = Path(args.run_dir) if args.run_dir else None
    if args.config:
        cfg = config_lib.load(args.config, args.set)
    elif args.resume and run_dir and (run_dir / "config.yaml").exists():
        cfg = config_lib.load(run_dir / "config.yaml", args.set)
    else:
        raise SystemExit("alam train: --config is required (or --resume --run-dir DIR of an existing run)")
    if run_dir is None:
        stem = Path(args.config).stem if args.config else "run"
        run_dir = Path("runs") / f"{stem}-s{cfg.seed}"
    summary = trainer.train(cfg, run_dir, resume=args.resume, progress=not args.no_progress)
    print(json.dumps(summary, indent=2))
    print(f"run directory: {run_dir}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    import torch

    import sim
    from alam_control import checkpoint, trainer
    from alam_control import config as config_lib

    run_dir = Path(args.run_dir)
    cfg = config_lib.load(run_dir / "config.yaml")
    state, path = checkpoint.load_latest(run_dir)
    env = sim.load(cfg.task, seed=cfg.seed + trainer.EVAL_SEED_OFFSET, randomize=cfg.randomization if args.randomize else False)
    agent = trainer.build_agent(cfg, env, torch.Generator().manual_seed(cfg.seed))
    agent.load_state_dict(state["agent"])
    frames: list = []
    on_frame = (lambda e: frames.append(e.render(height=240, width=320))) if args.video else None
    seed = cfg.seed + trainer.EVAL_SEED_OFFSET if args.seed is None else args.seed
    result = trainer.evaluate(agent, env, args.episodes, seed, cfg.train.risk_horizon, on_frame)
    result = {"checkpoint": str(path), "step": state["loop"]["step"], "episodes": args.episodes, **result}
    if args.video:
        import imageio.v2 as imageio

        imageio.mimsave(args.video, frames, fps=round(1.0 / env.spec.control_timestep))
        result["video"] = args.video
    print(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in result.items()}, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alam", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train an agent from a YAML config")
    p.add_argument("--config", help="YAML config (configs/*.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. seed=3")
    p.add_argument("--run-dir", help="output directory (default runs/<config>-s<seed>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs still written)")
    p.set_defaults(func=_train)

    p = sub.add_parser("eval", help="evaluate the latest checkpoint of a run deterministically")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=None, help="first episode seed (default: the run's eval seeds)")
    p.add_argument("--randomize", action="store_true", help="domain randomization on")
    p.add_argument("--video", metavar="OUT.mp4", help="record the episodes (MuJoCo offscreen rendering)")
    p.set_defaults(func=_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from alam_control.checkpoint import CheckpointError
    from alam_control.config import ConfigError

    try:
        return args.func(args)
    except (ConfigError, CheckpointError, FileExistsError, ValueError) as err:
        print(f"alam {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
