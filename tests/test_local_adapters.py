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
    ReservationLineRow,
    ReservationRow,
    ShipmentRow,
)
from adapters.models import (
    ApplyPayment,
    BillingAccount,
    CustomerStatus,
    Invoice,
    InvoiceLine,
    InvoiceRequest,
    InvoiceStatus,
    Payment,
    PaymentRecordRequest,
    ReserveStock,
    Shipment,
    ShipmentConfirmation,
    ShipmentRequest,
    ShipmentStatus,
    StockLine,
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


async def requested_shipment(adapters: LocalAdapters, key: str = "ship-1") -> Shipment:
    return await adapters.logistics.request_shipment(
        ShipmentRequest(
            idempotency_key=key,
            order_id="shop:1",
            reservation_id="RES-x",
            ship_to="Acme Corporation, 1 Road Runner Way",
            lines=[StockLine(sku="SKU-WIDGET", quantity=2)],
        )
    )


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
