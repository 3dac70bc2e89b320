"""The task queues a worker process can serve, by the names `o2c worker --systems` takes:
a module of its own, light enough for the CLI to name them without loading a worker."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Literal

from o2c_domain.systems import SYSTEMS, System

ORDERS: Final = "orders"
"""The order task queue, as `--systems` names it."""
Served = Literal["orders"] | System
"""A task queue a worker process serves: the order task queue, or a system's."""
SERVED: tuple[Served, ...] = (ORDERS, *SYSTEMS)
"""Every queue, in the order a worker process starts them: its default."""
_BY_NAME: dict[str, Served] = {name: name for name in SERVED}


class UnknownQueue(ValueError):
    """A name in `--systems` that is no queue's."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown system '{name}'; the names are {', '.join(SERVED)}")
        self.name = name


def served_queues(names: Iterable[str]) -> tuple[Served, ...]:
    """The queues `names` (`orders`, `crm`, ...) name, each once, in `SERVED`'s order;
    `UnknownQueue` for the first name that is none of them, `ValueError` for none."""
    chosen = set()
    for name in (name.strip() for name in names):
        if name not in _BY_NAME:
            raise UnknownQueue(name)
        chosen.add(_BY_NAME[name])
    if not chosen:
        raise ValueError(f"no queue named; the names are {', '.join(SERVED)}")
    return tuple(queue for queue in SERVED if queue in chosen)
