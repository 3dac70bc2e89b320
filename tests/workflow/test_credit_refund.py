"""Customer credit paid back on request: the `CreditRefund` workflow.

On the time-skipping server against stub activities (as normal and as local
activities), then once on the real stack over HTTP and the CLI: an overpaid
order leaves credit in billing, part of it is refunded to the payment.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest
import pytest_asyncio
from pydantic import ValidationError
from sqlmodel import col, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError, TimeoutType
from temporalio.exceptions import TimeoutError as ActivityTimeoutError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.order_activities import of_system
from adapters.local.tables import RefundRow
from o2c_service.orders import OrderService
from o2c_service.outcomes import EventRejected, OrderConflict
from o2c_service.temporal import running
from o2c_workflows.calls import system_queue
from o2c_workflows.credit_refund import (
    CreditRefundRequest,
    CreditRefundWorkflow,
    workflow_id,
)
from o2c_workflows.failure_policy import StepFailure
from o2c_workflows.models import OrderRequest, OrderStatus
from tests.integration.test_cli import o2c
from tests.integration.test_support_flows import create, new_customer, new_item, order
from tests.support.order_harness import make_order
from tests.support.stack import Stack
from tests.support.stub_activities import StubActivities, business_error, system_error


@dataclass
class Refunds:
    env: WorkflowEnvironment
    stubs: StubActivities
    service: OrderService
    local_activities: bool


@pytest_asyncio.fixture(params=[False, True], ids=["activities", "local-activities"])
async def refunds(
    time_skipping_env: WorkflowEnvironment, stubs: StubActivities, request: pytest.FixtureRequest
) -> AsyncIterator[Refunds]:
    task_queue = f"credit-refunds-{uuid.uuid4()}"
    async with Worker(
        time_skipping_env.client,
        task_queue=task_queue,
        workflows=[CreditRefundWorkflow],
        activities=stubs.all(),
    ):
        service = OrderService(
            time_skipping_env.client,
            task_queue,
            clock=time_skipping_env.get_current_time,
            local_activities=request.param,
        )
        yield Refunds(time_skipping_env, stubs, service, request.param)


def refund_request(amount: str, refund_id: str | None = None) -> CreditRefundRequest:
    return CreditRefundRequest(
        refund_id=refund_id or f"RF-{uuid.uuid4().hex[:12]}",
        account_id="BA-CUST-ACME",
        payment_id="PAY-1",
        amount=Decimal(amount),
        currency="EUR",
        reason="customer asked for the overpayment back",
    )


async def refusal_code(env: WorkflowEnvironment, refund_id: str) -> str | None:
    """A refused refund is a business outcome: its workflow completes, with the reason."""
    handle = env.client.get_workflow_handle_for(CreditRefundWorkflow.run, workflow_id(refund_id))
    result = await handle.result()
    assert not result.refunded
    assert (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED
    return result.refusal_code


async def test_a_refund_within_the_credit_lowers_it_and_pays_once(refunds: Refunds) -> None:
    refunds.stubs.customer_credit = Decimal("50.00")
    request = refund_request("20.00")

    result = await refunds.service.refund_credit(request)

    assert (result.refund_id, result.amount, result.currency) == (
        request.refund_id,
        Decimal("20.00"),
        "EUR",
    )
    assert result.credit_balance == Decimal("30.00") == refunds.stubs.customer_credit
    assert refunds.stubs.refunds == [("PAY-1", Decimal("20.00"))]
    key = f"credit-refund:{request.refund_id}"  # the format refunds have always had
    assert f"{key}:use" in refunds.stubs.keys and f"{key}:refund" in refunds.stubs.keys


async def test_the_same_refund_id_twice_refunds_once(refunds: Refunds) -> None:
    refunds.stubs.customer_credit = Decimal("50.00")
    request = refund_request("20.00")

    # One after the other: two callers awaiting one workflow at once make the
    # time-skipping server skip past its workflow task (the stack test does that).
    first = await refunds.service.refund_credit(request)
    second = await refunds.service.refund_credit(request)

    assert first == second
    assert refunds.stubs.refunds == [("PAY-1", Decimal("20.00"))]
    assert refunds.stubs.customer_credit == Decimal("30.00")
    assert refunds.stubs.calls["post_customer_credit"] == 1
    other = request.model_copy(update={"amount": Decimal("5.00")})
    with pytest.raises(OrderConflict, match="already exists for another request"):
        await refunds.service.refund_credit(other)
    assert len(refunds.stubs.refunds) == 1


async def test_more_than_the_credit_is_refused_and_nothing_is_paid(refunds: Refunds) -> None:
    refunds.stubs.customer_credit = Decimal("10.00")
    request = refund_request("10.01")

    with pytest.raises(EventRejected, match="insufficient_credit") as refused:
        await refunds.service.refund_credit(request)

    assert not refused.value.invalid  # 409: not enough credit now, not a wrong request
    assert await refusal_code(refunds.env, request.refund_id) == "insufficient_credit"
    assert refunds.stubs.refunds == []
    assert refunds.stubs.calls["refund"] == 0
    assert refunds.stubs.customer_credit == Decimal("10.00")


async def test_credit_is_never_refunded_to_a_payment_of_another_account(
    refunds: Refunds,
) -> None:
    refunds.stubs.customer_credit = Decimal("50.00")
    refunds.stubs.foreign_payments.add("PAY-1")  # paid into another customer's account
    request = refund_request("20.00")

    with pytest.raises(EventRejected, match="payment_not_on_account") as refused:
        await refunds.service.refund_credit(request)

    assert refused.value.invalid  # 422: the request names a payment of someone else
    assert await refusal_code(refunds.env, request.refund_id) == "payment_not_on_account"
    assert (refunds.stubs.refunds, refunds.stubs.calls["post_customer_credit"]) == ([], 0)
    assert refunds.stubs.customer_credit == Decimal("50.00")


async def test_a_refund_on_system_queues_calls_billing_and_payments_on_their_own_queues(
    time_skipping_env: WorkflowEnvironment, stubs: StubActivities
) -> None:
    """The refund's worker holds no activity: each call is taken by its system's worker."""
    client = time_skipping_env.client
    task_queue = f"credit-refunds-{uuid.uuid4()}"
    workers = [
        Worker(client, task_queue=task_queue, workflows=[CreditRefundWorkflow]),
        *(
            Worker(
                client,
                task_queue=system_queue(task_queue, system),
                activities=of_system(stubs.all(), system),
            )
            for system in ("billing", "payments")
        ),
    ]
    stubs.customer_credit = Decimal("50.00")
    request = refund_request("20.00")
    async with running(workers):
        service = OrderService(client, task_queue, system_queues=True)
        result = await service.refund_credit(request)

    assert result.refunded and result.credit_balance == Decimal("30.00")
    handle = client.get_workflow_handle(workflow_id(request.refund_id))
    scheduled = {
        (attributes.activity_type.name, attributes.task_queue.name)
        async for event in handle.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        for attributes in [event.activity_task_scheduled_event_attributes]
    }
    assert scheduled == {
        ("billing.check_refund_target", f"{task_queue}.billing"),
        ("billing.post_customer_credit", f"{task_queue}.billing"),
        ("payments.refund", f"{task_queue}.payments"),
    }


def test_a_refund_id_can_never_be_an_order_id() -> None:
    """Refunds run under `credit-refund/<id>`; no order id can hold a '/'."""
    prefix, refund_id = workflow_id("RF-1").split("/")
    order = make_order().model_dump()
    for source_system, source_order_id in ((prefix + "/", refund_id), (prefix, "/" + refund_id)):
        with pytest.raises(ValidationError):
            OrderRequest.model_validate(
                {**order, "source_system": source_system, "source_order_id": source_order_id}
            )


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (lambda: business_error("refund_exceeds_payment"), "refund_exceeds_payment"),
        (system_error, "retry_budget_exhausted"),
    ],
    ids=["refused", "payments-down"],
)
async def test_a_refund_that_fails_for_good_restores_the_credit(
    refunds: Refunds, error: Callable[[], ApplicationError], code: str
) -> None:
    if refunds.local_activities and code == "retry_budget_exhausted":
        pytest.skip("a local activity backs off in the worker, in real time: 10 minutes")
    refunds.stubs.customer_credit = Decimal("50.00")
    refunds.stubs.fail("refund", error())  # a new error per run: the SDK caches its encoding
    request = refund_request("20.00")

    with pytest.raises(EventRejected, match=r"the credit of 20\.00 EUR was restored"):
        await refunds.service.refund_credit(request)

    assert await refusal_code(refunds.env, request.refund_id) == code
    assert refunds.stubs.refunds == []
    assert refunds.stubs.customer_credit == Decimal("50.00")
    key = f"credit-refund:{request.refund_id}"  # the format refunds have always had
    assert [k for k in refunds.stubs.keys if k.startswith(key)] == [f"{key}:use", f"{key}:restore"]


def test_a_local_activity_failure_is_read_like_a_wrapped_one() -> None:
    """A local activity raises its failure unwrapped; its retries cannot be time-skipped."""
    budget = ActivityTimeoutError(
        "activity timeout", type=TimeoutType.SCHEDULE_TO_CLOSE, last_heartbeat_details=[]
    )
    assert StepFailure.of(budget).code == "retry_budget_exhausted"
    assert StepFailure.of(system_error()).code == "retry_budget_exhausted"
    refused = StepFailure.of(business_error("payment_not_found"))
    assert (refused.code, refused.message) == ("payment_not_found", "stub says payment_not_found")


async def paid_order(stack: Stack, amount: str) -> tuple[str, str]:
    """An order of 20.00 shipped and paid `amount` by a new customer: (account, payment)."""
    customer, sku = new_customer(stack), new_item(stack, on_hand=10)
    order_id = await create(stack, order(customer, sku, quantity=2, price="10.00"))
    await stack.wait_for_status(order_id, OrderStatus.BOOKED)
    shipped = await stack.http.post(
        f"/orders/{order_id}/shipments", json={"carrier": "DHL", "tracking_number": "T-1"}
    )
    assert shipped.status_code == 200, shipped.text
    await stack.wait_for_status(order_id, OrderStatus.INVOICED)
    payment_id = f"PAY-{uuid.uuid4().hex[:8]}"
    paid = await stack.http.post(
        f"/orders/{order_id}/payments",
        json={"payment_id": payment_id, "amount": amount, "currency": "EUR"},
    )
    assert paid.status_code == 200, paid.text
    state = await stack.wait_for_status(order_id, OrderStatus.CLOSED)
    assert state.booking is not None
    return state.booking.billing_account_id, payment_id


async def test_an_overpayment_is_refunded_on_request_over_http(stack: Stack) -> None:
    account_id, payment_id = await paid_order(stack, "35.00")
    credit = (await stack.adapters.billing.customer_credit(account_id)).balance
    assert credit == Decimal("15.00")

    body = {
        "refund_id": f"RF-{uuid.uuid4().hex[:8]}",
        "account_id": account_id,
        "payment_id": payment_id,
        "amount": "6.00",
        "currency": "EUR",
        "reason": "customer asked for it back",
    }
    refunded, at_once = await asyncio.gather(
        stack.http.post("/credits/refunds", json=body),
        stack.http.post("/credits/refunds", json=body),
    )
    assert refunded.status_code == 200, refunded.text
    assert refunded.json()["credit_balance"] == "9.00"
    again = await stack.http.post("/credits/refunds", json=body)
    assert at_once.json() == again.json() == refunded.json()

    assert (await stack.adapters.billing.customer_credit(account_id)).balance == credit - Decimal(
        "6.00"
    )
    with stack.adapters.database.session() as session:
        rows = session.exec(select(RefundRow).where(col(RefundRow.payment_id) == payment_id)).all()
        assert [(row.amount_minor, row.currency) for row in rows] == [(600, "EUR")]

    too_much = await o2c("credits", "refund", "--refund-id", f"RF-{uuid.uuid4().hex[:8]}",
                         "--account", account_id, "--payment", payment_id,
                         "--amount", "9.01", "--currency", "EUR",
                         api_url=stack.api_url)  # fmt: skip
    assert too_much.code == 1
    assert "9.00 EUR of credit" in too_much.err
    assert (await stack.adapters.billing.customer_credit(account_id)).balance == Decimal("9.00")


async def test_credit_is_not_refunded_to_another_customers_payment(stack: Stack) -> None:
    account, _ = await paid_order(stack, "35.00")  # 15.00 kept as credit
    _, others_payment = await paid_order(stack, "20.00")

    refund = await stack.http.post(
        "/credits/refunds",
        json={"refund_id": f"RF-{uuid.uuid4().hex[:8]}", "account_id": account,
              "payment_id": others_payment, "amount": "15.00", "currency": "EUR"},
    )  # fmt: skip

    assert refund.status_code == 422, refund.text
    assert "payment_not_on_account" in refund.json()["detail"]
    assert (await stack.adapters.billing.customer_credit(account)).balance == Decimal("15.00")
    with stack.adapters.database.session() as session:
        refunded = select(RefundRow).where(col(RefundRow.payment_id) == others_payment)
        assert session.exec(refunded).all() == []
