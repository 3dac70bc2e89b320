"""Calls to one system spaced out in time, so a rate limit holds in every second.

The server's task-queue rate limit (`max_task_queue_activities_per_second`) holds a
system to its rate on average across every worker, but meters it as a token bucket:
after an idle spell it starts rate + 1 activities at once, and the system counts more
calls in that one second than its limit. A `Pacer` in each process's HTTP client starts
its calls at least `spacing(rate)` apart, whoever makes them, so one process never
sends a burst; it waits, it never refuses and never retries.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

JITTER_MARGIN = 1.05
"""Calls are spaced 5 % wider than 1/rate: two requests sent 1/rate apart can arrive a
few milliseconds closer, and the system counts arrivals."""


def spacing(rate: float) -> float:
    """Seconds between the starts of two calls to a system limited to `rate` per second."""
    return JITTER_MARGIN / rate


def paced_rate(rate: float) -> float:
    """The rate calls are actually started at under a limit of `rate` per second."""
    return 1 / spacing(rate)


class Pacer:
    """Lets calls start at least `spacing(rate)` apart, one at a time, in the order they
    asked (an asyncio lock is first come, first served)."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.interval = spacing(rate)
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")
        self._lock = asyncio.Lock()

    async def turn(self) -> None:
        """Return when this call may start (at once, when the last one started long ago).
        The next may start `interval` after this one really does, however late it woke."""
        async with self._lock:
            wait = self._next - self._clock()
            if wait > 0:
                await self._sleep(wait)
            self._next = self._clock() + self.interval
