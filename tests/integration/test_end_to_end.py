"""An order driven over HTTP from POST /orders to Closed, on the real dev server."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

from o2c_workflows.models import OrderStatus
from o2c_workflows.order.workflow import OrderWorkflow
from tests.support.history import DEFAULT_TIMEOUT, POLL_INTERVAL, status_transitions
from tests.support.stack import Stack

LIFECYCLE = ["Entered", "Booked", "Shipped", "Invoiced", "Paid", "Closed"]


def demo_order(source_order_id: str | None = None) -> dict[str, Any]:
    return {
        "source_system": "webshop",
        "source_order_id": source_order_id or f"SO-{uuid.uuid4().hex[:10]}",
        "customer_id": "CUST-ACME",
        "currency": "EUR",
        "lines": [
            {"sku": "SKU-WIDGET", "quantity": 4, "unit_price": "12.50"},
            {"sku": "SKU-GADGET", "quantity": 1, "unit_price": "99.99"},
        ],
        "payment_terms": {"kind": "net", "net_days": 30},
    }


async def listed(stack: Stack, order_id: str, **params: str) -> list[dict[str, Any]]:
    """The order as GET /orders lists it, once visibility has caught up."""
    deadline = asyncio.get_running_loop().time() + DEFAULT_TIMEOUT
    while True:
        response = await stack.http.get("/orders", params=params)
        assert response.status_code == 200, response.text
        found = [item for item in response.json()["orders"] if item["order_id"] == order_id]
        if found or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(POLL_INTERVAL)


async def test_an_order_goes_from_post_to_closed_over_http(stack: Stack) -> None:
    http = stack.http
    order = demo_order()

    created = await http.post("/orders", json=order)
    assert created.status_code == 201, created.text
    body = created.json()
    order_id = body["order_id"]
    assert order_id == f"webshop:{order['source_order_id']}"
    assert body["created"] is True
    assert body["status"] == "Booked"  # booking's outcome, in the same call
    assert "hold_reason" not in body
    assert body["links"]["self"] == f"/orders/{order_id}"
    assert body["links"]["temporal_ui"].endswith(f"/workflows/{order_id}")

    again = await http.post("/orders", json=order)
    assert again.status_code == 200
    assert (again.json()["order_id"], again.json()["created"]) == (order_id, False)
    assert again.json()["status"] == "Booked"

    await stack.wait_for_status(order_id, OrderStatus.BOOKED)
    shipped = await http.post(
        f"/orders/{order_id}/shipments", json={"carrier": "DHL", "tracking_number": "JD014600"}
    )
    assert shipped.status_code == 200, shipped.text
    assert shipped.json()["status"] == "Shipped"

    invoiced = await stack.wait_for_status(order_id, OrderStatus.INVOICED)
    [invoice] = invoiced.invoices
    assert str(invoice.amount) == "149.99"
    paid = await http.post(
        f"/orders/{order_id}/payments",
        json={"payment_id": "PAY-1", "amount": "149.99", "currency": "EUR", "reference": "wire"},
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "Paid"

    closed = await stack.wait_for_status(order_id, OrderStatus.CLOSED)
    statuses = [entry.status.value for entry in closed.timeline]
    assert [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] != s] == LIFECYCLE

    handle = stack.env.client.get_workflow_handle_for(OrderWorkflow.run, order_id)
    assert [status.value for status in await status_transitions(handle)] == LIFECYCLE
    invoices = await stack.adapters.billing.list_invoices(order_id)
    assert [(invoice.amount, invoice.balance) for invoice in invoices] == [
        (invoice.amount, Decimal(0))
    ]
    applications = await stack.adapters.billing.list_applications(invoices[0].invoice_id)
    assert [(a.payment_id, str(a.amount)) for a in applications] == [("PAY-1", "149.99")]

    late = await http.post(
        f"/orders/{order_id}/payments",
        json={"payment_id": "PAY-2", "amount": "1.00", "currency": "EUR"},
    )
    assert late.status_code == 409
    assert "finished" in late.json()["detail"]
    assert len(await stack.adapters.billing.list_applications(invoices[0].invoice_id)) == 1

    # Sent again once finished, the order answers with its final status.
    closed_again = await http.post("/orders", json=order)
    assert closed_again.status_code == 200, closed_again.text
    assert (closed_again.json()["status"], closed_again.json()["created"]) == ("Closed", False)

    assert await listed(stack, order_id, status="Closed", customer_id="CUST-ACME")
    # Visibility has caught up with Closed, so the order is no longer listed as Booked.
    booked = await http.get("/orders", params={"status": "Booked"})
    assert order_id not in [item["order_id"] for item in booked.json()["orders"]]


async def test_the_same_source_order_with_other_content_is_a_conflict(stack: Stack) -> None:
    order = demo_order()
    assert (await stack.http.post("/orders", json=order)).status_code == 201
    order_id = f"webshop:{order['source_order_id']}"
    handle = stack.env.client.get_workflow_handle(order_id)
    before = await handle.describe()
    order["lines"][0]["quantity"] = 5
    conflict = await stack.http.post("/orders", json=order)
    assert conflict.status_code == 409
    assert "already exists with different content" in conflict.json()["detail"]
    # Nothing started, and the order was not asked anything: one run, one booking read.
    assert (await handle.describe()).run_id == before.run_id
    updates = [
        event.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        async for event in handle.fetch_history_events()
        if event.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    assert updates == ["booking"]


async def test_events_that_do_not_fit_get_the_reason(stack: Stack) -> None:
    created = await stack.http.post("/orders", json=demo_order())
    order_id = created.json()["order_id"]
    await stack.wait_for_status(order_id, OrderStatus.BOOKED)

    too_many = await stack.http.post(
        f"/orders/{order_id}/shipments",
        json={"carrier": "UPS", "tracking_number": "1Z000",
              "lines": [{"sku": "SKU-WIDGET", "quantity": 9}]},
    )  # fmt: skip
    assert too_many.status_code == 409
    assert "SKU-WIDGET: 9 shipped, but only 4 of 4 are left to ship" in too_many.json()["detail"]

    await stack.http.post(
        f"/orders/{order_id}/shipments", json={"carrier": "UPS", "tracking_number": "1Z999"}
    )
    await stack.wait_for_status(order_id, OrderStatus.INVOICED)
    wrong = await stack.http.post(
        f"/orders/{order_id}/payments",
        json={"payment_id": "PAY-9", "amount": "10.00", "currency": "USD"},
    )
    assert wrong.status_code == 422
    assert "is in EUR, the payment in USD" in wrong.json()["detail"]


async def test_an_unknown_order_is_404(stack: Stack) -> None:
    assert (await stack.http.get("/orders/webshop:nope")).status_code == 404
    shipped = await stack.http.post(
        "/orders/webshop:nope/shipments", json={"carrier": "DHL", "tracking_number": "1"}
    )
    assert shipped.status_code == 404
    assert shipped.json()["detail"] == "order webshop:nope not found"
