"""Every failure path of the order on the time-skipping server, with stub activities.

Holds (fallout and credit), support's retry / release / cancel, cancellation
with compensation from an Update and from Temporal itself, the
compensate-on-failure policy, and payments received before the invoice.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import CancelledError

from o2c_service import events as order_events
from o2c_service.outcomes import EventRejected
from o2c_workflows.messages import CancelRequest, SupportAck, SupportAction
from o2c_workflows.models import OrderStatus
from o2c_workflows.order.workflow import OrderWorkflow
from o2c_workflows.search_attributes import HOLD_REASON
from o2c_workflows.state import CompensationStatus, HoldKind
from tests.support.history import (
    published_statuses,
    status_transitions,
    until,
    wait_for_state,
    wait_for_status,
)
from tests.support.order_harness import SHIPMENT, TOTAL, Harness, keys_of, make_order, payment
from tests.support.stub_activities import business_error, system_error

RETRY = SupportAction(note="fixed the data")


async def test_a_business_error_parks_the_order_until_support_retries(harness: Harness) -> None:
    harness.stubs.fail("reserve_stock", business_error("out_of_stock"))
    handle = await harness.start(make_order())
    await wait_for_status(handle, OrderStatus.ON_HOLD)

    state = await handle.query(OrderWorkflow.state)
    assert state.hold is not None
    assert (state.hold.kind, state.hold.step, state.hold.code) == (
        HoldKind.FALLOUT, "reserve_stock", "out_of_stock",
    )  # fmt: skip
    assert "stub says out_of_stock" in state.hold.message
    assert (await handle.describe()).typed_search_attributes.get(HOLD_REASON) == "out_of_stock"

    # Retried before the cause is fixed: parked again at the same step. By name, as the
    # service does: the SDK types an async update method's result as a coroutine.
    await handle.execute_update("retry", RETRY, result_type=SupportAck)
    await wait_for_status(handle, OrderStatus.ON_HOLD)
    harness.stubs.heal("reserve_stock")
    ack: SupportAck = await handle.execute_update("retry", RETRY, result_type=SupportAck)
    assert "retry of reserve_stock (out_of_stock) accepted" in ack.message

    await wait_for_status(handle, OrderStatus.BOOKED)

    async def shows_booked() -> bool:
        # The search attributes are published at the next wait on the outside world.
        return (await published_statuses(handle))[-1] is OrderStatus.BOOKED

    await until(shows_booked, "OrderStatus Booked published")
    assert (await handle.describe()).typed_search_attributes.get(HOLD_REASON) is None
    assert harness.stubs.calls["reserve_stock"] == 3
    assert (
        harness.stubs.keys.count(f"{await keys_of(handle)}:reserve") == 1
    )  # done once, when it worked
    assert harness.stubs.calls["validate_customer"] == 1  # earlier steps are not repeated
    assert await status_transitions(handle) == [
        OrderStatus.ENTERED, OrderStatus.ON_HOLD, OrderStatus.ENTERED, OrderStatus.ON_HOLD,
        OrderStatus.ENTERED, OrderStatus.BOOKED,
    ]  # fmt: skip
    await harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)
    await harness.orders.send(order_events.PAYMENT, handle.id, payment(str(TOTAL)))
    assert (await handle.result()).status is OrderStatus.CLOSED


async def test_a_system_that_stays_down_parks_the_order_when_the_budget_runs_out(
    harness: Harness,
) -> None:
    harness.stubs.fail("request_shipment", system_error())
    handle = await harness.booked()
    await harness.env.sleep(timedelta(minutes=11))  # past the logistics retry budget
    await wait_for_status(handle, OrderStatus.ON_HOLD)

    state = await handle.query(OrderWorkflow.state)
    assert state.hold is not None
    assert (state.hold.step, state.hold.code) == ("request_shipment", "retry_budget_exhausted")
    assert "stub system is down" in state.hold.message
    assert state.hold.resume_status is OrderStatus.BOOKED
    assert harness.stubs.calls["request_shipment"] > 3  # retried, with backoff, first

    harness.stubs.heal("request_shipment")
    await handle.execute_update("retry", RETRY, result_type=SupportAck)
    await wait_for_status(handle, OrderStatus.BOOKED)
    await harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)
    await harness.orders.send(order_events.PAYMENT, handle.id, payment(str(TOTAL)))
    assert (await handle.result()).status is OrderStatus.CLOSED


async def test_billing_rejecting_the_invoice_after_shipment_holds_the_order(
    harness: Harness,
) -> None:
    """Past the point of no return nothing is undone: the order waits for billing to be fixed."""
    harness.stubs.fail("create_invoice", business_error("invoice_rejected"))
    handle = await harness.booked()
    await harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)
    await wait_for_status(handle, OrderStatus.ON_HOLD)
    state = await handle.query(OrderWorkflow.state)
    assert state.hold is not None and state.hold.step == "create_invoice"
    assert state.hold.resume_status is OrderStatus.SHIPPED

    with pytest.raises(EventRejected, match=r"has shipped .* cannot be cancelled"):
        await harness.orders.send(order_events.CANCEL, handle.id, CancelRequest(reason="too late"))

    harness.stubs.heal("create_invoice")
    await harness.orders.send(order_events.RETRY, handle.id, RETRY)
    await harness.orders.send(order_events.PAYMENT, handle.id, payment(str(TOTAL)))
    summary = await handle.result()
    assert (summary.status, summary.paid, summary.compensations) == (
        OrderStatus.CLOSED, TOTAL, [],
    )  # fmt: skip


async def test_over_the_credit_limit_the_order_waits_for_release(harness: Harness) -> None:
    harness.stubs.open_balance_amount = Decimal("99900.00")  # + 159.97 > 100000.00
    handle = await harness.start(make_order())
    await wait_for_status(handle, OrderStatus.ON_HOLD)
    state = await handle.query(OrderWorkflow.state)
    assert state.hold is not None
    assert (state.hold.kind, state.hold.code) == (HoldKind.CREDIT, "credit_limit_exceeded")
    assert "99900.00 + this order 159.97 exceeds the credit limit 100000.00" in state.hold.message
    assert harness.stubs.calls["reserve_stock"] == 0

    ack = await harness.orders.send(
        order_events.RELEASE, handle.id, SupportAction(note="approved by finance")
    )
    assert ack.status is OrderStatus.ENTERED
    await wait_for_status(handle, OrderStatus.BOOKED)
    assert harness.stubs.calls["open_balance"] == 1  # released: not checked again
    timeline = [entry.note for entry in (await handle.query(OrderWorkflow.state)).timeline]
    assert "release: approved by finance" in timeline


async def test_retrying_a_credit_hold_checks_the_credit_again(harness: Harness) -> None:
    harness.stubs.open_balance_amount = Decimal("99900.00")
    handle = await harness.start(make_order())
    await wait_for_status(handle, OrderStatus.ON_HOLD)
    harness.stubs.open_balance_amount = Decimal("0.00")  # the customer paid their old invoices
    await harness.orders.send(order_events.RETRY, handle.id, RETRY)
    await wait_for_status(handle, OrderStatus.BOOKED)
    assert harness.stubs.calls["open_balance"] == 2


async def test_release_is_only_for_credit_holds_and_retry_only_for_holds(
    harness: Harness,
) -> None:
    handle = await harness.booked()
    with pytest.raises(EventRejected, match="is Booked, not waiting on a hold"):
        await harness.orders.send(order_events.RETRY, handle.id, RETRY)

    harness.stubs.fail("validate_customer", business_error("customer_not_found"))
    other = await harness.start(make_order())
    await wait_for_status(other, OrderStatus.ON_HOLD)
    with pytest.raises(EventRejected, match=r"held at validate_customer \(customer_not_found\)"):
        await harness.orders.send(order_events.RELEASE, other.id, RETRY)


async def test_cancelling_undoes_what_was_done_newest_first(harness: Harness) -> None:
    handle = await harness.booked()
    await harness.orders.send(order_events.PAYMENT, handle.id, payment("50.00", "PAY-EARLY"))

    ack = await harness.orders.send(
        order_events.CANCEL, handle.id, CancelRequest(reason="customer changed mind")
    )

    assert ack.status is OrderStatus.CANCELLED
    assert "refund_payment payment:PAY-EARLY" in ack.message
    order_id = await keys_of(handle)
    assert harness.stubs.undone == [
        "payment:PAY-EARLY", f"{order_id}:ship", f"{order_id}:reserve",
    ]  # fmt: skip
    summary = await handle.result()
    assert summary.status is OrderStatus.CANCELLED
    assert summary.cancellation_reason == "customer changed mind"
    assert [(c.step, c.status) for c in summary.compensations] == [
        ("payment PAY-EARLY", CompensationStatus.DONE),
        ("request_shipment", CompensationStatus.DONE),
        ("reserve_stock", CompensationStatus.DONE),
    ]
    assert harness.stubs.calls["create_invoice"] == 0
    assert (await status_transitions(handle))[-1] is OrderStatus.CANCELLED


async def test_cancelling_a_parked_order_undoes_only_what_took_effect(harness: Harness) -> None:
    harness.stubs.fail("reserve_stock", business_error("item_unknown"))
    handle = await harness.start(make_order())
    await wait_for_status(handle, OrderStatus.ON_HOLD)

    await harness.orders.send(
        order_events.CANCEL, handle.id, CancelRequest(reason="item discontinued")
    )

    summary = await handle.result()
    assert [(c.step, c.status) for c in summary.compensations] == [
        ("reserve_stock", CompensationStatus.NOTHING_TO_UNDO)
    ]
    assert harness.stubs.undone == []


async def test_cancelling_in_temporal_runs_the_same_compensation(harness: Harness) -> None:
    handle = await harness.booked()
    await handle.cancel()

    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    state = await handle.query(OrderWorkflow.state)
    assert state.status is OrderStatus.CANCELLED
    assert state.cancellation_reason == "cancelled in Temporal"
    assert [c.step for c in state.compensations] == ["request_shipment", "reserve_stock"]
    assert all(c.status is CompensationStatus.DONE for c in state.compensations)


async def test_cancelling_in_temporal_after_shipment_is_refused(harness: Harness) -> None:
    handle = await harness.invoiced()
    await handle.cancel()
    await harness.orders.send(order_events.PAYMENT, handle.id, payment(str(TOTAL)))

    summary = await handle.result()
    assert (summary.status, summary.compensations) == (OrderStatus.CLOSED, [])
    notes = [entry.note for entry in (await handle.query(OrderWorkflow.state)).timeline]
    assert "cancellation requested in Temporal refused: the goods have shipped" in notes


@pytest.mark.parametrize("code", ["customer_blocked", "shipment_refused"])
async def test_errors_that_end_the_order_compensate_and_cancel(harness: Harness, code: str) -> None:
    step = "validate_customer" if code == "customer_blocked" else "request_shipment"
    harness.stubs.fail(step, business_error(code))
    handle = await harness.start(make_order())

    summary = await handle.result()

    assert summary.status is OrderStatus.CANCELLED
    assert summary.cancellation_reason == f"{step} failed ({code}): stub says {code}"
    done = [c.step for c in summary.compensations if c.status is CompensationStatus.DONE]
    assert done == ([] if code == "customer_blocked" else ["reserve_stock"])


async def test_a_compensation_that_cannot_undo_is_recorded_as_fallout(harness: Harness) -> None:
    harness.stubs.fail("cancel_shipment", business_error("shipment_already_confirmed"))
    handle = await harness.booked()
    await harness.orders.send(
        order_events.CANCEL, handle.id, CancelRequest(reason="duplicate order")
    )

    summary = await handle.result()
    assert [(c.step, c.status) for c in summary.compensations] == [
        ("request_shipment", CompensationStatus.FAILED),
        ("reserve_stock", CompensationStatus.DONE),
    ]
    assert (await handle.describe()).typed_search_attributes.get(HOLD_REASON) == (
        "compensation_failed"
    )


async def test_a_payment_before_the_invoice_is_applied_once_invoiced(harness: Harness) -> None:
    handle = await harness.booked()
    early = await harness.orders.send(order_events.PAYMENT, handle.id, payment("100.00", "PAY-1"))
    assert early.message == "payment PAY-1: 100.00 held until invoiced; open balance 0"
    assert early.status is OrderStatus.BOOKED

    await harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)
    # Invoiced first, then the money held on account is applied to the new invoice.
    state = await wait_for_state(
        handle, lambda s: bool(s.invoices) and s.invoices[0].balance < TOTAL, "cash applied"
    )
    [invoice] = state.invoices
    assert invoice.balance == Decimal("59.97")
    assert [a.invoice_id for a in state.payments[0].applications] == [invoice.invoice_id]

    # More than is owed: the rest is kept as customer credit in billing.
    last = await harness.orders.send(order_events.PAYMENT, handle.id, payment("60.00", "PAY-2"))
    assert f"59.97 to {invoice.invoice_id}; 0.03 kept as customer credit" in last.message
    summary = await handle.result()
    assert (summary.paid, summary.customer_credit) == (Decimal("160.00"), Decimal("0.03"))
    assert harness.stubs.customer_credit == Decimal("0.03")


async def test_applying_a_payment_that_fails_for_good_parks_the_order(harness: Harness) -> None:
    harness.stubs.fail("apply_payment", business_error("invoice_not_found"))
    handle = await harness.invoiced()
    ack = await harness.orders.send(order_events.PAYMENT, handle.id, payment(str(TOTAL)))
    assert "applying it is on hold" in ack.message
    state = await handle.query(OrderWorkflow.state)
    assert state.hold is not None and state.hold.step == "apply_payment"

    harness.stubs.heal("apply_payment")
    await harness.orders.send(order_events.RETRY, handle.id, RETRY)
    summary = await handle.result()
    assert (summary.status, summary.paid) == (OrderStatus.CLOSED, TOTAL)
    assert harness.stubs.calls["record_payment"] == 1  # recorded once, applied on retry


async def test_support_actions_also_arrive_as_signals(harness: Harness) -> None:
    harness.stubs.open_balance_amount = Decimal("99900.00")
    handle = await harness.start(make_order())
    await wait_for_status(handle, OrderStatus.ON_HOLD)
    await handle.signal(OrderWorkflow.release_requested, SupportAction())
    await wait_for_status(handle, OrderStatus.BOOKED)
    await handle.signal(OrderWorkflow.cancel_requested, CancelRequest(reason="by signal"))
    summary = await handle.result()
    assert (summary.status, summary.cancellation_reason) == (OrderStatus.CANCELLED, "by signal")
