"""The local adapters keep their promises on SQLite and on PostgreSQL.

Idempotency is checked where it matters, in the database: one row per key, stock
decremented once, a balance reduced once, also when calls race on threads or on
two separate engines (as two processes would).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import inspect, text
from sqlmodel import func, select

from adapters.billing.models import (
    ApplyPayment,
    BillingAccount,
    CreditNoteRequest,
    CustomerCreditEntry,
    DunningNotice,
    Invoice,
    InvoiceLine,
    InvoiceRequest,
    InvoiceStatus,
    OpenBalance,
    VoidInvoice,
)
from adapters.crm.models import CustomerHold, CustomerStatus
from adapters.errors import BusinessError
from adapters.local import LocalAdapters, LocalDatabase, open_local_adapters, seed_demo_data
from adapters.local.tables import (
    BillingAccountRow,
    CardAuthorisationRow,
    CardCaptureRow,
    CreditNoteRow,
    CustomerCreditRow,
    CustomerHoldRow,
    CustomerRow,
    DunningNoticeRow,
    InvoiceLineRow,
    InvoiceRow,
    ItemRow,
    LocalTable,
    PaymentApplicationRow,
    PaymentRow,
    RefundRow,
    ReservationAmendmentRow,
    ReservationLineRow,
    ReservationRow,
    ShipmentDispatchRow,
    ShipmentReturnRow,
    ShipmentRow,
)
from adapters.logistics.models import (
    AmendReservation,
    CancelShipment,
    ReleaseReservation,
    Reservation,
    ReservationStatus,
    ReserveStock,
    ReturnReceipt,
    Shipment,
    ShipmentConfirmation,
    ShipmentRequest,
    ShipmentStatus,
)
from adapters.payments.models import (
    Authorisation,
    AuthorisationStatus,
    AuthoriseCard,
    CaptureCard,
    Payment,
    PaymentRecordRequest,
    RefundPayment,
    VoidAuthorisation,
)
from o2c_domain.lines import SkuQuantity

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
        lines=[SkuQuantity(sku=sku, quantity=quantity) for sku, quantity in lines],
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


def confirmation(
    shipment: Shipment, key: str, tracking: str = "JD0146", *lines: tuple[str, int]
) -> ShipmentConfirmation:
    """One dispatch of `lines`, or of everything the shipment requested."""
    leaving = [SkuQuantity(sku=sku, quantity=quantity) for sku, quantity in lines] or shipment.lines
    return ShipmentConfirmation(
        idempotency_key=key,
        shipment_id=shipment.shipment_id,
        carrier="DHL",
        tracking_number=tracking,
        lines=leaving or [SkuQuantity(sku="SKU-WIDGET", quantity=1)],
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


async def test_a_dispatch_beyond_what_is_left_is_over_shipment(
    local_adapters: LocalAdapters,
) -> None:
    shipment = await requested_shipment(local_adapters)
    logistics = local_adapters.logistics
    await logistics.confirm_shipment(confirmation(shipment, "confirm-1", "JD1", ("SKU-WIDGET", 1)))

    error = await business_error(
        logistics.confirm_shipment(confirmation(shipment, "confirm-2", "JD2", ("SKU-WIDGET", 2))),
        "over_shipment",
    )
    await business_error(
        logistics.confirm_shipment(confirmation(shipment, "confirm-2", "JD2", ("SKU-GADGET", 1))),
        "over_shipment",
    )
    rest = await logistics.confirm_shipment(
        confirmation(shipment, "confirm-2", "JD2", ("SKU-WIDGET", 1))
    )  # the refused requests did not use up the key
    await business_error(
        logistics.confirm_shipment(confirmation(shipment, "confirm-3", "JD3", ("SKU-WIDGET", 1))),
        "over_shipment",
    )

    assert "only 1 of 2" in error.message
    assert (rest.status, rest.tracking_number) == (ShipmentStatus.CONFIRMED, "JD2")
    assert count(local_adapters.database, ShipmentDispatchRow) == 2


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
        lines=[SkuQuantity(sku="SKU-WIDGET", quantity=1)],
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
        # One dispatch takes everything; the others, with other keys, find nothing left.
        expected = (
            ["confirmed"]
            + ["over_shipment"] * (RACERS // 2 - 1)
            + ["shipment_already_confirmed"] * (RACERS // 2)
        )
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


# --- dispatches ----------------------------------------------------------------------------


async def shipment_of(
    adapters: LocalAdapters, *lines: tuple[str, int], order_id: str = "shop:1"
) -> tuple[Reservation, Shipment]:
    """A reservation of `lines` and a shipment requested for all of them."""
    logistics = adapters.logistics
    reservation = await logistics.reserve_stock(reserve("reserve-1", *lines, order_id=order_id))
    return reservation, await logistics.request_shipment(shipment_request(reservation))


def stock(*lines: tuple[str, int]) -> list[SkuQuantity]:
    return [SkuQuantity(sku=sku, quantity=quantity) for sku, quantity in lines]


async def test_partial_dispatches_sum_to_confirmed(local_adapters: LocalAdapters) -> None:
    db, logistics = local_adapters.database, local_adapters.logistics
    _, shipment = await shipment_of(local_adapters, ("SKU-WIDGET", 3), ("SKU-RARE", 2))
    assert (shipment.status, shipment.lines, shipment.shipped) == (
        ShipmentStatus.REQUESTED,
        stock(("SKU-WIDGET", 3), ("SKU-RARE", 2)),
        [],
    )

    first = await logistics.confirm_shipment(
        confirmation(shipment, "dispatch-1", "JD1", ("SKU-RARE", 1))
    )
    second = await logistics.confirm_shipment(
        confirmation(shipment, "dispatch-2", "JD2", ("SKU-WIDGET", 2), ("SKU-RARE", 1))
    )
    last = await logistics.confirm_shipment(
        confirmation(shipment, "dispatch-3", "JD3", ("SKU-WIDGET", 1))
    )

    assert (first.status, first.tracking_number, first.shipped) == (
        ShipmentStatus.PARTIALLY_SHIPPED,
        "JD1",
        stock(("SKU-RARE", 1)),
    )
    assert (second.status, second.shipped) == (
        ShipmentStatus.PARTIALLY_SHIPPED,
        stock(("SKU-WIDGET", 2), ("SKU-RARE", 2)),
    )
    assert (last.status, last.carrier, last.tracking_number) == (
        ShipmentStatus.CONFIRMED,
        "DHL",
        "JD3",
    )
    assert last.shipped == last.lines == shipment.lines
    assert await logistics.find_shipment("ship-1") == last
    # A replay answers as the first call did, not with what later dispatches added.
    replay = confirmation(shipment, "dispatch-1", "OTHER", ("SKU-WIDGET", 3))
    assert await logistics.confirm_shipment(replay) == first
    assert count(db, ShipmentDispatchRow) == 3
    # Stock left the shelf when it was reserved; dispatching moves none.
    assert (on_hand(db, "SKU-WIDGET"), on_hand(db, "SKU-RARE")) == (1_000_000 - 3, 3)


async def test_racing_dispatches_with_one_key_record_one(local_adapters: LocalAdapters) -> None:
    _, shipment = await shipment_of(local_adapters, ("SKU-WIDGET", 4))
    request = confirmation(shipment, "dispatch-1", "JD1", ("SKU-WIDGET", 3))
    other = second_engine(local_adapters)
    try:
        results = await asyncio.gather(
            *(local_adapters.logistics.confirm_shipment(request) for _ in range(RACERS)),
            *(other.logistics.confirm_shipment(request) for _ in range(RACERS)),
        )
    finally:
        other.database.dispose()

    assert len({result.model_dump_json() for result in results}) == 1
    assert results[0].shipped == stock(("SKU-WIDGET", 3))
    assert results[0].status is ShipmentStatus.PARTIALLY_SHIPPED
    assert count(local_adapters.database, ShipmentDispatchRow) == 1


async def test_racing_dispatches_never_ship_more_than_requested(
    local_adapters: LocalAdapters,
) -> None:
    _, shipment = await shipment_of(local_adapters, ("SKU-WIDGET", 5))
    logistics = local_adapters.logistics

    outcomes = await asyncio.gather(
        *(
            outcome(
                logistics.confirm_shipment(
                    confirmation(shipment, f"dispatch-{n}", f"JD{n}", ("SKU-WIDGET", 1))
                ),
                "shipped",
            )
            for n in range(RACERS)
        )
    )

    assert sorted(outcomes) == ["over_shipment"] * (RACERS - 5) + ["shipped"] * 5
    final = await logistics.find_shipment("ship-1")
    assert final is not None
    assert (final.status, final.shipped) == (ShipmentStatus.CONFIRMED, stock(("SKU-WIDGET", 5)))


async def test_a_partly_shipped_shipment_cannot_be_cancelled(
    local_adapters: LocalAdapters,
) -> None:
    _, shipment = await shipment_of(local_adapters, ("SKU-WIDGET", 2))
    logistics = local_adapters.logistics
    await logistics.confirm_shipment(confirmation(shipment, "dispatch-1", "JD1", ("SKU-WIDGET", 1)))

    await business_error(logistics.cancel_shipment(cancel(shipment)), "shipment_already_confirmed")

    final = await logistics.find_shipment("ship-1")
    assert final is not None
    assert final.status is ShipmentStatus.PARTIALLY_SHIPPED


async def test_releasing_after_a_part_left_gives_back_only_the_rest(
    local_adapters: LocalAdapters,
) -> None:
    db, logistics = local_adapters.database, local_adapters.logistics
    reservation, shipment = await shipment_of(local_adapters, ("SKU-RARE", 4))
    await logistics.confirm_shipment(confirmation(shipment, "dispatch-1", "JD1", ("SKU-RARE", 1)))

    await logistics.release_reservation(release(reservation))
    await logistics.release_reservation(release(reservation, "release-2"))

    assert on_hand(db, "SKU-RARE") == 5 - 1
    await business_error(
        logistics.confirm_shipment(confirmation(shipment, "dispatch-2", "JD2", ("SKU-RARE", 1))),
        "reservation_released",
    )
    assert count(db, ShipmentDispatchRow) == 1


# --- amendments ----------------------------------------------------------------------------


def amend(
    reservation: Reservation,
    key: str,
    *lines: tuple[str, int],
    shipment: Shipment | None = None,
) -> AmendReservation:
    return AmendReservation(
        idempotency_key=key,
        reservation_id=reservation.reservation_id,
        shipment_id=None if shipment is None else shipment.shipment_id,
        lines=stock(*lines),
    )


async def test_amending_moves_stock_by_the_difference_only(local_adapters: LocalAdapters) -> None:
    db, logistics = local_adapters.database, local_adapters.logistics
    reservation, shipment = await shipment_of(local_adapters, ("SKU-RARE", 2), ("SKU-GADGET", 3))

    more = await logistics.amend_reservation(
        amend(reservation, "amend-1", ("SKU-RARE", 4), ("SKU-GADGET", 3), shipment=shipment)
    )
    assert (on_hand(db, "SKU-RARE"), on_hand(db, "SKU-GADGET")) == (1, 1_000_000 - 3)

    fewer = await logistics.amend_reservation(
        amend(reservation, "amend-2", ("SKU-RARE", 1), ("SKU-GADGET", 3), shipment=shipment)
    )
    assert (on_hand(db, "SKU-RARE"), on_hand(db, "SKU-GADGET")) == (4, 1_000_000 - 3)

    # A line left out gives all of it back; a new line takes its stock.
    swapped = await logistics.amend_reservation(
        amend(reservation, "amend-3", ("SKU-GADGET", 3), ("SKU-WIDGET", 7), shipment=shipment)
    )
    assert (on_hand(db, "SKU-RARE"), on_hand(db, "SKU-GADGET"), on_hand(db, "SKU-WIDGET")) == (
        5,
        1_000_000 - 3,
        1_000_000 - 7,
    )

    assert more.lines == stock(("SKU-RARE", 4), ("SKU-GADGET", 3))
    assert fewer.lines == stock(("SKU-RARE", 1), ("SKU-GADGET", 3))
    assert swapped.lines == stock(("SKU-GADGET", 3), ("SKU-WIDGET", 7))
    assert await logistics.find_reservation("reserve-1") == swapped
    requested = await logistics.find_shipment("ship-1")
    assert requested is not None
    assert (requested.status, requested.lines) == (ShipmentStatus.REQUESTED, swapped.lines)
    # Releasing now gives back what the amendments left reserved.
    await logistics.release_reservation(release(reservation))
    assert (on_hand(db, "SKU-GADGET"), on_hand(db, "SKU-WIDGET")) == (1_000_000, 1_000_000)


async def test_amending_twice_with_one_key_moves_stock_once(local_adapters: LocalAdapters) -> None:
    db, logistics = local_adapters.database, local_adapters.logistics
    reservation = await logistics.reserve_stock(reserve("reserve-1", ("SKU-RARE", 1)))
    request = amend(reservation, "amend-1", ("SKU-RARE", 3))
    other = second_engine(local_adapters)
    try:
        results = await asyncio.gather(
            *(logistics.amend_reservation(request) for _ in range(RACERS)),
            *(other.logistics.amend_reservation(request) for _ in range(RACERS)),
        )
    finally:
        other.database.dispose()
    # A replay answers with the lines the amendment set, whatever it now names.
    replay = await logistics.amend_reservation(amend(reservation, "amend-1", ("SKU-RARE", 5)))

    assert {result.model_dump_json() for result in results} == {replay.model_dump_json()}
    assert replay.lines == stock(("SKU-RARE", 3))
    assert on_hand(db, "SKU-RARE") == 2
    assert count(db, ReservationAmendmentRow) == 1


async def test_an_amendment_beyond_the_stock_changes_nothing(
    local_adapters: LocalAdapters,
) -> None:
    db, logistics = local_adapters.database, local_adapters.logistics
    reservation, shipment = await shipment_of(local_adapters, ("SKU-RARE", 2), ("SKU-GADGET", 1))

    error = await business_error(
        logistics.amend_reservation(
            amend(reservation, "amend-1", ("SKU-GADGET", 5), ("SKU-RARE", 6), shipment=shipment)
        ),
        "out_of_stock",
    )
    await business_error(
        logistics.amend_reservation(amend(reservation, "amend-1", ("SKU-NOPE", 1))),
        "item_unknown",
    )

    assert "3 available" in error.message  # what is on the shelf besides the 2 reserved
    assert (on_hand(db, "SKU-RARE"), on_hand(db, "SKU-GADGET")) == (3, 1_000_000 - 1)
    assert await logistics.find_reservation("reserve-1") == reservation
    assert await logistics.find_shipment("ship-1") == shipment
    assert count(db, ReservationAmendmentRow) == 0
    # The refused requests did not use up the key.
    amended = await logistics.amend_reservation(amend(reservation, "amend-1", ("SKU-RARE", 5)))
    assert (amended.lines, on_hand(db, "SKU-RARE")) == (stock(("SKU-RARE", 5)), 0)


async def test_a_shipped_line_cannot_be_amended(local_adapters: LocalAdapters) -> None:
    db, logistics = local_adapters.database, local_adapters.logistics
    reservation, shipment = await shipment_of(local_adapters, ("SKU-WIDGET", 2), ("SKU-RARE", 2))
    await logistics.confirm_shipment(confirmation(shipment, "dispatch-1", "JD1", ("SKU-WIDGET", 2)))

    for lines in ((("SKU-WIDGET", 3), ("SKU-RARE", 2)), (("SKU-RARE", 2),)):
        error = await business_error(
            logistics.amend_reservation(amend(reservation, "amend-1", *lines, shipment=shipment)),
            "line_already_shipped",
        )
        assert "2 SKU-WIDGET" in error.message
    assert on_hand(db, "SKU-RARE") == 3

    # The line not shipped yet can still change; with it gone, all that is left has left.
    done = await logistics.amend_reservation(
        amend(reservation, "amend-1", ("SKU-WIDGET", 2), shipment=shipment)
    )
    final = await logistics.find_shipment("ship-1")
    assert final is not None
    assert (final.status, final.lines, final.shipped) == (
        ShipmentStatus.CONFIRMED,
        done.lines,
        stock(("SKU-WIDGET", 2)),
    )
    assert on_hand(db, "SKU-RARE") == 5


async def test_amending_what_cannot_be_amended_is_refused(local_adapters: LocalAdapters) -> None:
    logistics = local_adapters.logistics
    reservation, shipment = await shipment_of(local_adapters, ("SKU-WIDGET", 2))
    other = await logistics.reserve_stock(reserve("reserve-2", ("SKU-WIDGET", 1)))
    ghost = Reservation(reservation_id="RES-nope", order_id="shop:1", lines=[])

    await business_error(
        logistics.amend_reservation(amend(ghost, "amend-1", ("SKU-WIDGET", 1))),
        "reservation_not_found",
    )
    await business_error(
        logistics.amend_reservation(amend(other, "amend-1", ("SKU-WIDGET", 1), shipment=shipment)),
        "shipment_not_found",
    )
    await logistics.cancel_shipment(cancel(shipment))
    await business_error(
        logistics.amend_reservation(
            amend(reservation, "amend-1", ("SKU-WIDGET", 1), shipment=shipment)
        ),
        "shipment_cancelled",
    )
    await logistics.release_reservation(release(reservation))
    await business_error(
        logistics.amend_reservation(amend(reservation, "amend-1", ("SKU-WIDGET", 1))),
        "reservation_released",
    )
    assert count(local_adapters.database, ReservationAmendmentRow) == 0


async def test_racing_amendments_leave_stock_consistent(local_adapters: LocalAdapters) -> None:
    db, logistics = local_adapters.database, local_adapters.logistics
    reservation = await logistics.reserve_stock(reserve("reserve-1", ("SKU-RARE", 1)))

    outcomes = await asyncio.gather(
        *(
            outcome(
                logistics.amend_reservation(amend(reservation, f"amend-{n}", ("SKU-RARE", n + 1))),
                "amended",
            )
            for n in range(RACERS)
        )
    )

    final = await logistics.find_reservation("reserve-1")
    assert final is not None
    [line] = final.lines
    assert on_hand(db, "SKU-RARE") == 5 - line.quantity
    assert set(outcomes) <= {"amended", "out_of_stock"}


# --- returns -------------------------------------------------------------------------------


def returned(shipment: Shipment, key: str, *lines: tuple[str, int]) -> ReturnReceipt:
    return ReturnReceipt(
        idempotency_key=key,
        order_id=shipment.order_id,
        shipment_id=shipment.shipment_id,
        lines=stock(*lines),
    )


async def test_a_return_restocks_once(local_adapters: LocalAdapters) -> None:
    db, logistics = local_adapters.database, local_adapters.logistics
    _, shipment = await shipment_of(local_adapters, ("SKU-RARE", 3))
    shipped = await logistics.confirm_shipment(confirmation(shipment, "dispatch-1"))
    request = returned(shipment, "return-1", ("SKU-RARE", 2))
    other = second_engine(local_adapters)
    try:
        results = await asyncio.gather(
            *(logistics.receive_return(request) for _ in range(RACERS)),
            *(other.logistics.receive_return(request) for _ in range(RACERS)),
        )
    finally:
        other.database.dispose()

    assert {result.model_dump_json() for result in results} == {shipped.model_dump_json()}
    assert on_hand(db, "SKU-RARE") == 2 + 2
    assert count(db, ShipmentReturnRow) == 1


async def test_more_cannot_come_back_than_left(local_adapters: LocalAdapters) -> None:
    db, logistics = local_adapters.database, local_adapters.logistics
    _, shipment = await shipment_of(local_adapters, ("SKU-RARE", 3), ("SKU-GADGET", 1))
    await logistics.confirm_shipment(confirmation(shipment, "dispatch-1", "JD1", ("SKU-RARE", 2)))
    await logistics.receive_return(returned(shipment, "return-1", ("SKU-RARE", 1)))

    error = await business_error(
        logistics.receive_return(returned(shipment, "return-2", ("SKU-RARE", 2))), "over_return"
    )
    await business_error(
        logistics.receive_return(returned(shipment, "return-2", ("SKU-GADGET", 1))), "over_return"
    )
    await logistics.receive_return(returned(shipment, "return-2", ("SKU-RARE", 1)))
    await business_error(
        logistics.receive_return(returned(shipment, "return-3", ("SKU-RARE", 1))), "over_return"
    )
    ghost = shipment.model_copy(update={"order_id": "shop:other"})
    await business_error(
        logistics.receive_return(returned(ghost, "return-3", ("SKU-RARE", 1))),
        "shipment_not_found",
    )

    assert "2 shipped and 1 returned" in error.message
    assert on_hand(db, "SKU-RARE") == 2 + 2
    assert count(db, ShipmentReturnRow) == 2


# --- customer holds ------------------------------------------------------------------------


def hold(customer_id: str, key: str = "hold-1") -> CustomerHold:
    return CustomerHold(idempotency_key=key, customer_id=customer_id, reason="90 days past due")


async def test_placing_on_hold_once_per_key(local_adapters: LocalAdapters) -> None:
    crm = local_adapters.crm

    held = await race(lambda: crm.place_on_hold(hold("CUST-ACME")))
    again = await crm.place_on_hold(hold("CUST-ACME", "hold-2"))

    assert {c.status for c in held} == {CustomerStatus.ON_HOLD}
    assert again == held[0] == await crm.get_customer("CUST-ACME")
    assert count(local_adapters.database, CustomerHoldRow) == 2


async def test_a_blocked_customer_stays_blocked(local_adapters: LocalAdapters) -> None:
    crm = local_adapters.crm

    initech = await crm.place_on_hold(hold("CUST-INITECH"))
    await business_error(crm.place_on_hold(hold("CUST-NOPE", "hold-2")), "customer_not_found")

    assert initech.status is CustomerStatus.BLOCKED
    assert (await crm.get_customer("CUST-INITECH")).status is CustomerStatus.BLOCKED
    assert count(local_adapters.database, CustomerHoldRow) == 1


# --- credit notes and customer credit ------------------------------------------------------


def credit_note(
    invoice: Invoice, key: str, *amounts: str, currency: str | None = None
) -> CreditNoteRequest:
    return CreditNoteRequest(
        idempotency_key=key,
        order_id=invoice.order_id,
        account_id=invoice.account_id,
        invoice_id=invoice.invoice_id,
        currency=currency or invoice.currency,
        lines=[
            InvoiceLine(sku="SKU-WIDGET", quantity=1, unit_price=Decimal(a), amount=Decimal(a))
            for a in amounts
        ],
        reason="returned",
    )


def credit_entry(
    account_id: str, amount: str, key: str, currency: str = "EUR"
) -> CustomerCreditEntry:
    return CustomerCreditEntry(
        idempotency_key=key,
        account_id=account_id,
        currency=currency,
        amount=Decimal(amount),
        reason="overpayment" if Decimal(amount) > 0 else "used on an order",
    )


@pytest.mark.parametrize(
    ("paid", "credited", "applied", "to_credit", "balance", "status"),
    [
        ("0.00", "30.00", "30.00", "0.00", "70.00", InvoiceStatus.OPEN),
        ("50.00", "80.00", "50.00", "30.00", "0.00", InvoiceStatus.PAID),
        ("100.00", "40.00", "0.00", "40.00", "0.00", InvoiceStatus.PAID),
    ],
    ids=["unpaid", "half-paid", "paid"],
)
async def test_a_credit_note_lowers_the_invoice_then_credits_the_customer(
    local_adapters: LocalAdapters,
    paid: str,
    credited: str,
    applied: str,
    to_credit: str,
    balance: str,
    status: InvoiceStatus,
) -> None:
    db, billing = local_adapters.database, local_adapters.billing
    invoice = await open_invoice(local_adapters, "60.00", "40.00")
    if paid != "0.00":
        await paid_with(local_adapters, "PAY-1", paid)
        await billing.apply_payment(apply(invoice, "PAY-1", paid))
    half = str(Decimal(credited) / 2)
    request = credit_note(invoice, "credit-1", half, half)

    notes = await race(lambda: billing.create_credit_note(request))

    note = notes[0]
    assert {n.model_dump_json() for n in notes} == {note.model_dump_json()}
    assert note.credit_note_id.startswith("CN-")
    assert (note.amount, note.applied_to_invoice, note.to_customer_credit) == (
        Decimal(credited),
        Decimal(applied),
        Decimal(to_credit),
    )
    [after] = await billing.list_invoices("shop:1")
    assert (after.balance, after.status) == (Decimal(balance), status)
    credit = await billing.customer_credit(invoice.account_id)
    assert (credit.currency, credit.balance) == ("EUR", Decimal(to_credit))
    assert await billing.find_credit_note("credit-1") == note
    assert await billing.find_credit_note("inv-1") is None
    assert count(db, CreditNoteRow) == 1
    assert count(db, CustomerCreditRow) == (0 if to_credit == "0.00" else 1)


async def test_credit_notes_never_credit_more_than_the_invoice(
    local_adapters: LocalAdapters,
) -> None:
    billing = local_adapters.billing
    invoice = await open_invoice(local_adapters, "10.00")
    await billing.create_credit_note(credit_note(invoice, "credit-1", "6.00"))

    error = await business_error(
        billing.create_credit_note(credit_note(invoice, "credit-2", "4.01")),
        "credit_exceeds_invoice",
    )
    rest = await billing.create_credit_note(credit_note(invoice, "credit-2", "4.00"))

    assert "6.00 EUR credited already" in error.message
    assert (rest.applied_to_invoice, rest.to_customer_credit) == (Decimal("4.00"), Decimal("0.00"))
    [after] = await billing.list_invoices("shop:1")
    assert (after.balance, after.status) == (Decimal("0.00"), InvoiceStatus.PAID)
    # Credited in part, the invoice is no longer untouched: a void is refused.
    await business_error(billing.void_invoice(void(invoice)), "invoice_has_payments")


async def test_racing_credit_notes_reconcile_to_the_cent(local_adapters: LocalAdapters) -> None:
    billing = local_adapters.billing
    invoice = await open_invoice(local_adapters, "5.00")
    await paid_with(local_adapters, "PAY-1", "2.00")
    await billing.apply_payment(apply(invoice, "PAY-1", "2.00"))
    other = second_engine(local_adapters)
    try:
        outcomes = await asyncio.gather(
            *(
                outcome(
                    adapters.billing.create_credit_note(credit_note(invoice, key, "1.00")), "ok"
                )
                for n in range(RACERS)
                for adapters, key in ((local_adapters, f"a-{n}"), (other, f"b-{n}"))
            )
        )
    finally:
        other.database.dispose()

    assert sorted(outcomes) == ["credit_exceeds_invoice"] * (2 * RACERS - 5) + ["ok"] * 5
    [after] = await billing.list_invoices("shop:1")
    assert (after.balance, after.status) == (Decimal("0.00"), InvoiceStatus.PAID)
    # 3.00 was still owed; the 2.00 already paid comes back as credit.
    credit = await billing.customer_credit(invoice.account_id)
    assert credit.balance == Decimal("2.00")
    assert count(local_adapters.database, CustomerCreditRow) == 2


async def test_impossible_credit_notes_are_refused(local_adapters: LocalAdapters) -> None:
    db, billing = local_adapters.database, local_adapters.billing
    invoice = await open_invoice(local_adapters, "10.00")
    voided = await open_invoice(local_adapters, "10.00", key="inv-2")
    await billing.void_invoice(void(voided))
    ghost = invoice.model_copy(update={"invoice_id": "INV-nope"})
    elsewhere = invoice.model_copy(update={"account_id": "BA-other"})

    for request, code in [
        (credit_note(ghost, "credit-1", "1.00"), "invoice_not_found"),
        (credit_note(elsewhere, "credit-1", "1.00"), "invoice_not_found"),
        (credit_note(invoice, "credit-1", "1.00", currency="USD"), "currency_mismatch"),
        (credit_note(voided, "credit-1", "1.00"), "invoice_void"),
        (credit_note(invoice, "credit-1", "0.00"), "invalid_amount"),
        (credit_note(invoice, "credit-1", "2.00", "-1.00"), "invalid_amount"),
        (credit_note(invoice, "credit-1", "0.001"), "invalid_amount"),
    ]:
        await business_error(billing.create_credit_note(request), code)

    assert (count(db, CreditNoteRow), count(db, CustomerCreditRow)) == (0, 0)
    assert invoice_row(db, invoice.invoice_id).balance_minor == 1_000


async def test_customer_credit_is_posted_once_per_key(local_adapters: LocalAdapters) -> None:
    billing = local_adapters.billing
    account = await acme_account(local_adapters)
    empty = await billing.customer_credit(account.account_id)

    added = await race(
        lambda: billing.post_customer_credit(credit_entry(account.account_id, "10.00", "c-1"))
    )
    used = await race(
        lambda: billing.post_customer_credit(credit_entry(account.account_id, "-6.00", "c-2"))
    )
    replay = await billing.post_customer_credit(credit_entry(account.account_id, "99.00", "c-1"))

    assert (empty.currency, str(empty.balance)) == ("EUR", "0.00")
    assert {a.balance for a in added} == {replay.balance} == {Decimal("10.00")}
    assert {u.balance for u in used} == {Decimal("4.00")}
    assert (await billing.customer_credit(account.account_id)).balance == Decimal("4.00")
    assert count(local_adapters.database, CustomerCreditRow) == 2


async def test_customer_credit_cannot_go_below_zero(local_adapters: LocalAdapters) -> None:
    billing = local_adapters.billing
    account = await acme_account(local_adapters)
    await billing.post_customer_credit(credit_entry(account.account_id, "5.00", "c-1"))

    error = await business_error(
        billing.post_customer_credit(credit_entry(account.account_id, "-5.01", "c-2")),
        "insufficient_credit",
    )
    rest = await billing.post_customer_credit(credit_entry(account.account_id, "-5.00", "c-2"))

    assert "5.00 EUR of credit" in error.message
    assert rest.balance == Decimal("0.00")  # the refused request did not use up its key
    for entry, code in [
        (credit_entry(account.account_id, "-0.01", "c-3"), "insufficient_credit"),
        (credit_entry(account.account_id, "1.00", "c-3", currency="USD"), "currency_mismatch"),
        (credit_entry(account.account_id, "0.00", "c-3"), "invalid_amount"),
        (credit_entry("BA-nope", "1.00", "c-3"), "account_not_found"),
    ]:
        await business_error(billing.post_customer_credit(entry), code)
    await business_error(billing.customer_credit("BA-nope"), "account_not_found")
    assert count(local_adapters.database, CustomerCreditRow) == 2


async def test_racing_uses_of_credit_never_go_below_zero(local_adapters: LocalAdapters) -> None:
    billing = local_adapters.billing
    account = await acme_account(local_adapters)
    await billing.post_customer_credit(credit_entry(account.account_id, "5.00", "c-0"))
    other = second_engine(local_adapters)
    try:
        outcomes = await asyncio.gather(
            *(
                outcome(
                    adapters.billing.post_customer_credit(
                        credit_entry(account.account_id, "-1.00", key)
                    ),
                    "used",
                )
                for n in range(RACERS)
                for adapters, key in ((local_adapters, f"a-{n}"), (other, f"b-{n}"))
            )
        )
    finally:
        other.database.dispose()

    assert sorted(outcomes) == ["insufficient_credit"] * (2 * RACERS - 5) + ["used"] * 5
    assert (await billing.customer_credit(account.account_id)).balance == Decimal("0.00")


# --- dunning and receivables reads ---------------------------------------------------------


def dunning(invoice: Invoice, key: str = "dun-1", level: str = "reminder") -> DunningNotice:
    return DunningNotice(
        idempotency_key=key, invoice_id=invoice.invoice_id, level=level, days_past_due=7
    )


async def test_a_dunning_notice_is_sent_once_per_key(local_adapters: LocalAdapters) -> None:
    billing = local_adapters.billing
    invoice = await open_invoice(local_adapters, "10.00")
    ghost = invoice.model_copy(update={"invoice_id": "INV-nope"})

    notices = await race(lambda: billing.send_dunning_notice(dunning(invoice)))
    replay = await billing.send_dunning_notice(dunning(invoice, level="final"))
    escalation = await billing.send_dunning_notice(dunning(invoice, "dun-2", "final"))
    await business_error(billing.send_dunning_notice(dunning(ghost, "dun-3")), "invoice_not_found")

    assert {n.model_dump_json() for n in notices} == {replay.model_dump_json()}
    assert replay.notice_id.startswith("DUN-")
    assert (replay.invoice_id, replay.level, replay.days_past_due) == (
        invoice.invoice_id,
        "reminder",
        7,
    )
    assert replay.sent_at.tzinfo is not None
    assert (escalation.level, escalation.notice_id != replay.notice_id) == ("final", True)
    assert count(local_adapters.database, DunningNoticeRow) == 2


async def test_open_invoices_are_those_with_a_balance_left(local_adapters: LocalAdapters) -> None:
    billing = local_adapters.billing
    untouched = await open_invoice(local_adapters, "10.00", key="inv-1")
    partly_paid = await open_invoice(local_adapters, "20.00", key="inv-2")
    paid = await open_invoice(local_adapters, "30.00", key="inv-3")
    credited = await open_invoice(local_adapters, "40.00", key="inv-4")
    voided = await open_invoice(local_adapters, "50.00", key="inv-5")
    await paid_with(local_adapters, "PAY-1", "35.00")
    await billing.apply_payment(apply(partly_paid, "PAY-1", "5.00", "apply-1"))
    await billing.apply_payment(apply(paid, "PAY-1", "30.00", "apply-2"))
    await billing.create_credit_note(credit_note(credited, "credit-1", "40.00"))
    await billing.void_invoice(void(voided))

    open_ids = [invoice.invoice_id for invoice in await billing.list_open_invoices()]

    assert open_ids == [untouched.invoice_id, partly_paid.invoice_id]


async def test_invoices_dated_in_a_range_include_both_ends(local_adapters: LocalAdapters) -> None:
    billing = local_adapters.billing
    account = await acme_account(local_adapters)
    by_day: dict[int, Invoice] = {}
    for day in (1, 2, 15, 31):
        request = invoice_request(account.account_id, f"inv-{day}", "1.00").model_copy(
            update={"invoice_date": date(2025, 3, day)}
        )
        by_day[day] = await billing.create_invoice(request)
    march = await billing.list_invoices_dated(date(2025, 3, 2), date(2025, 3, 31))
    one_day = await billing.list_invoices_dated(date(2025, 3, 15), date(2025, 3, 15))

    assert march == [by_day[2], by_day[15], by_day[31]]
    assert one_day == [by_day[15]]
    assert await billing.list_invoices_dated(date(2025, 4, 1), date(2025, 4, 30)) == []


# --- card authorisations -------------------------------------------------------------------


def authorise(
    key: str = "auth-1", amount: str = "100.00", token: str = "tok_visa"
) -> AuthoriseCard:
    return AuthoriseCard(
        idempotency_key=key,
        order_id="shop:1",
        card_token=token,
        amount=Decimal(amount),
        currency="EUR",
    )


def capture(
    authorisation: Authorisation, amount: str, key: str = "capture-1", payment_id: str = "PAY-C1"
) -> CaptureCard:
    return CaptureCard(
        idempotency_key=key,
        authorisation_id=authorisation.authorisation_id,
        payment_id=payment_id,
        amount=Decimal(amount),
    )


def void_auth(authorisation: Authorisation, key: str = "void-1") -> VoidAuthorisation:
    return VoidAuthorisation(idempotency_key=key, authorisation_id=authorisation.authorisation_id)


async def test_authorising_twice_with_one_key_authorises_once(
    local_adapters: LocalAdapters,
) -> None:
    payments = local_adapters.payments
    before = datetime.now(UTC)

    authorisations = await race(lambda: payments.authorise_card(authorise()))

    first = authorisations[0]
    assert {a.model_dump_json() for a in authorisations} == {first.model_dump_json()}
    assert first.authorisation_id.startswith("AUT-")
    assert (first.amount, first.currency, first.status) == (
        Decimal("100.00"),
        "EUR",
        AuthorisationStatus.AUTHORISED,
    )
    assert before + timedelta(days=7) <= first.expires_at <= datetime.now(UTC) + timedelta(days=7)
    assert await payments.find_authorisation("auth-1") == first
    assert await payments.find_authorisation("auth-2") is None
    assert count(local_adapters.database, CardAuthorisationRow) == 1


async def test_a_declined_card_authorises_nothing(local_adapters: LocalAdapters) -> None:
    payments = local_adapters.payments

    await business_error(
        payments.authorise_card(authorise(token="tok_declined_insufficient_funds")), "card_declined"
    )
    await business_error(payments.authorise_card(authorise(amount="0")), "invalid_amount")

    assert await payments.find_authorisation("auth-1") is None
    assert count(local_adapters.database, CardAuthorisationRow) == 0
    assert (await payments.authorise_card(authorise())).amount == Decimal("100.00")


async def test_capturing_twice_with_one_key_captures_once(local_adapters: LocalAdapters) -> None:
    payments = local_adapters.payments
    authorisation = await payments.authorise_card(authorise())
    other = second_engine(local_adapters)
    try:
        captured = await asyncio.gather(
            *(payments.capture_card(capture(authorisation, "60.00")) for _ in range(RACERS)),
            *(other.payments.capture_card(capture(authorisation, "60.00")) for _ in range(RACERS)),
        )
    finally:
        other.database.dispose()
    replay = await payments.capture_card(capture(authorisation, "1.00"))

    assert {p.model_dump_json() for p in captured} == {replay.model_dump_json()}
    assert (replay.payment_id, replay.order_id, replay.amount, replay.currency) == (
        "PAY-C1",
        "shop:1",
        Decimal("60.00"),
        "EUR",
    )
    assert await payments.find_payment("capture-1") == replay
    left = await payments.find_authorisation("auth-1")
    assert left is not None
    assert left.amount == Decimal("40.00")
    db = local_adapters.database
    assert (count(db, PaymentRow), count(db, CardCaptureRow)) == (1, 1)


async def test_captures_never_exceed_the_authorisation(local_adapters: LocalAdapters) -> None:
    payments = local_adapters.payments
    authorisation = await payments.authorise_card(authorise(amount="5.00"))

    outcomes = await asyncio.gather(
        *(
            outcome(
                payments.capture_card(capture(authorisation, "1.00", f"c-{n}", f"PAY-{n}")), "ok"
            )
            for n in range(RACERS)
        )
    )

    assert sorted(outcomes) == ["amount_exceeds_authorisation"] * (RACERS - 5) + ["ok"] * 5
    left = await payments.find_authorisation("auth-1")
    assert left is not None
    assert left.amount == Decimal("0.00")
    assert count(local_adapters.database, PaymentRow) == 5


async def test_impossible_captures_are_refused(local_adapters: LocalAdapters) -> None:
    payments = local_adapters.payments
    authorisation = await payments.authorise_card(authorise(amount="10.00"))
    expiring = await payments.authorise_card(authorise("auth-2", token="tok_expiring_visa"))
    await paid_with(local_adapters, "PAY-1", "1.00")
    ghost = authorisation.model_copy(update={"authorisation_id": "AUT-nope"})

    for request, code in [
        (capture(authorisation, "10.01"), "amount_exceeds_authorisation"),
        (capture(authorisation, "0.00"), "invalid_amount"),
        (capture(authorisation, "1.00", payment_id="PAY-1"), "payment_conflict"),
        (capture(expiring, "1.00"), "authorisation_expired"),
        (capture(ghost, "1.00"), "authorisation_not_found"),
    ]:
        await business_error(payments.capture_card(request), code)

    assert expiring.expires_at <= datetime.now(UTC)
    assert await payments.find_payment("capture-1") is None
    db = local_adapters.database
    assert (count(db, PaymentRow), count(db, CardCaptureRow)) == (1, 0)
    # The refused requests did not use up the key.
    assert (await payments.capture_card(capture(authorisation, "10.00"))).amount == Decimal("10.00")


async def test_a_voided_authorisation_takes_no_capture(local_adapters: LocalAdapters) -> None:
    payments = local_adapters.payments
    authorisation = await payments.authorise_card(authorise())
    await payments.capture_card(capture(authorisation, "30.00"))

    voided = await payments.void_authorisation(void_auth(authorisation))
    again = await payments.void_authorisation(void_auth(authorisation, "void-2"))
    await business_error(
        payments.capture_card(capture(authorisation, "1.00", "capture-2", "PAY-C2")),
        "authorisation_voided",
    )
    ghost = authorisation.model_copy(update={"authorisation_id": "AUT-nope"})
    await business_error(payments.void_authorisation(void_auth(ghost)), "authorisation_not_found")

    assert voided == again == await payments.find_authorisation("auth-1")
    assert (voided.status, voided.amount) == (AuthorisationStatus.VOIDED, Decimal("0.00"))
    assert count(local_adapters.database, PaymentRow) == 1


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


async def test_customer_credit_never_grows_past_an_amount(local_adapters: LocalAdapters) -> None:
    billing = local_adapters.billing
    account = await acme_account(local_adapters)
    await billing.post_customer_credit(
        credit_entry(account.account_id, "9999999999999999.99", "c-1")
    )

    await business_error(
        billing.post_customer_credit(credit_entry(account.account_id, "0.01", "c-2")),
        "credit_balance_too_large",
    )

    balance = await billing.customer_credit(account.account_id)
    assert balance.balance == Decimal("9999999999999999.99")
    assert count(local_adapters.database, CustomerCreditRow) == 1


async def test_a_payment_paid_into_an_account_by_application_or_as_credit(
    local_adapters: LocalAdapters,
) -> None:
    billing = local_adapters.billing
    invoice = await open_invoice(local_adapters, "100.00")
    await paid_with(local_adapters, "PAY-1", "40.00")
    await billing.apply_payment(apply(invoice, "PAY-1", "40.00"))
    overpaid = credit_entry(invoice.account_id, "5.00", "c-1").model_copy(
        update={"payment_id": "PAY-2"}
    )
    await billing.post_customer_credit(overpaid)

    assert await billing.paid_into(invoice.account_id, "PAY-1")  # applied to its invoice
    assert await billing.paid_into(invoice.account_id, "PAY-2")  # kept on it as credit
    assert not await billing.paid_into(invoice.account_id, "PAY-3")
    assert not await billing.paid_into("BA-someone-else", "PAY-1")


def test_a_database_from_before_a_new_column_opens_and_gets_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = LocalDatabase.from_url(url)
    old.create_schema()
    with old.engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_customer_credit_entries_payment_id"))
        connection.execute(text("ALTER TABLE customer_credit_entries DROP COLUMN payment_id"))
    old.dispose()

    reopened = LocalDatabase.from_url(url)
    reopened.create_schema()

    columns = {c["name"] for c in inspect(reopened.engine).get_columns("customer_credit_entries")}
    reopened.dispose()
    assert "payment_id" in columns
