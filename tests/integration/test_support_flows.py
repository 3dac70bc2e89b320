"""Support staff working fallout over HTTP and the CLI, on the real stack.

Each test makes its own customer and item in the local systems, so what it
parks, lists and acts on in bulk is its own.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest
from sqlmodel import select

from adapters.local.tables import CustomerRow, ItemRow
from o2c_workflows.models import OrderStatus
from tests.integration.test_cli import o2c
from tests.support.history import DEFAULT_TIMEOUT, POLL_INTERVAL
from tests.support.stack import Stack


def new_customer(stack: Stack, credit_limit_minor: int = 5_000_000) -> str:
    customer_id = f"CUST-{uuid.uuid4().hex[:8]}"
    with stack.adapters.database.session() as session:
        session.add(CustomerRow(customer_id=customer_id, name=f"Test {customer_id}",
                                email="ap@example.com", status="active", currency="EUR",
                                credit_limit_minor=credit_limit_minor))  # fmt: skip
    return customer_id


def new_item(stack: Stack, on_hand: int) -> str:
    sku = f"SKU-{uuid.uuid4().hex[:8]}"
    with stack.adapters.database.session() as session:
        session.add(ItemRow(sku=sku, name="Test item", on_hand=on_hand))
    return sku


def stock(stack: Stack, sku: str) -> int:
    with stack.adapters.database.session() as session:
        return session.exec(select(ItemRow.on_hand).where(ItemRow.sku == sku)).one()


def restock(stack: Stack, sku: str, on_hand: int) -> None:
    with stack.adapters.database.session() as session:
        item = session.exec(select(ItemRow).where(ItemRow.sku == sku)).one()
        item.on_hand = on_hand


def order(customer_id: str, sku: str, quantity: int = 2, price: str = "10.00") -> dict[str, Any]:
    return {
        "source_system": "support",
        "source_order_id": f"SO-{uuid.uuid4().hex[:10]}",
        "customer_id": customer_id,
        "currency": "EUR",
        "lines": [{"sku": sku, "quantity": quantity, "unit_price": price}],
    }


async def create(stack: Stack, body: dict[str, Any]) -> str:
    response = await stack.http.post("/orders", json=body)
    assert response.status_code == 201, response.text
    order_id: str = response.json()["order_id"]
    return order_id


async def held_orders(stack: Stack, customer_id: str, count: int) -> list[dict[str, Any]]:
    """The customer's held orders, once search shows all `count` of them."""
    deadline = asyncio.get_running_loop().time() + DEFAULT_TIMEOUT
    while True:
        listed = await stack.http.get(
            "/orders", params={"status": "OnHold", "customer_id": customer_id}
        )
        items: list[dict[str, Any]] = listed.json()["orders"]
        if len(items) >= count:
            return items
        assert asyncio.get_running_loop().time() < deadline, items
        await asyncio.sleep(POLL_INTERVAL)


async def test_out_of_stock_parks_the_order_until_restocked_and_retried(stack: Stack) -> None:
    customer, sku = new_customer(stack), new_item(stack, on_hand=1)
    order_id = await create(stack, order(customer, sku, quantity=3))

    held = await stack.wait_for_status(order_id, OrderStatus.ON_HOLD)
    assert held.hold is not None
    assert (held.hold.step, held.hold.code) == ("reserve_stock", "out_of_stock")
    assert sku in held.hold.message
    [listed] = await held_orders(stack, customer, 1)
    assert (listed["order_id"], listed["hold_reason"]) == (order_id, "out_of_stock")

    early = await stack.http.post(f"/orders/{order_id}/release")
    assert early.status_code == 409
    assert "not for credit" in early.json()["detail"]

    restock(stack, sku, on_hand=10)
    retried = await stack.http.post(f"/orders/{order_id}/retry", json={"note": "restocked"})
    assert retried.status_code == 200, retried.text
    await stack.wait_for_status(order_id, OrderStatus.BOOKED)
    assert stock(stack, sku) == 7


async def test_a_credit_hold_is_found_explained_and_released_from_the_cli(stack: Stack) -> None:
    customer, sku = new_customer(stack, credit_limit_minor=100_000), new_item(stack, 100)
    order_id = await create(stack, order(customer, sku, quantity=2, price="600.00"))
    await stack.wait_for_status(order_id, OrderStatus.ON_HOLD)
    await held_orders(stack, customer, 1)

    listed = await o2c("orders", "list", "--held", "--customer", customer, api_url=stack.api_url)
    assert order_id in listed.out and "credit_limit_exceeded" in listed.out
    shown = await o2c("orders", "show", order_id, api_url=stack.api_url)
    assert "credit at credit_check" in shown.out
    assert "exceeds the credit limit 1000.00 EUR" in shown.out

    released = await o2c("orders", "release", order_id, "--note", "approved by AR",
                         api_url=stack.api_url)  # fmt: skip
    assert released.code == 0, released.err
    await stack.wait_for_status(order_id, OrderStatus.BOOKED)


async def test_bulk_retry_and_bulk_cancel_act_on_every_matching_held_order(
    stack: Stack,
) -> None:
    sku = new_item(stack, on_hand=0)
    to_retry, to_cancel = new_customer(stack), new_customer(stack)
    retry_ids = [await create(stack, order(to_retry, sku)) for _ in range(2)]
    cancel_ids = [await create(stack, order(to_cancel, sku)) for _ in range(2)]
    await held_orders(stack, to_retry, 2)
    await held_orders(stack, to_cancel, 2)

    restock(stack, sku, on_hand=4)
    retried = await o2c("orders", "retry", "--all-held", "--customer", to_retry,
                        "--hold-reason", "out_of_stock", "-o", "json",
                        api_url=stack.api_url)  # fmt: skip
    assert retried.code == 0, retried.err
    result = retried.json()
    assert (result["matched"], result["succeeded"]) == (2, 2)
    assert sorted(outcome["order_id"] for outcome in result["outcomes"]) == sorted(retry_ids)
    for order_id in retry_ids:
        await stack.wait_for_status(order_id, OrderStatus.BOOKED)

    cancelled = await o2c("orders", "cancel", "--all-held", "--customer", to_cancel,
                          "--reason", "item discontinued", api_url=stack.api_url)  # fmt: skip
    assert cancelled.code == 0, cancelled.err
    assert "cancel: 2 of 2 orders" in cancelled.out
    for order_id in cancel_ids:
        state = await stack.wait_for_status(order_id, OrderStatus.CANCELLED)
        assert state.cancellation_reason == "item discontinued"
    assert stock(stack, sku) == 0  # the retried orders hold all four


async def test_cancelling_a_booked_order_gives_the_stock_back(stack: Stack) -> None:
    customer, sku = new_customer(stack), new_item(stack, on_hand=5)
    order_id = await create(stack, order(customer, sku, quantity=2))
    await stack.wait_for_status(order_id, OrderStatus.BOOKED)
    assert stock(stack, sku) == 3

    cancelled = await stack.http.post(f"/orders/{order_id}/cancel", json={"reason": "duplicate"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "Cancelled"
    state = (await stack.http.get(f"/orders/{order_id}")).json()
    assert [c["step"] for c in state["compensations"]] == ["request_shipment", "reserve_stock"]
    assert stock(stack, sku) == 5

    again = await stack.http.post(f"/orders/{order_id}/cancel", json={"reason": "again"})
    assert again.status_code == 409


async def test_an_order_that_has_shipped_cannot_be_cancelled(stack: Stack) -> None:
    customer, sku = new_customer(stack), new_item(stack, on_hand=5)
    order_id = await create(stack, order(customer, sku))
    await stack.wait_for_status(order_id, OrderStatus.BOOKED)
    await stack.http.post(
        f"/orders/{order_id}/shipments", json={"carrier": "DHL", "tracking_number": "T-1"}
    )
    refused = await stack.http.post(f"/orders/{order_id}/cancel", json={"reason": "too late"})
    assert refused.status_code == 409
    assert "past the point of no return" in refused.json()["detail"]
    assert stock(stack, sku) == 3


async def test_a_business_refusal_is_logged_as_one_line_not_a_traceback(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    customer, sku = new_customer(stack), new_item(stack, on_hand=0)
    order_id = await create(stack, order(customer, sku, quantity=1))

    await stack.wait_for_status(order_id, OrderStatus.ON_HOLD)

    about_it = [record for record in caplog.records if sku in record.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in about_it if r.levelno >= logging.WARNING] == []
    assert [r for r in caplog.records if r.exc_info and r.levelno >= logging.INFO] == []
    [outcome] = [r for r in about_it if r.getMessage().startswith("business outcome")]
    assert (outcome.levelno, "out_of_stock" in outcome.getMessage()) == (logging.INFO, True)
