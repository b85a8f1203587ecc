"""Task registry in the dm_control suite style: domain modules register factories under a name and tags.

Adding a task is a one-module job: write `sim/<domain>.py` with a `SafeTask`, decorate its factory with
`@TASKS.add("<domain>-<task>", *tags)` and import the module in `sim/__init__.py`.

Tags: "benchmark" (part of the results suite), "smoke" (cheap enough for CI training smoke runs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np
from dm_control import mujoco

from sim.base import SafeTask
from sim.env import SafeEnv

# factory(random=seed or RandomState, randomize=bool) -> (physics, task)
TaskFactory = Callable[..., tuple[mujoco.Physics, SafeTask]]


class TaggedTasks(Mapping[str, TaskFactory]):
    """Task name -> factory, with tags per task (like dm_control's `containers.TaggedTasks`)."""

    def __init__(self) -> None:
        self._factories: dict[str, TaskFactory] = {}
        self._tags: dict[str, tuple[str, ...]] = {}

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

    def tags(self, name: str) -> tuple[str, ...]:
        """Returns the tags `name` was registered with."""
        return self._tags[name]

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


def load(name: str, seed: int | None = None, randomize: bool = False) -> SafeEnv:
    """Builds a registered task.

    Args:
        name: Task name, one of `sim.ALL_TASKS`.
        seed: Seed of the task RNG (initial states, randomization); None draws one from the OS.
        randomize: Enable domain randomization (masses, friction, damping, actuator gain, noise, delay).

    Raises:
        ValueError: If `name` is not registered; the message lists the valid names.
    """
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    physics, task = TASKS[name](random=np.random.RandomState(seed), randomize=randomize)
    return SafeEnv(physics, task, name=name, tags=TASKS.tags(name))
