"""A reconciliation run: which orders, read from Temporal and each system, checked."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime

from o2c_service.observability.business import record_reconcile_mismatches
from o2c_service.orders import OrderService
from o2c_service.outcomes import RPC_TIMEOUT, OrderNotFound
from o2c_service.reconciliation.checks import reconcile_order
from o2c_service.reconciliation.models import Mismatch, ReconciliationReport
from o2c_service.reconciliation.reading import ReadSystems, read_order
from o2c_service.reports.visibility import orders_query, started_between

EARLIEST, LATEST = date(1970, 1, 1), date(9998, 12, 31)
"""An open end of the period."""

SystemsSource = Callable[[], Awaitable[ReadSystems]]
"""The systems, opened when a run first needs them."""

CONCURRENT_ORDERS = 8
"""Orders read at once: enough to overlap round trips, few enough to spare the systems."""


class ReconciliationService:
    """Reconciles orders against logistics, billing and payments; never writes."""

    def __init__(self, orders: OrderService, systems: SystemsSource) -> None:
        self._orders = orders
        self._systems = systems

    async def order_ids(self, start: date | None, end: date | None) -> list[str]:
        """Every order (each once), or those entered from `start` to `end` (UTC days)."""
        clauses: list[str] = []
        if start is not None or end is not None:
            clauses.append(started_between(start or EARLIEST, end or LATEST))
        query = orders_query(*clauses)
        client = self._orders.client
        found: dict[str, None] = {}
        async with self._orders.translated(None):
            async for execution in client.list_workflows(query, rpc_timeout=RPC_TIMEOUT):
                found[execution.id] = None
        return sorted(found)

    async def run(
        self,
        order_ids: Sequence[str] = (),
        start: date | None = None,
        end: date | None = None,
    ) -> ReconciliationReport:
        """Reconcile `order_ids`, or else the orders entered in the period (all by
        default), and record the mismatches found per (system, kind) as metrics.

        Raises an OrderError when Temporal cannot answer, SystemUnreadable when a
        system cannot.
        """
        ids = list(dict.fromkeys(order_ids)) or await self.order_ids(start, end)
        systems = await self._systems()
        gate = asyncio.Semaphore(CONCURRENT_ORDERS)
        unreadable: list[str] = []

        async def one(order_id: str) -> list[Mismatch]:
            async with gate:
                try:
                    state = await self._orders.get(order_id)
                except OrderNotFound:
                    unreadable.append(order_id)
                    return []
                return reconcile_order(await read_order(state, systems))

        found = await asyncio.gather(*(one(order_id) for order_id in ids))
        mismatches = [mismatch for order in found for mismatch in order]
        record_reconcile_mismatches(Counter((m.system, m.kind) for m in mismatches))
        return ReconciliationReport(
            generated_at=datetime.now(UTC),
            orders_checked=len(ids) - len(unreadable),
            mismatches=mismatches,
            unreadable=sorted(unreadable),
        )
