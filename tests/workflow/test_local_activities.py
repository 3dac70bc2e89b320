"""The same order with its adapter calls as local activities (`O2C_LOCAL_ACTIVITIES`).

The mode changes how calls are made, not what the order does: the lifecycle,
holds, compensation and partial shipments behave as with normal activities.
Scenarios that wait on a system's retry budget or on months of dunning timers
run with normal activities only: a local activity's retry backoff is spent in
the worker, in real time, which the time-skipping server cannot skip.
"""

from __future__ import annotations

from decimal import Decimal

from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from o2c_domain.lines import SkuQuantity
from o2c_service import events as order_events
from o2c_workflows.messages import CancelRequest, ShipmentConfirmed, SupportAction
from o2c_workflows.models import OrderStatus
from o2c_workflows.state import CompensationStatus
from tests.support.history import status_transitions, wait_for_status
from tests.support.order_harness import (
    LIFECYCLE,
    SHIPMENT,
    TOTAL,
    Harness,
    make_order,
    payment,
    running_harness,
)
from tests.support.stub_activities import StubActivities, business_error


async def test_the_lifecycle_runs_on_local_activities(local_harness: Harness) -> None:
    handle = await local_harness.booked()
    await local_harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)
    await wait_for_status(handle, OrderStatus.INVOICED)
    await local_harness.orders.send(order_events.PAYMENT, handle.id, payment(str(TOTAL)))
    summary = await handle.result()
    assert (summary.status, summary.paid) == (OrderStatus.CLOSED, TOTAL)
    assert await status_transitions(handle) == LIFECYCLE
    kinds = {event.event_type async for event in handle.fetch_history_events()}
    assert EventType.EVENT_TYPE_MARKER_RECORDED in kinds
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in kinds


async def test_only_the_listed_systems_run_local(
    time_skipping_env: WorkflowEnvironment, stubs: StubActivities
) -> None:
    """`O2C_LOCAL_ACTIVITIES='["crm", "billing"]'`: a remote logistics or payments system
    keeps normal activities (a task queue, rate limits) while the embedded ones run local."""
    async with running_harness(
        time_skipping_env, stubs, local_activities=["crm", "billing"]
    ) as harness:
        handle = await harness.booked()
        await harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)
        await wait_for_status(handle, OrderStatus.INVOICED)
        await harness.orders.send(order_events.PAYMENT, handle.id, payment(str(TOTAL)))
        assert (await handle.result()).status is OrderStatus.CLOSED
        events = [event async for event in handle.fetch_history_events()]

    scheduled = {
        event.activity_task_scheduled_event_attributes.activity_type.name.partition(".")[0]
        for event in events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    assert scheduled == {"logistics", "payments"}
    local_markers = [
        event
        for event in events
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and event.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]
    # validate_customer, ensure_billing_account, open_balance, create_invoice, apply_payment
    assert len(local_markers) == 5


async def test_on_system_queues_the_remote_systems_calls_go_to_their_own_queues(
    time_skipping_env: WorkflowEnvironment, stubs: StubActivities
) -> None:
    """Embedded CRM and billing stay local; logistics and payments each on its queue."""
    async with running_harness(
        time_skipping_env, stubs, local_activities=["crm", "billing"], system_queues=True
    ) as harness:
        handle = await harness.booked()
        await harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)
        await wait_for_status(handle, OrderStatus.INVOICED)
        await harness.orders.send(order_events.PAYMENT, handle.id, payment(str(TOTAL)))
        assert (await handle.result()).status is OrderStatus.CLOSED
        scheduled = {
            (attributes.activity_type.name.partition(".")[0], attributes.task_queue.name)
            async for event in handle.fetch_history_events()
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            for attributes in [event.activity_task_scheduled_event_attributes]
        }
    assert scheduled == {
        ("logistics", f"{harness.task_queue}.logistics"),
        ("payments", f"{harness.task_queue}.payments"),
    }


async def test_a_business_error_parks_and_retry_resumes(local_harness: Harness) -> None:
    local_harness.stubs.fail("reserve_stock", business_error("out_of_stock"))
    handle = await local_harness.start(make_order())
    await wait_for_status(handle, OrderStatus.ON_HOLD)
    local_harness.stubs.heal("reserve_stock")
    await local_harness.orders.send(order_events.RETRY, handle.id, SupportAction())
    await wait_for_status(handle, OrderStatus.BOOKED)


async def test_cancelling_compensates(local_harness: Harness) -> None:
    handle = await local_harness.booked()
    await local_harness.orders.send(
        order_events.CANCEL, handle.id, CancelRequest(reason="changed mind")
    )
    summary = await handle.result()
    assert [(c.step, c.status) for c in summary.compensations] == [
        ("request_shipment", CompensationStatus.DONE),
        ("reserve_stock", CompensationStatus.DONE),
    ]


async def test_partial_shipments_are_invoiced_each(local_harness: Harness) -> None:
    handle = await local_harness.booked()
    first = ShipmentConfirmed(
        carrier="DHL", tracking_number="T-1", lines=[SkuQuantity(sku="SKU-WIDGET", quantity=3)]
    )
    await local_harness.orders.send(order_events.SHIPMENT, handle.id, first)
    await local_harness.orders.send(
        order_events.SHIPMENT, handle.id, ShipmentConfirmed(carrier="DHL", tracking_number="T-2")
    )
    await wait_for_status(handle, OrderStatus.INVOICED)
    await local_harness.orders.send(order_events.PAYMENT, handle.id, payment(str(TOTAL)))
    summary = await handle.result()
    assert len(summary.invoice_ids) == 2
    assert summary.invoiced == Decimal("159.97")
