"""`o2c reconcile` and GET /reports/reconciliation on the real stack: orders taken
to Closed (on invoice and by card), cancelled and held reconcile clean; then each
kind of mismatch is seeded directly in the local systems' database and reported
with its order, system, expected and found values, and the CLI exits 1.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select

from adapters.local.tables import (
    CardAuthorisationRow,
    CardCaptureRow,
    InvoiceRow,
    PaymentRow,
    ReservationLineRow,
    ReservationRow,
)
from adapters.payments.models import PaymentRecordRequest
from o2c_workflows.models import OrderStatus
from tests.integration.test_cli import o2c
from tests.integration.test_support_flows import create, new_customer, new_item, order
from tests.support.stack import Stack


async def closed_on_invoice(stack: Stack, customer: str, sku: str) -> str:
    """Two at 10.00, shipped and paid: Closed."""
    order_id = await create(stack, order(customer, sku))
    await stack.wait_for_status(order_id, OrderStatus.BOOKED)
    shipped = await stack.http.post(
        f"/orders/{order_id}/shipments", json={"carrier": "DHL", "tracking_number": "REC-1"}
    )
    assert shipped.status_code == 200, shipped.text
    await stack.wait_for_status(order_id, OrderStatus.INVOICED)
    payment = {"payment_id": f"PAY-{uuid.uuid4().hex[:8]}", "amount": "20.00", "currency": "EUR"}
    paid = await stack.http.post(f"/orders/{order_id}/payments", json=payment)
    assert paid.status_code == 200, paid.text
    await stack.wait_for_status(order_id, OrderStatus.CLOSED)
    return order_id


async def closed_by_card(stack: Stack, customer: str, sku: str) -> str:
    """Paid on order: captured when invoiced."""
    body = order(customer, sku) | {"payment_method": {"card_token": "tok_visa_4242"}}
    order_id = await create(stack, body)
    await stack.wait_for_status(order_id, OrderStatus.BOOKED)
    shipped = await stack.http.post(
        f"/orders/{order_id}/shipments", json={"carrier": "DHL", "tracking_number": "REC-2"}
    )
    assert shipped.status_code == 200, shipped.text
    await stack.wait_for_status(order_id, OrderStatus.CLOSED)
    return order_id


async def cancelled(stack: Stack, customer: str, sku: str) -> str:
    order_id = await create(stack, order(customer, sku))
    await stack.wait_for_status(order_id, OrderStatus.BOOKED)
    done = await stack.http.post(f"/orders/{order_id}/cancel", json={"reason": "duplicate"})
    assert done.status_code == 200, done.text
    return order_id


async def reconcile(stack: Stack, *order_ids: str) -> tuple[int, dict[str, Any]]:
    chosen = [argument for order_id in order_ids for argument in ("--order", order_id)]
    run = await o2c("reconcile", *chosen, "-o", "json", api_url=stack.api_url)
    assert run.err == "", run.err
    report: dict[str, Any] = run.json()
    assert report["orders_checked"] == len(order_ids)
    return run.code, report


async def test_orders_the_systems_agree_on_reconcile_clean_and_seeded_mismatches_are_named(
    stack: Stack,
) -> None:
    customer, sku, other_sku = new_customer(stack), new_item(stack, 50), new_item(stack, 50)
    on_invoice = await closed_on_invoice(stack, customer, sku)
    by_card = await closed_by_card(stack, customer, sku)
    dropped = await cancelled(stack, customer, sku)
    held = await create(stack, order(customer, new_item(stack, 0)))
    await stack.wait_for_status(held, OrderStatus.ON_HOLD)
    orders = (on_invoice, by_card, dropped, held)

    code, report = await reconcile(stack, *orders)
    assert (code, report["mismatches"]) == (0, [])
    table = await o2c("reconcile", "--order", on_invoice, api_url=stack.api_url)
    assert (table.code, table.out.strip()) == (0, "0 mismatches in 1 orders")

    seed_mismatches(stack, on_invoice, by_card, dropped, other_sku)
    ledger_only = f"PAY-{uuid.uuid4().hex[:8]}"
    await stack.adapters.payments.record_payment(
        PaymentRecordRequest(idempotency_key=f"seed:{ledger_only}", payment_id=ledger_only,
                             order_id=on_invoice, amount=Decimal("7.50"), currency="EUR")
    )  # fmt: skip

    code, report = await reconcile(stack, *orders)

    found = {
        (m["order_id"], m["system"], m["kind"], m["subject"], m["expected"], m["found"])
        for m in report["mismatches"]
    }
    assert code == 1
    assert (on_invoice, "logistics", "reserved", other_sku, "0", "1") in found
    assert {(m[0], m[1], m[2], m[4], m[5]) for m in found} >= {
        (on_invoice, "billing", "invoice_amount", "20.00 EUR", "25.00 EUR"),
        (on_invoice, "payments", "payment_unaccounted", "applied, kept as credit or refunded",
         "7.50 EUR unknown to the order"),
        (by_card, "payments", "captures", "1 (one per invoice)", "2"),
        (dropped, "logistics", "cancelled_reservation", "released", f"reserved ({sku} x2)"),
    }  # fmt: skip
    assert not any(m[0] == held for m in found)
    table = await o2c("reconcile", "--order", dropped, api_url=stack.api_url)
    assert table.code == 1
    assert table.out.splitlines() == [
        f"{dropped}  logistics  cancelled_reservation {reservation_of(stack, dropped)}: "
        f"expected released, found reserved ({sku} x2)",
        "1 mismatches in 1 orders",
    ]


async def test_an_order_named_that_does_not_exist_is_said_and_exits_1(stack: Stack) -> None:
    run = await o2c("reconcile", "--order", "webshop:SO-NOWHERE", api_url=stack.api_url)

    assert run.code == 1
    assert run.out.splitlines() == [
        "webshop:SO-NOWHERE  not found: its state could not be read",
        "0 mismatches in 0 orders",
    ]


def reservation_of(stack: Stack, order_id: str) -> str:
    with stack.adapters.database.reading() as session:
        query = select(ReservationRow).where(col(ReservationRow.order_id) == order_id)
        return session.exec(query).one().reservation_id


def seed_mismatches(
    stack: Stack, on_invoice: str, by_card: str, dropped: str, other_sku: str
) -> None:
    """Straight into the tables, behind every adapter's back: an extra reservation
    line, a changed invoice amount, a second capture, a cancelled order's
    reservation back in force."""
    with stack.adapters.database.session() as session:
        session.add(ReservationLineRow(reservation_id=reservation_of(stack, on_invoice),
                                       line_no=99, sku=other_sku, quantity=1))  # fmt: skip
        session.exec(
            update(InvoiceRow)
            .where(col(InvoiceRow.order_id) == on_invoice)
            .values(amount_minor=2500, balance_minor=500)
        )
        authorisation = session.exec(
            select(CardAuthorisationRow).where(col(CardAuthorisationRow.order_id) == by_card)
        ).one()
        again = f"PAY-{uuid.uuid4().hex[:8]}"
        session.add(PaymentRow(payment_id=again, idempotency_key=f"seed:{again}",
                               order_id=by_card, currency="EUR", amount_minor=2000,
                               reference=authorisation.authorisation_id))  # fmt: skip
        session.flush()
        session.add(CardCaptureRow(payment_id=again, amount_minor=2000,
                                   authorisation_id=authorisation.authorisation_id))  # fmt: skip
        session.exec(
            update(ReservationRow)
            .where(col(ReservationRow.order_id) == dropped)
            .values(status="reserved")
        )
