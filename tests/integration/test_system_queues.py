"""A task queue per system: each system's activities on `<task queue>.<system>`, served by a
worker of its own at its own rate limit, so one slow system holds up only its own calls.

The orders run on the dev server against the local systems (a database of this module's),
with every call a normal activity, as an order calling remote systems makes them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.order_activities import OrderActivities
from adapters.local import LocalAdapters, open_local_adapters
from o2c_domain.systems import SYSTEMS
from o2c_service import events as order_events
from o2c_service.orders import OrderService
from o2c_service.queues import SERVED, Served
from o2c_service.runners import local_activities
from o2c_service.settings import Settings
from o2c_service.temporal import build_workers, running
from o2c_workflows.messages import PaymentReceived, ShipmentConfirmed
from o2c_workflows.models import OrderLine, OrderRequest, OrderStatus
from o2c_workflows.order.workflow import OrderWorkflow
from tests.support.history import OrderHandle, until, wait_for_status
from tests.support.sandbox_calls import most_in_a_window

pytestmark = pytest.mark.timeout(120)

WITHOUT_BILLING: tuple[Served, ...] = ("orders", "crm", "logistics", "payments")

RATE = 2.0
"""Billing activities per second in the rate-limit test."""
PARTITIONS = 4
"""Task queue partitions the server splits a queue's rate limit across; each may start one
task at once before its share of the rate applies, so a burst of up to this many."""
WITHIN = 60.0
"""Seconds an order may take to reach a status, billing's rate limit included."""


@dataclass
class Systems:
    adapters: LocalAdapters
    activities: OrderActivities


@pytest.fixture(scope="module")
def systems(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Systems]:
    database = tmp_path_factory.mktemp("system-queues") / "o2c.db"
    adapters = open_local_adapters(f"sqlite:///{database}")
    try:
        yield Systems(adapters, local_activities(adapters))
    finally:
        adapters.database.dispose()


@dataclass
class Orders:
    """Orders on a task queue of their own, every call a normal activity on its system's queue."""

    client: Client
    task_queue: str
    service: OrderService
    activities: OrderActivities

    def workers(
        self, served: Sequence[Served] = SERVED, settings: Settings | None = None
    ) -> AbstractAsyncContextManager[Sequence[Worker]]:
        """Workers on the queues `served`, at the limits of `settings`."""
        return running(
            build_workers(self.client, self.task_queue, self.activities, settings, served)
        )

    def handle(self, order: OrderRequest) -> OrderHandle:
        return self.client.get_workflow_handle_for(OrderWorkflow.run, order.order_id)

    async def start(self, order: OrderRequest) -> OrderHandle:
        await self.service.create(order, wait=False)
        return self.handle(order)

    async def ship(self, order: OrderRequest) -> None:
        shipment = ShipmentConfirmed(carrier="DHL", tracking_number=f"T-{order.source_order_id}")
        await self.service.send(order_events.SHIPMENT, order.order_id, shipment)

    async def pay(self, order: OrderRequest) -> None:
        paid = PaymentReceived(
            payment_id=f"PAY-{order.source_order_id}", amount=order.total(), currency="EUR"
        )
        await self.service.send(order_events.PAYMENT, order.order_id, paid)

    async def close(self, order: OrderRequest) -> None:
        """Booked, shipped, invoiced, paid: Closed."""
        handle = self.handle(order)
        await reaches(handle, OrderStatus.BOOKED)
        await self.ship(order)
        await reaches(handle, OrderStatus.INVOICED)
        await self.pay(order)
        assert (await handle.result()).status is OrderStatus.CLOSED


async def reaches(handle: OrderHandle, status: OrderStatus) -> None:
    """Return once the order is `status`, asking it five times a second: several orders
    wait at once, and every look is a query their worker answers."""

    async def there() -> bool:
        return (await handle.query(OrderWorkflow.state)).status is status

    await until(there, f"{handle.id} {status}", WITHIN, every=0.2)


@pytest_asyncio.fixture
async def orders(dev_env: WorkflowEnvironment, systems: Systems) -> Orders:
    task_queue = f"orders-{uuid.uuid4()}"
    service = OrderService(dev_env.client, task_queue, local_activities=False, system_queues=True)
    return Orders(dev_env.client, task_queue, service, systems.activities)


def an_order() -> OrderRequest:
    return OrderRequest(
        source_system="queues",
        source_order_id=f"SO-{uuid.uuid4().hex[:12]}",
        customer_id="CUST-ACME",
        currency="EUR",
        lines=[OrderLine(sku="SKU-WIDGET", quantity=2, unit_price=Decimal("10.00"))],
    )


# --- what the order's history says of its activities ------------------------------------


@dataclass
class Activity:
    """One activity of an order, as its history tells it."""

    name: str
    task_queue: str
    started: datetime | None = None
    """When a worker took it (ActivityTaskStarted); None while none has."""
    completed: bool = False

    @property
    def system(self) -> str:
        return self.name.partition(".")[0]


async def activities_of(handle: OrderHandle) -> list[Activity]:
    """The order's activities in the order it scheduled them."""
    scheduled: dict[int, Activity] = {}
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attributes = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = Activity(
                attributes.activity_type.name, attributes.task_queue.name
            )
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes.scheduled_event_id
            scheduled[started].started = event.event_time.ToDatetime()
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            scheduled[
                event.activity_task_completed_event_attributes.scheduled_event_id
            ].completed = True
    return list(scheduled.values())


async def waiting(handle: OrderHandle) -> dict[str, PendingActivityState.ValueType]:
    """The order's pending activities by type, with whether a worker has started each."""
    description = await handle.describe()
    return {
        pending.activity_type.name: pending.state
        for pending in description.raw_description.pending_activities
    }


SCHEDULED = PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED


# --- the tests ---------------------------------------------------------------------------


async def test_an_order_on_system_queues_closes_with_each_system_on_its_own_queue(
    orders: Orders,
) -> None:
    order = an_order()
    async with orders.workers():
        handle = await orders.start(order)
        await orders.close(order)

    activities = await activities_of(handle)
    assert {activity.system for activity in activities} == set(SYSTEMS)
    for activity in activities:
        assert activity.task_queue == f"{orders.task_queue}.{activity.system}", activity


async def test_an_order_started_without_system_queues_keeps_to_the_order_task_queue(
    orders: Orders,
) -> None:
    """As orders begun before there were system queues do, on the same workers."""
    before = OrderService(orders.client, orders.task_queue, local_activities=False)
    order = an_order()
    async with orders.workers():
        await before.create(order, wait=False)
        await orders.close(order)

    activities = await activities_of(orders.handle(order))
    assert {activity.task_queue for activity in activities} == {orders.task_queue}


async def test_without_a_billing_worker_billing_waits_and_logistics_goes_on(
    orders: Orders,
) -> None:
    early, late = an_order(), an_order()
    async with orders.workers(WITHOUT_BILLING):
        async with orders.workers(("billing",)):
            booked = await orders.start(early)
            await wait_for_status(booked, OrderStatus.BOOKED, WITHIN)

        # Billing's worker is gone: a new order waits at its first billing call...
        entered = await orders.start(late)
        await until(lambda: has_pending(entered, "billing.ensure_account"), "waiting for billing")
        # ... while logistics still confirms the booked order's shipment.
        await orders.ship(early)
        confirmed = [a for a in await activities_of(booked) if a.completed]
        assert "logistics.confirm_shipment" in [activity.name for activity in confirmed]
        await until(lambda: has_pending(booked, "billing.create_invoice"), "waiting to invoice")
        assert (await waiting(booked))["billing.create_invoice"] == SCHEDULED
        assert (await waiting(entered))["billing.ensure_account"] == SCHEDULED
        assert (await booked.query(OrderWorkflow.state)).status is OrderStatus.SHIPPED
        assert (await entered.query(OrderWorkflow.state)).status is OrderStatus.ENTERED

        async with orders.workers(("billing",)):
            await wait_for_status(booked, OrderStatus.INVOICED, WITHIN)
            await orders.pay(early)
            await orders.close(late)
            await wait_for_status(booked, OrderStatus.CLOSED, WITHIN)


async def has_pending(handle: OrderHandle, activity: str) -> bool:
    return activity in await waiting(handle)


async def test_billing_runs_at_its_rate_limit_and_every_order_closes(orders: Orders) -> None:
    batch = [an_order() for _ in range(10)]
    limited = Settings(billing_rate_limit=RATE)
    async with orders.workers(settings=limited):
        await asyncio.gather(*(orders.start(order) for order in batch))
        await asyncio.gather(*(orders.close(order) for order in batch))

    billing = [
        activity
        for order in batch
        for activity in await activities_of(orders.handle(order))
        if activity.system == "billing"
    ]
    times = [activity.started.timestamp() for activity in billing if activity.started is not None]
    assert len(times) == 4 * len(batch)  # account, credit check, invoice, payment
    duration = max(times) - min(times)
    busiest = most_in_a_window(times, 1.0)
    print(
        f"{len(batch)} orders, {len(times)} billing activities started over {duration:.1f} s "
        f"at {RATE:g}/s: at most {busiest} in any 1 s"
    )
    for seconds in (1.0, 2.0, 5.0, 10.0, duration + 1):
        most = most_in_a_window(times, seconds)
        assert most <= PARTITIONS + RATE * seconds, f"{most} billing activities in {seconds} s"


# --- o2c worker --systems ---------------------------------------------------------------

O2C = [sys.executable, "-m", "o2c_service"]


async def test_o2c_worker_refuses_an_unknown_system_in_one_line() -> None:
    process = await asyncio.create_subprocess_exec(
        *O2C, "worker", "--systems", "orders,bogus",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 2
    assert out == b""
    [line] = err.decode().splitlines()
    assert line.startswith("error: ") and "--systems" in line and "'bogus'" in line
    assert "orders, crm, billing, logistics, payments" in line


async def test_o2c_worker_polls_each_queue_it_serves(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    task_queue = f"orders-{uuid.uuid4()}"
    env = os.environ | {
        "O2C_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "O2C_TASK_QUEUE": task_queue,
        "O2C_DATABASE_URL": f"sqlite:///{tmp_path / 'o2c.db'}",
    }
    process = await asyncio.create_subprocess_exec(
        *O2C, "worker", "--systems", "billing,orders",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    ready = "worker polling task queue"
    expected = [f"{ready} {task_queue}", f"{ready} {task_queue}.billing"]
    seen: list[str] = []
    try:
        async with asyncio.timeout(60):
            while len(seen) < len(expected):
                line = (await process.stdout.readline()).decode()
                assert line, f"the worker exited: {process.returncode}"
                if ready in line:
                    seen.append(line[line.index(ready) :].strip())
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()
    assert sorted(seen) == expected
