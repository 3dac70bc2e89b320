"""Returns after an order closed: the `ClosedOrderReturn` workflow, sent as any return.

On the dev server (the order's earlier returns after close are found in Temporal's
visibility) against stub activities: an order is paid in full and closes, then
goods come back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from o2c_domain.lines import SkuQuantity
from o2c_service import events as order_events
from o2c_service.outcomes import EventRejected, OrderConflict
from o2c_workflows import closed_return
from o2c_workflows.closed_return import ClosedOrderReturnInput, ClosedOrderReturnWorkflow
from o2c_workflows.messages import CancelRequest, EventAck, ReturnReceived, ReturnResolution
from o2c_workflows.models import OrderStatus
from o2c_workflows.state import OrderState
from tests.support.history import OrderHandle
from tests.support.order_harness import SHIPMENT, TOTAL, Harness, payment, running_harness
from tests.support.stub_activities import StubActivities


@pytest_asyncio.fixture
async def harness(dev_env: WorkflowEnvironment, stubs: StubActivities) -> AsyncIterator[Harness]:
    async with running_harness(dev_env, stubs, local_activities=False) as harness:
        yield harness


async def closed(harness: Harness) -> OrderHandle:
    """An order shipped, invoiced, paid in full (PAY-1) and Closed."""
    handle = await harness.booked()
    await harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)
    await harness.orders.send(order_events.PAYMENT, handle.id, payment(str(TOTAL)))
    assert (await handle.result()).status is OrderStatus.CLOSED
    return handle


def widgets(return_id: str, quantity: int, resolution: ReturnResolution) -> ReturnReceived:
    return ReturnReceived(
        return_id=return_id,
        lines=[SkuQuantity(sku="SKU-WIDGET", quantity=quantity)],
        resolution=resolution,
    )


async def shown(harness: Harness, order_id: str, return_id: str) -> OrderState:
    """The order as support reads it, once it lists the return (visibility catches up)."""
    for _ in range(200):
        state = await harness.orders.get(order_id)
        if state.returned(return_id) is not None:
            return state
    raise AssertionError(f"order {order_id} never showed return {return_id}")


async def started(harness: Harness, order_id: str, number: int) -> bool:
    """Whether the `number`-th return after close of the order has a workflow."""
    handle = harness.client.get_workflow_handle(closed_return.workflow_id(order_id, number))
    try:
        await handle.describe()
    except RPCError as error:
        assert error.status == RPCStatusCode.NOT_FOUND
        return False
    return True


@pytest.mark.parametrize(
    ("resolution", "refunded"),
    [(ReturnResolution.REFUND, Decimal("39.98")), (ReturnResolution.CREDIT, Decimal(0))],
    ids=["refund", "credit"],
)
async def test_a_return_after_close_credits_and_refunds_or_keeps_credit_once(
    harness: Harness, resolution: ReturnResolution, refunded: Decimal
) -> None:
    handle = await closed(harness)
    returned = widgets("RMA-1", 2, resolution)

    first = await harness.orders.send(order_events.RETURN, handle.id, returned)
    again = await harness.orders.send(order_events.RETURN, handle.id, returned)

    assert (first.status, first.duplicate) == (OrderStatus.CLOSED, False)
    assert (
        first.message == f"return RMA-1 recorded after close: credited 39.98, refunded {refunded}"
    )
    assert again.duplicate
    assert again.message == f"return RMA-1 already recorded: credited 39.98, refunded {refunded}"
    stubs = harness.stubs
    assert (stubs.calls["receive_return"], stubs.calls["create_credit_note"]) == (1, 1)
    assert stubs.refunds == ([("PAY-1", refunded)] if refunded else [])
    assert stubs.customer_credit == Decimal("39.98") - refunded
    # The same keys the open order would have used for RMA-1.
    scope = (await handle.query("state", result_type=OrderState)).key_scope
    assert f"{scope}:return:RMA-1" in stubs.keys
    workflow = harness.client.get_workflow_handle_for(
        ClosedOrderReturnWorkflow.run, closed_return.workflow_id(handle.id, 1)
    )
    assert (await workflow.describe()).status is WorkflowExecutionStatus.COMPLETED


async def test_the_order_shows_its_returns_after_close(harness: Harness) -> None:
    handle = await closed(harness)
    await harness.orders.send(
        order_events.RETURN, handle.id, widgets("RMA-2", 1, ReturnResolution.CREDIT)
    )

    state = await shown(harness, handle.id, "RMA-2")

    assert state.status is OrderStatus.CLOSED
    widget = state.line("SKU-WIDGET")
    assert widget is not None and widget.returned == 1
    (note,) = state.credit_notes
    assert (note.return_id, note.amount, note.refunded) == ("RMA-2", Decimal("19.99"), Decimal(0))
    assert "return RMA-2 after close: credited 19.99, refunded 0" in state.timeline[-1].note


async def test_a_return_of_more_than_is_left_after_earlier_returns_is_refused(
    harness: Harness,
) -> None:
    handle = await closed(harness)
    await harness.orders.send(
        order_events.RETURN, handle.id, widgets("RMA-3", 2, ReturnResolution.REFUND)
    )
    await shown(harness, handle.id, "RMA-3")

    with pytest.raises(EventRejected, match="SKU-WIDGET: 2 returned, but only 1 invoiced") as no:
        await harness.orders.send(
            order_events.RETURN, handle.id, widgets("RMA-4", 2, ReturnResolution.REFUND)
        )

    assert not no.value.invalid  # 409, as on an open order
    assert not await started(harness, handle.id, 2)
    assert harness.stubs.calls["create_credit_note"] == 1


async def test_a_return_of_an_unknown_sku_is_invalid_and_starts_nothing(harness: Harness) -> None:
    handle = await closed(harness)
    unknown = ReturnReceived(return_id="RMA-5", lines=[SkuQuantity(sku="SKU-NOPE", quantity=1)])

    with pytest.raises(EventRejected, match="has no line for SKU-NOPE") as no:
        await harness.orders.send(order_events.RETURN, handle.id, unknown)

    assert no.value.invalid  # 422
    assert not await started(harness, handle.id, 1)
    assert harness.stubs.calls["receive_return"] == 0


async def test_the_same_return_id_with_other_lines_is_a_conflict(harness: Harness) -> None:
    handle = await closed(harness)
    await harness.orders.send(
        order_events.RETURN, handle.id, widgets("RMA-6", 1, ReturnResolution.REFUND)
    )

    with pytest.raises(OrderConflict, match="already recorded with other lines"):
        await harness.orders.send(
            order_events.RETURN, handle.id, widgets("RMA-6", 2, ReturnResolution.REFUND)
        )
    assert harness.stubs.calls["create_credit_note"] == 1


async def test_two_returns_sent_at_once_are_applied_one_at_a_time(harness: Harness) -> None:
    """Three widgets invoiced, two returns of two each in the same instant: they cannot
    both be credited; one is, the other is refused as busy and, sent again, as too many."""
    handle = await closed(harness)
    first, second = (
        widgets("RMA-12", 2, ReturnResolution.REFUND),
        widgets("RMA-13", 2, ReturnResolution.REFUND),
    )

    answers = await asyncio.gather(
        harness.orders.send(order_events.RETURN, handle.id, first),
        harness.orders.send(order_events.RETURN, handle.id, second),
        return_exceptions=True,
    )

    (applied,) = [a for a in answers if isinstance(a, EventAck)]
    (busy,) = [a for a in answers if isinstance(a, EventRejected)]
    assert "another return for order" in str(busy) and not busy.invalid
    assert harness.stubs.calls["create_credit_note"] == 1
    loser = second if applied.message.startswith("return RMA-12") else first
    await shown(harness, handle.id, "RMA-13" if loser is first else "RMA-12")
    with pytest.raises(EventRejected, match="SKU-WIDGET: 2 returned, but only 1 invoiced"):
        await harness.orders.send(order_events.RETURN, handle.id, loser)
    assert harness.stubs.calls["create_credit_note"] == 1


async def test_an_earlier_return_sent_again_after_a_later_one_is_a_duplicate(
    harness: Harness,
) -> None:
    handle = await closed(harness)
    earlier = widgets("RMA-14", 1, ReturnResolution.REFUND)
    await harness.orders.send(order_events.RETURN, handle.id, earlier)
    await harness.orders.send(
        order_events.RETURN, handle.id, widgets("RMA-15", 1, ReturnResolution.REFUND)
    )

    again = await harness.orders.send(order_events.RETURN, handle.id, earlier)

    assert again.duplicate and again.message.startswith("return RMA-14 already recorded")
    assert harness.stubs.calls["create_credit_note"] == 2


async def test_on_system_queues_each_call_goes_to_its_systems_queue(
    dev_env: WorkflowEnvironment, stubs: StubActivities
) -> None:
    async with running_harness(dev_env, stubs, local_activities=False, system_queues=True) as on:
        handle = await closed(on)
        await on.orders.send(
            order_events.RETURN, handle.id, widgets("RMA-8", 1, ReturnResolution.REFUND)
        )
        workflow = on.client.get_workflow_handle(closed_return.workflow_id(handle.id, 1))
        scheduled = {
            (attributes.activity_type.name, attributes.task_queue.name)
            async for event in workflow.fetch_history_events()
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            for attributes in [event.activity_task_scheduled_event_attributes]
        }

    assert scheduled == {
        ("logistics.receive_return", f"{on.task_queue}.logistics"),
        ("billing.create_credit_note", f"{on.task_queue}.billing"),
        ("payments.refund", f"{on.task_queue}.payments"),
        ("billing.post_customer_credit", f"{on.task_queue}.billing"),
    }


async def test_the_workflow_itself_refuses_an_over_return_before_any_call(
    harness: Harness,
) -> None:
    """Started past the API's check (say, two returns at once), it checks again first."""
    handle = await closed(harness)
    state = await handle.query("state", result_type=OrderState)
    too_many = widgets("RMA-10", 4, ReturnResolution.REFUND)

    with pytest.raises(WorkflowFailureError) as failed:
        await harness.client.execute_workflow(
            ClosedOrderReturnWorkflow.run,
            ClosedOrderReturnInput(closed_order=state, returned=too_many),
            id=closed_return.workflow_id(handle.id, 1),
            task_queue=harness.task_queue,
        )

    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.message == (
        "SKU-WIDGET: 4 returned, but only 3 invoiced and not yet returned"
    )
    assert harness.stubs.calls["receive_return"] == 0


async def test_a_cancelled_order_takes_no_return(harness: Harness) -> None:
    handle = await harness.booked()
    await harness.orders.send(order_events.CANCEL, handle.id, CancelRequest(reason="changed"))
    await handle.result()

    with pytest.raises(OrderConflict, match="finished and takes no more events"):
        await harness.orders.send(
            order_events.RETURN, handle.id, widgets("RMA-11", 1, ReturnResolution.REFUND)
        )
    assert not await started(harness, handle.id, 1)
