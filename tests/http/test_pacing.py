"""The HTTP client's pacer: calls to a rate-limited system start 1/rate (and a margin)
apart, in the order they asked, and an idle client starts the next call at once."""

from __future__ import annotations

import asyncio
import itertools
import time

import httpx
import pytest

from adapters.billing.http import HttpBilling
from adapters.http.client import Remote
from adapters.http.pacing import JITTER_MARGIN, Pacer, paced_rate, spacing


class FakeTime:
    """A clock that moves only when someone sleeps, recording when each call started."""

    def __init__(self) -> None:
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


async def started_at(pacer: Pacer, time: FakeTime, calls: int) -> list[float]:
    starts: list[float] = []
    for _ in range(calls):
        await pacer.turn()
        starts.append(time.now)
    return starts


async def test_calls_asked_for_at_once_start_a_spacing_apart() -> None:
    time = FakeTime()
    pacer = Pacer(2, clock=time.clock, sleep=time.sleep)

    starts = await started_at(pacer, time, 5)

    assert starts[0] == 100.0  # the first at once
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert gaps == pytest.approx([0.5 * JITTER_MARGIN] * 4)


async def test_a_call_after_an_idle_spell_starts_at_once_without_a_burst_after_it() -> None:
    time = FakeTime()
    pacer = Pacer(2, clock=time.clock, sleep=time.sleep)
    await pacer.turn()
    time.now += 60  # idle: nothing is saved up for later

    starts = await started_at(pacer, time, 3)

    assert starts == pytest.approx([160.0, 160.0 + spacing(2), 160.0 + 2 * spacing(2)])


async def test_concurrent_callers_are_served_in_the_order_they_asked() -> None:
    pacer = Pacer(50)  # the real clock: 21 ms apart
    order: list[int] = []

    async def caller(number: int) -> None:
        await pacer.turn()
        order.append(number)

    await asyncio.gather(*(caller(number) for number in range(6)))

    assert order == list(range(6))


def test_the_paced_rate_stays_under_the_limit() -> None:
    assert paced_rate(2) < 2
    assert paced_rate(2) == pytest.approx(2 / JITTER_MARGIN)


async def test_a_client_with_a_rate_limit_sends_its_calls_a_spacing_apart() -> None:
    """A rate limit of 5/s reaches the client: three reads asked for at once leave one
    after the other, never two within 1/5 s."""
    sent: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(time.monotonic())
        return httpx.Response(200, json=[])

    billing = HttpBilling(
        Remote("http://billing.test", rate_limit=5), transport=httpx.MockTransport(answer)
    )
    try:
        await asyncio.gather(*(billing.list_invoices(f"SO-{n}") for n in range(3)))
    finally:
        await billing.aclose()

    gaps = [later - earlier for earlier, later in itertools.pairwise(sent)]
    assert len(sent) == 3
    assert all(gap >= 1 / 5 for gap in gaps), gaps
