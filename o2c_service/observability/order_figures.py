"""Orders by status and holds by reason, read from Temporal's visibility when scraped.

Nothing is counted as orders move: the figures are the reports' (`ReportService`), read
at most once every `MAX_AGE_SECONDS` however often `/metrics` is scraped, so several
Prometheus servers (or an impatient person with curl) cost visibility one read. When
visibility cannot be read the order gauges are left out, rather than shown stale, and
`o2c_visibility_up` is 0.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from o2c_service.reports.service import Holds, ReportService
from o2c_workflows.models import OrderStatus

log = logging.getLogger("o2c.api")

MAX_AGE_SECONDS = 5.0
OTHER_REASON = "other"
"""Held orders whose reason the listing did not name (past its limit, or unquotable)."""


@dataclass(frozen=True)
class Snapshot:
    by_status: dict[OrderStatus, int]
    holds: Holds
    read_at: datetime


class OrderFigures:
    """A Prometheus collector of the order gauges, refreshed (`refresh`) before a scrape."""

    def __init__(
        self,
        reports: Callable[[], ReportService],
        *,
        max_age: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`reports`: the report service of the API's orders, once they are connected."""
        self._reports = reports
        self._max_age = max_age
        self._clock = clock
        self._snapshot: Snapshot | None = None
        self._read: float | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        """Read visibility again if the figures are older than `max_age`; one read at a time,
        and whoever waited for it uses its result."""
        async with self._lock:
            if self._read is not None and self._clock() - self._read < self._max_age:
                return
            was_up = self._read is None or self._snapshot is not None
            try:
                reports = self._reports()
                by_status, holds = await asyncio.gather(reports.orders_by_status(), reports.holds())
            except Exception as error:  # a scrape must answer, whatever visibility does
                if was_up:
                    log.warning("order metrics: visibility cannot be read: %s", error)
                self._snapshot = None
            else:
                if not was_up:
                    log.info("order metrics: visibility can be read again")
                self._snapshot = Snapshot(by_status, holds, datetime.now(UTC))
            self._read = self._clock()

    def describe(self) -> Iterator[Metric]:
        """What `collect` yields, without reading anything (asked when registered)."""
        yield from self._families(None)

    def collect(self) -> Iterator[Metric]:
        yield from self._families(self._snapshot)

    def _families(self, snapshot: Snapshot | None) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "o2c_visibility_up",
            "1 when the last read of Temporal's visibility for the order gauges worked.",
        )
        up.add_metric([], 1 if snapshot is not None else 0)
        yield up
        orders = GaugeMetricFamily(
            "o2c_orders",
            "Orders in each status now, as Temporal's visibility shows them (finished orders "
            "until the namespace's retention removes them).",
            labels=["status"],
        )
        held = GaugeMetricFamily(
            "o2c_orders_on_hold",
            "Orders on hold now, by hold reason code (other: a reason the listing of the "
            "newest 1000 held orders did not name).",
            labels=["reason"],
        )
        oldest = GaugeMetricFamily(
            "o2c_orders_on_hold_oldest_age_seconds",
            "Seconds since the oldest order now on hold was entered (of the newest 1000 "
            "held); 0 when none is held.",
        )
        if snapshot is not None:
            for status, count in snapshot.by_status.items():
                orders.add_metric([status.value], count)
            holds = snapshot.holds
            for reason, count in sorted(holds.by_reason.items()):
                held.add_metric([reason], count)
            other = holds.on_hold - sum(holds.by_reason.values())
            if other > 0:
                held.add_metric([OTHER_REASON], other)
            age = 0.0
            if holds.on_hold and holds.oldest_started_at is not None:
                age = (snapshot.read_at - holds.oldest_started_at).total_seconds()
            oldest.add_metric([], max(0.0, age))
        yield orders
        yield held
        yield oldest
