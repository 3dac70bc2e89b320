"""`POST /orders` answers how booking ended, in the same call, on the real dev server:
Booked, OnHold with the reason, a finished order's final status; 202 Entered when the
caller prefers not to wait (`Prefer: respond-async`) or booking takes too long."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import httpx

from o2c_service.api import create_app, prefers_respond_async
from o2c_service.orders import OrderService
from o2c_service.runners import local_activities
from o2c_service.temporal import build_worker
from o2c_workflows.models import OrderStatus
from tests.integration.test_cli import o2c
from tests.integration.test_end_to_end import demo_order
from tests.integration.test_support_flows import new_customer, new_item, order
from tests.support.api_keys import bearer
from tests.support.stack import Stack


@asynccontextmanager
async def api_waiting(
    stack: Stack, task_queue: str, booking_wait: timedelta
) -> AsyncIterator[httpx.AsyncClient]:
    """The API in process over the stack's Temporal, waiting at most `booking_wait`."""

    async def service() -> OrderService:
        return OrderService(stack.env.client, task_queue, booking_wait=booking_wait)

    app = create_app(stack.settings, service)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://127.0.0.1",
            timeout=60,
            headers=bearer(stack.api_key),
        ) as http,
    ):
        yield http


async def test_a_good_order_is_answered_booked(stack: Stack) -> None:
    created = await stack.http.post("/orders", json=demo_order())
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["status"], body["created"]) == ("Booked", True)
    assert {"hold_reason", "hold_message", "cancellation_reason"}.isdisjoint(body)
    assert created.headers["Location"] == f"/orders/{body['order_id']}"
    assert "Preference-Applied" not in created.headers


async def test_an_order_over_the_credit_limit_is_answered_on_hold_with_the_reason(
    stack: Stack,
) -> None:
    customer, sku = new_customer(stack, credit_limit_minor=100_000), new_item(stack, 100)
    body = order(customer, sku, quantity=2, price="600.00")
    created = await stack.http.post("/orders", json=body)
    assert created.status_code == 201, created.text
    held = created.json()
    assert (held["status"], held["created"]) == ("OnHold", True)
    assert held["hold_reason"] == "credit_limit_exceeded"
    assert "exceeds the credit limit 1000.00 EUR" in held["hold_message"]

    # Sent again, the same answer, not created; cancelled, its final status and why.
    again = await stack.http.post("/orders", json=body)
    assert again.status_code == 200, again.text
    assert {key: again.json()[key] for key in ("status", "created", "hold_reason")} == {
        "status": "OnHold", "created": False, "hold_reason": "credit_limit_exceeded",
    }  # fmt: skip
    order_id = held["order_id"]
    cancelled = await stack.http.post(f"/orders/{order_id}/cancel", json={"reason": "no credit"})
    assert cancelled.status_code == 200, cancelled.text
    await stack.env.client.get_workflow_handle(order_id).result()
    finished = await stack.http.post("/orders", json=body)
    assert finished.status_code == 200, finished.text
    assert {key: finished.json().get(key) for key in ("status", "created", "hold_reason")} == {
        "status": "Cancelled", "created": False, "hold_reason": None,
    }  # fmt: skip
    assert finished.json()["cancellation_reason"] == "no credit"


async def test_respond_async_answers_202_entered_and_the_order_still_books(stack: Stack) -> None:
    created = await stack.http.post(
        "/orders", json=demo_order(), headers={"Prefer": "Respond-Async, wait=5"}
    )
    assert created.status_code == 202, created.text
    assert created.headers["Preference-Applied"] == "respond-async"
    body = created.json()
    assert (body["status"], body["created"]) == ("Entered", True)
    assert created.headers["Location"] == body["links"]["self"] == f"/orders/{body['order_id']}"
    await stack.wait_for_status(body["order_id"], OrderStatus.BOOKED)
    # The plain start sent the order no Update.
    handle = stack.env.client.get_workflow_handle(body["order_id"])
    assert not [
        event
        async for event in handle.fetch_history_events()
        if event.HasField("workflow_execution_update_accepted_event_attributes")
    ]


def test_the_prefer_header_is_read_as_rfc_7240_says() -> None:
    assert prefers_respond_async(["respond-async"])
    assert prefers_respond_async(["return=minimal, RESPOND-ASYNC ; x=1"])
    assert prefers_respond_async(["wait=10", "respond-async"])
    assert not prefers_respond_async(["return=representation", "wait=10"])
    assert not prefers_respond_async(["respond-asynchronously"])
    assert not prefers_respond_async([])


async def test_two_identical_posts_at_once_start_one_order_and_both_are_answered(
    stack: Stack,
) -> None:
    body = demo_order()
    answers = await asyncio.gather(*(stack.http.post("/orders", json=body) for _ in range(2)))
    assert sorted(answer.status_code for answer in answers) == [200, 201], [
        answer.text for answer in answers
    ]
    assert sorted(answer.json()["created"] for answer in answers) == [False, True]
    assert {answer.json()["status"] for answer in answers} == {"Booked"}
    order_id = answers[0].json()["order_id"]
    described = await stack.env.client.get_workflow_handle(order_id).describe()
    assert described.run_id == described.raw_description.workflow_execution_info.first_run_id


async def test_booking_slower_than_the_wait_is_202_and_goes_on(stack: Stack) -> None:
    task_queue = f"later-{uuid.uuid4()}"  # no worker yet: booking cannot finish in time
    body = demo_order()
    async with api_waiting(stack, task_queue, timedelta(seconds=1)) as http:
        created = await http.post("/orders", json=body)
        assert created.status_code == 202, created.text
        assert (created.json()["status"], created.json()["created"]) == ("Entered", True)
        order_id = created.json()["order_id"]
        assert created.headers["Location"] == f"/orders/{order_id}"
        assert "Preference-Applied" not in created.headers

        again = await http.post("/orders", json=body)
        assert again.status_code == 202, again.text
        assert (again.json()["status"], again.json()["created"]) == ("Entered", False)

        # Nothing was lost: once a worker runs, the order books, and says so when asked.
        async with build_worker(stack.env.client, task_queue, local_activities(stack.adapters)):
            await stack.wait_for_status(order_id, OrderStatus.BOOKED)
            booked = await http.post("/orders", json=body)
    assert booked.status_code == 200, booked.text
    assert (booked.json()["status"], booked.json()["created"]) == ("Booked", False)


async def test_the_cli_shows_why_a_new_order_is_held(stack: Stack, tmp_path: Path) -> None:
    customer, sku = new_customer(stack, credit_limit_minor=100_000), new_item(stack, 100)
    order_file = tmp_path / "order.json"
    order_file.write_text(json.dumps(order(customer, sku, quantity=2, price="600.00")))
    created = await o2c("orders", "create", "--file", str(order_file), api_url=stack.api_url)
    assert created.code == 0, created.err
    assert "OnHold" in created.out and "credit_limit_exceeded" in created.out
