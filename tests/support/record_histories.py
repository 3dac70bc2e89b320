"""Record the replay corpus: `python -m tests.support.record_histories [SCENARIO ...]` writes
tests/histories/*.json.

Each file is the full history of one workflow run of a scenario, driven against
the stub activities, its payloads encrypted under the fixed test key `replay-1`
(`REPLAY_CONVERTER`), as Temporal stores an order's. `test_replay.py` replays every
file with the current workflow code, so a change that would break workflows already
running fails there first; `test_encrypted_corpus.py` checks every payload is
ciphertext. Re-record only for a deliberate, versioned change (with
`workflow.patched`); `--list` names the scenarios, and naming some records only
those.

Every scenario asserts how its workflows ended (Closed, Cancelled, refused, ...)
before anything is written, so no file holds a half-run.

Why one module of some 650 lines: it is one recorder. Each scenario is a short
function beside the helpers they share (`harness_on`, `ship`, `closed`,
`history_of`) and is named, with the files it writes, in `SCENARIOS`, which
`test_replay` reads; adding or re-recording a path means reading a scenario and its
entry together, and `python -m tests.support.record_histories` runs them all from
here.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType, IndexedValueType, PendingActivityState
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import PollWorkflowTaskQueueRequest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowHistory,
)
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from o2c_domain.lines import SkuQuantity
from o2c_service import events as order_events
from o2c_service.orders import OrderService
from o2c_service.outcomes import EventRejected
from o2c_service.temporal import exit_at_once
from o2c_workflows import closed_return
from o2c_workflows.closed_return import ClosedOrderReturnInput, ClosedOrderReturnWorkflow
from o2c_workflows.credit_refund import CreditRefundRequest, CreditRefundWorkflow, workflow_id
from o2c_workflows.messages import (
    Amendment,
    CancelRequest,
    LineChange,
    ReturnReceived,
    ReturnResolution,
    ShipmentConfirmed,
    SupportAck,
    SupportAction,
)
from o2c_workflows.models import CardPayment, OrderLine, OrderRequest, OrderStatus
from o2c_workflows.order.workflow import OrderWorkflow
from o2c_workflows.search_attributes import ALL
from o2c_workflows.state import HoldKind, OrderSummary
from tests.support.codec import REPLAY_CONVERTER
from tests.support.history import OrderHandle, until, wait_for_status
from tests.support.order_harness import (
    SHIPMENT,
    TOTAL,
    Harness,
    make_order,
    payment,
    resend_until_taken,
    running_harness,
)
from tests.support.stub_activities import StubActivities, business_error
from tests.support.temporal_env import binary

HISTORIES = Path(__file__).parents[1] / "histories"

Recorded = list[tuple[str, WorkflowHistory]]
"""File stem and history of each workflow run a scenario recorded."""

THREE_LINES = [
    OrderLine(sku="SKU-WIDGET", quantity=4, unit_price=Decimal("10.00")),
    OrderLine(sku="SKU-GADGET", quantity=2, unit_price=Decimal("25.50")),
    OrderLine(sku="SKU-GIZMO", quantity=1, unit_price=Decimal("99.99")),
]  # total 40.00 + 51.00 + 99.99 = 190.99

RETRY = SupportAction(note="fixed the data")


def ship(tracking: str, *lines: tuple[str, int]) -> ShipmentConfirmed:
    return ShipmentConfirmed(
        carrier="DHL",
        tracking_number=tracking,
        lines=[SkuQuantity(sku=sku, quantity=quantity) for sku, quantity in lines],
    )


async def closed(handle: OrderHandle) -> OrderSummary:
    summary = await handle.result()
    assert isinstance(summary, OrderSummary), summary
    assert summary.status is OrderStatus.CLOSED, f"{handle.id} ended {summary.status}"
    return summary


async def cancelled(handle: OrderHandle) -> OrderSummary:
    summary = await handle.result()
    assert isinstance(summary, OrderSummary), summary
    assert summary.status is OrderStatus.CANCELLED, f"{handle.id} ended {summary.status}"
    return summary


async def history_of(name: str, handle: WorkflowHandle[Any, Any]) -> Recorded:
    return [(name, await handle.fetch_history())]


async def pending_attempt(handle: OrderHandle, activity: str) -> int | None:
    """The attempt of `activity` a worker is running now, if any."""
    description = await handle.describe()
    for pending in description.raw_description.pending_activities:
        if (
            pending.activity_type.name == activity
            and pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        ):
            return pending.attempt
    return None


# --- the scenarios: each drives its workflows to a known end on its own worker ----------


@dataclass(frozen=True)
class Servers:
    time_skipping: WorkflowEnvironment
    short_history: Callable[[], Awaitable[WorkflowEnvironment]]
    """A dev server that suggests continue-as-new early, started on first use."""


@asynccontextmanager
async def harness_on(
    servers: Servers,
    stubs: StubActivities | None = None,
    *,
    local_activities: bool = False,
    system_queues: bool = False,
) -> AsyncIterator[Harness]:
    async with running_harness(
        servers.time_skipping,
        stubs or StubActivities(),
        local_activities=local_activities,
        system_queues=system_queues,
    ) as harness:
        yield harness


async def happy(servers: Servers) -> Recorded:
    async with harness_on(servers) as harness:
        handle = await harness.booked()
        await harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)
        await harness.orders.send(order_events.PAYMENT, handle.id, payment(str(TOTAL)))
        await closed(handle)
        return await history_of("happy", handle)


async def partial_late(servers: Servers) -> Recorded:
    async with harness_on(servers) as harness:
        handle = await harness.booked()
        await harness.orders.send(order_events.SHIPMENT, handle.id, ship("T-1", ("SKU-WIDGET", 3)))
        await harness.orders.send(order_events.PAYMENT, handle.id, payment("100.00", "PAY-1"))
        await harness.orders.send(
            order_events.SHIPMENT,
            handle.id,
            ShipmentConfirmed(carrier="DHL", tracking_number="T-2"),
        )
        await wait_for_status(handle, OrderStatus.INVOICED)
        await harness.env.sleep(timedelta(days=45))  # late: two reminders on the way
        await harness.orders.send(order_events.PAYMENT, handle.id, payment("59.97", "PAY-2"))
        await closed(handle)
        assert len(harness.stubs.dunning) == 2
        return await history_of("partial-late", handle)


async def held_cancelled(servers: Servers) -> Recorded:
    async with harness_on(servers) as harness:
        harness.stubs.fail("reserve_stock", business_error("out_of_stock"))
        handle = await harness.start(make_order())
        await wait_for_status(handle, OrderStatus.ON_HOLD)
        harness.stubs.heal("reserve_stock")
        await harness.orders.send(order_events.CANCEL, handle.id, CancelRequest(reason="recorded"))
        await cancelled(handle)
        return await history_of("held-cancelled", handle)


async def card_payment(servers: Servers) -> Recorded:
    """Authorised at booking, captured per invoice (two shipments, two captures)."""
    async with harness_on(servers) as harness:
        card = make_order().model_copy(
            update={"lines": THREE_LINES, "payment_method": CardPayment(card_ref="CARD-recorded")}
        )
        handle = await harness.booked(card)
        await harness.orders.send(order_events.SHIPMENT, handle.id, ship("T-1", ("SKU-GIZMO", 1)))
        await harness.orders.send(
            order_events.SHIPMENT, handle.id, ship("T-2", ("SKU-WIDGET", 4), ("SKU-GADGET", 2))
        )
        summary = await closed(handle)
        assert summary.paid == Decimal("190.99")
        assert harness.stubs.calls["authorise_card"] == 1
        assert harness.stubs.calls["capture_card"] == 2
        return await history_of("card-payment", handle)


async def local_activities(servers: Servers) -> Recorded:
    async with harness_on(servers, local_activities=True) as harness:
        handle = await harness.booked()
        await harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)
        await harness.orders.send(order_events.PAYMENT, handle.id, payment(str(TOTAL)))
        await closed(handle)
        kinds = {event.event_type async for event in handle.fetch_history_events()}
        assert EventType.EVENT_TYPE_MARKER_RECORDED in kinds
        assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in kinds
        return await history_of("local-activities", handle)


async def system_queues(servers: Servers) -> Recorded:
    """The happy path with each normal activity on its system's task queue."""
    async with harness_on(servers, system_queues=True) as harness:
        handle = await harness.booked()
        await harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)
        await harness.orders.send(order_events.PAYMENT, handle.id, payment(str(TOTAL)))
        await closed(handle)
        queues = {
            (
                event.activity_task_scheduled_event_attributes.activity_type.name.partition(".")[0],
                event.activity_task_scheduled_event_attributes.task_queue.name,
            )
            async for event in handle.fetch_history_events()
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        }
        assert queues == {
            (system, f"{harness.task_queue}.{system}")
            for system in ("crm", "billing", "logistics", "payments")
        }, queues
        return await history_of("system-queues", handle)


SUGGEST_AFTER_EVENTS = 60
CONTINUE_AS_NEW_SKUS = [f"SKU-{n}" for n in range(4)]


async def continue_as_new(servers: Servers) -> Recorded:
    """An order shipped line by line on a server that suggests continue-as-new after
    60 events: the first run ends ContinuedAsNew, the second closes the order."""
    env = await servers.short_history()
    task_queue = f"orders-{uuid.uuid4()}"
    orders = OrderService(env.client, task_queue)
    order = OrderRequest(
        source_system="long",
        source_order_id=f"SO-{uuid.uuid4().hex[:8]}",
        customer_id="CUST-ACME",
        currency="EUR",
        lines=[
            OrderLine(sku=sku, quantity=1, unit_price=Decimal("10.00"))
            for sku in CONTINUE_AS_NEW_SKUS
        ],
    )
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[OrderWorkflow],
        activities=StubActivities().all(),
    ):
        await orders.create(order)
        handle = env.client.get_workflow_handle_for(OrderWorkflow.run, order.order_id)
        await wait_for_status(handle, OrderStatus.BOOKED)
        for number, sku in enumerate(CONTINUE_AS_NEW_SKUS, start=1):
            shipment = ship(f"T-{number}", (sku, 1))
            await resend_until_taken(
                partial(orders.send, order_events.SHIPMENT, order.order_id, shipment),
                shipment.tracking_number,
            )
        await resend_until_taken(
            partial(orders.send, order_events.PAYMENT, order.order_id, payment("40.00")),
            "the payment",
        )
        summary = await closed(handle)
        assert summary.paid == Decimal("40.00")
        runs = [
            env.client.get_workflow_handle(execution.id, run_id=execution.run_id)
            async for execution in env.client.list_workflows(f"WorkflowId = '{order.order_id}'")
        ]
        histories = [await run.fetch_history() for run in runs]
    histories.sort(key=lambda history: history.events[0].event_time.ToDatetime())
    endings = [history.events[-1].event_type for history in histories]
    assert endings == [
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    ], f"expected two runs, the first continued as new: {endings}"
    return [(f"continue-as-new-run{n}", history) for n, history in enumerate(histories, 1)]


async def amendment(servers: Servers) -> Recorded:
    async with harness_on(servers) as harness:
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
        assert ack.total_after == Decimal("107.45")
        await harness.orders.send(order_events.SHIPMENT, handle.id, ship("T-1", ("SKU-WIDGET", 5)))
        await harness.orders.send(order_events.SHIPMENT, handle.id, ship("T-2", ("SKU-GIZMO", 1)))
        await harness.orders.send(order_events.PAYMENT, handle.id, payment("107.45"))
        summary = await closed(handle)
        assert summary.invoiced == Decimal("107.45")
        return await history_of("amendment", handle)


def returned(resolution: ReturnResolution) -> Callable[[Servers], Awaitable[Recorded]]:
    async def record(servers: Servers) -> Recorded:
        """Two gadgets shipped and paid, one comes back (refunded or kept as customer
        credit), then the rest ships and is paid."""
        async with harness_on(servers) as harness:
            handle = await harness.booked(make_order().model_copy(update={"lines": THREE_LINES}))
            await harness.orders.send(
                order_events.SHIPMENT, handle.id, ship("T-1", ("SKU-GADGET", 2))
            )
            await harness.env.sleep(timedelta(days=1))
            await harness.orders.send(order_events.PAYMENT, handle.id, payment("51.00", "PAY-1"))
            ack = await harness.orders.send(
                order_events.RETURN,
                handle.id,
                ReturnReceived(
                    return_id="RMA-7",
                    lines=[SkuQuantity(sku="SKU-GADGET", quantity=1)],
                    resolution=resolution,
                ),
            )
            refunded = "25.50" if resolution is ReturnResolution.REFUND else "0"
            assert ack.message == f"return RMA-7: credited 25.50, refunded {refunded}", ack
            await harness.orders.send(
                order_events.SHIPMENT, handle.id, ship("T-2", ("SKU-WIDGET", 4), ("SKU-GIZMO", 1))
            )
            await wait_for_status(handle, OrderStatus.INVOICED)
            await harness.orders.send(order_events.PAYMENT, handle.id, payment("139.99", "PAY-2"))
            await closed(handle)
            assert harness.stubs.customer_credit == Decimal("25.50") - Decimal(refunded)
            return await history_of(f"return-{resolution.value}", handle)

    return record


async def closed_order_return(servers: Servers) -> Recorded:
    """An order paid in full closes; two widgets come back and are refunded."""
    async with harness_on(servers) as harness:
        handle = await harness.booked()
        await harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)
        await harness.orders.send(order_events.PAYMENT, handle.id, payment(str(TOTAL)))
        await closed(handle)
        # Started as the API starts it, from the closed order's final state (the API also
        # folds in earlier returns after close, found in visibility: there are none here).
        returned = ReturnReceived(
            return_id="RMA-9", lines=[SkuQuantity(sku="SKU-WIDGET", quantity=2)]
        )
        return_handle = await harness.client.start_workflow(
            ClosedOrderReturnWorkflow.run,
            ClosedOrderReturnInput(
                closed_order=await handle.query(OrderWorkflow.state), returned=returned
            ),
            id=closed_return.workflow_id(handle.id, 1),
            task_queue=harness.task_queue,
        )
        result = await return_handle.result()
        assert (result.credited, result.refunded) == (Decimal("39.98"), Decimal("39.98"))
        assert harness.stubs.refunds == [("PAY-1", Decimal("39.98"))]
        return await history_of("closed-order-return", return_handle)


@asynccontextmanager
async def refund_service(servers: Servers, stubs: StubActivities) -> AsyncIterator[OrderService]:
    env = servers.time_skipping
    task_queue = f"credit-refunds-{uuid.uuid4()}"
    async with Worker(
        env.client, task_queue=task_queue, workflows=[CreditRefundWorkflow], activities=stubs.all()
    ):
        yield OrderService(env.client, task_queue, clock=env.get_current_time)


def refund_request(amount: str) -> CreditRefundRequest:
    return CreditRefundRequest(
        refund_id=f"RF-{uuid.uuid4().hex[:12]}",
        account_id="BA-CUST-ACME",
        payment_id="PAY-1",
        amount=Decimal(amount),
        currency="EUR",
        reason="customer asked for the overpayment back",
    )


async def credit_refund_completed(servers: Servers) -> Recorded:
    stubs = StubActivities()
    stubs.customer_credit = Decimal("50.00")
    async with refund_service(servers, stubs) as service:
        request = refund_request("20.00")
        result = await service.refund_credit(request)
        assert result.credit_balance == Decimal("30.00")
        assert stubs.refunds == [("PAY-1", Decimal("20.00"))]
        handle = service.client.get_workflow_handle(workflow_id(request.refund_id))
        return await history_of("credit-refund-completed", handle)


async def refused(service: OrderService, request: CreditRefundRequest, code: str) -> Recorded:
    try:
        await service.refund_credit(request)
    except EventRejected:
        pass
    else:
        raise AssertionError(f"refund {request.refund_id} was not refused")
    handle = service.client.get_workflow_handle_for(
        CreditRefundWorkflow.run, workflow_id(request.refund_id)
    )
    result = await handle.result()  # a refusal is the workflow's result, not a failure
    assert (result.refunded, result.refusal_code) == (False, code), result
    return await history_of(f"credit-refund-refused-{code.replace('_', '-')}", handle)


async def credit_refund_refused(servers: Servers) -> Recorded:
    """Refused by billing (not enough credit, nothing done), and by payments (the credit
    used first is posted back)."""
    stubs = StubActivities()
    stubs.customer_credit = Decimal("10.00")
    async with refund_service(servers, stubs) as service:
        recorded = await refused(service, refund_request("10.01"), "insufficient_credit")
        stubs.fail("refund", business_error("refund_exceeds_payment"))
        recorded += await refused(service, refund_request("5.00"), "refund_exceeds_payment")
    assert stubs.refunds == []
    assert stubs.customer_credit == Decimal("10.00")
    return recorded


async def support_retry(servers: Servers) -> Recorded:
    """A fallout hold retried too early (held again), then retried once fixed."""
    async with harness_on(servers) as harness:
        harness.stubs.fail("reserve_stock", business_error("out_of_stock"))
        handle = await harness.start(make_order())
        await wait_for_status(handle, OrderStatus.ON_HOLD)
        # A new error for the next failure: raising one again lengthens its traceback.
        harness.stubs.fail("reserve_stock", business_error("out_of_stock"))
        # By name: the SDK types an async update method's result as a coroutine.
        await handle.execute_update("retry", RETRY, result_type=SupportAck)
        await wait_for_status(handle, OrderStatus.ON_HOLD)
        harness.stubs.heal("reserve_stock")
        await harness.orders.send(order_events.RETRY, handle.id, RETRY)
        await wait_for_status(handle, OrderStatus.BOOKED)
        await harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)
        await harness.orders.send(order_events.PAYMENT, handle.id, payment(str(TOTAL)))
        await closed(handle)
        assert harness.stubs.calls["reserve_stock"] == 3
        return await history_of("support-retry", handle)


async def credit_hold_released(servers: Servers) -> Recorded:
    async with harness_on(servers) as harness:
        harness.stubs.open_balance_amount = Decimal("99900.00")  # + 159.97 > 100000.00
        handle = await harness.start(make_order())
        await wait_for_status(handle, OrderStatus.ON_HOLD)
        state = await harness.orders.get(handle.id)
        assert state.hold is not None and state.hold.kind is HoldKind.CREDIT
        await harness.orders.send(
            order_events.RELEASE, handle.id, SupportAction(note="approved by finance")
        )
        await wait_for_status(handle, OrderStatus.BOOKED)
        await harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)
        await harness.orders.send(order_events.PAYMENT, handle.id, payment(str(TOTAL)))
        await closed(handle)
        assert harness.stubs.calls["open_balance"] == 1
        return await history_of("credit-hold-released", handle)


async def signals(servers: Servers) -> Recorded:
    """The 3PL and the bank send Signals instead of Updates."""
    async with harness_on(servers) as harness:
        handle = await harness.booked()
        await handle.signal(OrderWorkflow.shipment_confirmed, SHIPMENT)
        await wait_for_status(handle, OrderStatus.INVOICED)
        await handle.signal(OrderWorkflow.payment_received, payment(str(TOTAL)))
        summary = await closed(handle)
        assert summary.paid == TOTAL
        return await history_of("signals", handle)


async def cancelled_in_temporal(servers: Servers) -> Recorded:
    """Cancelled from Temporal (UI, CLI) while Booked: compensated, then Canceled."""
    async with harness_on(servers) as harness:
        handle = await harness.booked()
        await handle.cancel()
        try:
            await handle.result()
        except WorkflowFailureError as failure:
            assert isinstance(failure.cause, CancelledError), failure.cause
        else:
            raise AssertionError("the order was not cancelled")
        assert (await handle.describe()).status is WorkflowExecutionStatus.CANCELED
        state = await harness.orders.get(handle.id)
        assert state.status is OrderStatus.CANCELLED
        assert [c.step for c in state.compensations] == ["request_shipment", "reserve_stock"]
        return await history_of("cancelled-in-temporal", handle)


async def overpayment(servers: Servers) -> Recorded:
    """Paid early (held until invoiced), then more than owed: the rest is customer credit."""
    async with harness_on(servers) as harness:
        handle = await harness.booked()
        await harness.orders.send(order_events.PAYMENT, handle.id, payment("100.00", "PAY-1"))
        await harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)
        await wait_for_status(handle, OrderStatus.INVOICED)
        await harness.orders.send(order_events.PAYMENT, handle.id, payment("60.00", "PAY-2"))
        summary = await closed(handle)
        assert (summary.paid, summary.customer_credit) == (Decimal("160.00"), Decimal("0.03"))
        return await history_of("overpayment-credit", handle)


async def dunning_escalation(servers: Servers) -> Recorded:
    """Unpaid: two reminders, then escalation puts the customer on hold; paid at last."""
    async with harness_on(servers) as harness:
        handle = await harness.invoiced()
        await harness.env.sleep(timedelta(days=61))
        assert harness.stubs.customers_on_hold == ["CUST-ACME"]
        assert [level for _, level, _ in harness.stubs.dunning] == [
            "first_reminder", "second_reminder", "escalation",
        ]  # fmt: skip
        await harness.orders.send(order_events.PAYMENT, handle.id, payment(str(TOTAL)))
        await closed(handle)
        return await history_of("dunning-escalation", handle)


async def timeouts(servers: Servers) -> Recorded:
    """A workflow task no worker answers times out and is retried; a reservation that
    hangs past its start-to-close timeout is retried, and the second attempt counts."""
    env = servers.time_skipping
    stubs = StubActivities()
    task_queue = f"orders-{uuid.uuid4()}"
    harness = Harness(env, task_queue, stubs)
    stubs.booking_may_finish.clear()
    handle = await harness.start(make_order())
    # A worker that takes the first workflow task and dies: the task times out (10 s).
    stalled = await env.client.workflow_service.poll_workflow_task_queue(
        PollWorkflowTaskQueueRequest(
            namespace=env.client.namespace,
            task_queue=TaskQueue(name=task_queue),
            identity="a worker that never answers",
        )
    )
    assert stalled.task_token
    await env.sleep(timedelta(seconds=11))
    async with Worker(
        env.client, task_queue=task_queue, workflows=[OrderWorkflow], activities=stubs.all()
    ):
        await until(lambda: has_attempt(handle, "logistics.reserve_stock", 1), "reserving stock")
        await env.sleep(timedelta(seconds=16))  # past the 15 s start-to-close timeout
        await until(
            lambda: has_attempt(handle, "logistics.reserve_stock", 2), "reserving stock again"
        )
        stubs.booking_may_finish.set()
        await wait_for_status(handle, OrderStatus.BOOKED)
        await harness.orders.send(order_events.SHIPMENT, handle.id, SHIPMENT)
        await harness.orders.send(order_events.PAYMENT, handle.id, payment(str(TOTAL)))
        await closed(handle)
        recorded = await history_of("timeouts", handle)
    kinds = [event.event_type for event in recorded[0][1].events]
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT in kinds
    attempts = [
        event.activity_task_started_event_attributes.attempt
        for event in recorded[0][1].events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert 2 in attempts, attempts
    return recorded


async def has_attempt(handle: OrderHandle, activity: str, attempt: int) -> bool:
    return await pending_attempt(handle, activity) == attempt


@dataclass(frozen=True)
class Scenario:
    name: str
    record: Callable[[Servers], Awaitable[Recorded]]
    files: tuple[str, ...]
    """The file stems it writes; `test_replay` requires each of them."""


SCENARIOS = [
    Scenario("happy", happy, ("happy",)),
    Scenario("partial-late", partial_late, ("partial-late",)),
    Scenario("held-cancelled", held_cancelled, ("held-cancelled",)),
    Scenario("card-payment", card_payment, ("card-payment",)),
    Scenario("local-activities", local_activities, ("local-activities",)),
    Scenario("system-queues", system_queues, ("system-queues",)),
    Scenario("continue-as-new", continue_as_new, ("continue-as-new-run1", "continue-as-new-run2")),
    Scenario("amendment", amendment, ("amendment",)),
    Scenario("return-refund", returned(ReturnResolution.REFUND), ("return-refund",)),
    Scenario("return-credit", returned(ReturnResolution.CREDIT), ("return-credit",)),
    Scenario("closed-order-return", closed_order_return, ("closed-order-return",)),
    Scenario("credit-refund-completed", credit_refund_completed, ("credit-refund-completed",)),
    Scenario(
        "credit-refund-refused",
        credit_refund_refused,
        (
            "credit-refund-refused-insufficient-credit",
            "credit-refund-refused-refund-exceeds-payment",
        ),
    ),
    Scenario("support-retry", support_retry, ("support-retry",)),
    Scenario("credit-hold-released", credit_hold_released, ("credit-hold-released",)),
    Scenario("signals", signals, ("signals",)),
    Scenario("cancelled-in-temporal", cancelled_in_temporal, ("cancelled-in-temporal",)),
    Scenario("overpayment-credit", overpayment, ("overpayment-credit",)),
    Scenario("dunning-escalation", dunning_escalation, ("dunning-escalation",)),
    Scenario("timeouts", timeouts, ("timeouts",)),
]

BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


async def add_search_attributes(client: Client) -> None:
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type) for key in ALL
            },
        )
    )


async def record(scenarios: list[Scenario]) -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"),
        test_server_startup_timeout=timedelta(seconds=60),
        data_converter=REPLAY_CONVERTER,
    )
    short_history: list[WorkflowEnvironment] = []

    async def short_history_env() -> WorkflowEnvironment:
        if not short_history:
            short_history.append(
                await WorkflowEnvironment.start_local(
                    dev_server_existing_path=binary("temporal"),
                    dev_server_startup_timeout=timedelta(seconds=60),
                    data_converter=REPLAY_CONVERTER,
                    search_attributes=ALL,
                    dev_server_log_level="error",
                    dev_server_extra_args=[
                        "--dynamic-config-value",
                        f"limit.historyCount.suggestContinueAsNew={SUGGEST_AFTER_EVENTS}",
                    ],
                )
            )
        return short_history[0]

    try:
        async with env:
            await add_search_attributes(env.client)
            servers = Servers(env, short_history_env)
            for scenario in scenarios:
                recorded = await scenario.record(servers)
                stems = tuple(stem for stem, _ in recorded)
                assert stems == scenario.files, f"{scenario.name} recorded {stems}"
                for stem, history in recorded:
                    (HISTORIES / f"{stem}.json").write_text(history.to_json())
                print(f"{scenario.name}: {', '.join(f'{stem}.json' for stem in stems)}")
    finally:
        for dev in short_history:
            await dev.shutdown()
    print(f"{len(list(HISTORIES.glob('*.json')))} histories in {HISTORIES}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help="default: all")
    parser.add_argument("--list", action="store_true", help="name the scenarios and exit")
    args = parser.parse_args()
    if args.list:
        for scenario in SCENARIOS:
            print(scenario.name)
        return
    unknown = [name for name in args.scenarios if name not in BY_NAME]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; try --list")
    chosen = [BY_NAME[name] for name in args.scenarios] if args.scenarios else SCENARIOS
    asyncio.run(record(chosen))
    exit_at_once()  # everything is written


if __name__ == "__main__":
    main()
