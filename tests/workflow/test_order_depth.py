"""The Invoiced -> Paid tail and the line level, over simulated months.

Time-skipping scenarios: NET 30 paid early and late (with reminders), partial
shipments each invoiced, escalation, instalments, overpayment, amendments,
returns and card payment on order.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from o2c_domain.lines import SkuQuantity
from o2c_service import events as order_events
from o2c_service.outcomes import EventRejected
from o2c_workflows.messages import (
    Amendment,
    LineChange,
    ReturnReceived,
    ReturnResolution,
    ShipmentConfirmed,
)
from o2c_workflows.models import (
    CardPayment,
    OrderLine,
    OrderRequest,
    OrderStatus,
    PaymentTerms,
    PaymentTermsKind,
)
from o2c_workflows.order.workflow import OrderWorkflow
from o2c_workflows.search_attributes import DUNNING_LEVEL, PAYMENT_DUE
from tests.support.history import OrderHandle, wait_for_status
from tests.support.order_harness import SHIPMENT, TOTAL, Harness, make_order, payment

THREE_LINES = [
    OrderLine(sku="SKU-WIDGET", quantity=4, unit_price=Decimal("10.00")),
    OrderLine(sku="SKU-GADGET", quantity=2, unit_price=Decimal("25.50")),
    OrderLine(sku="SKU-GIZMO", quantity=1, unit_price=Decimal("99.99")),
]  # total 40.00 + 51.00 + 99.99 = 190.99


def order_with(**fields: Any) -> OrderRequest:
    return make_order().model_copy(update=fields)


def ship(tracking: str, *lines: tuple[str, int]) -> ShipmentConfirmed:
    return ShipmentConfirmed(
        carrier="DHL",
        tracking_number=tracking,
        lines=[SkuQuantity(sku=sku, quantity=quantity) for sku, quantity in lines],
    )


async def days(harness: Harness, count: int) -> None:
    """Let `count` days of simulated time pass (durable timers fire on the way)."""
    await harness.env.sleep(timedelta(days=count))


async def invoiced_on_day_zero(harness: Harness) -> OrderHandle:
    return await harness.invoiced()


async def test_net30_paid_on_day_20_sends_no_reminder(harness: Harness) -> None:
    handle = await invoiced_on_day_zero(harness)
    await days(harness, 20)
    await harness.orders.send(order_events.PAYMENT, handle.id, payment(str(TOTAL)))
    summary = await handle.result()
    await days(harness, 70)  # the 90 days run out: nothing is sent for a paid invoice
    assert summary.status is OrderStatus.CLOSED
    assert harness.stubs.dunning == []


async def test_net30_paid_on_day_45_after_two_reminders(harness: Harness) -> None:
    handle = await invoiced_on_day_zero(harness)
    state = await handle.query(OrderWorkflow.state)
    invoice_id = state.invoices[0].invoice_id
    due = (await handle.describe()).typed_search_attributes.get(PAYMENT_DUE)
    assert due is not None and due.date() == state.invoices[0].due_date

    await days(harness, 45)
    state = await harness.orders.get(handle.id)
    assert state.invoices[0].days_past_due == 15
    assert state.invoices[0].dunning_level == "second_reminder"
    assert (await handle.describe()).typed_search_attributes.get(DUNNING_LEVEL) == (
        "second_reminder"
    )
    await harness.orders.send(order_events.PAYMENT, handle.id, payment(str(TOTAL)))

    summary = await handle.result()
    await days(harness, 45)
    assert summary.status is OrderStatus.CLOSED
    assert harness.stubs.dunning == [
        (invoice_id, "first_reminder", 1),
        (invoice_id, "second_reminder", 10),
    ]
    assert harness.stubs.customers_on_hold == []


async def test_unpaid_for_thirty_days_past_due_escalates_to_a_customer_hold(
    harness: Harness,
) -> None:
    handle = await invoiced_on_day_zero(harness)
    await days(harness, 61)
    state = await handle.query(OrderWorkflow.state)
    assert state.invoices[0].dunning_level == "escalation"
    assert harness.stubs.customers_on_hold == ["CUST-ACME"]
    assert [level for _, level, _ in harness.stubs.dunning] == [
        "first_reminder", "second_reminder", "escalation",
    ]  # fmt: skip
    await harness.orders.send(order_events.PAYMENT, handle.id, payment(str(TOTAL)))
    assert (await handle.result()).status is OrderStatus.CLOSED


async def test_two_of_three_lines_ship_then_the_rest_each_invoiced_and_paid(
    harness: Harness,
) -> None:
    handle = await harness.booked(order_with(lines=THREE_LINES))

    first = await harness.orders.send(
        order_events.SHIPMENT, handle.id, ship("T-1", ("SKU-WIDGET", 4), ("SKU-GADGET", 2))
    )
    assert first.status is OrderStatus.BOOKED  # not every line has shipped
    await days(harness, 3)
    state = await handle.query(OrderWorkflow.state)
    [invoice_1] = state.invoices
    assert invoice_1.amount == Decimal("91.00")
    assert [(line.sku, line.shipped, line.invoiced) for line in state.lines] == [
        ("SKU-WIDGET", 4, 4), ("SKU-GADGET", 2, 2), ("SKU-GIZMO", 0, 0),
    ]  # fmt: skip
    assert state.status is OrderStatus.BOOKED

    with pytest.raises(EventRejected, match="SKU-WIDGET: 1 shipped, but only 0 of 4"):
        await harness.orders.send(order_events.SHIPMENT, handle.id, ship("T-X", ("SKU-WIDGET", 1)))
    await harness.orders.send(order_events.SHIPMENT, handle.id, ship("T-2", ("SKU-GIZMO", 1)))
    await wait_for_status(handle, OrderStatus.INVOICED)
    state = await handle.query(OrderWorkflow.state)
    invoice_2 = state.invoices[1]
    assert invoice_2.amount == Decimal("99.99")

    await harness.orders.send(order_events.PAYMENT, handle.id, payment("91.00", "PAY-1"))
    second = await harness.orders.send(order_events.PAYMENT, handle.id, payment("99.99", "PAY-2"))
    assert second.status is OrderStatus.PAID
    summary = await handle.result()
    assert summary.invoice_ids == [invoice_1.invoice_id, invoice_2.invoice_id]
    assert summary.tracking_numbers == ["T-1", "T-2"]
    assert (summary.invoiced, summary.paid) == (Decimal("190.99"), Decimal("190.99"))


async def test_an_unnamed_payment_goes_to_the_oldest_due_invoice_first(harness: Harness) -> None:
    handle = await harness.booked(order_with(lines=THREE_LINES))
    await harness.orders.send(order_events.SHIPMENT, handle.id, ship("T-1", ("SKU-GIZMO", 1)))
    await days(harness, 5)
    await harness.orders.send(order_events.SHIPMENT, handle.id, ship("T-2", ("SKU-WIDGET", 4)))
    await days(harness, 1)
    ack = await harness.orders.send(order_events.PAYMENT, handle.id, payment("120.00", "PAY-1"))
    state = await handle.query(OrderWorkflow.state)
    first, second = state.invoices
    assert ack.message.startswith(
        f"payment PAY-1: 99.99 to {first.invoice_id}; 20.01 to {second.invoice_id}"
    )
    assert (first.balance, second.balance) == (Decimal("0.00"), Decimal("19.99"))

    named = await harness.orders.send(
        order_events.PAYMENT,
        handle.id,
        payment("5.00", "PAY-2").model_copy(update={"invoice_id": second.invoice_id}),
    )
    assert f"5.00 to {second.invoice_id}" in named.message


async def test_instalments_are_dunned_one_by_one(harness: Harness) -> None:
    terms = PaymentTerms(kind=PaymentTermsKind.INSTALMENTS, net_days=30, instalments=3)
    handle = await harness.booked(order_with(payment_terms=terms))
    await harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)
    await wait_for_status(handle, OrderStatus.INVOICED)
    state = await handle.query(OrderWorkflow.state)
    assert [i.amount for i in state.invoices[0].schedule] == [
        Decimal("53.32"), Decimal("53.32"), Decimal("53.33"),
    ]  # fmt: skip

    await days(harness, 29)
    await harness.orders.send(
        order_events.PAYMENT, handle.id, payment("53.32", "PAY-1")
    )  # first, on time
    await days(harness, 33)  # day 62: the second fell due on day 60
    assert [level for _, level, _ in harness.stubs.dunning] == ["first_reminder"]
    state = await harness.orders.get(handle.id)
    assert state.invoices[0].days_past_due == 2


async def test_an_amendment_before_shipment_says_what_it_changed(harness: Harness) -> None:
    handle = await harness.booked()
    ack = await harness.orders.send(
        order_events.AMENDMENT,
        handle.id,
        Amendment(
            changes=[
                LineChange(sku="SKU-WIDGET", quantity=5),
                LineChange(sku="SKU-GADGET", quantity=0),
                LineChange(sku="SKU-GIZMO", quantity=1, unit_price=Decimal("7.50")),
            ]
        ),
    )
    assert ack.changes == [
        "SKU-WIDGET quantity 3 -> 5, 2 more reserved",
        "SKU-GADGET removed, reservation of 1 released",
        "SKU-GIZMO added: 1 at 7.50 EUR, 1 reserved",
        "total 159.97 -> 107.45 EUR",
    ]
    assert (ack.total_before, ack.total_after) == (TOTAL, Decimal("107.45"))
    assert harness.stubs.amended == [[("SKU-WIDGET", 5), ("SKU-GIZMO", 1)]]

    await harness.orders.send(order_events.SHIPMENT, handle.id, ship("T-1", ("SKU-WIDGET", 5)))
    with pytest.raises(EventRejected, match="SKU-WIDGET has shipped 5 of 5"):
        await harness.orders.send(
            order_events.AMENDMENT,
            handle.id,
            Amendment(changes=[LineChange(sku="SKU-WIDGET", quantity=6)]),
        )
    await harness.orders.send(order_events.SHIPMENT, handle.id, ship("T-2", ("SKU-GIZMO", 1)))
    await harness.orders.send(order_events.PAYMENT, handle.id, payment("107.45"))
    summary = await handle.result()
    assert (summary.total, summary.invoiced) == (Decimal("107.45"), Decimal("107.45"))


async def test_a_return_of_unpaid_goods_lowers_the_invoice(harness: Harness) -> None:
    handle = await harness.invoiced()
    ack = await harness.orders.send(order_events.RETURN,
        handle.id, ReturnReceived(return_id="RMA-1", lines=[SkuQuantity(sku="SKU-WIDGET",
                                                                        quantity=1)])
    )  # fmt: skip
    assert ack.message == "return RMA-1: credited 19.99, refunded 0"
    state = await handle.query(OrderWorkflow.state)
    assert state.invoices[0].balance == Decimal("139.98")
    widget = state.line("SKU-WIDGET")
    assert widget is not None and widget.returned == 1
    await harness.orders.send(order_events.PAYMENT, handle.id, payment("139.98"))
    assert (await handle.result()).status is OrderStatus.CLOSED


@pytest.mark.parametrize("resolution", [ReturnResolution.REFUND, ReturnResolution.CREDIT])
async def test_a_return_of_paid_goods_is_refunded_or_kept_as_credit(
    harness: Harness, resolution: ReturnResolution
) -> None:
    handle = await harness.booked(order_with(lines=THREE_LINES))
    await harness.orders.send(order_events.SHIPMENT, handle.id, ship("T-1", ("SKU-GADGET", 2)))
    await days(harness, 1)
    await harness.orders.send(order_events.PAYMENT, handle.id, payment("51.00", "PAY-1"))

    ack = await harness.orders.send(order_events.RETURN,
        handle.id,
        ReturnReceived(return_id="RMA-7", lines=[SkuQuantity(sku="SKU-GADGET", quantity=1)],
                       resolution=resolution),
    )  # fmt: skip

    refunded = Decimal("25.50") if resolution is ReturnResolution.REFUND else Decimal(0)
    assert ack.message == f"return RMA-7: credited 25.50, refunded {refunded}"
    assert harness.stubs.refunds == ([("PAY-1", Decimal("25.50"))] if refunded else [])
    assert harness.stubs.customer_credit == Decimal("25.50") - refunded
    with pytest.raises(EventRejected, match="only 1 invoiced and not yet returned"):
        await harness.orders.send(order_events.RETURN,
            handle.id, ReturnReceived(return_id="RMA-8",
                                      lines=[SkuQuantity(sku="SKU-GADGET", quantity=2)])
        )  # fmt: skip


async def test_a_card_order_is_authorised_at_booking_and_captured_per_invoice(
    harness: Harness,
) -> None:
    card = order_with(lines=THREE_LINES, payment_method=CardPayment(card_ref="card_visa"))
    handle = await harness.booked(card)
    assert harness.stubs.calls["open_balance"] == 0  # no credit check for prepaid orders
    await harness.orders.send(order_events.SHIPMENT, handle.id, ship("T-1", ("SKU-GIZMO", 1)))
    await harness.orders.send(order_events.SHIPMENT, handle.id, ship("T-2", ("SKU-WIDGET", 4),
                                                           ("SKU-GADGET", 2)))  # fmt: skip
    summary = await handle.result()
    assert (summary.status, summary.paid) == (OrderStatus.CLOSED, Decimal("190.99"))
    assert harness.stubs.calls["capture_card"] == 2
    assert harness.stubs.dunning == []


async def test_an_authorisation_that_no_longer_covers_the_capture_is_renewed(
    harness: Harness,
) -> None:
    card = order_with(payment_method=CardPayment(card_ref="card_visa"))
    handle = await harness.booked(card)
    # Amended upwards after authorising: the first capture finds too little left.
    await harness.orders.send(
        order_events.AMENDMENT,
        handle.id,
        Amendment(changes=[LineChange(sku="SKU-WIDGET", quantity=10)]),
    )
    await harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)
    summary = await handle.result()
    assert summary.paid == Decimal("299.90")
    assert harness.stubs.calls["authorise_card"] == 2
    notes = [entry.note for entry in (await handle.query(OrderWorkflow.state)).timeline]
    assert any("amount_exceeds_authorisation): authorising again" in note for note in notes)


async def test_a_declined_card_parks_the_order(harness: Harness) -> None:
    handle = await harness.start(order_with(payment_method=CardPayment(card_ref="card_declined_1")))
    await wait_for_status(handle, OrderStatus.ON_HOLD)
    state = await handle.query(OrderWorkflow.state)
    assert state.hold is not None
    assert (state.hold.step, state.hold.code) == ("authorise_card", "card_declined")
