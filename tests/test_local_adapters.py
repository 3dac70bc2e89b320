"""The local adapters keep their promises on SQLite and on PostgreSQL.

Idempotency is checked where it matters, in the database: one row per key, stock
decremented once, a balance reduced once, also when calls race on threads or on
two separate engines (as two processes would).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import text
from sqlmodel import func, select

from adapters.errors import BusinessError
from adapters.local import LocalAdapters, LocalDatabase, open_local_adapters, seed_demo_data
from adapters.local.tables import (
    BillingAccountRow,
    CustomerRow,
    InvoiceLineRow,
    InvoiceRow,
    ItemRow,
    LocalTable,
    PaymentApplicationRow,
    PaymentRow,
    RefundRow,
    ReservationLineRow,
    ReservationRow,
    ShipmentRow,
)
from adapters.models import (
    ApplyPayment,
    BillingAccount,
    CancelShipment,
    CustomerStatus,
    Invoice,
    InvoiceLine,
    InvoiceRequest,
    InvoiceStatus,
    OpenBalance,
    Payment,
    PaymentRecordRequest,
    RefundPayment,
    ReleaseReservation,
    Reservation,
    ReservationStatus,
    ReserveStock,
    Shipment,
    ShipmentConfirmation,
    ShipmentRequest,
    ShipmentStatus,
    StockLine,
    VoidInvoice,
)

T = TypeVar("T")
RACERS = 8
TODAY = date(2025, 3, 1)


# --- helpers -------------------------------------------------------------------------------


def count(db: LocalDatabase, table: type[LocalTable]) -> int:
    with db.session() as session:
        return session.exec(select(func.count()).select_from(table)).one()


def on_hand(db: LocalDatabase, sku: str) -> int:
    with db.session() as session:
        item = session.get(ItemRow, sku)
        assert item is not None
        return item.on_hand


def invoice_row(db: LocalDatabase, invoice_id: str) -> InvoiceRow:
    with db.session() as session:
        row = session.get(InvoiceRow, invoice_id)
        assert row is not None
        return row


async def race(call: Callable[[], Awaitable[T]], times: int = RACERS) -> list[T]:
    """`call` `times` times at once; each runs its database work on its own thread."""
    return await asyncio.gather(*(call() for _ in range(times)))


async def business_error(call: Awaitable[Any], code: str) -> BusinessError:
    with pytest.raises(BusinessError) as caught:
        await call
    assert caught.value.code == code, caught.value.message
    return caught.value


async def acme_account(adapters: LocalAdapters) -> BillingAccount:
    return await adapters.billing.ensure_account(await adapters.crm.get_customer("CUST-ACME"))


def reserve(key: str, *lines: tuple[str, int], order_id: str = "shop:1") -> ReserveStock:
    return ReserveStock(
        idempotency_key=key,
        order_id=order_id,
        lines=[StockLine(sku=sku, quantity=quantity) for sku, quantity in lines],
    )


def invoice_request(
    account_id: str, key: str, *prices: str, currency: str = "EUR", order_id: str = "shop:1"
) -> InvoiceRequest:
    return InvoiceRequest(
        idempotency_key=key,
        order_id=order_id,
        account_id=account_id,
        currency=currency,
        invoice_date=TODAY,
        due_date=date(2025, 3, 31),
        lines=[
            InvoiceLine(sku="SKU-WIDGET", quantity=1, unit_price=Decimal(p), amount=Decimal(p))
            for p in prices
        ],
    )


async def open_invoice(
    adapters: LocalAdapters, *prices: str, currency: str = "EUR", key: str = "inv-1"
) -> Invoice:
    account = await acme_account(adapters)
    request = invoice_request(account.account_id, key, *prices, currency=currency)
    return await adapters.billing.create_invoice(request)


def payment_request(
    payment_id: str, amount: str, currency: str = "EUR", order_id: str = "shop:1"
) -> PaymentRecordRequest:
    return PaymentRecordRequest(
        idempotency_key=f"payment:{payment_id}",
        payment_id=payment_id,
        order_id=order_id,
        amount=Decimal(amount),
        currency=currency,
    )


async def paid_with(adapters: LocalAdapters, payment_id: str, amount: str) -> Payment:
    return await adapters.payments.record_payment(payment_request(payment_id, amount))


def apply(invoice: Invoice, payment_id: str, amount: str, key: str = "apply-1") -> ApplyPayment:
    return ApplyPayment(
        idempotency_key=key,
        invoice_id=invoice.invoice_id,
        payment_id=payment_id,
        amount=Decimal(amount),
    )


def shipment_request(reservation: Reservation, key: str = "ship-1") -> ShipmentRequest:
    return ShipmentRequest(
        idempotency_key=key,
        order_id=reservation.order_id,
        reservation_id=reservation.reservation_id,
        ship_to="Acme Corporation, 1 Road Runner Way",
        lines=reservation.lines,
    )


async def requested_shipment(adapters: LocalAdapters, key: str = "ship-1") -> Shipment:
    """A shipment of two widgets, from a reservation made once for all such shipments."""
    reservation = await adapters.logistics.reserve_stock(reserve("reserve-1", ("SKU-WIDGET", 2)))
    return await adapters.logistics.request_shipment(shipment_request(reservation, key))


def release(reservation: Reservation, key: str = "release-1") -> ReleaseReservation:
    return ReleaseReservation(idempotency_key=key, reservation_id=reservation.reservation_id)


def cancel(shipment: Shipment, key: str = "cancel-1") -> CancelShipment:
    return CancelShipment(
        idempotency_key=key, shipment_id=shipment.shipment_id, reason="order cancelled"
    )


def void(invoice: Invoice, key: str = "void-1") -> VoidInvoice:
    return VoidInvoice(idempotency_key=key, invoice_id=invoice.invoice_id, reason="order cancelled")


def refund(payment_id: str, amount: str, key: str = "refund-1") -> RefundPayment:
    return RefundPayment(
        idempotency_key=key, payment_id=payment_id, amount=Decimal(amount), reason="cancelled"
    )


async def outcome(call: Awaitable[Any], success: str) -> str:
    """`success` if the call went through, else the business error's code."""
    try:
        await call
    except BusinessError as error:
        return error.code
    return success


def confirmation(shipment: Shipment, key: str, tracking: str = "JD0146") -> ShipmentConfirmation:
    return ShipmentConfirmation(
        idempotency_key=key,
        shipment_id=shipment.shipment_id,
        carrier="DHL",
        tracking_number=tracking,
    )


def second_engine(adapters: LocalAdapters) -> LocalAdapters:
    """The same database through another engine and pool, as another process sees it."""
    database = adapters.database
    return open_local_adapters(database.url, schema=database.schema, seed=False)


# --- CRM -----------------------------------------------------------------------------------


async def test_get_customer_returns_the_seeded_customer(local_adapters: LocalAdapters) -> None:
    acme = await local_adapters.crm.get_customer("CUST-ACME")
    initech = await local_adapters.crm.get_customer("CUST-INITECH")

    assert (acme.name, acme.currency, acme.credit_limit) == (
        "Acme Corporation",
        "EUR",
        Decimal("50000.00"),
    )
    assert acme.status is CustomerStatus.ACTIVE
    assert initech.status is CustomerStatus.BLOCKED


async def test_unknown_customer_is_customer_not_found(local_adapters: LocalAdapters) -> None:
    error = await business_error(local_adapters.crm.get_customer("CUST-NOPE"), "customer_not_found")
    assert "CUST-NOPE" in error.message


# --- billing accounts ----------------------------------------------------------------------


async def test_ensure_account_twice_keeps_one_account(local_adapters: LocalAdapters) -> None:
    first = await acme_account(local_adapters)
    second = await acme_account(local_adapters)

    assert first == second
    assert first.account_id.startswith("BA-")
    assert count(local_adapters.database, BillingAccountRow) == 1


async def test_racing_first_orders_make_one_account(local_adapters: LocalAdapters) -> None:
    customer = await local_adapters.crm.get_customer("CUST-GLOBEX")
    other = second_engine(local_adapters)
    try:
        accounts = await asyncio.gather(
            *(local_adapters.billing.ensure_account(customer) for _ in range(RACERS)),
            *(other.billing.ensure_account(customer) for _ in range(RACERS)),
        )
    finally:
        other.database.dispose()

    assert len({account.account_id for account in accounts}) == 1
    assert count(local_adapters.database, BillingAccountRow) == 1


# --- stock reservations --------------------------------------------------------------------


async def test_reserving_twice_with_one_key_decrements_once(local_adapters: LocalAdapters) -> None:
    db, logistics = local_adapters.database, local_adapters.logistics
    request = reserve("reserve-1", ("SKU-WIDGET", 3), ("SKU-GADGET", 2))

    first = await logistics.reserve_stock(request)
    second = await logistics.reserve_stock(request)

    assert first == second
    assert first.reservation_id.startswith("RES-")
    assert first.lines == request.lines
    assert (count(db, ReservationRow), count(db, ReservationLineRow)) == (1, 2)
    assert on_hand(db, "SKU-WIDGET") == 1_000_000 - 3
    assert on_hand(db, "SKU-GADGET") == 1_000_000 - 2


async def test_racing_reservations_with_one_key_decrement_once(
    local_adapters: LocalAdapters,
) -> None:
    request = reserve("reserve-1", ("SKU-RARE", 2))
    other = second_engine(local_adapters)
    try:
        reservations = await asyncio.gather(
            *(local_adapters.logistics.reserve_stock(request) for _ in range(RACERS)),
            *(other.logistics.reserve_stock(request) for _ in range(RACERS)),
        )
    finally:
        other.database.dispose()

    assert len({r.reservation_id for r in reservations}) == 1
    assert count(local_adapters.database, ReservationRow) == 1
    assert on_hand(local_adapters.database, "SKU-RARE") == 3


async def test_racing_orders_never_take_more_than_is_on_hand(
    local_adapters: LocalAdapters,
) -> None:
    async def one(key: str) -> str:
        try:
            await local_adapters.logistics.reserve_stock(reserve(key, ("SKU-RARE", 1)))
        except BusinessError as error:
            return error.code
        return "reserved"

    outcomes = await asyncio.gather(*(one(f"reserve-{n}") for n in range(RACERS)))

    assert sorted(outcomes) == ["out_of_stock"] * (RACERS - 5) + ["reserved"] * 5
    assert on_hand(local_adapters.database, "SKU-RARE") == 0
    assert count(local_adapters.database, ReservationRow) == 5


async def test_unknown_item_reserves_nothing(local_adapters: LocalAdapters) -> None:
    request = reserve("reserve-1", ("SKU-WIDGET", 1), ("SKU-NOPE", 1))

    error = await business_error(local_adapters.logistics.reserve_stock(request), "item_unknown")

    assert "SKU-NOPE" in error.message
    assert on_hand(local_adapters.database, "SKU-WIDGET") == 1_000_000
    assert count(local_adapters.database, ReservationRow) == 0


async def test_out_of_stock_reserves_no_line(local_adapters: LocalAdapters) -> None:
    # SKU-RARE sorts after SKU-GADGET, so the gadget line was taken before the rare one failed.
    request = reserve("reserve-1", ("SKU-GADGET", 4), ("SKU-RARE", 6))

    error = await business_error(local_adapters.logistics.reserve_stock(request), "out_of_stock")

    assert "SKU-RARE" in error.message
    assert "5 available" in error.message
    assert on_hand(local_adapters.database, "SKU-GADGET") == 1_000_000
    assert on_hand(local_adapters.database, "SKU-RARE") == 5
    assert count(local_adapters.database, ReservationRow) == 0
    assert count(local_adapters.database, ReservationLineRow) == 0


async def test_a_key_refused_once_can_succeed_later(local_adapters: LocalAdapters) -> None:
    request = reserve("reserve-1", ("SKU-RARE", 6))
    await business_error(local_adapters.logistics.reserve_stock(request), "out_of_stock")

    smaller = reserve("reserve-1", ("SKU-RARE", 5))
    reservation = await local_adapters.logistics.reserve_stock(smaller)

    assert reservation.lines == smaller.lines
    assert on_hand(local_adapters.database, "SKU-RARE") == 0


# --- shipments -----------------------------------------------------------------------------


async def test_requesting_a_shipment_twice_makes_one(local_adapters: LocalAdapters) -> None:
    first = await requested_shipment(local_adapters)
    second = await requested_shipment(local_adapters)

    assert first == second
    assert first.shipment_id.startswith("SHP-")
    assert first.status is ShipmentStatus.REQUESTED
    assert count(local_adapters.database, ShipmentRow) == 1


async def test_confirming_again_with_the_same_key_changes_nothing(
    local_adapters: LocalAdapters,
) -> None:
    shipment = await requested_shipment(local_adapters)
    logistics = local_adapters.logistics

    confirmed = await race(lambda: logistics.confirm_shipment(confirmation(shipment, "confirm-1")))
    again = await logistics.confirm_shipment(confirmation(shipment, "confirm-1", tracking="OTHER"))

    assert {c.model_dump_json() for c in confirmed} == {again.model_dump_json()}
    assert (again.status, again.carrier, again.tracking_number) == (
        ShipmentStatus.CONFIRMED,
        "DHL",
        "JD0146",
    )


async def test_a_second_confirmation_naming_other_goods_is_refused(
    local_adapters: LocalAdapters,
) -> None:
    shipment = await requested_shipment(local_adapters)
    logistics = local_adapters.logistics
    await logistics.confirm_shipment(confirmation(shipment, "confirm-1"))

    duplicate_event = await logistics.confirm_shipment(confirmation(shipment, "webhook-9"))
    await business_error(
        logistics.confirm_shipment(confirmation(shipment, "confirm-2", tracking="OTHER")),
        "shipment_already_confirmed",
    )

    assert duplicate_event.tracking_number == "JD0146"


async def test_unknown_shipment_is_shipment_not_found(local_adapters: LocalAdapters) -> None:
    ghost = Shipment(shipment_id="SHP-nope", order_id="shop:1", status=ShipmentStatus.REQUESTED)
    await business_error(
        local_adapters.logistics.confirm_shipment(confirmation(ghost, "confirm-1")),
        "shipment_not_found",
    )


# --- lookups by key, releases and cancellations --------------------------------------------


async def test_find_reservation_and_shipment_by_their_keys(local_adapters: LocalAdapters) -> None:
    logistics = local_adapters.logistics
    reservation = await logistics.reserve_stock(reserve("reserve-1", ("SKU-WIDGET", 2)))
    shipment = await logistics.request_shipment(shipment_request(reservation, "ship-1"))

    assert reservation.status is ReservationStatus.RESERVED
    assert await logistics.find_reservation("reserve-1") == reservation
    assert await logistics.find_shipment("ship-1") == shipment
    assert await logistics.find_reservation("ship-1") is None
    assert await logistics.find_shipment("reserve-1") is None


async def test_releasing_again_restores_stock_once(local_adapters: LocalAdapters) -> None:
    db, logistics = local_adapters.database, local_adapters.logistics
    reservation = await logistics.reserve_stock(reserve("reserve-1", ("SKU-RARE", 2)))

    first = await logistics.release_reservation(release(reservation, "release-1"))
    replay = await logistics.release_reservation(release(reservation, "release-1"))
    other_key = await logistics.release_reservation(release(reservation, "release-2"))

    assert first == replay == other_key
    assert first.status is ReservationStatus.RELEASED
    assert first.lines == reservation.lines
    assert on_hand(db, "SKU-RARE") == 5
    assert await logistics.find_reservation("reserve-1") == first


async def test_racing_releases_restore_stock_once(local_adapters: LocalAdapters) -> None:
    logistics = local_adapters.logistics
    reservation = await logistics.reserve_stock(
        reserve("reserve-1", ("SKU-RARE", 2), ("SKU-GADGET", 1), ("SKU-RARE", 1))
    )
    other = second_engine(local_adapters)
    try:
        released = await asyncio.gather(
            *(logistics.release_reservation(release(reservation, f"a-{n}")) for n in range(RACERS)),
            *(
                other.logistics.release_reservation(release(reservation, f"b-{n}"))
                for n in range(RACERS)
            ),
        )
    finally:
        other.database.dispose()

    assert {r.status for r in released} == {ReservationStatus.RELEASED}
    assert on_hand(local_adapters.database, "SKU-RARE") == 5
    assert on_hand(local_adapters.database, "SKU-GADGET") == 1_000_000


async def test_releasing_an_unknown_reservation_is_refused(local_adapters: LocalAdapters) -> None:
    ghost = Reservation(reservation_id="RES-nope", order_id="shop:1", lines=[])
    await business_error(
        local_adapters.logistics.release_reservation(release(ghost)), "reservation_not_found"
    )


async def test_a_released_reservation_cannot_ship(local_adapters: LocalAdapters) -> None:
    logistics = local_adapters.logistics
    reservation = await logistics.reserve_stock(reserve("reserve-1", ("SKU-WIDGET", 2)))
    await logistics.release_reservation(release(reservation))

    await business_error(
        logistics.request_shipment(shipment_request(reservation, "ship-1")),
        "reservation_released",
    )

    assert count(local_adapters.database, ShipmentRow) == 0
    assert await logistics.find_shipment("ship-1") is None  # the refused key stays free


async def test_a_shipment_needs_a_known_reservation(local_adapters: LocalAdapters) -> None:
    ghost = Reservation(
        reservation_id="RES-nope",
        order_id="shop:1",
        lines=[StockLine(sku="SKU-WIDGET", quantity=1)],
    )
    await business_error(
        local_adapters.logistics.request_shipment(shipment_request(ghost)), "reservation_not_found"
    )


async def test_cancelling_again_keeps_the_shipment_cancelled(
    local_adapters: LocalAdapters,
) -> None:
    shipment = await requested_shipment(local_adapters)
    logistics = local_adapters.logistics

    first = await logistics.cancel_shipment(cancel(shipment, "cancel-1"))
    replay = await logistics.cancel_shipment(cancel(shipment, "cancel-1"))
    other_key = await logistics.cancel_shipment(cancel(shipment, "cancel-2"))

    assert first == replay == other_key
    assert first.status is ShipmentStatus.CANCELLED
    assert await logistics.find_shipment("ship-1") == first


async def test_a_cancelled_shipment_cannot_be_confirmed(local_adapters: LocalAdapters) -> None:
    shipment = await requested_shipment(local_adapters)
    logistics = local_adapters.logistics
    await logistics.cancel_shipment(cancel(shipment))

    error = await business_error(
        logistics.confirm_shipment(confirmation(shipment, "confirm-1")), "shipment_cancelled"
    )

    assert "order cancelled" in error.message
    assert (await logistics.find_shipment("ship-1")) == shipment.model_copy(
        update={"status": ShipmentStatus.CANCELLED}
    )


async def test_a_confirmed_shipment_cannot_be_cancelled(local_adapters: LocalAdapters) -> None:
    shipment = await requested_shipment(local_adapters)
    logistics = local_adapters.logistics
    confirmed = await logistics.confirm_shipment(confirmation(shipment, "confirm-1"))

    await business_error(logistics.cancel_shipment(cancel(shipment)), "shipment_already_confirmed")

    assert await logistics.find_shipment("ship-1") == confirmed


async def test_cancel_and_confirm_racing_leave_one_winner(local_adapters: LocalAdapters) -> None:
    shipment = await requested_shipment(local_adapters)
    logistics = local_adapters.logistics

    outcomes = await asyncio.gather(
        *(
            call
            for n in range(RACERS // 2)
            for call in (
                outcome(logistics.cancel_shipment(cancel(shipment, f"cancel-{n}")), "cancelled"),
                outcome(
                    logistics.confirm_shipment(confirmation(shipment, f"confirm-{n}")), "confirmed"
                ),
            )
        )
    )

    final = await logistics.find_shipment("ship-1")
    assert final is not None
    if final.status is ShipmentStatus.CANCELLED:
        expected = ["cancelled"] * (RACERS // 2) + ["shipment_cancelled"] * (RACERS // 2)
    else:
        assert final.status is ShipmentStatus.CONFIRMED
        expected = ["confirmed"] * (RACERS // 2) + ["shipment_already_confirmed"] * (RACERS // 2)
    assert sorted(outcomes) == sorted(expected)


async def test_cancelling_an_unknown_shipment_is_refused(local_adapters: LocalAdapters) -> None:
    ghost = Shipment(shipment_id="SHP-nope", order_id="shop:1", status=ShipmentStatus.REQUESTED)
    await business_error(
        local_adapters.logistics.cancel_shipment(cancel(ghost)), "shipment_not_found"
    )


# --- invoices ------------------------------------------------------------------------------


async def test_invoicing_twice_with_one_key_makes_one_invoice(
    local_adapters: LocalAdapters,
) -> None:
    account = await acme_account(local_adapters)
    request = invoice_request(account.account_id, "invoice-1", "10.00", "5.50")
    other = second_engine(local_adapters)
    try:
        invoices = await asyncio.gather(
            *(local_adapters.billing.create_invoice(request) for _ in range(RACERS)),
            *(other.billing.create_invoice(request) for _ in range(RACERS)),
        )
    finally:
        other.database.dispose()

    assert len({invoice.model_dump_json() for invoice in invoices}) == 1
    invoice = invoices[0]
    assert invoice.invoice_id.startswith("INV-")
    assert (invoice.amount, invoice.balance, invoice.status) == (
        Decimal("15.50"),
        Decimal("15.50"),
        InvoiceStatus.OPEN,
    )
    db = local_adapters.database
    assert (count(db, InvoiceRow), count(db, InvoiceLineRow)) == (1, 2)
    assert await local_adapters.billing.list_invoices("shop:1") == [invoice]


async def test_invoice_on_unknown_account_is_refused(local_adapters: LocalAdapters) -> None:
    request = invoice_request("BA-nope", "invoice-1", "10.00")
    await business_error(local_adapters.billing.create_invoice(request), "account_not_found")


async def test_list_invoices_oldest_first(local_adapters: LocalAdapters) -> None:
    first = await open_invoice(local_adapters, "1.00", key="invoice-1")
    second = await open_invoice(local_adapters, "2.00", key="invoice-2")

    assert await local_adapters.billing.list_invoices("shop:1") == [first, second]
    assert await local_adapters.billing.list_invoices("shop:other") == []


@pytest.mark.parametrize(
    ("currency", "prices", "total", "minor"),
    [
        ("EUR", ("0.10", "0.20"), "0.30", 30),
        ("JPY", ("1500", "1"), "1501", 1501),
        ("KWD", ("12.345", "0.001"), "12.346", 12_346),
        ("EUR", ("99999999.99", "0.01"), "100000000.00", 10_000_000_000),
    ],
)
async def test_money_round_trips_exactly(
    local_adapters: LocalAdapters, currency: str, prices: tuple[str, ...], total: str, minor: int
) -> None:
    invoice = await open_invoice(local_adapters, *prices, currency=currency)

    [listed] = await local_adapters.billing.list_invoices("shop:1")
    assert invoice.amount == listed.amount == Decimal(total)
    assert str(listed.amount) == total  # the currency's scale, not just an equal value
    assert invoice_row(local_adapters.database, invoice.invoice_id).amount_minor == minor


async def test_an_amount_finer_than_the_currency_is_refused(
    local_adapters: LocalAdapters,
) -> None:
    account = await acme_account(local_adapters)
    request = invoice_request(account.account_id, "invoice-1", "0.005")

    await business_error(local_adapters.billing.create_invoice(request), "invalid_amount")
    assert count(local_adapters.database, InvoiceRow) == 0


# --- payments and cash application ---------------------------------------------------------


async def test_recording_a_payment_twice_records_it_once(local_adapters: LocalAdapters) -> None:
    request = payment_request("PAY-1", "12.34")

    payments = await race(lambda: local_adapters.payments.record_payment(request))

    assert len({payment.model_dump_json() for payment in payments}) == 1
    assert payments[0].amount == Decimal("12.34")
    assert payments[0].received_at.tzinfo is not None
    assert count(local_adapters.database, PaymentRow) == 1


async def test_the_same_payment_id_with_other_terms_is_a_conflict(
    local_adapters: LocalAdapters,
) -> None:
    payments = local_adapters.payments
    await payments.record_payment(payment_request("PAY-1", "12.34"))

    await business_error(
        payments.record_payment(payment_request("PAY-1", "12.35")), "payment_conflict"
    )
    await business_error(
        payments.record_payment(payment_request("PAY-1", "12.34", order_id="shop:2")),
        "payment_conflict",
    )
    same_id_new_key = payment_request("PAY-1", "12.340").model_copy(
        update={"idempotency_key": "webhook-77"}
    )
    assert (await payments.record_payment(same_id_new_key)).amount == Decimal("12.34")
    assert count(local_adapters.database, PaymentRow) == 1


async def test_applying_twice_with_one_key_reduces_the_balance_once(
    local_adapters: LocalAdapters,
) -> None:
    invoice = await open_invoice(local_adapters, "100.00")
    await paid_with(local_adapters, "PAY-1", "40.00")
    billing = local_adapters.billing

    applications = await race(lambda: billing.apply_payment(apply(invoice, "PAY-1", "40.00")))

    assert len({a.model_dump_json() for a in applications}) == 1
    assert applications[0].application_id.startswith("APP-")
    assert applications[0].invoice_balance == Decimal("60.00")
    row = invoice_row(local_adapters.database, invoice.invoice_id)
    assert (row.balance_minor, row.status) == (6_000, InvoiceStatus.OPEN)
    assert count(local_adapters.database, PaymentApplicationRow) == 1
    assert await billing.list_applications(invoice.invoice_id) == applications[:1]


async def test_paying_the_balance_to_zero_marks_the_invoice_paid(
    local_adapters: LocalAdapters,
) -> None:
    invoice = await open_invoice(local_adapters, "0.10", "0.20")
    await paid_with(local_adapters, "PAY-1", "0.10")
    await paid_with(local_adapters, "PAY-2", "0.20")
    billing = local_adapters.billing

    part = await billing.apply_payment(apply(invoice, "PAY-1", "0.10", key="apply-1"))
    rest = await billing.apply_payment(apply(invoice, "PAY-2", "0.20", key="apply-2"))

    assert (part.invoice_balance, rest.invoice_balance) == (Decimal("0.20"), Decimal("0.00"))
    [paid] = await billing.list_invoices("shop:1")
    assert (paid.balance, paid.status) == (Decimal("0.00"), InvoiceStatus.PAID)
    assert await billing.list_applications(invoice.invoice_id) == [part, rest]


async def test_a_payment_above_the_balance_is_refused(local_adapters: LocalAdapters) -> None:
    invoice = await open_invoice(local_adapters, "10.00")
    await paid_with(local_adapters, "PAY-1", "10.01")

    error = await business_error(
        local_adapters.billing.apply_payment(apply(invoice, "PAY-1", "10.01")),
        "amount_exceeds_balance",
    )

    assert "10.00" in error.message
    assert invoice_row(local_adapters.database, invoice.invoice_id).balance_minor == 1_000
    assert count(local_adapters.database, PaymentApplicationRow) == 0


async def test_racing_payments_never_take_a_balance_below_zero(
    local_adapters: LocalAdapters,
) -> None:
    invoice = await open_invoice(local_adapters, "5.00")
    await paid_with(local_adapters, "PAY-1", "100.00")

    async def one(n: int) -> str:
        request = apply(invoice, "PAY-1", "1.00", key=f"apply-{n}")
        try:
            await local_adapters.billing.apply_payment(request)
        except BusinessError as error:
            return error.code
        return "applied"

    outcomes = await asyncio.gather(*(one(n) for n in range(RACERS)))

    assert sorted(outcomes) == ["amount_exceeds_balance"] * (RACERS - 5) + ["applied"] * 5
    row = invoice_row(local_adapters.database, invoice.invoice_id)
    assert (row.balance_minor, row.status) == (0, InvoiceStatus.PAID)


async def test_a_payment_cannot_be_applied_beyond_its_amount(
    local_adapters: LocalAdapters,
) -> None:
    first = await open_invoice(local_adapters, "10.00", key="invoice-1")
    second = await open_invoice(local_adapters, "10.00", key="invoice-2")
    await paid_with(local_adapters, "PAY-1", "15.00")
    billing = local_adapters.billing

    await billing.apply_payment(apply(first, "PAY-1", "10.00", key="apply-1"))
    await business_error(
        billing.apply_payment(apply(second, "PAY-1", "10.00", key="apply-2")),
        "amount_exceeds_payment",
    )
    partial = await billing.apply_payment(apply(second, "PAY-1", "5.00", key="apply-3"))

    assert partial.invoice_balance == Decimal("5.00")


async def test_applying_to_an_unknown_invoice_is_refused(local_adapters: LocalAdapters) -> None:
    await paid_with(local_adapters, "PAY-1", "10.00")
    ghost = Invoice(
        invoice_id="INV-nope",
        order_id="shop:1",
        account_id="BA-nope",
        currency="EUR",
        amount=Decimal("10.00"),
        balance=Decimal("10.00"),
        invoice_date=TODAY,
        due_date=TODAY,
        status=InvoiceStatus.OPEN,
    )
    await business_error(
        local_adapters.billing.apply_payment(apply(ghost, "PAY-1", "10.00")), "invoice_not_found"
    )


async def test_applying_a_payment_in_another_currency_is_refused(
    local_adapters: LocalAdapters,
) -> None:
    invoice = await open_invoice(local_adapters, "10.00")
    await local_adapters.payments.record_payment(payment_request("PAY-1", "10.00", "USD"))

    await business_error(
        local_adapters.billing.apply_payment(apply(invoice, "PAY-1", "10.00")), "currency_mismatch"
    )
    assert invoice_row(local_adapters.database, invoice.invoice_id).balance_minor == 1_000


async def test_applying_an_unrecorded_payment_is_refused(local_adapters: LocalAdapters) -> None:
    invoice = await open_invoice(local_adapters, "10.00")
    await business_error(
        local_adapters.billing.apply_payment(apply(invoice, "PAY-nope", "10.00")),
        "payment_not_found",
    )


# --- lookups by key, voids and the open balance --------------------------------------------


async def test_find_invoice_and_application_by_their_keys(local_adapters: LocalAdapters) -> None:
    billing = local_adapters.billing
    invoice = await open_invoice(local_adapters, "10.00", key="invoice-1")
    await paid_with(local_adapters, "PAY-1", "4.00")
    application = await billing.apply_payment(apply(invoice, "PAY-1", "4.00", key="apply-1"))

    assert await billing.find_invoice("invoice-1") == invoice.model_copy(
        update={"balance": Decimal("6.00")}
    )
    assert await billing.find_application("apply-1") == application
    assert await billing.find_invoice("apply-1") is None
    assert await billing.find_application("invoice-1") is None


async def test_voiding_again_keeps_the_invoice_void(local_adapters: LocalAdapters) -> None:
    billing = local_adapters.billing
    invoice = await open_invoice(local_adapters, "10.00", "5.50")

    first = await billing.void_invoice(void(invoice, "void-1"))
    replay = await billing.void_invoice(void(invoice, "void-1"))
    other_key = await billing.void_invoice(void(invoice, "void-2"))

    assert first == replay == other_key
    assert (first.status, first.amount, first.balance) == (
        InvoiceStatus.VOID,
        Decimal("15.50"),
        Decimal("0.00"),
    )
    assert await billing.list_invoices("shop:1") == [first]
    assert await billing.find_invoice("inv-1") == first


async def test_an_invoice_with_payments_cannot_be_voided(local_adapters: LocalAdapters) -> None:
    billing = local_adapters.billing
    invoice = await open_invoice(local_adapters, "10.00")
    await paid_with(local_adapters, "PAY-1", "0.01")
    await billing.apply_payment(apply(invoice, "PAY-1", "0.01"))

    error = await business_error(billing.void_invoice(void(invoice)), "invoice_has_payments")

    assert "0.01 EUR" in error.message
    row = invoice_row(local_adapters.database, invoice.invoice_id)
    assert (row.status, row.balance_minor, row.void_key) == (InvoiceStatus.OPEN, 999, None)


async def test_voiding_an_unknown_invoice_is_refused(local_adapters: LocalAdapters) -> None:
    ghost = Invoice(
        invoice_id="INV-nope",
        order_id="shop:1",
        account_id="BA-nope",
        currency="EUR",
        amount=Decimal("10.00"),
        balance=Decimal("10.00"),
        invoice_date=TODAY,
        due_date=TODAY,
        status=InvoiceStatus.OPEN,
    )
    await business_error(local_adapters.billing.void_invoice(void(ghost)), "invoice_not_found")


async def test_a_void_invoice_takes_no_payment_and_owes_nothing(
    local_adapters: LocalAdapters,
) -> None:
    billing = local_adapters.billing
    invoice = await open_invoice(local_adapters, "10.00")
    await paid_with(local_adapters, "PAY-1", "10.00")
    owed = await billing.open_balance("CUST-ACME")
    voided = await billing.void_invoice(void(invoice))

    await business_error(billing.apply_payment(apply(invoice, "PAY-1", "10.00")), "invoice_void")

    assert owed.amount == Decimal("10.00")
    assert (await billing.open_balance("CUST-ACME")).amount == Decimal("0.00")
    assert await billing.list_invoices("shop:1") == [voided]
    assert await billing.find_application("apply-1") is None  # the refused key stays free
    assert count(local_adapters.database, PaymentApplicationRow) == 0


async def test_a_void_racing_payments_wins_alone_or_not_at_all(
    local_adapters: LocalAdapters,
) -> None:
    billing = local_adapters.billing
    invoice = await open_invoice(local_adapters, "10.00")
    await paid_with(local_adapters, "PAY-1", "10.00")

    outcomes = await asyncio.gather(
        *(
            call
            for n in range(RACERS // 2)
            for call in (
                outcome(billing.void_invoice(void(invoice, f"void-{n}")), "voided"),
                outcome(billing.apply_payment(apply(invoice, "PAY-1", "1.00", f"a-{n}")), "paid"),
            )
        )
    )

    row = invoice_row(local_adapters.database, invoice.invoice_id)
    applied = outcomes.count("paid")
    assert count(local_adapters.database, PaymentApplicationRow) == applied
    if row.status == InvoiceStatus.VOID:
        assert (applied, row.balance_minor) == (0, 0)
        assert set(outcomes) == {"voided", "invoice_void"}
    else:
        assert applied == RACERS // 2
        assert row.balance_minor == 1_000 - 100 * applied
        assert set(outcomes) == {"paid", "invoice_has_payments"}


async def test_open_balance_sums_the_customers_open_invoices(
    local_adapters: LocalAdapters,
) -> None:
    billing, crm = local_adapters.billing, local_adapters.crm
    acme = await acme_account(local_adapters)
    globex = await billing.ensure_account(await crm.get_customer("CUST-GLOBEX"))

    async def invoice(account: BillingAccount, key: str, price: str) -> Invoice:
        request = invoice_request(account.account_id, key, price, currency=account.currency)
        return await billing.create_invoice(request)

    partly_paid = await invoice(acme, "acme-1", "100.00")
    await invoice(acme, "acme-2", "25.50")
    paid = await invoice(acme, "acme-3", "7.00")
    voided = await invoice(acme, "acme-4", "1000.00")
    await invoice(globex, "globex-1", "70.00")
    await paid_with(local_adapters, "PAY-1", "47.00")
    await billing.apply_payment(apply(partly_paid, "PAY-1", "40.00", key="apply-1"))
    await billing.apply_payment(apply(paid, "PAY-1", "7.00", key="apply-2"))
    await billing.void_invoice(void(voided))

    assert await billing.open_balance("CUST-ACME") == OpenBalance(
        customer_id="CUST-ACME", currency="EUR", amount=Decimal("85.50")
    )
    assert await billing.open_balance("CUST-GLOBEX") == OpenBalance(
        customer_id="CUST-GLOBEX", currency="USD", amount=Decimal("70.00")
    )


async def test_open_balance_without_an_account_is_zero(local_adapters: LocalAdapters) -> None:
    billing = local_adapters.billing

    crm_only = await billing.open_balance("CUST-INITECH")
    unknown = await billing.open_balance("CUST-NOPE")

    assert (crm_only.currency, str(crm_only.amount)) == ("EUR", "0.00")
    assert (unknown.currency, unknown.amount) == ("", Decimal(0))
    assert count(local_adapters.database, BillingAccountRow) == 0


# --- payment lookups and refunds -----------------------------------------------------------


async def test_find_payment_by_its_key(local_adapters: LocalAdapters) -> None:
    payment = await paid_with(local_adapters, "PAY-1", "12.34")

    assert await local_adapters.payments.find_payment("payment:PAY-1") == payment
    assert await local_adapters.payments.find_payment("PAY-1") is None


async def test_refunding_twice_with_one_key_refunds_once(local_adapters: LocalAdapters) -> None:
    await paid_with(local_adapters, "PAY-1", "10.00")
    payments = local_adapters.payments

    refunds = await race(lambda: payments.refund_payment(refund("PAY-1", "6.00")))
    replay = await payments.refund_payment(refund("PAY-1", "1.00"))

    assert {r.model_dump_json() for r in refunds} == {replay.model_dump_json()}
    assert replay.refund_id.startswith("RFD-")
    assert (replay.payment_id, replay.amount, replay.currency) == ("PAY-1", Decimal("6.00"), "EUR")
    assert count(local_adapters.database, RefundRow) == 1


async def test_refunds_never_exceed_the_payment(local_adapters: LocalAdapters) -> None:
    await paid_with(local_adapters, "PAY-1", "10.00")
    payments = local_adapters.payments
    await payments.refund_payment(refund("PAY-1", "6.00", key="refund-1"))

    error = await business_error(
        payments.refund_payment(refund("PAY-1", "4.01", key="refund-2")), "refund_exceeds_payment"
    )
    rest = await payments.refund_payment(refund("PAY-1", "4.00", key="refund-2"))

    assert "6.00 EUR refunded already" in error.message
    assert rest.amount == Decimal("4.00")  # the refused request did not use up its key
    await business_error(
        payments.refund_payment(refund("PAY-1", "0.01", key="refund-3")), "refund_exceeds_payment"
    )
    assert count(local_adapters.database, RefundRow) == 2


async def test_racing_refunds_never_exceed_the_payment(local_adapters: LocalAdapters) -> None:
    await paid_with(local_adapters, "PAY-1", "5.00")
    other = second_engine(local_adapters)
    try:
        outcomes = await asyncio.gather(
            *(
                outcome(adapters.payments.refund_payment(refund("PAY-1", "1.00", key)), "ok")
                for n in range(RACERS)
                for adapters, key in ((local_adapters, f"a-{n}"), (other, f"b-{n}"))
            )
        )
    finally:
        other.database.dispose()

    assert sorted(outcomes) == ["ok"] * 5 + ["refund_exceeds_payment"] * (2 * RACERS - 5)
    assert count(local_adapters.database, RefundRow) == 5


@pytest.mark.parametrize(
    ("payment_id", "amount", "code"),
    [
        ("PAY-nope", "1.00", "payment_not_found"),
        ("PAY-1", "0.001", "invalid_amount"),
        ("PAY-1", "0", "invalid_amount"),
        ("PAY-1", "-1.00", "invalid_amount"),
    ],
)
async def test_impossible_refunds_are_refused(
    local_adapters: LocalAdapters, payment_id: str, amount: str, code: str
) -> None:
    await paid_with(local_adapters, "PAY-1", "10.00")

    await business_error(local_adapters.payments.refund_payment(refund(payment_id, amount)), code)

    assert count(local_adapters.database, RefundRow) == 0


# --- seed ----------------------------------------------------------------------------------


def _snapshot(db: LocalDatabase) -> list[str]:
    with db.session() as session:
        customers = session.exec(select(CustomerRow).order_by(CustomerRow.customer_id)).all()
        items = session.exec(select(ItemRow).order_by(ItemRow.sku)).all()
        return [row.model_dump_json() for row in [*customers, *items]]


async def test_seeding_again_changes_nothing(local_adapters: LocalAdapters) -> None:
    db = local_adapters.database
    await local_adapters.logistics.reserve_stock(reserve("reserve-1", ("SKU-RARE", 2)))
    before = _snapshot(db)

    seed_demo_data(db)
    seed_demo_data(db)

    assert _snapshot(db) == before
    assert (count(db, CustomerRow), count(db, ItemRow)) == (3, 4)
    assert on_hand(db, "SKU-RARE") == 3


# --- the database itself -------------------------------------------------------------------


def test_postgres_urls_use_the_psycopg_driver() -> None:
    for url in ("postgres://u@db/o2c", "postgresql://u@db/o2c"):
        database = LocalDatabase.from_url(url, schema="o2c_test")
        assert database.engine.url.drivername == "postgresql+psycopg"
        assert database.schema == "o2c_test"
        database.dispose()


def test_sqlite_creates_its_folder_and_writes_ahead(tmp_path: Path) -> None:
    database = LocalDatabase.from_url(f"sqlite:///{tmp_path / 'deep' / 'er' / 'o2c.db'}")
    try:
        assert (tmp_path / "deep" / "er").is_dir()
        with database.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30_000
    finally:
        database.dispose()


@pytest.mark.parametrize(
    ("url", "schema"),
    [
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///o2c.db", "o2c_test"),
        ("postgresql://u@db/o2c", 'x"; DROP TABLE invoices; --'),
        ("mysql://u@db/o2c", None),
    ],
)
def test_unusable_database_settings_are_refused(url: str, schema: str | None) -> None:
    with pytest.raises(ValueError):
        LocalDatabase.from_url(url, schema=schema)
