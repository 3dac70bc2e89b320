"""How fast a worker restarted after SIGKILL serves its orders again.

`python -m tests.support.recovery [--orders 100] [--sdk-defaults] [--away 12]` starts a
dev server (SQLite, as `o2c dev` runs it) and an `o2c worker`, parks N orders at
Invoiced (two shipments, two invoices, dunning timers running), SIGKILLs the
worker, and `--away` seconds later the bank pays every order (as Signals, which
need no worker): each order now has a workflow task waiting, its whole history to
replay. Then a new worker starts, and every order is queried until it answers and
until it shows the payment applied (Closed). It reports the seconds from the new
worker's start until every order answered and until every payment was applied,
the `WorkflowTaskTimedOut` events the histories gained after the kill, and how
long the workflow tasks completed after the kill took (started to completed:
what the 10 s task timeout is measured against). `--sdk-defaults` sizes the
worker as the SDK does when told nothing (100 workflow task slots, 5 pollers):
the worker before it was sized for the machine.

The resilience suite (`test_resilience.py`) runs the same with a modest batch
and asserts that no workflow task timed out.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from temporalio.api.enums.v1 import EventType, TaskQueueKind, TimeoutType
from temporalio.client import Client

from o2c_domain.lines import SkuQuantity
from o2c_service import events as order_events
from o2c_service.orders import OrderService
from o2c_service.outcomes import OrderError
from o2c_workflows.messages import PaymentReceived, ShipmentConfirmed
from o2c_workflows.models import OrderRequest, OrderStatus
from o2c_workflows.order.workflow import OrderWorkflow
from tests.support.resilience_batch import (
    CARRIER,
    batch_orders,
    payment_id,
    service_for,
    tracking_number,
)
from tests.support.resilience_processes import Processes

SDK_DEFAULTS = {
    "O2C_WORKER_WORKFLOW_TASK_SLOTS": "100",
    "O2C_WORKER_WORKFLOW_TASK_POLLERS": "5",
    "O2C_WORKER_MAX_CACHED_WORKFLOWS": "1000",
    "O2C_WORKER_ACTIVITY_SLOTS": "100",
}
"""The worker as the SDK sizes it when told nothing: how `o2c worker` ran before."""

PARKING = 8
"""Orders created at once while parking."""

PAUSE = 0.25
"""Seconds between two tries of one order's caller."""

STICKY_GONE = 12.0
"""Seconds between the kill and the payments: past the server's 10 s sticky-poller window."""

KILLED = "the killed worker's "
"""How a timeout on the killed worker's sticky queue is named."""

DEADLINE = 600.0
"""Seconds parking, and then recovery, may take before the run gives up."""


@dataclass(frozen=True)
class Recovery:
    orders: int
    worker_polling_s: float
    """From the new worker's start until it said it polls."""
    all_answered_s: float
    """From the new worker's start until every order had answered a query."""
    all_applied_s: float
    """From the new worker's start until every order had taken its payment."""
    task_timeouts: Counter[str]
    """WorkflowTaskTimedOut events after the kill, by timeout type, queue and cause."""

    def timeouts_of_the_new_worker(self) -> Counter[str]:
        """The timeouts but those of tasks the server still sent to the killed worker's
        sticky queue: the server stops doing so some 10 s after that queue's last poll
        (which may be before the kill as well as at it); no worker can take them, each
        waits O2C_WORKER_STICKY_QUEUE_TIMEOUT and goes to the normal queue."""
        return Counter({k: n for k, n in self.task_timeouts.items() if KILLED not in k})

    task_seconds: list[float]
    """How long each workflow task completed after the kill took (started to completed)."""

    def lines(self) -> list[str]:
        durations = sorted(self.task_seconds)
        return [
            f"orders parked at Invoiced:               {self.orders}",
            f"new worker polling after:                {self.worker_polling_s:.1f} s",
            f"every order answered a query after:      {self.all_answered_s:.1f} s",
            f"every order took its next event after:   {self.all_applied_s:.1f} s",
            f"WorkflowTaskTimedOut after the kill:     {sum(self.task_timeouts.values())}"
            + (f" ({dict(self.task_timeouts)})" if self.task_timeouts else ""),
            f"workflow tasks completed after the kill: {len(durations)}, started to completed"
            f" p50 {percentile(durations, 50):.2f} s, p95 {percentile(durations, 95):.2f} s,"
            f" max {percentile(durations, 100):.2f} s",
        ]


def percentile(ordered: list[float], p: int) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, len(ordered) * p // 100)]


async def park(service: OrderService, orders: list[OrderRequest]) -> None:
    """Create the orders, a few at a time, ship each line by line once Booked (an invoice
    per shipment), and return once every one is Invoiced: waiting for its payment, with
    its dunning timers running."""
    limit = asyncio.Semaphore(PARKING)
    deadline = time.monotonic() + DEADLINE

    async def reached(order: OrderRequest, status: OrderStatus) -> None:
        while (await service.get(order.order_id)).status is not status:
            if time.monotonic() > deadline:
                raise AssertionError(f"{order.order_id} not {status} within {DEADLINE}s")
            await asyncio.sleep(PAUSE)

    async def one(order: OrderRequest) -> None:
        async with limit:
            await service.create(order)
            await reached(order, OrderStatus.BOOKED)
            for number, line in enumerate(order.lines, start=1):
                shipment = ShipmentConfirmed(
                    carrier=CARRIER,
                    tracking_number=f"{tracking_number(order)}-{number}",
                    lines=[SkuQuantity(sku=line.sku, quantity=line.quantity)],
                )
                await service.send(order_events.SHIPMENT, order.order_id, shipment)
            await reached(order, OrderStatus.INVOICED)

    await asyncio.gather(*(one(order) for order in orders))


async def served(service: OrderService, order: OrderRequest, started: float) -> tuple[float, float]:
    """Query the order until it answers, then until it shows its payment applied (Closed);
    return the seconds from `started` to each."""
    deadline = started + DEADLINE
    answered: float | None = None
    while True:
        try:
            state = await service.get(order.order_id)
            if answered is None:
                answered = time.monotonic() - started
            if state.status is OrderStatus.CLOSED:
                return answered, time.monotonic() - started
        except OrderError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{order.order_id} not served again within {DEADLINE}s")
        await asyncio.sleep(PAUSE)


@dataclass(frozen=True)
class TasksAfterKill:
    timeouts: Counter[str]
    """WorkflowTaskTimedOut events, by timeout type, queue (sticky or normal) and the
    event that scheduled the task."""
    durations: list[float]
    """Seconds from WorkflowTaskStarted to WorkflowTaskCompleted of each task."""


async def tasks_since(
    client: Client, orders: list[OrderRequest], since: datetime
) -> TasksAfterKill:
    """What the orders' histories say about their workflow tasks at or after `since`."""
    timeouts: Counter[str] = Counter()
    durations: list[float] = []
    for order in orders:
        events = {}
        before: set[str] = set()
        """The queues tasks were scheduled on before `since`: the killed worker's."""
        async for event in client.get_workflow_handle(order.order_id).fetch_history_events():
            events[event.event_id] = event
            if event.event_time.ToDatetime(tzinfo=UTC) < since:
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
                    before.add(event.workflow_task_scheduled_event_attributes.task_queue.name)
                continue
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
                timed_out = event.workflow_task_timed_out_event_attributes
                scheduled = events[timed_out.scheduled_event_id]
                queue = scheduled.workflow_task_scheduled_event_attributes.task_queue
                kind = TaskQueueKind.Name(queue.kind).removeprefix("TASK_QUEUE_KIND_").lower()
                whose = KILLED if kind == "sticky" and queue.name in before else ""
                cause = EventType.Name(events[scheduled.event_id - 1].event_type)
                timeouts[
                    f"{TimeoutType.Name(timed_out.timeout_type).removeprefix('TIMEOUT_TYPE_')}"
                    f" on {whose}{kind} queue after {cause.removeprefix('EVENT_TYPE_')}"
                ] += 1
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                started = events[event.workflow_task_completed_event_attributes.started_event_id]
                took = event.event_time.ToDatetime() - started.event_time.ToDatetime()
                durations.append(took.total_seconds())
    return TasksAfterKill(timeouts, durations)


async def recovery_after_kill(
    processes: Processes,
    count: int,
    worker_settings: dict[str, str] | None = None,
    away: float = STICKY_GONE,
) -> Recovery:
    """Park `count` orders, SIGKILL the worker, pay every order while none runs, start
    another worker (with `worker_settings`), and measure until every order is served."""
    client = await processes.start_server()
    service = service_for(client, processes)
    first = processes.start_worker(settings=worker_settings)
    await processes.wait_until_polling(first)
    orders = batch_orders(count)
    await park(service, orders)

    killed_at = datetime.now(UTC)
    await processes.kill_worker(first)
    # Away long enough for the server to stop routing to the dead worker's sticky queue
    # (a task sent there would time out on schedule-to-start, however the worker is sized).
    await asyncio.sleep(away)
    # The bank pays every order meanwhile, as Signals (no worker is needed to take them):
    # each order then has a workflow task waiting, with its whole history to replay.
    await asyncio.gather(*(pay(client, order) for order in orders))

    started = time.monotonic()
    second = processes.start_worker(settings=worker_settings)
    await processes.wait_until_polling(second)
    polling = time.monotonic() - started
    times = await asyncio.gather(*(served(service, order, started) for order in orders))
    tasks = await tasks_since(client, orders, killed_at)
    return Recovery(
        orders=count,
        worker_polling_s=polling,
        all_answered_s=max(answered for answered, _ in times),
        all_applied_s=max(applied for _, applied in times),
        task_timeouts=tasks.timeouts,
        task_seconds=tasks.durations,
    )


async def pay(client: Client, order: OrderRequest) -> None:
    await client.get_workflow_handle_for(OrderWorkflow.run, order.order_id).signal(
        OrderWorkflow.payment_received,
        PaymentReceived(
            payment_id=payment_id(order), amount=order.total(), currency=order.currency
        ),
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument(
        "--sdk-defaults", action="store_true", help="size the worker as the SDK does (before)"
    )
    parser.add_argument(
        "--away", type=float, default=STICKY_GONE, help="seconds between the kill and the payments"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="o2c-recovery-") as folder:
        processes = Processes.for_test(Path(folder))
        try:
            recovery = await recovery_after_kill(
                processes, args.orders, SDK_DEFAULTS if args.sdk_defaults else None, args.away
            )
        finally:
            processes.close()
    print("worker sized as the SDK's defaults" if args.sdk_defaults else "worker as configured")
    print("\n".join(recovery.lines()))


if __name__ == "__main__":
    asyncio.run(main())
