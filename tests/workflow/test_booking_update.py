"""The `booking` Update, a read: it waits until booking has ended (stock reserved and the
shipment requested, held, or cancelled), answers how, and adds no command to the order
(dev server, stub activities). Not the time-skipping server: a test here holds a stub
activity open while it waits, and the time-skipping server then cannot answer a query or
an Update until the activity ends (the race tests run on the dev server for the same
reason)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from functools import partial

import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.testing import WorkflowEnvironment

from o2c_service import events as order_events
from o2c_workflows.messages import BookingOutcome, CancelRequest
from o2c_workflows.models import OrderStatus
from o2c_workflows.order.workflow import OrderWorkflow
from tests.support.history import OrderHandle, published_statuses, until, wait_for_state
from tests.support.order_harness import Harness, make_order, running_harness
from tests.support.stub_activities import StubActivities

COMMAND_EVENTS = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    EventType.EVENT_TYPE_TIMER_STARTED,
    EventType.EVENT_TYPE_TIMER_CANCELED,
    EventType.EVENT_TYPE_MARKER_RECORDED,
    EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
    EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
}
"""History events that record the workflow's own commands."""


@pytest_asyncio.fixture
async def harness(dev_env: WorkflowEnvironment, stubs: StubActivities) -> AsyncIterator[Harness]:
    async with running_harness(dev_env, stubs, local_activities=False) as harness:
        yield harness


def _command(event: HistoryEvent) -> str:
    name = EventType.Name(event.event_type)
    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        return f"{name} {event.activity_task_scheduled_event_attributes.activity_type.name}"
    return name


async def commands(handle: OrderHandle) -> list[str]:
    return [
        _command(event)
        async for event in handle.fetch_history_events()
        if event.event_type in COMMAND_EVENTS
    ]


async def booking_accepted(handle: OrderHandle) -> bool:
    """Whether the order has taken the `booking` Update (it is then waiting to answer)."""
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            return True
    return False


async def shows_booked(handle: OrderHandle) -> bool:
    return (await published_statuses(handle))[-1] is OrderStatus.BOOKED


async def test_booking_answers_booked_once_the_order_has_booked(harness: Harness) -> None:
    harness.stubs.booking_may_finish.clear()  # the order stays Entered until set
    handle = await harness.start(make_order())
    answer = asyncio.create_task(handle.execute_update(OrderWorkflow.booking))
    await until(partial(booking_accepted, handle), "the booking Update accepted")
    assert not answer.done(), "answered while the order was still Entered"
    assert (await handle.query(OrderWorkflow.state)).status is OrderStatus.ENTERED

    harness.stubs.booking_may_finish.set()
    outcome = await answer
    assert outcome == BookingOutcome(order_id=handle.id, status=OrderStatus.BOOKED)
    # Answered once the shipment is requested too: the order takes a Booked order's events.
    assert (await handle.query(OrderWorkflow.state)).shipment is not None
    # Asked again, it answers at once with the status the order is in now.
    assert (await handle.execute_update(OrderWorkflow.booking)).status is OrderStatus.BOOKED

    # A read: an order asked twice made exactly the commands of one never asked, each
    # waiting for its shipment (Booked published).
    unasked = await harness.booked()
    for order in (handle, unasked):
        await until(partial(shows_booked, order), f"{order.id} shows Booked")
    assert await commands(handle) == await commands(unasked)
    updates = [
        event
        async for event in handle.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    assert len(updates) == 2


async def test_booking_answers_a_hold_with_its_reason(harness: Harness) -> None:
    harness.stubs.open_balance_amount = Decimal("99900.00")  # + 159.97 > 100000.00
    handle = await harness.start(make_order())

    held = await handle.execute_update(OrderWorkflow.booking)
    assert (held.status, held.hold_reason) == (OrderStatus.ON_HOLD, "credit_limit_exceeded")
    assert held.hold_message is not None
    assert "exceeds the credit limit 100000.00" in held.hold_message
    assert held.cancellation_reason is None


async def test_booking_answers_a_cancellation_with_why(harness: Harness) -> None:
    harness.stubs.booking_may_finish.clear()  # reserve_stock waits: the order stays Entered
    handle = await harness.start(make_order())
    answer = asyncio.create_task(handle.execute_update(OrderWorkflow.booking))
    await until(partial(booking_accepted, handle), "the booking Update accepted")
    assert not answer.done()

    cancel = CancelRequest(reason="no stock")
    cancelling = asyncio.create_task(harness.orders.send(order_events.CANCEL, handle.id, cancel))
    await wait_for_state(handle, lambda state: state.cancellation_reason == "no stock", "stopping")
    harness.stubs.booking_may_finish.set()  # the reservation in flight ends, and is undone
    await cancelling
    assert await answer == BookingOutcome(
        order_id=handle.id, status=OrderStatus.CANCELLED, cancellation_reason="no stock"
    )
