"""What the API answers when events meet a finished, busy, broken or absent order,
on the real dev server: the status code and message must say what really happened."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
from temporalio import workflow
from temporalio.worker import Worker

from adapters.faults import FaultProfile, FaultRule
from o2c_service.runners import local_activities, serve_api
from o2c_service.temporal import build_workers, running
from o2c_workflows import credit_refund
from o2c_workflows.credit_refund import CreditRefundInput, CreditRefundRequest
from o2c_workflows.models import OrderStatus
from o2c_workflows.order.base import WORKFLOW_NAME
from tests.integration.test_end_to_end import demo_order
from tests.support.api_keys import bearer
from tests.support.history import until
from tests.support.stack import Stack, free_port


async def booked_order(http: httpx.AsyncClient) -> str:
    created = await http.post("/orders", json=demo_order())
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "Booked"
    order_id: str = created.json()["order_id"]

    async def is_booked() -> bool:
        return bool((await http.get(f"/orders/{order_id}")).json()["status"] == "Booked")

    await until(is_booked, f"{order_id} Booked")
    return order_id


@asynccontextmanager
async def api_on(stack: Stack, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Another API process over the stack's Temporal, with some settings changed."""
    port = free_port()
    settings = stack.settings.model_copy(
        update={"api_port": port, "api_url": f"http://127.0.0.1:{port}", **changes}
    )
    stop, listening = asyncio.Event(), asyncio.Event()
    api = asyncio.create_task(serve_api(settings, stop, listening))
    try:
        await asyncio.wait_for(listening.wait(), 30)
        async with httpx.AsyncClient(
            base_url=settings.api_url, timeout=90, headers=bearer(stack.api_key)
        ) as http:
            yield http
    finally:
        stop.set()
        await api


# -- 5: the business reason of an activity's refusal ---------------------------


async def test_an_activity_refusal_answers_with_its_business_code(stack: Stack) -> None:
    payment = {"payment_id": f"PAY-{uuid.uuid4().hex[:8]}", "amount": "10.00", "currency": "EUR"}
    first, second = await booked_order(stack.http), await booked_order(stack.http)
    assert (await stack.http.post(f"/orders/{first}/payments", json=payment)).status_code == 200

    # The payments ledger already holds this payment id, for the first order.
    reused = await stack.http.post(f"/orders/{second}/payments", json=payment)
    assert reused.status_code == 409, reused.text
    detail = reused.json()["detail"]
    assert detail.startswith(f"payment_conflict: payment {payment['payment_id']} was recorded")
    assert f"for order {first}" in detail
    assert reused.json()["code"] == "payment_conflict"


# -- 6: status codes that tell the truth ----------------------------------------


async def test_a_workflow_that_is_not_an_order_is_not_found(stack: Stack) -> None:
    request = CreditRefundRequest(
        refund_id=f"RF-{uuid.uuid4().hex[:8]}", account_id="BA-none", payment_id="PAY-none",
        amount=Decimal("1.00"), currency="EUR",
    )  # fmt: skip
    # A refund's own id holds a '/' no order id can: it never reaches an order route.
    refused = await stack.http.post("/credits/refunds", json=request.model_dump(mode="json"))
    assert refused.status_code == 422, refused.text
    assert (
        await stack.http.get(f"/orders/{credit_refund.workflow_id(request.refund_id)}")
    ).status_code == 404
    # A workflow of another type under an id shaped like an order's is not an order either.
    other_id = f"elsewhere:{request.refund_id}"
    await stack.env.client.start_workflow(
        "CreditRefund", CreditRefundInput(request=request), id=other_id,
        task_queue=stack.settings.task_queue,
    )  # fmt: skip

    shown = await stack.http.get(f"/orders/{other_id}")
    assert (shown.status_code, shown.json()["detail"]) == (404, f"order {other_id} not found")
    paid = await stack.http.post(
        f"/orders/{other_id}/payments",
        json={"payment_id": "PAY-1", "amount": "1.00", "currency": "EUR"},
    )
    assert paid.status_code == 404, paid.text


async def test_report_dates_at_the_bounds_are_answered(stack: Stack) -> None:
    report = await stack.http.get("/reports/summary", params={"end": "9998-12-31"})
    assert report.status_code == 200, report.text
    report = await stack.http.get(
        "/reports/summary", params={"start": "1971-01-01", "end": "1971-01-31"}
    )
    assert report.status_code == 200, report.text
    assert report.json()["days"] == 31


@workflow.defn(name=WORKFLOW_NAME, sandboxed=False)
class BrokenOrder:
    """An `Order` whose code fails every workflow task from the start, or from the
    moment it is signalled `fail`, as a bug would."""

    def __init__(self) -> None:
        self._failing = False

    @workflow.run
    async def run(self, failing_from_the_start: bool) -> None:
        self._failing = failing_from_the_start
        await workflow.wait_condition(lambda: self._failing)
        raise RuntimeError("a bug in the workflow code")

    @workflow.signal
    def fail(self) -> None:
        self._failing = True

    @workflow.query
    def state(self) -> dict[str, str]:
        return {}


@pytest.mark.parametrize("from_the_start", [True, False], ids=["first-task", "later-task"])
async def test_an_order_whose_workflow_task_fails_is_not_called_an_outage(
    stack: Stack, from_the_start: bool
) -> None:
    task_queue = f"broken-{uuid.uuid4()}"
    client = stack.env.client
    order_id = f"webshop:SO-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=task_queue, workflows=[BrokenOrder]):
        handle = await client.start_workflow(
            WORKFLOW_NAME, from_the_start, id=order_id, task_queue=task_queue
        )
        if not from_the_start:

            async def first_task_done() -> bool:
                history = [event async for event in handle.fetch_history_events()]
                return any(event.HasField("workflow_task_completed_event_attributes")
                           for event in history)  # fmt: skip

            await until(first_task_done, "the first workflow task completed")
            await handle.signal(BrokenOrder.fail)

        async def task_failed() -> bool:
            pending = (await handle.describe()).raw_description.pending_workflow_task
            return pending.attempt > 1

        await until(task_failed, "the workflow task failed")
        async with api_on(stack, task_queue=task_queue, event_accept_seconds=1) as http:
            shown = await http.get(f"/orders/{order_id}")
            paid = await http.post(
                f"/orders/{order_id}/payments",
                json={"payment_id": "PAY-1", "amount": "1.00", "currency": "EUR"},
            )
    for answer in (shown, paid):
        assert answer.status_code == 500, answer.text
        detail = answer.json()["detail"]
        assert "workflow task is failing" in detail
        assert "Temporal is unavailable" not in detail


# -- 8: one winner among identical creates ------------------------------------


async def test_of_many_identical_creates_at_once_exactly_one_is_created(stack: Stack) -> None:
    order = demo_order()
    async with httpx.AsyncClient(
        base_url=stack.api_url,
        timeout=120,
        limits=httpx.Limits(max_connections=200),
        headers=bearer(stack.api_key),
    ) as http:
        answers = await asyncio.gather(*(http.post("/orders", json=order) for _ in range(200)))
    assert {answer.status_code for answer in answers} <= {200, 201}, [
        answer.text for answer in answers if answer.status_code not in (200, 201)
    ]
    created = [answer for answer in answers if answer.json()["created"]]
    assert len(created) == 1
    assert created[0].status_code == 201
    assert sum(answer.status_code == 200 for answer in answers) == 199


# -- 15: a copy of an applied event, once the order is finished ----------------


async def test_copies_of_applied_events_to_a_closed_order_are_duplicates(stack: Stack) -> None:
    http = stack.http
    order_id = await booked_order(http)
    amendment = {"event_id": "AM-1", "changes": [{"sku": "SKU-WIDGET", "quantity": 5}]}
    assert (await http.post(f"/orders/{order_id}/amendments", json=amendment)).status_code == 200
    shipment = {"carrier": "DHL", "tracking_number": "JD-DUP-1"}
    assert (await http.post(f"/orders/{order_id}/shipments", json=shipment)).status_code == 200

    async def invoiced() -> bool:
        return bool((await http.get(f"/orders/{order_id}")).json()["status"] == "Invoiced")

    await until(invoiced, "Invoiced")
    returned = {"return_id": "RMA-DUP-1", "lines": [{"sku": "SKU-GADGET", "quantity": 1}]}
    answer = await http.post(f"/orders/{order_id}/returns", json=returned)
    assert answer.status_code == 200, answer.text
    invoices = (await http.get(f"/orders/{order_id}")).json()["invoices"]
    balance = sum((Decimal(invoice["balance"]) for invoice in invoices), Decimal(0))
    payment = {"payment_id": f"PAY-{uuid.uuid4().hex[:8]}", "amount": str(balance),
               "currency": "EUR"}  # fmt: skip
    assert (await http.post(f"/orders/{order_id}/payments", json=payment)).status_code == 200
    await stack.wait_for_status(order_id, OrderStatus.CLOSED)

    async def closed_workflow() -> bool:
        described = await stack.env.client.get_workflow_handle(order_id).describe()
        return described.close_time is not None

    await until(closed_workflow, "the workflow closed")
    for path, event, said in [
        ("payments", payment, f"payment {payment['payment_id']} was already received"),
        ("shipments", shipment, "shipment JD-DUP-1 was already confirmed"),
        ("returns", returned, "return RMA-DUP-1 was already recorded"),
        ("amendments", amendment, "amendment AM-1 was already applied"),
    ]:
        copy = await http.post(f"/orders/{order_id}/{path}", json=event)
        assert copy.status_code == 200, (path, copy.text)
        assert copy.json()["duplicate"] is True
        assert copy.json()["status"] == "Closed"
        assert said in copy.json()["message"]

    other_amount = await http.post(
        f"/orders/{order_id}/payments", json=payment | {"amount": "1.00"}
    )
    assert other_amount.status_code == 422, other_amount.text
    never_seen = await http.post(
        f"/orders/{order_id}/shipments", json={"carrier": "DHL", "tracking_number": "JD-NEW"}
    )
    assert never_seen.status_code == 409
    assert "finished" in never_seen.json()["detail"]


# -- 16: 202 for accepted work, 503 only when nothing was taken -----------------


async def test_without_a_worker_an_event_is_503_and_nothing_is_applied(stack: Stack) -> None:
    payment = {"payment_id": f"PAY-{uuid.uuid4().hex[:8]}", "amount": "5.00", "currency": "EUR"}
    # Temporal is up, but no worker polls this queue: the order's tasks reach nobody.
    nobody = f"nobody-{uuid.uuid4()}"
    async with api_on(stack, task_queue=nobody, event_accept_seconds=1) as http:
        # Started without waiting for a booking no worker will do.
        created = await http.post("/orders", json=demo_order(), headers={"Prefer": "respond-async"})
        assert created.status_code == 202
        unworked = created.json()["order_id"]
        answer = await http.post(f"/orders/{unworked}/payments", json=payment)
    assert answer.status_code == 503, answer.text
    detail = answer.json()["detail"]
    assert "nothing was applied" in detail
    assert "sending the same event again is safe" in detail
    assert "Temporal is unavailable" not in detail


async def test_an_event_still_being_applied_is_202_and_shows_on_the_order(stack: Stack) -> None:
    task_queue = f"slow-{uuid.uuid4()}"
    slow = FaultProfile(
        rules=[FaultRule(system="payments", operation="record_payment", latency_ms=3000)]
    )
    activities = local_activities(stack.adapters, slow)
    # Normal activities: a local one holds the workflow task, so the order accepts the
    # payment only once it is recorded, and accepted and applied arrive together. The API
    # starts orders on system queues (O2C_SYSTEM_QUEUES): every queue is served.
    async with (
        running(build_workers(stack.env.client, task_queue, activities)),
        api_on(
            stack, task_queue=task_queue, event_wait_seconds=0.5, local_activities=False
        ) as http,
    ):
        order_id = await booked_order(http)
        payment = {"payment_id": f"PAY-{uuid.uuid4().hex[:8]}", "amount": "5.00",
                   "currency": "EUR"}  # fmt: skip
        answer = await http.post(f"/orders/{order_id}/payments", json=payment)
        assert answer.status_code == 202, answer.text
        body = answer.json()
        assert body["accepted"] is True
        assert body["links"]["self"] == f"/orders/{order_id}"
        assert f"/orders/{order_id}" in body["message"]

        async def payment_shows() -> bool:
            state = (await http.get(body["links"]["self"])).json()
            return [p["payment_id"] for p in state["payments"]] == [payment["payment_id"]]

        await until(payment_shows, "the payment on the order")


# -- 18: pages, a total and a token -------------------------------------------


async def test_listing_pages_through_every_order_with_a_total(stack: Stack) -> None:
    customer = "CUST-ACME"
    ids = [await booked_order(stack.http) for _ in range(3)]

    async def all_listed() -> bool:
        params: dict[str, str | int] = {"customer_id": customer, "limit": 1000}
        page = (await stack.http.get("/orders", params=params)).json()
        return set(ids) <= {item["order_id"] for item in page["orders"]}

    await until(all_listed, "the orders listed")
    first = (await stack.http.get("/orders", params={"customer_id": customer, "limit": 2})).json()
    total = first["total"]
    assert total >= 3
    assert len(first["orders"]) == 2
    seen = [item["order_id"] for item in first["orders"]]
    token = first["next_page_token"]
    while token is not None:
        page = await stack.http.get(
            "/orders", params={"customer_id": customer, "limit": 2, "page_token": token}
        )
        assert page.status_code == 200, page.text
        assert page.json()["total"] == total
        seen += [item["order_id"] for item in page.json()["orders"]]
        token = page.json()["next_page_token"]
    assert len(seen) == len(set(seen)) == total
    assert set(ids) <= set(seen)

    bad = await stack.http.get("/orders", params={"page_token": "not a token!"})
    assert bad.status_code == 422, bad.text
    assert ["query", "page_token"] in [error["loc"] for error in bad.json()["errors"]]


# -- 10: the documented example works as is ------------------------------------


async def test_the_documented_order_example_books_as_is(stack: Stack) -> None:
    spec = (await stack.http.get("/openapi.json")).json()
    # As Swagger UI pre-fills it: the body's example, which is also its schema's.
    body = spec["paths"]["/orders"]["post"]["requestBody"]["content"]["application/json"]
    [example] = [named["value"] for named in body["examples"].values()]
    schema_name = body["schema"]["$ref"].removeprefix("#/components/schemas/")
    assert spec["components"]["schemas"][schema_name]["examples"] == [example]
    created = await stack.http.post("/orders", json=example)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "Booked"
    await stack.wait_for_status(created.json()["order_id"], OrderStatus.BOOKED)
