"""Task registry in the dm_control suite style: domain modules register factories under a name and tags.

Adding a task: write `sim/<domain>.py` with a `SafeTask` (its model in `sim/<domain>.xml`, read with `sim.mjcf`),
decorate its factory with `@TASKS.add("<domain>-<task>", *tags)`, write its scripted safe controller in
`sim/scripted/<domain>.py` ending in `TASKS.add_safe_policy("<domain>-<task>", ...)`, and import the modules in
`sim/__init__.py` and `sim/scripted/__init__.py`.

Tags: "benchmark" (part of the results suite), "smoke" (cheap enough for CI training smoke runs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np
from dm_control import mujoco

from sim.base import SafeTask
from sim.env import SafeEnv
from sim.randomization import Randomization

# factory(random=RandomState) -> (physics, task); domain randomization is generic, in SafeEnv.
TaskFactory = Callable[..., tuple[mujoco.Physics, SafeTask]]
# safe_policy(env) -> policy(obs [obs_dim]) -> action [act_dim] in [-1, 1]: a scripted controller that keeps the
# constraints with non-trivial return; it proves a safe behaviour exists (benchmarks/task_binding.py).
SafePolicyFactory = Callable[[SafeEnv], Callable[[np.ndarray], np.ndarray]]


class TaggedTasks(Mapping[str, TaskFactory]):
    """Task name -> factory, with tags per task (like dm_control's `containers.TaggedTasks`)."""

    def __init__(self) -> None:
        self._factories: dict[str, TaskFactory] = {}
        self._tags: dict[str, tuple[str, ...]] = {}
        self._safe_policies: dict[str, SafePolicyFactory] = {}

    def add(self, name: str, *tags: str) -> Callable[[TaskFactory], TaskFactory]:
        """Returns a decorator registering a factory under `name` with `tags`.

        Raises:
            ValueError: If `name` is already registered.
        """

        def register(factory: TaskFactory) -> TaskFactory:
            if name in self._factories:
                raise ValueError(f"task {name!r} is already registered")
            self._factories[name] = factory
            self._tags[name] = tags
            return factory

        return register

    def add_safe_policy(self, name: str, safe_policy: SafePolicyFactory) -> None:
        """Registers the scripted safe policy of task `name` (`sim/scripted/<domain>.py` does, for its task).

        Raises:
            ValueError: If `name` is not registered, or already has a safe policy.
        """
        if name not in self._factories:
            raise ValueError(f"unknown task {name!r}; register the task before its safe policy")
        if name in self._safe_policies:
            raise ValueError(f"task {name!r} already has a safe policy")
        self._safe_policies[name] = safe_policy

    def tags(self, name: str) -> tuple[str, ...]:
        """Returns the tags `name` was registered with."""
        return self._tags[name]

    def safe_policy(self, env: SafeEnv) -> Callable[[np.ndarray], np.ndarray]:
        """Returns the scripted safe policy of `env`'s task, built for that env.

        Raises:
            KeyError: If the task registered none.
        """
        if env.spec.name not in self._safe_policies:
            raise KeyError(f"task {env.spec.name!r} has no scripted safe policy")
        return self._safe_policies[env.spec.name](env)

    def tagged(self, tag: str) -> tuple[str, ...]:
        """Returns the names of the tasks carrying `tag`, in registration order."""
        return tuple(name for name, tags in self._tags.items() if tag in tags)

    def __getitem__(self, name: str) -> TaskFactory:
        return self._factories[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)

    def __len__(self) -> int:
        return len(self._factories)


TASKS = TaggedTasks()


def load(name: str, seed: int | None = None, randomize: bool | Randomization = False) -> SafeEnv:
    """Builds a registered task.

    Args:
        name: Task name, one of `sim.ALL_TASKS`.
        seed: Seed of the task RNG (initial states, randomization); None draws one from the OS.
        randomize: Domain randomization (masses, friction, damping, actuator gain, noise, delay): False = off,
            True = the default `Randomization()` ranges, or a `Randomization` with explicit ranges.

    Raises:
        ValueError: If `name` is not registered; the message lists the valid names.
    """
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    if randomize is True:
        randomize = Randomization()
    elif randomize is False:
        randomize = None
    elif not isinstance(randomize, Randomization):
        raise TypeError(f"randomize must be a bool or a sim.Randomization, got {type(randomize).__name__}")
    physics, task = TASKS[name](random=np.random.RandomState(seed))
    return SafeEnv(physics, task, name=name, tags=TASKS.tags(name), randomization=randomize)
