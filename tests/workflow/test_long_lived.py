"""A long-lived order keeps a bounded history: it continues as new, losing nothing.

A dev server told to suggest continue-as-new after a short history makes an
order with many shipments switch runs several times; events sent while it
switches must all be applied.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from functools import partial

import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from o2c_domain.lines import SkuQuantity
from o2c_service import events as order_events
from o2c_service.orders import OrderService
from o2c_workflows.messages import PaymentReceived, ShipmentConfirmed
from o2c_workflows.models import OrderLine, OrderRequest, OrderStatus
from o2c_workflows.order.workflow import OrderWorkflow
from o2c_workflows.search_attributes import ALL
from tests.support.codec import TEST_CONVERTER
from tests.support.history import wait_for_status
from tests.support.order_harness import resend_until_taken
from tests.support.stub_activities import StubActivities
from tests.support.temporal_env import binary

SUGGEST_AFTER_EVENTS = 60
SKUS = [f"SKU-{n}" for n in range(8)]


@pytest_asyncio.fixture(scope="module")
async def short_history_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        dev_server_startup_timeout=timedelta(seconds=60),
        data_converter=TEST_CONVERTER,
        search_attributes=ALL,
        dev_server_log_level="error",
        dev_server_extra_args=[
            "--dynamic-config-value",
            f"limit.historyCount.suggestContinueAsNew={SUGGEST_AFTER_EVENTS}",
        ],
    )
    async with env:
        yield env


async def test_an_order_with_many_shipments_continues_as_new_and_loses_nothing(
    short_history_env: WorkflowEnvironment,
) -> None:
    client, task_queue = short_history_env.client, f"orders-{uuid.uuid4()}"
    orders = OrderService(client, task_queue)
    order = OrderRequest(
        source_system="long",
        source_order_id=f"SO-{uuid.uuid4().hex[:8]}",
        customer_id="CUST-ACME",
        currency="EUR",
        lines=[OrderLine(sku=sku, quantity=2, unit_price=Decimal("10.00")) for sku in SKUS],
    )
    async with Worker(client, task_queue=task_queue, workflows=[OrderWorkflow],
                      activities=StubActivities().all()):  # fmt: skip
        await orders.create(order)
        handle = client.get_workflow_handle_for(OrderWorkflow.run, order.order_id)
        await wait_for_status(handle, OrderStatus.BOOKED)
        for number, sku in enumerate(SKUS, start=1):
            # Each shipment waits for the order to take it: a switch of runs in
            # between must neither lose nor repeat it.
            for half in (1, 2):
                event = ShipmentConfirmed(
                    carrier="DHL", tracking_number=f"T-{number}-{half}",
                    lines=[SkuQuantity(sku=sku, quantity=1)],
                )  # fmt: skip
                await resend_until_taken(
                    partial(orders.send, order_events.SHIPMENT, order.order_id, event),
                    event.tracking_number,
                )
        # Payments fired all at once, as signals, while the order keeps switching runs.
        await asyncio.gather(*(
            handle.signal(OrderWorkflow.payment_received, PaymentReceived(
                payment_id=f"PAY-{n}", amount=Decimal("10.00"), currency="EUR"))
            for n in range(16)
        ))  # fmt: skip
        summary = await handle.result()
        state = await orders.get(order.order_id)  # a closed order's query needs a worker too

    assert summary.status is OrderStatus.CLOSED
    assert (summary.invoiced, summary.paid) == (Decimal("160.00"), Decimal("160.00"))
    assert len(summary.invoice_ids) == 16
    assert state.runs > 1
    endings = []
    async for execution in client.list_workflows(f"WorkflowId = '{order.order_id}'"):
        run = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        history = await run.fetch_history()
        endings.append((history.events[-1].event_type, len(history.events)))
    assert len(endings) == state.runs
    switched = [length for ending, length in endings
                if ending == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW]  # fmt: skip
    assert len(switched) == state.runs - 1
    # A run switches at the first quiet moment after the suggestion, so runs stay near
    # the limit instead of growing with the order's life; only the run that took the
    # burst of sixteen payments (each recorded and applied) may run longer.
    assert sorted(switched)[:-1] == [
        n for n in sorted(switched)[:-1] if n < 2 * SUGGEST_AFTER_EVENTS
    ]
    assert max(switched) < SUGGEST_AFTER_EVENTS + 16 * 15
