"""What crossed the wire to the sandbox: its call log (`GET <system url>/_sandbox/calls`),
and the counts tests draw from it.

The sandbox records every request it answered, faults included, with its status, the
write's idempotency key and when it arrived. A test reads it to prove the faults it
asked for happened (a write answered 504 whose key a lookup later found), and to count
a system's calls in any window of time (its rate limit).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import httpx
from pydantic import TypeAdapter

from o2c_sandbox.routes import CALLS_PATH, Call

LOOKUP = "/by-key/"
"""Every keyed write's lookup is `GET .../by-key/{idempotency_key}` (adapters/http/contract.py)."""


@dataclass(frozen=True)
class SandboxCall(Call):
    """One request as the sandbox answered it (its `Call`), read back from its log."""

    @property
    def writes(self) -> bool:
        return self.method == "POST"

    @property
    def looked_up(self) -> str | None:
        """The key a lookup asked after; None for any other call."""
        if self.method != "GET" or LOOKUP not in self.path:
            return None
        return self.path.rpartition(LOOKUP)[2]

    @property
    def answered(self) -> bool:
        """A 2xx: the write took effect, or the lookup found it."""
        return 200 <= self.status < 300


_READ = TypeAdapter(SandboxCall)


async def read_calls(urls: Mapping[str, str]) -> list[SandboxCall]:
    """Every system's recorded calls (`urls`: each system's base URL), oldest first."""
    async with httpx.AsyncClient(timeout=30) as http:
        calls = [
            _READ.validate_python(call)
            for url in urls.values()
            for call in (await http.get(f"{url}{CALLS_PATH}")).raise_for_status().json()
        ]
    return sorted(calls, key=lambda call: call.at)


def of_system(calls: Iterable[SandboxCall], system: str) -> list[SandboxCall]:
    return [call for call in calls if call.system == system]


# --- the faults, as the log shows them -----------------------------------------------------


def lost_and_found(calls: Sequence[SandboxCall]) -> set[str]:
    """Keys of writes answered 504 (the client had given up by then) that a later lookup
    found made: the write took effect, its answer was lost, the retry found it."""
    lost = {call.idempotency_key: call.at for call in calls if call.writes and call.status == 504}
    return {
        key
        for call in calls
        if (key := call.looked_up) is not None
        and call.answered
        and key in lost
        and call.at > lost[key]
    }


def lost_and_made_again(calls: Sequence[SandboxCall]) -> set[str]:
    """Keys of writes answered 504 that a later lookup did not find, and that a later
    write under the same key made: the timeout came before the system acted."""
    lost = {call.idempotency_key: call.at for call in calls if call.writes and call.status == 504}
    missing = {
        key
        for call in calls
        if (key := call.looked_up) is not None and call.status == 404 and key in lost
    }
    return {
        key
        for call in calls
        if call.writes and call.answered and (key := call.idempotency_key) in missing
        if key is not None and call.at > lost[key]
    }


def statuses(calls: Iterable[SandboxCall]) -> Counter[int]:
    return Counter(call.status for call in calls)


# --- rates ---------------------------------------------------------------------------------


def most_in_a_window(times: Sequence[float], seconds: float) -> int:
    """The most of `times` (seconds) that fall in any `seconds`-long window."""
    ordered = sorted(times)
    most, first = 0, 0
    for last, time in enumerate(ordered):
        while time - ordered[first] >= seconds:
            first += 1
        most = max(most, last - first + 1)
    return most


def burst_beyond(times: Sequence[float], rate: float) -> float:
    """The smallest B such that every stretch of `times`, first to last, holds at most
    B + `rate` x its length: how far ahead of a steady `rate` the calls ever got."""
    ordered = sorted(times)
    return max(
        (
            (last - first + 1) - rate * (ordered[last] - ordered[first])
            for first in range(len(ordered))
            for last in range(first, len(ordered))
        ),
        default=0.0,
    )


def most_in_a_calendar_second(times: Iterable[float]) -> int:
    """The most of `times` (seconds since the epoch) within one whole second of the clock."""
    return max(Counter(math.floor(time) for time in times).values(), default=0)
