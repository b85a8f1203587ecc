"""Helpers shared by the nodes: parameter declaration with descriptors, QoS profiles, signal-safe spinning."""

from __future__ import annotations

import math
import signal
from collections.abc import Callable
from typing import Any

import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterException, ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

# Sensor inputs: best effort, keep last 1 (a late reading is worthless, a queue only adds latency). A best-effort
# subscription matches both reliable and best-effort publishers.
SENSOR_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)
# Commands: reliable, keep last 1 (ros2_control's controllers subscribe reliable).
COMMAND_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
# Goals: reliable; the goal publisher may be transient-local (a volatile subscription matches both).
GOAL_QOS = COMMAND_QOS
# A goal publisher: transient-local, so a node that starts later still gets the current goal.
LATCHED_GOAL_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
# Status topics (~/risk, ~/mode, ...): reliable, a few deep, so a slow listener sees transitions.
STATUS_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)


class ConfigError(ValueError):
    """A parameter value that the node refuses; the message names the parameter."""


def declare(
    node: Node,
    name: str,
    default: Any,
    description: str,
    *,
    read_only: bool = True,
    range_: tuple[float, float] | None = None,
    choices: tuple[str, ...] | None = None,
) -> None:
    """Declares `name` with a ParameterDescriptor (description, range, read-only).

    `default` may be a Parameter.Type for a parameter without a default (read it with `get`).

    Raises:
        ConfigError: If the value given at start (command line or YAML) has the wrong type or is out of range.
    """
    text = description
    if choices:
        text += f" One of: {', '.join(choices)}."
    descriptor = ParameterDescriptor(name=name, description=text, read_only=read_only)
    if choices:
        descriptor.additional_constraints = f"one of {', '.join(choices)}"
    if range_ is not None:
        if isinstance(default, int) and not isinstance(default, bool):
            descriptor.integer_range = [IntegerRange(from_value=int(range_[0]), to_value=int(range_[1]), step=0)]
        else:
            descriptor.floating_point_range = [FloatingPointRange(from_value=range_[0], to_value=range_[1], step=0.0)]
    try:
        node.declare_parameter(name, default, descriptor)
    except ParameterException as err:  # wrong type or out of range, from the command line or a YAML file
        kind = "an integer" if isinstance(default, int) and not isinstance(default, bool) else None
        if isinstance(default, float) or default == Parameter.Type.DOUBLE:
            kind = "a double (write 10.0, not 10)"
        hint = f" (must be {kind})" if kind else ""
        raise ConfigError(f"parameter {name}: {err}{hint}") from None
    if choices:
        value = node.get_parameter(name).value
        if value not in choices:
            raise ConfigError(f"parameter {name}: {value!r} is not one of {', '.join(choices)}")


def get(node: Node, name: str, default: Any = None) -> Any:
    """The parameter's value, or `default` if it was declared without a value and none was given."""
    try:
        return node.get_parameter(name).value
    except ParameterUninitializedException:
        return default


def finite(name: str, value: float, low: float = -math.inf, high: float = math.inf) -> float:
    """`value` as float if finite and within [low, high], else ConfigError."""
    value = float(value)
    if not (math.isfinite(value) and low <= value <= high):
        raise ConfigError(f"parameter {name}: {value} must be finite and within [{low}, {high}]")
    return value


class Spinner:
    """Spins a node until SIGINT/SIGTERM, then lets the caller publish a last message before shutting down.

    rclpy's own signal handler shuts the context down inside the signal, after which nothing can be published;
    a controller should send a final stop command, so the nodes install their own handlers instead
    (`rclpy.init(signal_handler_options=SignalHandlerOptions.NO)`).
    """

    def __init__(self) -> None:
        self.stop = False
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.stop = True

    def spin(self, node: Node, executor_kind: str = "single_threaded", until: Callable[[], bool] | None = None) -> None:
        """Spins until a signal arrives (or `until()` is true)."""
        executor = make_executor(executor_kind)
        executor.add_node(node)
        try:
            while not self.stop and rclpy.ok() and not (until is not None and until()):
                executor.spin_once(timeout_sec=0.1)
        finally:
            executor.remove_node(node)
            shutdown = getattr(executor, "shutdown", None)
            if shutdown is not None:
                shutdown()


def make_executor(kind: str, context: rclpy.Context | None = None):
    """ "single_threaded" (rclpy's default) or "events" (rclpy.experimental.EventsExecutor: less overhead), on
    `context` (None: rclpy's default context)."""
    if kind == "events":
        from rclpy.experimental import EventsExecutor

        return EventsExecutor(context=context)
    from rclpy.executors import SingleThreadedExecutor

    return SingleThreadedExecutor(context=context)


def init(args: list[str] | None) -> None:
    """rclpy.init without rclpy's signal handlers (see `Spinner`)."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)


def run_node(name: str, make_node: Callable[[], Node], run: Callable[[Node, Spinner], int | None], args) -> int:
    """The body of a node's console entry point: init, build, run, clean up; returns the exit status.

    Args:
        name: Node name, for the log line when configuration fails.
        make_node: Builds the node; may raise ConfigError (logged, status 1).
        run: Spins the node (with the given Spinner) until it should stop; may return a non-zero status.
        args: Command-line arguments for rclpy (None: sys.argv).
    """
    import sys

    init(args if args is not None else sys.argv)
    spinner = Spinner()
    node = None
    code = 0
    try:
        node = make_node()
        code = run(node, spinner) or 0
    except ConfigError as err:
        rclpy.logging.get_logger(name).error(f"configuration failed: {err}")
        code = 1
    except ModuleNotFoundError as err:  # e.g. the sim bridge on a runtime-only (robot) install
        from alam_control import missing_train_stack

        message = missing_train_stack(err) or (str(err) if "training stack" in str(err) else None)
        if message is None:
            raise
        rclpy.logging.get_logger(name).error(f"cannot start: {message}")
        code = 1
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return code
