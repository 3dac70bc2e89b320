"""Driving orders on the time-skipping server against stub activities."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.order_activities import of_system
from o2c_domain.systems import SYSTEMS, LocalCalls
from o2c_service import events as order_events
from o2c_service.orders import OrderService
from o2c_service.outcomes import EventRejected, TemporalUnavailable
from o2c_service.temporal import running
from o2c_workflows.calls import system_queue
from o2c_workflows.closed_return import ClosedOrderReturnWorkflow
from o2c_workflows.messages import PaymentReceived, ShipmentConfirmed
from o2c_workflows.models import OrderLine, OrderRequest, OrderStatus
from o2c_workflows.order.workflow import OrderWorkflow
from tests.support.history import OrderHandle, wait_for_status
from tests.support.stub_activities import StubActivities

LIFECYCLE = [
    OrderStatus.ENTERED,
    OrderStatus.BOOKED,
    OrderStatus.SHIPPED,
    OrderStatus.INVOICED,
    OrderStatus.PAID,
    OrderStatus.CLOSED,
]


def make_order(customer_id: str = "CUST-ACME", currency: str = "EUR") -> OrderRequest:
    return OrderRequest(
        source_system="test",
        source_order_id=f"SO-{uuid.uuid4().hex[:12]}",
        customer_id=customer_id,
        currency=currency,
        lines=[
            OrderLine(sku="SKU-WIDGET", quantity=3, unit_price=Decimal("19.99")),
            OrderLine(sku="SKU-GADGET", quantity=1, unit_price=Decimal("100.00")),
        ],
    )


TOTAL = Decimal("159.97")


def payment(amount: str, payment_id: str = "PAY-1", currency: str = "EUR") -> PaymentReceived:
    return PaymentReceived(payment_id=payment_id, amount=Decimal(amount), currency=currency)


SHIPMENT = ShipmentConfirmed(carrier="DHL", tracking_number="JD0001")


async def keys_of(handle: OrderHandle) -> str:
    """What the order's idempotency keys start with: its id and its first run's."""
    state = await handle.query(OrderWorkflow.state)
    assert state.key_scope is not None
    return state.key_scope


async def resend_until_taken(send: Callable[[], Awaitable[object]], what: str) -> None:
    """Send an event as a 3PL or a bank would: an answer lost while the order switched
    runs (no answer in time) or a 'being applied' refusal means send it again, which is
    safe (a copy of an applied event is a duplicate)."""
    for _ in range(100):
        try:
            await send()
            return
        except TemporalUnavailable:
            continue
        except EventRejected as rejected:
            if "is being applied" not in str(rejected):
                raise
    raise AssertionError(f"{what} was never accepted")


class Harness:
    """A worker with stub activities on its own task queue, and ways to drive orders."""

    def __init__(
        self,
        env: WorkflowEnvironment,
        task_queue: str,
        stubs: StubActivities,
        local_activities: LocalCalls = False,
        system_queues: bool = False,
    ) -> None:
        self.env = env
        self.client: Client = env.client
        self.task_queue = task_queue
        self.stubs = stubs
        self.orders = OrderService(
            env.client,
            task_queue,
            clock=env.get_current_time,
            local_activities=local_activities,
            system_queues=system_queues,
        )
        self.started: list[str] = []

    async def start(self, order: OrderRequest) -> OrderHandle:
        # A plain start (`Prefer: respond-async`): the tests drive the order from Entered,
        # and the time-skipping server does not take update-with-start.
        await self.orders.create(order, wait=False)
        self.started.append(order.order_id)
        return self.client.get_workflow_handle_for(OrderWorkflow.run, order.order_id)

    async def end_unfinished(self) -> None:
        """Terminate what a (failed) test left running: its timers would otherwise keep
        the shared time-skipping server waiting for a worker that is gone."""
        for order_id in self.started:
            with contextlib.suppress(RPCError):  # finished already
                await self.client.get_workflow_handle(order_id).terminate("test over")

    async def booked(self, order: OrderRequest | None = None) -> OrderHandle:
        handle = await self.start(order or make_order())
        await wait_for_status(handle, OrderStatus.BOOKED)
        return handle

    async def invoiced(self) -> OrderHandle:
        handle = await self.booked()
        await self.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)
        await wait_for_status(handle, OrderStatus.INVOICED)
        return handle


@pytest.fixture
def stubs() -> StubActivities:
    return StubActivities(unknown_customers=frozenset({"CUST-NOBODY"}))


@asynccontextmanager
async def running_harness(
    env: WorkflowEnvironment,
    stubs: StubActivities,
    *,
    local_activities: LocalCalls,
    system_queues: bool = False,
) -> AsyncIterator[Harness]:
    """A worker on a new order task queue and, with `system_queues`, one on each system's
    queue beside it holding that system's stubs."""
    task_queue = f"orders-{uuid.uuid4()}"
    workers = [
        Worker(
            env.client,
            task_queue=task_queue,
            workflows=[OrderWorkflow, ClosedOrderReturnWorkflow],
            activities=stubs.all(),
        )
    ]
    if system_queues:
        workers += [
            Worker(
                env.client,
                task_queue=system_queue(task_queue, system),
                activities=of_system(stubs.all(), system),
            )
            for system in SYSTEMS
        ]
    async with running(workers):
        harness = Harness(
            env, task_queue, stubs, local_activities=local_activities, system_queues=system_queues
        )
        yield harness
        await harness.end_unfinished()


@pytest_asyncio.fixture
async def harness(
    time_skipping_env: WorkflowEnvironment, stubs: StubActivities
) -> AsyncIterator[Harness]:
    """Orders whose adapter calls are normal activities."""
    async with running_harness(time_skipping_env, stubs, local_activities=False) as harness:
        yield harness


@pytest_asyncio.fixture
async def local_harness(
    time_skipping_env: WorkflowEnvironment, stubs: StubActivities
) -> AsyncIterator[Harness]:
    """Orders started with `local_activities=True` (the default for embedded adapters)."""
    async with running_harness(time_skipping_env, stubs, local_activities=True) as harness:
        yield harness
