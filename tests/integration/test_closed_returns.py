"""A return after the order closed, over HTTP and the CLI on the real stack: the same
route as any return, a credit note and a refund made once, the order showing it."""

from __future__ import annotations

import asyncio
import uuid

from sqlmodel import col, select

from adapters.local.tables import CreditNoteRow, RefundRow
from o2c_workflows.models import OrderStatus
from o2c_workflows.state import OrderState
from tests.integration.test_cli import o2c
from tests.integration.test_support_flows import create, new_customer, new_item, order
from tests.support.history import until
from tests.support.stack import Stack


async def closed_order(stack: Stack) -> tuple[str, str]:
    """Two units at 10.00 shipped, paid in full and Closed: (order id, payment id)."""
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
        json={"payment_id": payment_id, "amount": "20.00", "currency": "EUR"},
    )
    assert paid.status_code == 200, paid.text
    await stack.wait_for_status(order_id, OrderStatus.CLOSED)

    async def workflow_closed() -> bool:
        described = await stack.env.client.get_workflow_handle(order_id).describe()
        return described.close_time is not None

    await until(workflow_closed, f"{order_id}'s workflow closed")
    return order_id, payment_id


async def test_a_return_after_close_credits_and_refunds_once_and_shows_on_the_order(
    stack: Stack,
) -> None:
    order_id, payment_id = await closed_order(stack)
    sku = (await stack.http.get(f"/orders/{order_id}")).json()["lines"][0]["sku"]
    body = {"return_id": "RMA-1", "lines": [{"sku": sku, "quantity": 1}], "reason": "broken"}

    first, at_once = await asyncio.gather(
        stack.http.post(f"/orders/{order_id}/returns", json=body),
        stack.http.post(f"/orders/{order_id}/returns", json=body),
    )
    again = await stack.http.post(f"/orders/{order_id}/returns", json=body)

    for answer in (first, at_once, again):
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "Closed"
        assert answer.json()["message"].endswith(": credited 10.00, refunded 10.00")
    assert sorted(a.json()["duplicate"] for a in (first, at_once)) == [False, True]
    assert again.json()["duplicate"] is True
    with stack.adapters.database.session() as session:
        notes = session.exec(select(CreditNoteRow).where(col(CreditNoteRow.order_id) == order_id))
        assert [row.amount_minor for row in notes.all()] == [1000]
        refunds = session.exec(select(RefundRow).where(col(RefundRow.payment_id) == payment_id))
        assert [row.amount_minor for row in refunds.all()] == [1000]

    async def shows_the_return() -> bool:
        state = OrderState.model_validate((await stack.http.get(f"/orders/{order_id}")).json())
        return state.returned("RMA-1") is not None

    await until(shows_the_return, "the order shows RMA-1")
    state = OrderState.model_validate((await stack.http.get(f"/orders/{order_id}")).json())
    assert state.status is OrderStatus.CLOSED
    assert [(n.return_id, str(n.refunded)) for n in state.credit_notes] == [("RMA-1", "10.00")]

    too_many = await o2c("orders", "return", order_id, "--return-id", "RMA-2",
                         "--line", f"{sku}=2", api_url=stack.api_url)  # fmt: skip
    assert too_many.code != 0
    assert f"{sku}: 2 returned, but only 1 invoiced and not yet returned" in too_many.err
    refused = await stack.http.post(
        f"/orders/{order_id}/returns",
        json={"return_id": "RMA-2", "lines": [{"sku": sku, "quantity": 2}]},
    )
    assert refused.status_code == 409, refused.text
    assert "only 1 invoiced and not yet returned" in refused.json()["detail"]
    with stack.adapters.database.session() as session:
        refunds = session.exec(select(RefundRow).where(col(RefundRow.payment_id) == payment_id))
        assert len(refunds.all()) == 1
