"""The order workflow on the time-skipping server, with stub activities."""

from __future__ import annotations

from decimal import Decimal

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError

from o2c_service import events as order_events
from o2c_service.outcomes import EventRejected
from o2c_workflows.messages import CancelRequest, PaymentReceived, ShipmentConfirmed
from o2c_workflows.models import OrderStatus
from o2c_workflows.order.base import OrderInput
from o2c_workflows.order.workflow import OrderWorkflow
from o2c_workflows.search_attributes import CUSTOMER_ID, ORDER_STATUS
from o2c_workflows.state import OrderSummary
from tests.support.history import (
    OrderHandle,
    published_statuses,
    status_transitions,
    until,
    wait_for_status,
)
from tests.support.order_harness import (
    LIFECYCLE,
    SHIPMENT,
    TOTAL,
    Harness,
    keys_of,
    make_order,
    payment,
)


async def test_happy_path_runs_the_lifecycle_through_updates(harness: Harness) -> None:
    handle = await harness.booked()

    shipped = await harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)
    assert (shipped.status, shipped.duplicate) == (OrderStatus.SHIPPED, False)
    await wait_for_status(handle, OrderStatus.INVOICED)
    part = await harness.orders.send(order_events.PAYMENT, handle.id, payment("100.00", "PAY-1"))
    assert part.status is OrderStatus.INVOICED
    assert "balance 59.97" in part.message
    rest = await harness.orders.send(order_events.PAYMENT, handle.id, payment("59.97", "PAY-2"))
    assert rest.status is OrderStatus.PAID

    summary = await handle.result()
    assert summary.status is OrderStatus.CLOSED
    assert (summary.total, summary.invoiced, summary.paid) == (TOTAL, TOTAL, TOTAL)
    assert summary.tracking_numbers == ["JD0001"]
    invoice_id = f"INV-1-{handle.id}"
    assert summary.invoice_ids == [invoice_id]
    assert await status_transitions(handle) == LIFECYCLE
    # The search attribute is published when the order waits, not at every step.
    assert await published_statuses(handle) == [
        OrderStatus.ENTERED,
        OrderStatus.BOOKED,
        OrderStatus.INVOICED,
        OrderStatus.CLOSED,
    ]
    assert harness.stubs.calls["create_invoice"] == 1
    assert harness.stubs.calls["apply_payment"] == 2
    order_id = await keys_of(handle)
    assert order_id.startswith(f"{handle.id}:")
    assert harness.stubs.keys == [
        f"{order_id}:reserve",
        f"{order_id}:ship",
        f"{order_id}:dispatch:JD0001",
        f"{order_id}:invoice:1",
        "payment:PAY-1",
        f"{order_id}:apply:PAY-1:{invoice_id}",
        "payment:PAY-2",
        f"{order_id}:apply:PAY-2:{invoice_id}",
    ]


async def test_signals_drive_the_same_lifecycle(harness: Harness) -> None:
    handle = await harness.booked()

    await handle.signal(OrderWorkflow.shipment_confirmed, SHIPMENT)
    await wait_for_status(handle, OrderStatus.INVOICED)
    await handle.signal(OrderWorkflow.payment_received, payment(str(TOTAL)))

    summary = await handle.result()
    assert (summary.status, summary.paid) == (OrderStatus.CLOSED, TOTAL)
    assert await status_transitions(handle) == LIFECYCLE


async def test_payment_between_shipment_and_invoice_waits_for_the_invoice(
    harness: Harness,
) -> None:
    harness.stubs.invoicing_may_finish.clear()
    handle = await harness.booked()
    await harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)

    ack = await harness.orders.send(order_events.PAYMENT, handle.id, payment(str(TOTAL)))
    assert (ack.status, ack.message) == (
        OrderStatus.SHIPPED, "payment PAY-1: 159.97 held until invoiced; open balance 0",
    )  # fmt: skip
    state = await handle.query(OrderWorkflow.state)
    assert (state.invoices, state.payments[0].applications) == ([], [])

    harness.stubs.invoicing_may_finish.set()
    summary = await handle.result()
    assert (summary.status, summary.paid, summary.invoiced) == (OrderStatus.CLOSED, TOTAL, TOTAL)


async def test_query_returns_the_whole_state(harness: Harness) -> None:
    handle = await harness.invoiced()
    await harness.orders.send(order_events.PAYMENT, handle.id, payment("10.00"))

    state = await handle.query(OrderWorkflow.state)

    dumped = state.model_dump(mode="json")
    assert set(dumped) == {
        "order_id", "status", "order", "lines", "total", "booking", "shipment", "dispatches",
        "invoices", "payments", "credit_notes", "returns", "amendments", "card_authorisations",
        "hold", "cancellation_reason", "compensations", "undo", "timeline", "runs", "key_scope",
        "process_version", "created_by", "amended_by", "holds_resolved", "cancelled_by",
        "outside_events",
    }  # fmt: skip
    assert dumped["status"] == "Invoiced"
    assert dumped["total"] == "159.97"
    assert [line["sku"] for line in dumped["order"]["lines"]] == ["SKU-WIDGET", "SKU-GADGET"]
    assert dumped["booking"]["billing_account_id"] == "BA-CUST-ACME"
    assert [
        (line["sku"], line["ordered"], line["shipped"], line["invoiced"])
        for line in dumped["lines"]
    ] == [("SKU-WIDGET", 3, 3, 3), ("SKU-GADGET", 1, 1, 1)]
    assert dumped["dispatches"][0]["carrier"] == "DHL"
    assert dumped["dispatches"][0]["tracking_number"] == "JD0001"
    assert dumped["invoices"][0]["amount"] == "159.97"
    assert dumped["invoices"][0]["balance"] == "149.97"
    assert dumped["payments"][0]["payment_id"] == "PAY-1"
    statuses = [entry["status"] for entry in dumped["timeline"]]
    assert [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] != s] == [
        "Entered", "Booked", "Shipped", "Invoiced",
    ]  # fmt: skip
    assert "payment PAY-1 applied" in [entry["note"] for entry in dumped["timeline"]]
    times = [entry.at for entry in state.timeline]
    assert times == sorted(times)
    # NET 30 by default: due 30 days after the invoice.
    invoice = state.invoices[0]
    assert (invoice.due_date - invoice.issued_at.date()).days == 30


async def test_search_attributes_follow_the_status(harness: Harness) -> None:
    handle = await harness.invoiced()
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(ORDER_STATUS) == "Invoiced"
    assert attributes.get(CUSTOMER_ID) == "CUST-ACME"


async def test_an_order_started_without_search_attributes_gets_them(harness: Harness) -> None:
    """An order started from the Temporal UI or CLI is still findable by status."""
    order = make_order()
    handle = await harness.client.start_workflow(
        OrderWorkflow.run,
        OrderInput(order=order),
        id=order.order_id,
        task_queue=harness.task_queue,
        search_attributes=TypedSearchAttributes([SearchAttributePair(CUSTOMER_ID, "other")]),
    )

    async def findable_as_booked() -> bool:
        described = await handle.describe()
        return described.typed_search_attributes.get(ORDER_STATUS) == "Booked"

    await until(findable_as_booked, "findable as Booked")
    await harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)
    await harness.orders.send(order_events.PAYMENT, handle.id, payment(str(TOTAL)))
    assert (await handle.result()).status is OrderStatus.CLOSED


async def accepted_updates(handle: OrderHandle) -> int:
    return len(
        [
            event
            async for event in handle.fetch_history_events()
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        ]
    )


@pytest.mark.parametrize(
    ("at", "event", "invalid", "reason"),
    [
        (OrderStatus.INVOICED, SHIPMENT.model_copy(update={"tracking_number": "OTHER"}), False,
         "every line of order .* has already shipped"),
        (OrderStatus.INVOICED, payment("10.00", currency="USD"), True,
         "is in EUR, the payment in USD"),
        (OrderStatus.INVOICED, payment("1.00").model_copy(update={"invoice_id": "INV-9"}), True,
         "has no invoice INV-9"),
    ],
    ids=["second-shipment", "wrong-currency", "unknown-invoice"],
)  # fmt: skip
async def test_events_that_do_not_fit_are_rejected_and_change_nothing(
    harness: Harness,
    at: OrderStatus,
    event: PaymentReceived | ShipmentConfirmed,
    invalid: bool,
    reason: str,
) -> None:
    handle = await harness.booked()
    if at is OrderStatus.INVOICED:
        await harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)
        await wait_for_status(handle, OrderStatus.INVOICED)
    state_before = await handle.query(OrderWorkflow.state)
    calls_before = harness.stubs.calls.copy()
    updates_before = await accepted_updates(handle)

    with pytest.raises(EventRejected, match=reason) as rejected:
        if isinstance(event, PaymentReceived):
            await harness.orders.send(order_events.PAYMENT, handle.id, event)
        else:
            await harness.orders.send(order_events.SHIPMENT, handle.id, event)

    assert rejected.value.invalid is invalid
    assert await handle.query(OrderWorkflow.state) == state_before
    assert harness.stubs.calls == calls_before
    # The validator turned it away: nothing about it was written to history.
    assert await accepted_updates(handle) == updates_before


async def test_events_before_booking_are_rejected(harness: Harness) -> None:
    harness.stubs.booking_may_finish.clear()
    handle = await harness.start(make_order())

    with pytest.raises(EventRejected, match="is Entered; a shipment can be confirmed once"):
        await harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)
    with pytest.raises(EventRejected, match="is Entered; payments are accepted once it is Booked"):
        await harness.orders.send(order_events.PAYMENT, handle.id, payment("10.00"))

    harness.stubs.booking_may_finish.set()
    await wait_for_status(handle, OrderStatus.BOOKED)
    assert harness.stubs.calls["confirm_shipment"] == 0
    assert harness.stubs.calls["record_payment"] == 0


async def test_a_rejected_signal_changes_nothing(harness: Harness) -> None:
    handle = await harness.invoiced()
    await handle.signal(OrderWorkflow.payment_received, payment("10.00", currency="USD"))
    await handle.signal(OrderWorkflow.payment_received, payment(str(TOTAL)))

    summary = await handle.result()
    assert summary.paid == TOTAL
    assert harness.stubs.calls["record_payment"] == 1


async def test_the_same_events_sent_twice_are_applied_once(harness: Harness) -> None:
    handle = await harness.invoiced()

    again = await harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)
    first = await harness.orders.send(order_events.PAYMENT, handle.id, payment("50.00"))
    second = await harness.orders.send(order_events.PAYMENT, handle.id, payment("50.00"))

    assert again.duplicate and not first.duplicate and second.duplicate
    assert harness.stubs.calls["confirm_shipment"] == 1
    assert harness.stubs.calls["apply_payment"] == 1
    state = await handle.query(OrderWorkflow.state)
    assert state.invoices[0].balance == Decimal("109.97")


async def test_a_payment_id_reused_with_another_amount_is_rejected(harness: Harness) -> None:
    handle = await harness.invoiced()
    await harness.orders.send(order_events.PAYMENT, handle.id, payment("50.00"))
    with pytest.raises(EventRejected, match=r"already received for 50\.00, not 60\.00"):
        await harness.orders.send(order_events.PAYMENT, handle.id, payment("60.00"))


async def test_a_payment_the_order_cannot_sum_is_refused_and_nothing_is_recorded(
    harness: Harness,
) -> None:
    handle = await harness.invoiced()
    await harness.orders.send(order_events.PAYMENT, handle.id, payment("100.00", "PAY-1"))
    state_before = await handle.query(OrderWorkflow.state)

    with pytest.raises(EventRejected, match="would exceed the largest amount") as refused:
        await harness.orders.send(
            order_events.PAYMENT, handle.id, payment("9999999999999999.99", "PAY-2")
        )

    assert refused.value.invalid
    assert await handle.query(OrderWorkflow.state) == state_before
    assert harness.stubs.calls["record_payment"] == 1
    # The order goes on: the rest is paid and it closes.
    await harness.orders.send(order_events.PAYMENT, handle.id, payment("59.97", "PAY-3"))
    assert (await handle.result()).paid == TOTAL


async def test_a_workflow_under_another_id_than_its_order_does_nothing(harness: Harness) -> None:
    """As `temporal workflow start --type Order --workflow-id my-order-1` would start it."""
    order = make_order()
    handle = await harness.client.start_workflow(
        "Order", OrderInput(order=order), id=f"my-{order.source_order_id}",
        task_queue=harness.task_queue, result_type=OrderSummary,
    )  # fmt: skip

    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()

    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "workflow_id_mismatch"
    assert f"is not the order id '{order.order_id}'" in cause.message
    assert sum(harness.stubs.calls.values()) == 0  # no side effect at all


async def test_another_execution_of_an_order_never_shares_its_keys(harness: Harness) -> None:
    """Run again under the same id after the first closed (the CLI allows it): its effects
    and its undos are its own."""
    first = await harness.booked()
    first_keys = await keys_of(first)
    await harness.orders.send(order_events.CANCEL, first.id, CancelRequest(reason="first run"))
    undone_by_first = list(harness.stubs.undone)

    order = (await first.query(OrderWorkflow.state)).order
    second = await harness.client.start_workflow(
        OrderWorkflow.run, OrderInput(order=order), id=order.order_id,
        task_queue=harness.task_queue,
    )  # fmt: skip
    await wait_for_status(second, OrderStatus.BOOKED)
    await harness.orders.send(order_events.CANCEL, second.id, CancelRequest(reason="second run"))

    second_keys = await keys_of(second)
    assert first_keys != second_keys
    undone_by_second = harness.stubs.undone[len(undone_by_first) :]
    assert undone_by_second and all(k.startswith(f"{second_keys}:") for k in undone_by_second)
    assert harness.stubs.keys.count(f"{second_keys}:reserve") == 1
