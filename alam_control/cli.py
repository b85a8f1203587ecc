"""The ``alam`` command: ``alam train``, ``alam eval``, ``alam export``, ``alam calibrate``, ``alam bundle``,
``alam riskmap``, ``alam sweep`` and ``alam report``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from alam_control import strict_json

if TYPE_CHECKING:
    import sim
    from alam_control.config import Config

# Spelled out for the help texts: `rundir` loads the config package and sim (~0.8 s), too much for `alam --help`;
# tests/alam_control/test_cli.py holds it equal to `rundir.SAFE_VIOLATION_RATE`.
SAFE_RATE = 0.005


def _train(args: argparse.Namespace) -> int:
    from alam_control import config as config_lib
    from alam_control.learn import rundir, trainer

    run_dir = Path(args.run_dir) if args.run_dir else None
    if args.config:
        cfg = config_lib.load(args.config, args.set)
    elif args.resume and run_dir and (run_dir / rundir.CONFIG).exists():
        cfg = config_lib.load(run_dir / rundir.CONFIG, args.set)
    elif args.resume and run_dir:
        what = "does not exist" if not run_dir.exists() else f"holds no {rundir.CONFIG}: not a run directory"
        raise FileNotFoundError(f"--resume --run-dir {run_dir}: {what}")
    else:
        raise SystemExit("alam train: --config is required (or --resume --run-dir DIR of an existing run)")
    if run_dir is None:
        stem = Path(args.config).stem if args.config else "run"
        run_dir = Path("runs") / f"{stem}-s{cfg.seed}"
    summary = trainer.train(cfg, run_dir, resume=args.resume, progress=not args.no_progress)
    print(json.dumps(strict_json(summary), indent=2, allow_nan=False))
    print(f"run directory: {run_dir}")
    return 0


def _int_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
    return value


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (an episode count of 0 is a mistake, not an empty result)."""
    return _int_at_least(text, 1)


def _nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0 (where 0 means "skip")."""
    return _int_at_least(text, 0)


def _nonnegative_float(text: str) -> float:
    """argparse type: a finite number >= 0 (seconds, standard errors)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value >= 0.0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _writable_file(text: str) -> str:
    """argparse type: a file path whose folder exists (checked before any work, not after it)."""
    folder = Path(text).expanduser().parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"folder {folder} does not exist")
    return text


def _figure_file(text: str) -> str:
    """argparse type: an image path whose folder exists, in a format matplotlib writes; no suffix means PNG (the
    path is returned with it, so what is reported is the file written)."""
    _writable_file(text)
    path = Path(text)
    if not path.suffix:
        return f"{text}.png"
    from matplotlib.figure import Figure

    formats = Figure().canvas.get_supported_filetypes()
    if path.suffix[1:].lower() not in formats:
        raise argparse.ArgumentTypeError(
            f"{path.suffix} is not an image format matplotlib writes: {', '.join(formats)}"
        )
    return text


MONITOR_FLAGS = ("fallback", "risk_high", "risk_low", "engage_ticks", "release_dwell_s", "stall_s", "recover_s")
"""`alam eval` options that only act with --monitor. None in the parser, so a given one can be told from a default:
MonitorConfig.from_manifest fills the monitor's own defaults, calibration.rollout the fallback's."""


def _eval(args: argparse.Namespace) -> int:
    given = [f"--{k.replace('_', '-')}" for k in MONITOR_FLAGS if getattr(args, k) is not None]
    if given and not args.monitor:
        raise ValueError(f"{', '.join(given)} act(s) only with --monitor (and --bundle)")
    if args.bundle:
        if args.checkpoint:
            raise ValueError("--checkpoint picks a run's weights: use it with --run-dir (a bundle holds one set)")
        return _eval_bundle(args)
    if args.monitor:
        raise ValueError("--monitor evaluates an exported bundle: pass --bundle (see `alam export`)")
    if args.plot:
        raise ValueError("--plot draws a bundle's episodes in its state slice: pass --bundle (see `alam export`)")
    import sim
    from alam_control.learn import rundir, trainer

    def make_env(cfg: Config) -> sim.SafeEnv:  # evaluation seeds; the run's ranges if randomized
        ranges = _eval_ranges(args, cfg.randomization)
        return sim.load(cfg.task, seed=cfg.seed + trainer.EVAL_SEED_OFFSET, randomize=ranges if ranges else False)

    # The config the weights were trained with, not an edited yaml.
    run = rundir.load_run(args.run_dir, make_env, which=args.checkpoint or "latest")
    cfg, agent, env = run.config, run.agent, run.env
    frames: list = []
    on_frame = None
    if args.video:
        from alam_control.deploy.calibration import overlay

        def on_frame(e: sim.SafeEnv) -> None:  # the policy alone: lambda(s) of the frame's state
            lam = float(agent.lambdas(e.observe()[None])[0])
            frames.append(overlay(e.render(height=240, width=320), f"POLICY  lambda {lam:.3g}"))

    seed = cfg.seed + trainer.EVAL_SEED_OFFSET if args.seed is None else args.seed
    result = trainer.evaluate(agent, env, args.episodes, seed, cfg.train.risk_horizon, on_frame)
    result = {"checkpoint": str(run.path), "step": run.state["loop"]["step"], "episodes": args.episodes, **result}
    if args.video:
        import imageio.v2 as imageio

        imageio.mimsave(args.video, frames, fps=round(1.0 / env.spec.control_timestep))
        result["video"] = args.video
    print(json.dumps(strict_json(result), indent=2, allow_nan=False))
    return 0


def _eval_ranges(args: argparse.Namespace, training: sim.Randomization) -> sim.Randomization | None:
    """The randomization an evaluation runs under: None (nominal), or the training ranges (a run's config; a
    bundle's manifest) widened by --randomize-width."""
    if args.randomize_width is not None and args.randomize_width < 1.0:
        raise ValueError(f"--randomize-width must be >= 1 (the training ranges or wider), got {args.randomize_width}")
    if not args.randomize and args.randomize_width is None:
        return None
    return training.widened(args.randomize_width or 1.0)


def _eval_bundle(args: argparse.Namespace) -> int:
    from alam_control.deploy import calibration
    from alam_control.runtime import MonitorConfig, load_bundle, risk_signal_caveats
    from alam_control.runtime.bundle import thresholds_outside

    bundle = load_bundle(args.bundle)
    monitor = None
    if args.monitor:
        overrides = {k: getattr(args, k) for k in MONITOR_FLAGS if k != "fallback"}
        try:
            monitor = MonitorConfig.from_manifest(bundle.manifest, overrides)
        except ValueError as err:  # the message names the field: --risk-high for risk_high, and so on
            raise ValueError(f"{args.bundle}: {err}") from None
        for problem in thresholds_outside(bundle.manifest, monitor.risk_high, monitor.risk_low):  # run here anyway
            print(f"note: {problem}: the monitor never (or always) engages; the ROS node refuses it without "
                  "allow_unsafe_parameters", file=sys.stderr)  # fmt: skip
    seed = calibration.EVAL_SEED if args.seed is None else args.seed

    ranges = _eval_ranges(args, calibration.training_ranges(bundle.manifest))
    frames: list = []

    def on_frame(env: sim.SafeEnv, tick) -> None:  # the state, and the risk and mode the controller decided there
        text = f"{tick.label}  {bundle.risk_signal} {tick.risk:.3g}"
        frames.append(calibration.overlay(env.render(height=240, width=320), text, tick.mode != "POLICY"))

    from alam_control.runtime import default_fallback

    fallback = args.fallback or default_fallback(bundle.manifest)
    data = calibration.rollout(bundle, args.episodes, seed, ranges or False, monitor, fallback,
                               on_frame=on_frame if args.video else None)  # fmt: skip
    result = {"bundle": args.bundle, "monitor": bool(monitor), "fallback": fallback if monitor else None,
              # What the monitor ran with: the manifest's calibrated thresholds and dwell unless overridden.
              "monitor_settings": dataclasses.asdict(monitor) if monitor else None,
              # What the calibration says the monitor's risk signal cannot do (runtime.risk_signal_caveats).
              "monitor_caveats": risk_signal_caveats(bundle.manifest) if monitor else None,
              "episodes": args.episodes, "randomize_width": (args.randomize_width or 1.0) if ranges else None,
              **data.summary()}  # fmt: skip
    if args.plot:
        rows = data.map_rows(float(bundle.manifest["control_period_s"]))
        from alam_control.deploy import riskmap

        view = riskmap.SLICES.get(bundle.manifest["task"])
        drawn = calibration.plot_map(rows, data.layouts, data.goals, args.plot, view) if rows else None
        result["map"] = str(drawn) if drawn else f"no map: no state slice for {bundle.manifest['task']}"
    if args.video:
        import imageio.v2 as imageio

        imageio.mimsave(args.video, frames, fps=round(1.0 / float(bundle.manifest["control_period_s"])))
        result["video"] = args.video
    print(json.dumps(strict_json(result), indent=2, allow_nan=False))
    return 0


def _export(args: argparse.Namespace) -> int:
    from alam_control.deploy import export

    manifest = export.export(args.run_dir, args.out, risk_signal=args.risk_signal, which=args.checkpoint)
    keys = ("task", "algo", "obs_dim", "act_dim", "checkpoint", "train_step", "files")
    print(json.dumps({k: manifest[k] for k in keys}, indent=2))
    print(f"bundle written to {args.out}")
    return 0


MOSTLY_FALLBACK = 0.25
"""A fallback share behind the monitor above which `alam calibrate` says so in words (`make demo`'s bar, issue 12)."""


def _monitor_costs_much(loop: dict) -> bool:
    """The closed-loop check's monitor hands the fallback more than `MOSTLY_FALLBACK` of the steps, or keeps less
    than half the policy's own (positive) return: the evidence grid's walker kept 43 of 612 at a 6 % share, since
    one handover to `stop` and it falls."""
    alone = loop["alone_return"]
    return loop["fallback_share"] > MOSTLY_FALLBACK or (alone > 0 and loop["return"] < 0.5 * alone)


def _calibrate(args: argparse.Namespace) -> int:
    from alam_control.deploy import calibration
    from alam_control.runtime import read_manifest, risk_signal_caveats

    if args.no_randomize and args.randomize_width is not None:
        raise ValueError("--randomize-width widens the training ranges: it cannot go with --no-randomize")
    result = calibration.calibrate(args.bundle, args.episodes, args.recall, not args.no_randomize, args.horizon,
                                   hysteresis=args.hysteresis, width=args.randomize_width or 1.0,
                                   max_flag_ratio=args.max_flag_ratio, closed_loop_episodes=args.closed_loop_episodes,
                                   fallback=args.fallback,
                                   dwells=tuple(args.dwells) if args.dwells else calibration.DWELLS,
                                   dwell_slack=args.dwell_slack)  # fmt: skip
    table, by_lead = result.pop("reliability"), result.pop("auroc_by_lead")
    loop = result.pop("closed_loop", None)
    print(json.dumps(strict_json(result), indent=2, allow_nan=False))
    signal = result["risk_signal"]
    print(f"reliability: P(violation within horizon | {signal} bin)")
    for row in table:
        print(f"  {signal} [{row['bin_low']:.3g}, {row['bin_high']:.3g}]  steps {row['steps']:6d}  "
              f"rate {row['positive_rate']:.3f}")  # fmt: skip
    print(f"how early: AUROC of {signal} for states k steps before a violation, against states with none within "
          f"{result['horizon']}")  # fmt: skip
    for row in by_lead:
        lead = f"{row['lead_low']}-{row['lead_high'] - 1}"
        print(f"  k {lead:<5}  states {row['positives']:6d}  AUROC {row['auroc']:.3f}")
    if loop is not None:
        print(f"behind this monitor ({loop['fallback']} fallback, engage_ticks {loop['engage_ticks']}, the first "
              f"{loop['episodes']} episodes again; alone: violation rate {loop['alone_violation_rate']:.4f}, "
              f"return {loop['alone_return']:.2f}):")  # fmt: skip
        for row in loop["candidates"]:
            kept = "  <- kept" if row["release_dwell_s"] == loop["release_dwell_s"] else ""
            print(f"  release_dwell_s {row['release_dwell_s']:<5g} FALLBACK {row['fallback_share']:6.1%} of the "
                  f"steps, violation rate {row['violation_rate']:.4f}, return {row['return']:.2f}{kept}")  # fmt: skip
    written = "risk_high / risk_low" + (" / release_dwell_s" if "release_dwell_s" in result else "")
    print(f"{written} written to {args.bundle}/manifest.json")
    for caveat in risk_signal_caveats(read_manifest(args.bundle)):
        print(f"warning: {caveat}")
    if not result["recall_met"]:
        print(f"note: the monitor flags {result['recall']:.1%} of the steps that precede a violation, not the "
              f"{args.recall:.0%} asked for: that would flag more than {result['flag_budget']:.1%} of all steps "
              f"(--max-flag-ratio {args.max_flag_ratio:g} x the {result['positive_rate']:.1%} that precede one). "
              f"--max-flag-ratio inf keeps the recall, and the robot in FALLBACK more.")  # fmt: skip
    if loop is not None and _monitor_costs_much(loop):
        print(f"note: behind this monitor the fallback drives {loop['fallback_share']:.0%} of the time and the "
              f"return is {loop['return']:.2f} against {loop['alone_return']:.2f} for the policy alone "
              f"({result['risk_signal']}'s AUROC {result['risk_auroc']:.2f}). A lower --recall or --max-flag-ratio "
              f"hands over less often, and catches fewer violations; a fallback the policy can resume from "
              f"(--fallback) keeps more of the return.")  # fmt: skip
    if args.plot:
        print(f"reliability diagram: {calibration.plot_reliability(table, result, args.plot, title=args.bundle)}")
    return 0


def _riskmap(args: argparse.Namespace) -> int:
    from alam_control.deploy import riskmap

    if args.label and len(args.label) != len(args.bundle):
        raise ValueError(f"{len(args.bundle)} --bundle but {len(args.label)} --label; give one label per bundle")
    from alam_control.runtime.bundle import read_manifest

    tasks = sorted({read_manifest(b)["task"] for b in args.bundle})
    if len(tasks) > 1:
        raise ValueError(f"one task per risk-map figure; these bundles are for {', '.join(tasks)}")
    labels = args.label or [Path(b).name for b in args.bundle]
    maps = [riskmap.compute(b, args.grid, args.horizon, args.seed) for b in args.bundle]
    for label, m in zip(labels, maps, strict=True):
        summary = strict_json(m.summary())
        print(json.dumps({"bundle": m.bundle, "label": label, **summary}))
    print(f"written: {riskmap.plot(maps, labels, args.out)}")
    return 0


def _bundle(args: argparse.Namespace) -> int:
    from alam_control.runtime.bundle import read_manifest, write_manifest

    # rehash: everything but the signature is checked (schema, file hashes), then the manifest is signed as is.
    manifest = read_manifest(args.bundle, verify_signature=False)
    write_manifest(Path(args.bundle), manifest)
    print(f"{args.bundle}/manifest.json validated and re-signed")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from alam_control.experiments import sweep

    spec = sweep.load(args.config, out=args.out)
    return sweep.run(spec, args.address, args.max_concurrent, args.resume, args.max_retries, args.refresh,
                     first=args.first)  # fmt: skip


def _report(args: argparse.Namespace) -> int:
    from alam_control.experiments import report

    result = report.report(args.sweep_dir, args.out)
    print(result["markdown"])
    print("written: " + ", ".join(str(p) for p in result["files"]))
    return 0


def build_parser() -> argparse.ArgumentParser:
    # The runtime without a bundle costs ~65 ms to import (no torch, no sim), so the help names its fallbacks.
    from alam_control.runtime.fallback import FALLBACKS

    fallback_names = " | ".join(FALLBACKS)
    parser = argparse.ArgumentParser(
        prog="alam",
        description="Train safe policies with SAC-ALaM and its baselines, export them as ONNX bundles, calibrate "
        "the risk monitor, and run and report experiment grids. The usual path: train -> export -> calibrate -> "
        "eval --bundle --monitor, then run the bundle with alam_policy_node (README).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train an agent from a YAML config")
    p.add_argument("--config", help="YAML config (configs/*.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. seed=3")
    p.add_argument("--run-dir", help="output directory (default runs/<config>-s<seed>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs still written)")
    p.set_defaults(func=_train)

    p = sub.add_parser("eval", help="evaluate a run's latest checkpoint, or an exported bundle, deterministically")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--run-dir", help="training run directory (torch checkpoint)")
    source.add_argument("--bundle", help="export bundle directory (ONNX policy, as deployed)")
    p.add_argument(
        "--checkpoint",
        choices=["latest", "best"],
        default=None,
        help=f"with --run-dir: latest (default), or best (best.pt: its best evaluation at violation rate <= "
        f"{SAFE_RATE})",
    )
    p.add_argument("--monitor", action="store_true", help="with --bundle: run the risk monitor + fallback")
    p.add_argument(
        "--fallback",
        help=f"with --monitor: {fallback_names} (default: the robot's own)",
    )
    p.add_argument("--risk-high", type=float, help="with --monitor: override the manifest's risk_high")
    p.add_argument("--risk-low", type=float, help="with --monitor: override the manifest's risk_low")
    p.add_argument("--engage-ticks", type=int, help="with --monitor: ticks above risk_high before FALLBACK")
    p.add_argument("--release-dwell-s", type=float, help="with --monitor: s below risk_low before POLICY")
    p.add_argument(
        "--stall-s", type=float, help="with --monitor: s without progress before the stall recovery (0: off)"
    )
    p.add_argument("--recover-s", type=float, help="with --monitor: s the stall recovery drives")
    p.add_argument("--episodes", type=_positive_int, default=10)
    p.add_argument("--seed", type=int, default=None, help="first episode seed (default: the run's eval seeds)")
    p.add_argument("--randomize", action="store_true", help="domain randomization on (the training ranges)")
    p.add_argument(
        "--randomize-width",
        type=float,
        metavar="K",
        help="randomization K times as wide as the training ranges (implies --randomize; a bundle's: its manifest)",
    )
    p.add_argument("--video", type=_writable_file, metavar="OUT.mp4",
                   help="record the episodes (MuJoCo offscreen), each frame labelled with risk and mode")  # fmt: skip
    p.add_argument("--plot", type=_figure_file, metavar="MAP.png",
                   help="with --bundle: each episode's path in its state slice, coloured by risk")  # fmt: skip
    p.set_defaults(func=_eval)

    p = sub.add_parser("export", help="write an ONNX + manifest bundle from a run's latest checkpoint")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--out", required=True, help="bundle directory to write (replaced whole if it exists)")
    p.add_argument(
        "--risk-signal",
        choices=["lambda", "cost_q"],
        default=None,
        help="output the runtime monitor watches (default: lambda; cost_q for sac)",
    )
    p.add_argument(
        "--checkpoint",
        choices=["latest", "best"],
        default="latest",
        help=f"latest, or best: the weights of the run's best evaluation at violation rate <= {SAFE_RATE} (best.pt)",
    )
    p.set_defaults(func=_export)

    p = sub.add_parser("calibrate", help="pick risk_high/risk_low for a bundle from rollouts; writes its manifest")
    p.add_argument("--bundle", required=True)
    p.add_argument("--episodes", type=_positive_int, default=20)
    p.add_argument("--recall", type=float, default=0.9, help="share of pre-violation steps risk_high must flag")
    p.add_argument("--hysteresis", type=float, default=0.5, help="risk_low = this x risk_high (default 0.5)")
    p.add_argument(
        "--max-flag-ratio",
        type=float,
        default=2.0,
        metavar="R",
        help="false-alarm budget: flag at most R x the share of steps that precede a violation, even if the recall "
        "target is then missed (default 2; inf: no budget)",
    )
    p.add_argument("--horizon", type=_positive_int, default=20, help="H of 'a violation within the next H steps'")
    p.add_argument(
        "--closed-loop-episodes",
        type=_nonnegative_int,
        default=20,
        metavar="N",
        help="run the first N episodes again behind the new monitor and record its fallback share and violation "
        "rate (default 20; 0 skips)",
    )
    p.add_argument(
        "--fallback",
        help=f"for that check: {fallback_names} (default: the robot's own)",
    )
    p.add_argument(
        "--dwells",
        type=_nonnegative_float,
        nargs="+",
        metavar="S",
        help="candidate release dwells (s) for that check, which writes the one with the least fallback among "
        "the safest to the manifest (default 0 0.25 0.5 1 2; one value: just that)",
    )
    p.add_argument(
        "--dwell-slack",
        type=_nonnegative_float,
        default=0.0,
        metavar="K",
        help="count a dwell as safest within K standard errors of the fewest violations per episode (default 0)",
    )
    p.add_argument("--no-randomize", action="store_true", help="calibrate on the nominal model")
    p.add_argument(
        "--randomize-width",
        type=float,
        metavar="K",
        help="the training ranges K times as wide (for a policy that never violates under its own; default 1)",
    )
    p.add_argument("--plot", type=_figure_file, metavar="OUT.png", help="also draw the reliability diagram")
    p.set_defaults(func=_calibrate)

    p = sub.add_parser("bundle", help="bundle maintenance: `alam bundle rehash` re-signs a hand-edited manifest")
    p.add_argument("action", choices=["rehash"], help="rehash: validate manifest.json and sign it as it is now")
    p.add_argument("--bundle", required=True, help="bundle directory")
    p.set_defaults(func=_bundle)

    p = sub.add_parser("riskmap", help="lambda(s) of bundles over a 2-D state slice, next to the violation region")
    p.add_argument("--bundle", action="append", required=True, help="bundle directory (repeat: one row each)")
    p.add_argument("--label", action="append", help="row label per --bundle (default: the directory name)")
    p.add_argument("--out", required=True, type=_figure_file, help="PNG to write (its folder must exist)")
    p.add_argument("--grid", type=int, default=41, help="cells per axis (default 41)")
    p.add_argument("--horizon", type=int, default=20, help="H of 'a violation within the next H steps'")
    p.add_argument("--seed", type=int, default=0, help="episode seed of the scene (diff-drive pillar layout)")
    p.set_defaults(func=_riskmap)

    p = sub.add_parser("sweep", help="run a grid of training runs on Ray (local machine or cluster)")
    p.add_argument("--config", required=True, help="sweep YAML (configs/sweeps/*.yaml)")
    p.add_argument("--address", help="Ray cluster: auto or ray://host:port (default: start Ray on this machine)")
    p.add_argument("--max-concurrent", type=int, help="at most N trials at once (default: as many as CPUs allow)")
    p.add_argument("--resume", action="store_true", help="continue the sweep: skip finished trials, resume others")
    p.add_argument("--first", action="append", default=[], metavar="KEY=VALUE[,...]",
                   help="run the unfinished trials with these grid values first (e.g. task=cartpole; repeatable, in "
                   "order), after those already started")  # fmt: skip
    p.add_argument("--max-retries", type=int, default=3, help="retries of a trial whose worker died (default 3)")
    p.add_argument("--out", help="sweep directory (default: the file's out:, else runs/sweeps/<name>)")
    p.add_argument("--refresh", type=float, help="table refresh seconds (default 2 on a terminal, 30 otherwise)")
    p.set_defaults(func=_sweep)

    p = sub.add_parser("report", help="aggregate a sweep's trials: Markdown + CSV table, learning-curve PNGs")
    p.add_argument("sweep_dir", help="sweep directory (or any directory of run directories)")
    p.add_argument("--out", help="where to write report.md/.csv and curves_<task>.png (default: SWEEP_DIR)")
    p.set_defaults(func=_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from alam_control.config import ConfigError
        from alam_control.learn.checkpoint import CheckpointError

        return args.func(args)
    except ModuleNotFoundError as err:
        from alam_control import missing_train_stack

        message = missing_train_stack(err) or (str(err) if "training stack" in str(err) else None)
        if message is None:
            raise
        print(f"alam {args.command}: error: {message}", file=sys.stderr)
        return 2
    except (ConfigError, CheckpointError, FileExistsError, FileNotFoundError, ValueError) as err:
        print(f"alam {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
