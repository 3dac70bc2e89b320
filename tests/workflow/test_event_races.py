"""Events that race each other or the order's own progress.

Each race is made deterministic with a gate on a stub activity (`Gate`): the
test holds the first event inside its activity, sends the second, and only
then lets the first go on. No sleeps. They run on the dev server: nothing here
needs time to skip, and an activity held open on the time-skipping server
leaves it unable to skip time for the tests after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest_asyncio
from temporalio.client import WorkflowUpdateStage
from temporalio.testing import WorkflowEnvironment

from o2c_service import events as order_events
from o2c_workflows.messages import EventAck
from o2c_workflows.models import OrderStatus
from tests.support.order_harness import SHIPMENT, TOTAL, Harness, payment, running_harness
from tests.support.stub_activities import StubActivities

ANSWER_WITHIN = 30.0
"""Seconds an update may take here before the test calls it lost (it takes milliseconds)."""


@pytest_asyncio.fixture
async def harness(dev_env: WorkflowEnvironment, stubs: StubActivities) -> AsyncIterator[Harness]:
    async with running_harness(dev_env, stubs, local_activities=False) as harness:
        yield harness


async def test_a_payment_racing_the_final_settlement_is_credited_before_the_order_closes(
    harness: Harness,
) -> None:
    handle = await harness.invoiced()
    late = harness.stubs.gate("record_payment:PAY-2")
    second = asyncio.create_task(
        harness.orders.send(order_events.PAYMENT, handle.id, payment("1.00", "PAY-2"))
    )
    await late.reached.wait()  # PAY-2 is being recorded in payments

    settling = await harness.orders.send(
        order_events.PAYMENT, handle.id, payment(str(TOTAL), "PAY-1")
    )
    # Every invoice is paid, but the order cannot close with a payment in flight.
    assert settling.status is OrderStatus.INVOICED
    late.opened.set()
    ack = await asyncio.wait_for(second, ANSWER_WITHIN)

    assert not ack.duplicate
    assert "1.00 kept as customer credit" in ack.message
    summary = await asyncio.wait_for(handle.result(), ANSWER_WITHIN)
    assert summary.status is OrderStatus.CLOSED
    assert (summary.paid, summary.customer_credit) == (TOTAL + Decimal("1.00"), Decimal("1.00"))
    assert harness.stubs.customer_credit == Decimal("1.00")


async def test_a_shipment_copy_racing_the_original_gets_the_same_answer(
    harness: Harness,
) -> None:
    handle = await harness.booked()
    held = harness.stubs.gate(f"confirm_shipment:{SHIPMENT.tracking_number}")
    original = asyncio.create_task(harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT))
    await held.reached.wait()

    # Accepted (not refused as "being applied"): it waits for the original.
    copy = await handle.start_update(
        "confirm_shipment",
        SHIPMENT,
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        result_type=EventAck,
    )
    held.opened.set()
    first = await asyncio.wait_for(original, ANSWER_WITHIN)
    second = await asyncio.wait_for(copy.result(), ANSWER_WITHIN)

    assert (first.duplicate, second.duplicate) == (False, True)
    assert first.message == "shipment confirmed: 3 SKU-WIDGET, 1 SKU-GADGET"
    assert second.message == "shipment already confirmed: 3 SKU-WIDGET, 1 SKU-GADGET"
    assert harness.stubs.calls["confirm_shipment"] == 1


async def test_a_payment_copy_racing_the_original_waits_and_answers_its_outcome(
    harness: Harness,
) -> None:
    handle = await harness.invoiced()
    held = harness.stubs.gate("record_payment:PAY-1")
    original = asyncio.create_task(
        harness.orders.send(order_events.PAYMENT, handle.id, payment("100.00", "PAY-1"))
    )
    await held.reached.wait()

    copy = await handle.start_update(
        "receive_payment",
        payment("100.00", "PAY-1"),
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        result_type=EventAck,
    )
    held.opened.set()
    first = await asyncio.wait_for(original, ANSWER_WITHIN)
    second = await asyncio.wait_for(copy.result(), ANSWER_WITHIN)

    assert (first.duplicate, second.duplicate) == (False, True)
    assert second.message == f"already received: {first.message}"
    assert "100.00 to INV-1" in first.message
    assert harness.stubs.calls["record_payment"] == 1
    assert harness.stubs.calls["apply_payment"] == 1
