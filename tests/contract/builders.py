"""Requests, seed data and checks the contract suites share, over the protocols only."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

import pytest

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
    VoidInvoice,
)
from adapters.billing.protocol import BillingAdapter
from adapters.crm.models import Customer, CustomerHold, CustomerStatus
from adapters.errors import BusinessError
from adapters.logistics.models import (
    AmendReservation,
    CancelShipment,
    ReleaseReservation,
    Reservation,
    ReserveStock,
    ReturnReceipt,
    Shipment,
    ShipmentConfirmation,
    ShipmentRequest,
)
from adapters.logistics.protocol import LogisticsAdapter
from adapters.payments.models import (
    Authorisation,
    AuthoriseCard,
    CaptureCard,
    Payment,
    PaymentRecordRequest,
    RefundPayment,
    StoreCard,
    VoidAuthorisation,
)
from o2c_domain.lines import SkuQuantity
from tests.support.adapter_factories import Seeder, Systems

T = TypeVar("T")
RACERS = 8
TODAY = date(2025, 3, 1)
PROBE_ORDER = "probe"
"""The order id of the reservations `expect_on_hand` makes to read stock."""

# --- the baseline every contract test starts from ------------------------------------------

PLENTY = 1_000_000
RARE_ON_HAND = 5
ACME = Customer(
    customer_id="CUST-ACME",
    name="Acme Corporation",
    email="billing@acme.example",
    currency="EUR",
    credit_limit=Decimal("50000.00"),
)
GLOBEX = Customer(
    customer_id="CUST-GLOBEX",
    name="Globex Inc",
    email="accounts@globex.example",
    currency="USD",
    credit_limit=Decimal("25000.00"),
)
INITECH = Customer(
    customer_id="CUST-INITECH",
    name="Initech",
    email="ap@initech.example",
    status=CustomerStatus.BLOCKED,
    currency="EUR",
    credit_limit=Decimal("10000.00"),
)
STOCK = {"SKU-WIDGET": PLENTY, "SKU-GADGET": PLENTY, "SKU-GIZMO": PLENTY, "SKU-RARE": RARE_ON_HAND}


async def seed_baseline(seeder: Seeder) -> None:
    for customer in (ACME, GLOBEX, INITECH):
        await seeder.add_customer(customer)
    for sku, on_hand in STOCK.items():
        await seeder.set_stock(sku, on_hand)


# --- calling and checking ------------------------------------------------------------------


async def race(call: Callable[[], Awaitable[T]], times: int = RACERS) -> list[T]:
    """`call` `times` times at once."""
    return await asyncio.gather(*(call() for _ in range(times)))


async def business_error(call: Awaitable[Any], code: str) -> BusinessError:
    with pytest.raises(BusinessError) as caught:
        await call
    assert caught.value.code == code, caught.value.message
    return caught.value


async def outcome(call: Awaitable[Any], success: str) -> str:
    """`success` if the call went through, else the business error's code."""
    try:
        await call
    except BusinessError as error:
        return error.code
    return success


async def expect_on_hand(logistics: LogisticsAdapter, sku: str, quantity: int) -> None:
    """Exactly `quantity` of `sku` is on the shelf: one more cannot be reserved, that
    many can (the probe reservation is released again, so stock is as it was)."""
    key = f"probe:{uuid.uuid4().hex}"
    await business_error(
        logistics.reserve_stock(reserve(f"{key}:over", (sku, quantity + 1), order_id=PROBE_ORDER)),
        "out_of_stock",
    )
    if quantity > 0:
        probe = await logistics.reserve_stock(reserve(key, (sku, quantity), order_id=PROBE_ORDER))
        await logistics.release_reservation(release(probe, f"{key}:release"))


# --- CRM -----------------------------------------------------------------------------------


def hold(customer_id: str, key: str = "hold-1") -> CustomerHold:
    return CustomerHold(idempotency_key=key, customer_id=customer_id, reason="90 days past due")


# --- logistics -----------------------------------------------------------------------------


def stock(*lines: tuple[str, int]) -> list[SkuQuantity]:
    return [SkuQuantity(sku=sku, quantity=quantity) for sku, quantity in lines]


def reserve(key: str, *lines: tuple[str, int], order_id: str = "shop:1") -> ReserveStock:
    return ReserveStock(idempotency_key=key, order_id=order_id, lines=stock(*lines))


def shipment_request(reservation: Reservation, key: str = "ship-1") -> ShipmentRequest:
    return ShipmentRequest(
        idempotency_key=key,
        order_id=reservation.order_id,
        reservation_id=reservation.reservation_id,
        ship_to="Acme Corporation, 1 Road Runner Way",
        lines=reservation.lines,
    )


def release(reservation: Reservation, key: str = "release-1") -> ReleaseReservation:
    return ReleaseReservation(idempotency_key=key, reservation_id=reservation.reservation_id)


def cancel(shipment: Shipment, key: str = "cancel-1") -> CancelShipment:
    return CancelShipment(
        idempotency_key=key, shipment_id=shipment.shipment_id, reason="order cancelled"
    )


def confirmation(
    shipment: Shipment, key: str, tracking: str = "JD0146", *lines: tuple[str, int]
) -> ShipmentConfirmation:
    """One dispatch of `lines`, or of everything the shipment requested."""
    leaving = stock(*lines) or shipment.lines
    return ShipmentConfirmation(
        idempotency_key=key,
        shipment_id=shipment.shipment_id,
        carrier="DHL",
        tracking_number=tracking,
        lines=leaving or stock(("SKU-WIDGET", 1)),
    )


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


def returned(shipment: Shipment, key: str, *lines: tuple[str, int]) -> ReturnReceipt:
    return ReturnReceipt(
        idempotency_key=key,
        order_id=shipment.order_id,
        shipment_id=shipment.shipment_id,
        lines=stock(*lines),
    )


async def requested_shipment(systems: Systems, key: str = "ship-1") -> Shipment:
    """A shipment of two widgets, from a reservation made once for all such shipments."""
    reservation = await systems.logistics.reserve_stock(reserve("reserve-1", ("SKU-WIDGET", 2)))
    return await systems.logistics.request_shipment(shipment_request(reservation, key))


async def shipment_of(
    systems: Systems, *lines: tuple[str, int], order_id: str = "shop:1"
) -> tuple[Reservation, Shipment]:
    """A reservation of `lines` and a shipment requested for all of them."""
    logistics = systems.logistics
    reservation = await logistics.reserve_stock(reserve("reserve-1", *lines, order_id=order_id))
    return reservation, await logistics.request_shipment(shipment_request(reservation))


# --- billing -------------------------------------------------------------------------------


async def acme_account(systems: Systems) -> BillingAccount:
    return await systems.billing.ensure_account(await systems.crm.get_customer("CUST-ACME"))


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
    systems: Systems, *prices: str, currency: str = "EUR", key: str = "inv-1"
) -> Invoice:
    account = await acme_account(systems)
    request = invoice_request(account.account_id, key, *prices, currency=currency)
    return await systems.billing.create_invoice(request)


async def only_invoice(billing: BillingAdapter, order_id: str = "shop:1") -> Invoice:
    [invoice] = await billing.list_invoices(order_id)
    return invoice


def ghost_invoice() -> Invoice:
    """An invoice no billing system has raised."""
    return Invoice(
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


def apply(invoice: Invoice, payment_id: str, amount: str, key: str = "apply-1") -> ApplyPayment:
    return ApplyPayment(
        idempotency_key=key,
        invoice_id=invoice.invoice_id,
        payment_id=payment_id,
        amount=Decimal(amount),
    )


def void(invoice: Invoice, key: str = "void-1") -> VoidInvoice:
    return VoidInvoice(idempotency_key=key, invoice_id=invoice.invoice_id, reason="order cancelled")


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


def dunning(invoice: Invoice, key: str = "dun-1", level: str = "reminder") -> DunningNotice:
    return DunningNotice(
        idempotency_key=key, invoice_id=invoice.invoice_id, level=level, days_past_due=7
    )


# --- payments ------------------------------------------------------------------------------


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


async def paid_with(systems: Systems, payment_id: str, amount: str) -> Payment:
    return await systems.payments.record_payment(payment_request(payment_id, amount))


def refund(payment_id: str, amount: str, key: str = "refund-1") -> RefundPayment:
    return RefundPayment(
        idempotency_key=key, payment_id=payment_id, amount=Decimal(amount), reason="cancelled"
    )


def store(key: str = "store-1", token: str = "tok_visa", order_id: str = "shop:1") -> StoreCard:
    return StoreCard(idempotency_key=key, order_id=order_id, card_token=token)


def authorise(
    key: str = "auth-1",
    amount: str = "100.00",
    token: str = "tok_visa",
    *,
    card_ref: str | None = None,
    order_id: str = "shop:1",
) -> AuthoriseCard:
    """By `card_ref` when given, else by the token itself (an order begun before the vault)."""
    return AuthoriseCard(
        idempotency_key=key,
        order_id=order_id,
        card_ref=card_ref,
        card_token=None if card_ref else token,
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
