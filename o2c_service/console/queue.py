"""The work queue: held orders grouped by why they are held, oldest first.

Temporal's search finds the orders (by status, customer, reason); each order's own
state says the step it is parked at, the error in words and since when, so the list
reads each one (a few at a time).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from o2c_service.listing import OrderListItem
from o2c_service.orders import OrderService
from o2c_service.outcomes import OrderError
from o2c_workflows.models import OrderStatus
from o2c_workflows.state import OrderState

QUEUE_LIMIT = 200
"""Orders one queue page reads at most (each is a query to its workflow)."""
READ_CONCURRENCY = 10
AGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
    "7d": timedelta(days=7),
}
"""The age filter: held (or, for other statuses, started) at least this long ago."""
NO_REASON = "(none)"


@dataclass(frozen=True)
class QueueFilter:
    status: OrderStatus | None = OrderStatus.ON_HOLD
    customer_id: str | None = None
    hold_reason: str | None = None
    age: str | None = None


@dataclass(frozen=True)
class QueueItem:
    order_id: str
    status: OrderStatus | None
    customer_id: str | None
    reason: str
    step: str | None
    message: str | None
    since: datetime | None
    state: OrderState | None
    """None when the order could not be read now (its row says so)."""

    def age(self, now: datetime) -> str:
        if self.since is None:
            return ""
        return words_for(now - self.since)


@dataclass
class QueueGroup:
    reason: str
    items: list[QueueItem] = field(default_factory=list)


@dataclass
class Queue:
    groups: list[QueueGroup]
    listed: int
    total: int
    """How many match in all (more than `listed` when the queue was cut at QUEUE_LIMIT)."""


def words_for(age: timedelta) -> str:
    """`3 d 4 h`, `2 h 5 min`, `40 s`: how long, for people."""
    seconds = int(age.total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if days:
        return f"{days} d {hours % 24} h"
    if hours:
        return f"{hours} h {minutes % 60} min"
    return f"{minutes} min"


async def _item(orders: OrderService, listed: OrderListItem) -> QueueItem:
    try:
        state: OrderState | None = await orders.get(listed.order_id)
    except OrderError:
        state = None
    hold = state.hold if state is not None else None
    return QueueItem(
        order_id=listed.order_id,
        status=state.status if state is not None else listed.status,
        customer_id=listed.customer_id,
        reason=(hold.code if hold else listed.hold_reason) or NO_REASON,
        step=hold.step if hold else None,
        message=hold.message if hold else None,
        since=hold.since if hold else listed.started_at,
        state=state,
    )


async def read_queue(orders: OrderService, wanted: QueueFilter) -> Queue:
    """The matching orders grouped by reason, oldest first (the group with the oldest
    order first, and within each group)."""
    page = await orders.search(
        status=wanted.status,
        customer_id=wanted.customer_id,
        hold_reason=wanted.hold_reason,
        limit=QUEUE_LIMIT,
    )
    limit = asyncio.Semaphore(READ_CONCURRENCY)

    async def one(listed: OrderListItem) -> QueueItem:
        async with limit:
            return await _item(orders, listed)

    items = list(await asyncio.gather(*(one(listed) for listed in page.orders)))
    if wanted.age in AGES:
        cutoff = datetime.now(UTC) - AGES[wanted.age]
        items = [item for item in items if item.since is not None and item.since <= cutoff]
    grouped: dict[str, QueueGroup] = defaultdict(lambda: QueueGroup(""))
    for item in sorted(items, key=lambda item: item.since or datetime.max.replace(tzinfo=UTC)):
        group = grouped[item.reason]
        group.reason = item.reason
        group.items.append(item)
    groups = list(grouped.values())  # in the order of each group's oldest order
    return Queue(groups=groups, listed=len(items), total=page.total)
