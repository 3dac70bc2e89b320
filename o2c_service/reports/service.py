"""`ReportService`: gathers a report's inputs from Temporal visibility, the orders'
timelines and billing, and hands them to the calculations (`figures`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import Client

from adapters.billing.protocol import BillingAdapter
from adapters.errors import SystemFailure
from o2c_service.orders import OrderService
from o2c_service.outcomes import RPC_TIMEOUT, OrderError
from o2c_service.reports.figures import cycle_times, first_seen, receivables
from o2c_service.reports.models import CurrencyReceivables, Fallout, SummaryReport, TimelineSample
from o2c_service.reports.parameters import (
    DEFAULT_SAMPLE,
    MAX_SAMPLE,
    InvalidReportRequest,
    period_days,
    resolve_period,
)
from o2c_service.reports.visibility import orders_query, started_between
from o2c_workflows.models import OrderStatus
from o2c_workflows.order.base import COMPENSATION_FAILED
from o2c_workflows.search_attributes import HOLD_REASON, ORDER_STATUS
from o2c_workflows.state import TimelineEntry

READ_CONCURRENCY = 20
"""How many order `state` queries run at once (each may make a worker replay a history)."""
HELD_LISTING_LIMIT = 1000
"""How many held orders are listed to find which hold reasons to count."""


@dataclass(frozen=True)
class Holds:
    """The orders on hold now."""

    on_hold: int
    by_reason: dict[str, int]
    """Per hold reason code; reasons that cannot be put in a query are left out."""
    oldest_started_at: datetime | None
    """When the oldest of the newest `HELD_LISTING_LIMIT` held orders was entered."""


class BillingUnavailable(Exception):
    """Billing could not be read (HTTP 503)."""


BillingSource = Callable[[], Awaitable[BillingAdapter]]
"""Billing, opened when a report first needs it."""
Clock = Callable[[], Awaitable[datetime]]


async def _utc_now() -> datetime:
    return datetime.now(UTC)


def fixed_billing(adapter: BillingAdapter) -> BillingSource:
    async def source() -> BillingAdapter:
        return adapter

    return source


class ReportService:
    """Builds a `SummaryReport` from Temporal visibility, the orders' timelines and billing.

    Temporal errors reach the caller as the `OrderService`'s errors
    (`TemporalUnavailable` -> 503); billing errors as `BillingUnavailable`.
    """

    def __init__(
        self,
        client: Client,
        orders: OrderService,
        billing: BillingSource,
        clock: Clock | None = None,
    ) -> None:
        self._client = client
        self._orders = orders
        self._billing = billing
        self._clock = clock or _utc_now

    @classmethod
    def over(cls, orders: OrderService, billing: BillingSource) -> ReportService:
        """Reports on the namespace `orders` works in, through its client."""
        return cls(orders.client, orders, billing, orders.clock)

    async def summary(
        self, start: date | None = None, end: date | None = None, sample: int = DEFAULT_SAMPLE
    ) -> SummaryReport:
        """The report for `[start, end]` (default: the 30 days ending today, UTC).

        Raises InvalidReportRequest naming the parameter, an OrderError when
        Temporal cannot answer, BillingUnavailable when billing cannot.
        """
        if not 1 <= sample <= MAX_SAMPLE:
            raise InvalidReportRequest("sample", f"sample must be from 1 to {MAX_SAMPLE}")
        now = await self._clock()
        start, end = resolve_period(now.astimezone(UTC).date(), start, end)
        # One count first: if Temporal is down, that is all we ask it.
        total = await self._count()
        by_status, fallout_counts, (timelines, sample_info) = await asyncio.gather(
            self.orders_by_status(),
            self._fallout_counts(),
            self._timeline_sample(start, end, sample),
        )
        on_hold, by_reason, compensation_failed = fallout_counts
        money = await self._receivables(start, end)
        return SummaryReport(
            start=start,
            end=end,
            days=period_days(start, end),
            generated_at=now,
            orders_total=total,
            orders_by_status=by_status,
            cycle_times=cycle_times(timelines),
            sample=sample_info,
            fallout=Fallout(
                total=on_hold + compensation_failed,
                on_hold=on_hold,
                on_hold_by_reason=by_reason,
                on_hold_other=max(0, on_hold - sum(by_reason.values())),
                compensation_failed=compensation_failed,
                held_in_sample=sum(
                    1 for timeline in timelines if OrderStatus.ON_HOLD in first_seen(timeline)
                ),
            ),
            receivables=money,
        )

    # -- visibility --

    async def _count(self, *clauses: str, include_continued: bool = False) -> int:
        query = orders_query(*clauses, include_continued=include_continued)
        # The order service's translation: unreachable Temporal -> TemporalUnavailable.
        async with self._orders.translated(None):
            counted = await self._client.count_workflows(query, rpc_timeout=RPC_TIMEOUT)
        return counted.count

    async def orders_by_status(self) -> dict[OrderStatus, int]:
        """How many orders visibility shows in each status now (each order once)."""
        statuses = list(OrderStatus)
        counts = await asyncio.gather(
            *(self._count(f"{ORDER_STATUS.name} = '{status.value}'") for status in statuses)
        )
        return dict(zip(statuses, counts, strict=True))

    async def holds(self) -> Holds:
        """The orders on hold now: how many, by reason, and the oldest one's start.

        Visibility cannot group by a custom attribute, so the reasons are found
        by listing held orders (the newest `HELD_LISTING_LIMIT`), then each is counted.
        """
        held_clause = f"{ORDER_STATUS.name} = '{OrderStatus.ON_HOLD.value}'"
        held = (
            await self._orders.search(status=OrderStatus.ON_HOLD, limit=HELD_LISTING_LIMIT)
        ).orders
        reasons = sorted(
            {item.hold_reason for item in held if item.hold_reason and _plain(item.hold_reason)}
        )
        on_hold, *per_reason = await asyncio.gather(
            self._count(held_clause),
            *(self._count(held_clause, f"{HOLD_REASON.name} = '{r}'") for r in reasons),
        )
        return Holds(
            on_hold=on_hold,
            by_reason={r: n for r, n in zip(reasons, per_reason, strict=True) if n},
            oldest_started_at=min(
                (item.started_at for item in held if item.started_at is not None), default=None
            ),
        )

    async def _fallout_counts(self) -> tuple[int, dict[str, int], int]:
        """Held now (and by reason), and cancelled with a failed undo."""
        holds, compensation_failed = await asyncio.gather(
            self.holds(),
            self._count(
                f"{ORDER_STATUS.name} = '{OrderStatus.CANCELLED.value}'",
                f"{HOLD_REASON.name} = '{COMPENSATION_FAILED}'",
            ),
        )
        return holds.on_hold, holds.by_reason, compensation_failed

    async def _list_ids(self, query: str, into: dict[str, None], limit: int) -> None:
        async with self._orders.translated(None):
            async for execution in self._client.list_workflows(query, rpc_timeout=RPC_TIMEOUT):
                into[execution.id] = None
                if len(into) >= limit:
                    return

    async def _sampled_order_ids(
        self, start: date, end: date, sample: int
    ) -> tuple[list[str], bool]:
        """Up to `sample` orders with a run started in the period, newest days first.

        Visibility on SQL cannot ORDER BY, so when more started than the sample
        takes, days are listed one by one from `end` back.
        """
        found: dict[str, None] = {}
        in_period = started_between(start, end)
        if await self._count(in_period, include_continued=True) <= sample:
            await self._list_ids(orders_query(in_period, include_continued=True), found, sample + 1)
        else:
            day = end
            while day >= start and len(found) <= sample:
                query = orders_query(started_between(day, day), include_continued=True)
                await self._list_ids(query, found, sample + 1)
                day -= timedelta(days=1)
        ids = list(found)
        return ids[:sample], len(ids) > sample

    async def _timeline_sample(
        self, start: date, end: date, sample: int
    ) -> tuple[list[list[TimelineEntry]], TimelineSample]:
        order_ids, truncated = await self._sampled_order_ids(start, end, sample)
        limit = asyncio.Semaphore(READ_CONCURRENCY)

        async def read(order_id: str) -> list[TimelineEntry] | None:
            async with limit:
                try:
                    state = await self._orders.get(order_id)
                except (OrderError, ValueError):
                    return None
            return state.timeline

        read_timelines = await asyncio.gather(*(read(order_id) for order_id in order_ids))
        timelines: list[list[TimelineEntry]] = []
        before = 0
        for timeline in read_timelines:
            if timeline is None:
                continue
            entered = first_seen(timeline).get(OrderStatus.ENTERED)
            if entered is None or entered.astimezone(UTC).date() < start:
                before += 1  # a later run of an order entered earlier
                continue
            timelines.append(timeline)
        unreadable = sum(1 for timeline in read_timelines if timeline is None)
        return timelines, TimelineSample(
            limit=sample,
            listed=len(order_ids),
            truncated=truncated,
            read=len(timelines),
            unreadable=unreadable,
            entered_before_period=before,
        )

    # -- billing --

    async def _receivables(self, start: date, end: date) -> dict[str, CurrencyReceivables]:
        try:
            billing = await self._billing()
            open_invoices, dated = await asyncio.gather(
                billing.list_open_invoices(), billing.list_invoices_dated(start, end)
            )
        except (SystemFailure, SQLAlchemyError, OSError) as error:
            raise BillingUnavailable(f"billing could not be read: {error}") from error
        return receivables(open_invoices, dated, start, end)


def _plain(value: str) -> bool:
    """Safe inside a quoted visibility literal."""
    return "'" not in value and "\\" not in value
