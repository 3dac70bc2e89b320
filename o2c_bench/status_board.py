"""How the bench sees an order reach Booked or Invoiced: `StatusBoard`, one
visibility query for every order waited on (see `o2c_bench.run`).
"""

from __future__ import annotations

import asyncio
import contextlib

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from o2c_bench.env import BenchError
from o2c_workflows.models import OrderStatus
from o2c_workflows.search_attributes import ORDER_STATUS

STEP_TIMEOUT = 120.0
"""How long one order may take to reach its next status before the run fails."""
STATUS_POLL_INTERVAL = 0.01
STATUS_QUERY_IDS = 100

LIFECYCLE = [
    OrderStatus.ENTERED,
    OrderStatus.BOOKED,
    OrderStatus.SHIPPED,
    OrderStatus.INVOICED,
    OrderStatus.PAID,
    OrderStatus.CLOSED,
]


def at_least(status: OrderStatus, wanted: OrderStatus) -> bool:
    return status in LIFECYCLE and LIFECYCLE.index(status) >= LIFECYCLE.index(wanted)


class StatusBoard:
    """Tells each waiting order when it has reached its status, from Temporal's visibility.

    One list query every STATUS_POLL_INTERVAL covers every order waited on
    (`WorkflowId IN (...)`), and only while some order is waited on.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._waiting: dict[str, tuple[OrderStatus, asyncio.Future[None]]] = {}
        self._someone_waits = asyncio.Event()
        self._last_error: str | None = None
        self.queries = 0
        self._poller: asyncio.Task[None] | None = None

    async def __aenter__(self) -> StatusBoard:
        self._poller = asyncio.create_task(self._poll(), name="status board")
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    async def reached(self, order_id: str, status: OrderStatus) -> None:
        """Return once the order is at `status` or beyond; fail if it cannot get there."""
        future = asyncio.get_running_loop().create_future()
        self._waiting[order_id] = (status, future)
        self._someone_waits.set()
        try:
            await asyncio.wait_for(future, STEP_TIMEOUT)
        except TimeoutError:
            why = f" (last visibility error: {self._last_error})" if self._last_error else ""
            raise BenchError(
                f"order {order_id} did not reach {status.value} within {STEP_TIMEOUT:.0f} s{why}"
            ) from None
        finally:
            self._waiting.pop(order_id, None)

    async def _poll(self) -> None:
        while True:
            if not self._waiting:
                self._someone_waits.clear()
                await self._someone_waits.wait()
            ids = list(self._waiting)
            for start in range(0, len(ids), STATUS_QUERY_IDS):
                try:
                    await self._look(ids[start : start + STATUS_QUERY_IDS])
                except RPCError as error:  # retried at the next tick; reported on timeout
                    self._last_error = str(error)
            await asyncio.sleep(STATUS_POLL_INTERVAL)

    async def _look(self, ids: list[str]) -> None:
        self.queries += 1
        query = "WorkflowId IN ({})".format(", ".join(f"'{order_id}'" for order_id in ids))
        async for execution in self._client.list_workflows(query):
            waiting = self._waiting.get(execution.id)
            if waiting is None or waiting[1].done():
                continue
            wanted, future = waiting
            value = execution.typed_search_attributes.get(ORDER_STATUS)
            status = OrderStatus(value) if value else OrderStatus.ENTERED
            ended = execution.status not in (None, WorkflowExecutionStatus.RUNNING)
            if at_least(status, wanted):
                future.set_result(None)
            elif status in (OrderStatus.ON_HOLD, OrderStatus.CANCELLED) or ended:
                state = execution.status.name if execution.status else "?"
                future.set_exception(
                    BenchError(
                        f"order {execution.id} is {status.value} (workflow {state}) while "
                        f"awaited at {wanted.value}; the bench expects the happy path"
                    )
                )
