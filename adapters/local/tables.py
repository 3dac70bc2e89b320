"""The local adapters' tables, and how money and ids are stored in them.

Money is an integer count of minor units beside its currency (never a float,
never a database decimal whose scale could differ from the currency's), so every
amount read back is exactly the amount written. Each mutating request's
idempotency key is a UNIQUE column: the database, not the code, refuses a second
record for one key, even when two processes race. Undo operations (release, cancel,
void) are guarded instead by their row's one-way status change; their keys are only
recorded, to say which request did it.

Later additions (dispatches, amendments, returns, holds, credit notes, customer
credit, dunning, card authorisations) live in tables of their own, so a database
created before them gains them through `create_schema` without altering a table.

Why one module of some 400 lines: it is the one schema of the one local database,
not four. The systems' tables refer to each other (payment applications join
invoices to payments, card captures and refunds point at payments, reservation
lines at items, holds at customers), and importing this module is what registers
every table in `LocalTable.metadata` before `LocalDatabase.create_schema` runs
`create_all` and adds missing columns. Split by system, one more module would have
to import all the parts to keep that true, and the adapters, the benchmark and the
tests would take rows from several places. What is here is declarations and the
money and id helpers they share, nothing to follow from one table to the next.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TypeVar
from uuid import uuid4

from sqlalchemy import BigInteger, DateTime, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from adapters.billing.models import InvoiceLine
from adapters.errors import BusinessError
from adapters.logistics.models import ReservationStatus
from o2c_domain.money import MINOR_UNIT_EXPONENT, from_minor_units, to_minor_units


class LocalTable(SQLModel, registry=registry()):
    """Base of these tables: a metadata of their own, so only they are created here."""


def new_id(prefix: str) -> str:
    """A readable, unguessable id such as `INV-3f9c2a1b7d4e`."""
    return f"{prefix}-{uuid4().hex[:12]}"


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they were stored in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def to_minor(amount: Decimal, currency: str) -> int:
    """`amount` in minor units; BusinessError `invalid_amount` instead of rounding."""
    if currency not in MINOR_UNIT_EXPONENT:
        raise BusinessError("invalid_amount", f"'{currency}' is not an ISO 4217 currency code")
    try:
        return to_minor_units(amount, currency)
    except ValueError as error:
        raise BusinessError("invalid_amount", str(error)) from error


def from_minor(minor: int, currency: str) -> Decimal:
    return from_minor_units(minor, currency)


def _money() -> int:
    return Field(sa_type=BigInteger)  # type: ignore[no-any-return]


def _timestamp() -> datetime:
    return Field(default_factory=utc_now, sa_type=DateTime(timezone=True))  # type: ignore[no-any-return]


class CustomerRow(LocalTable, table=True):
    __tablename__ = "customers"

    customer_id: str = Field(primary_key=True)
    name: str
    email: str
    status: str
    currency: str
    credit_limit_minor: int = _money()


class ItemRow(LocalTable, table=True):
    __tablename__ = "items"

    sku: str = Field(primary_key=True)
    name: str
    on_hand: int


class BillingAccountRow(LocalTable, table=True):
    __tablename__ = "billing_accounts"

    account_id: str = Field(primary_key=True)
    customer_id: str = Field(unique=True)
    name: str
    currency: str
    created_at: datetime = _timestamp()


class InvoiceRow(LocalTable, table=True):
    __tablename__ = "invoices"

    invoice_id: str = Field(primary_key=True)
    idempotency_key: str = Field(unique=True)
    order_id: str = Field(index=True)
    account_id: str = Field(foreign_key="billing_accounts.account_id", index=True)
    currency: str
    amount_minor: int = _money()
    balance_minor: int = _money()
    invoice_date: date
    due_date: date
    status: str
    void_key: str | None = None
    """The key of the request that voided it."""
    void_reason: str | None = None
    created_at: datetime = _timestamp()
    voided_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class InvoiceLineRow(LocalTable, table=True):
    __tablename__ = "invoice_lines"

    invoice_id: str = Field(foreign_key="invoices.invoice_id", primary_key=True)
    line_no: int = Field(primary_key=True)
    sku: str
    quantity: int
    unit_price_minor: int = _money()
    amount_minor: int = _money()


class PaymentRow(LocalTable, table=True):
    __tablename__ = "payments"

    payment_id: str = Field(primary_key=True)
    idempotency_key: str = Field(unique=True)
    order_id: str = Field(index=True)
    currency: str
    amount_minor: int = _money()
    reference: str | None = None
    received_at: datetime = _timestamp()


class PaymentApplicationRow(LocalTable, table=True):
    __tablename__ = "payment_applications"

    application_id: str = Field(primary_key=True)
    idempotency_key: str = Field(unique=True)
    invoice_id: str = Field(foreign_key="invoices.invoice_id", index=True)
    payment_id: str = Field(foreign_key="payments.payment_id", index=True)
    currency: str
    amount_minor: int = _money()
    invoice_balance_minor: int = _money()
    """The invoice balance right after this application, returned again on a replay."""
    created_at: datetime = _timestamp()


class RefundRow(LocalTable, table=True):
    __tablename__ = "refunds"

    refund_id: str = Field(primary_key=True)
    idempotency_key: str = Field(unique=True)
    payment_id: str = Field(foreign_key="payments.payment_id", index=True)
    currency: str
    amount_minor: int = _money()
    reason: str
    created_at: datetime = _timestamp()


class ReservationRow(LocalTable, table=True):
    __tablename__ = "reservations"

    reservation_id: str = Field(primary_key=True)
    idempotency_key: str = Field(unique=True)
    order_id: str = Field(index=True)
    status: str = Field(default=ReservationStatus.RESERVED.value)
    release_key: str | None = None
    """The key of the release that gave the stock back."""
    created_at: datetime = _timestamp()
    released_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class ReservationLineRow(LocalTable, table=True):
    __tablename__ = "reservation_lines"

    reservation_id: str = Field(foreign_key="reservations.reservation_id", primary_key=True)
    line_no: int = Field(primary_key=True)
    sku: str = Field(foreign_key="items.sku")
    quantity: int


class ShipmentRow(LocalTable, table=True):
    __tablename__ = "shipments"

    shipment_id: str = Field(primary_key=True)
    idempotency_key: str = Field(unique=True)
    order_id: str = Field(index=True)
    reservation_id: str
    ship_to: str
    status: str
    carrier: str | None = None
    tracking_number: str | None = None
    confirmation_key: str | None = None
    """The key of the confirmation that confirmed it, to recognise a replay."""
    cancellation_key: str | None = None
    cancel_reason: str | None = None
    created_at: datetime = _timestamp()
    confirmed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    cancelled_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class ShipmentLineRow(LocalTable, table=True):
    __tablename__ = "shipment_lines"

    shipment_id: str = Field(foreign_key="shipments.shipment_id", primary_key=True)
    line_no: int = Field(primary_key=True)
    sku: str
    quantity: int


class ShipmentDispatchRow(LocalTable, table=True):
    """One dispatch of (part of) a shipment: goods that left with one carrier."""

    __tablename__ = "shipment_dispatches"
    __table_args__ = (UniqueConstraint("shipment_id", "sequence"),)

    dispatch_id: str = Field(primary_key=True)
    idempotency_key: str = Field(unique=True)
    shipment_id: str = Field(foreign_key="shipments.shipment_id", index=True)
    sequence: int
    """1 for a shipment's first dispatch, 2 for its second, ..."""
    carrier: str
    tracking_number: str
    created_at: datetime = _timestamp()


class ShipmentDispatchLineRow(LocalTable, table=True):
    __tablename__ = "shipment_dispatch_lines"

    dispatch_id: str = Field(foreign_key="shipment_dispatches.dispatch_id", primary_key=True)
    line_no: int = Field(primary_key=True)
    sku: str
    quantity: int


class ReservationAmendmentRow(LocalTable, table=True):
    __tablename__ = "reservation_amendments"

    amendment_id: str = Field(primary_key=True)
    idempotency_key: str = Field(unique=True)
    reservation_id: str = Field(foreign_key="reservations.reservation_id", index=True)
    shipment_id: str | None = None
    created_at: datetime = _timestamp()


class ReservationAmendmentLineRow(LocalTable, table=True):
    """The whole new order an amendment set, returned again on a replay."""

    __tablename__ = "reservation_amendment_lines"

    amendment_id: str = Field(foreign_key="reservation_amendments.amendment_id", primary_key=True)
    line_no: int = Field(primary_key=True)
    sku: str
    quantity: int


class ShipmentReturnRow(LocalTable, table=True):
    __tablename__ = "shipment_returns"

    return_id: str = Field(primary_key=True)
    idempotency_key: str = Field(unique=True)
    shipment_id: str = Field(foreign_key="shipments.shipment_id", index=True)
    order_id: str
    dispatch_sequence: int
    """The shipment's latest dispatch when the goods came back, to answer a replay alike."""
    created_at: datetime = _timestamp()


class ShipmentReturnLineRow(LocalTable, table=True):
    __tablename__ = "shipment_return_lines"

    return_id: str = Field(foreign_key="shipment_returns.return_id", primary_key=True)
    line_no: int = Field(primary_key=True)
    sku: str
    quantity: int


class CustomerHoldRow(LocalTable, table=True):
    __tablename__ = "customer_holds"

    hold_id: str = Field(primary_key=True)
    idempotency_key: str = Field(unique=True)
    customer_id: str = Field(foreign_key="customers.customer_id", index=True)
    reason: str
    created_at: datetime = _timestamp()


class CreditNoteRow(LocalTable, table=True):
    __tablename__ = "credit_notes"

    credit_note_id: str = Field(primary_key=True)
    idempotency_key: str = Field(unique=True)
    invoice_id: str = Field(foreign_key="invoices.invoice_id", index=True)
    order_id: str = Field(index=True)
    account_id: str
    currency: str
    amount_minor: int = _money()
    applied_minor: int = _money()
    """The part that lowered the invoice's balance."""
    to_credit_minor: int = _money()
    """The rest, posted as customer credit."""
    reason: str
    created_at: datetime = _timestamp()


class CreditNoteLineRow(LocalTable, table=True):
    __tablename__ = "credit_note_lines"

    credit_note_id: str = Field(foreign_key="credit_notes.credit_note_id", primary_key=True)
    line_no: int = Field(primary_key=True)
    sku: str
    quantity: int
    unit_price_minor: int = _money()
    amount_minor: int = _money()


PricedLineRow = TypeVar("PricedLineRow", InvoiceLineRow, CreditNoteLineRow)


def priced_line_rows(
    row_type: type[PricedLineRow],
    parent: dict[str, str],
    lines: Sequence[InvoiceLine],
    prices: Sequence[tuple[int, int]],
) -> list[PricedLineRow]:
    """The numbered line rows of an invoice or a credit note: `prices` holds each line's
    unit price and amount in minor units; `parent` the row's key (`invoice_id=...`)."""
    return [
        row_type(**parent, line_no=number, sku=line.sku, quantity=line.quantity,
                 unit_price_minor=unit_price, amount_minor=amount)
        for number, (line, (unit_price, amount)) in enumerate(zip(lines, prices, strict=True),
                                                              start=1)
    ]  # fmt: skip


class CustomerCreditRow(LocalTable, table=True):
    """One movement of a billing account's customer credit; the balance is their sum."""

    __tablename__ = "customer_credit_entries"

    entry_id: str = Field(primary_key=True)
    idempotency_key: str = Field(unique=True)
    account_id: str = Field(foreign_key="billing_accounts.account_id", index=True)
    currency: str
    amount_minor: int = _money()
    balance_after_minor: int = _money()
    """The balance right after this entry, returned again on a replay."""
    reason: str
    credit_note_id: str | None = None
    payment_id: str | None = Field(default=None, index=True)
    """The payment whose money this is (overpayment) or that it was refunded to."""
    created_at: datetime = _timestamp()


class DunningNoticeRow(LocalTable, table=True):
    __tablename__ = "dunning_notices"

    notice_id: str = Field(primary_key=True)
    idempotency_key: str = Field(unique=True)
    invoice_id: str = Field(foreign_key="invoices.invoice_id", index=True)
    level: str
    days_past_due: int
    sent_at: datetime = _timestamp()


class StoredCardRow(LocalTable, table=True):
    """A card token in the gateway's vault. Orders carry `card_ref`, never the token, so
    the token is in no workflow history; only the payments system resolves the reference."""

    __tablename__ = "stored_cards"

    card_ref: str = Field(primary_key=True)
    idempotency_key: str = Field(unique=True)
    order_id: str = Field(index=True)
    card_token: str
    created_at: datetime = _timestamp()


class CardAuthorisationRow(LocalTable, table=True):
    __tablename__ = "card_authorisations"

    authorisation_id: str = Field(primary_key=True)
    idempotency_key: str = Field(unique=True)
    order_id: str = Field(index=True)
    currency: str
    authorised_minor: int = _money()
    available_minor: int = _money()
    """What is still available to capture: lowered by each capture, 0 once voided."""
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    status: str
    void_key: str | None = None
    """The key of the request that voided it."""
    created_at: datetime = _timestamp()
    voided_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class CardCaptureRow(LocalTable, table=True):
    """Which authorisation a captured payment came from."""

    __tablename__ = "card_captures"

    payment_id: str = Field(foreign_key="payments.payment_id", primary_key=True)
    authorisation_id: str = Field(foreign_key="card_authorisations.authorisation_id", index=True)
    amount_minor: int = _money()
    created_at: datetime = _timestamp()
