"""What crosses the boundary to CRM, billing, logistics and payments.

Every request that changes something carries an `idempotency_key` derived from
the order and the step, so a retried or replayed call finds the first result
instead of doing the work twice.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from o2c_workflows.money import Amount

IdempotencyKey = str


class CustomerStatus(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"
    ON_HOLD = "on_hold"
    """Dunning escalated: no new orders until the customer's debt is sorted out."""


class CustomerHold(BaseModel):
    """Put a customer on hold for new orders (dunning escalation)."""

    idempotency_key: IdempotencyKey
    customer_id: str
    reason: str


class Customer(BaseModel):
    """A customer as CRM knows it."""

    customer_id: str
    name: str
    email: str
    status: CustomerStatus = CustomerStatus.ACTIVE
    currency: str
    credit_limit: Amount


class BillingAccount(BaseModel):
    """The receivables account invoices are raised on; one per customer."""

    account_id: str
    customer_id: str
    name: str
    currency: str


class StockLine(BaseModel):
    sku: str
    quantity: int = Field(gt=0)


class ReserveStock(BaseModel):
    idempotency_key: IdempotencyKey
    order_id: str
    lines: list[StockLine] = Field(min_length=1)


class ReservationStatus(StrEnum):
    RESERVED = "reserved"
    RELEASED = "released"


class Reservation(BaseModel):
    reservation_id: str
    order_id: str
    lines: list[StockLine]
    status: ReservationStatus = ReservationStatus.RESERVED


class ReleaseReservation(BaseModel):
    """Give reserved stock back (compensation); releasing twice restores it once."""

    idempotency_key: IdempotencyKey
    reservation_id: str


class ShipmentRequest(BaseModel):
    idempotency_key: IdempotencyKey
    order_id: str
    reservation_id: str
    ship_to: str
    lines: list[StockLine] = Field(min_length=1)


class ShipmentStatus(StrEnum):
    REQUESTED = "requested"
    PARTIALLY_SHIPPED = "partially_shipped"
    CONFIRMED = "confirmed"
    """Every line has shipped in full."""
    CANCELLED = "cancelled"


class Shipment(BaseModel):
    shipment_id: str
    order_id: str
    status: ShipmentStatus
    carrier: str | None = None
    """Of the latest dispatch."""
    tracking_number: str | None = None
    lines: list[StockLine] = Field(default_factory=list)
    """What was requested."""
    shipped: list[StockLine] = Field(default_factory=list)
    """What has left so far, summed over dispatches."""


class ShipmentConfirmation(BaseModel):
    """One dispatch: these quantities left with this carrier (a part or all of the request).

    BusinessError `over_shipment` if a quantity exceeds what is left to ship.
    """

    idempotency_key: IdempotencyKey
    shipment_id: str
    carrier: str
    tracking_number: str
    lines: list[StockLine] = Field(min_length=1)


class AmendReservation(BaseModel):
    """Set new quantities on an order's reservation and shipment request before it ships.

    `lines` is the whole new order (a line left out is removed). Stock moves by
    the difference only; BusinessError `out_of_stock` if an increase cannot be
    met, `line_already_shipped` if a shipped line would change.
    """

    idempotency_key: IdempotencyKey
    reservation_id: str
    shipment_id: str | None
    lines: list[StockLine] = Field(min_length=1)


class ReturnReceipt(BaseModel):
    """Goods came back: they are put back in stock once per key."""

    idempotency_key: IdempotencyKey
    order_id: str
    shipment_id: str
    lines: list[StockLine] = Field(min_length=1)


class CancelShipment(BaseModel):
    """Withdraw a shipment request that has not left (compensation)."""

    idempotency_key: IdempotencyKey
    shipment_id: str
    reason: str


class InvoiceLine(BaseModel):
    sku: str
    quantity: int = Field(gt=0)
    unit_price: Amount
    amount: Amount


class InvoiceRequest(BaseModel):
    idempotency_key: IdempotencyKey
    order_id: str
    account_id: str
    currency: str
    invoice_date: date
    due_date: date
    lines: list[InvoiceLine] = Field(min_length=1)


class InvoiceStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"
    VOID = "void"


class CreditNoteRequest(BaseModel):
    """A negative invoice (a return): it lowers the invoice's open balance first;
    what the invoice no longer owes becomes customer credit."""

    idempotency_key: IdempotencyKey
    order_id: str
    account_id: str
    invoice_id: str
    currency: str
    lines: list[InvoiceLine] = Field(min_length=1)
    reason: str


class CreditNote(BaseModel):
    credit_note_id: str
    invoice_id: str
    amount: Amount
    applied_to_invoice: Amount
    """The part that lowered the invoice's balance."""
    to_customer_credit: Amount
    """The rest: money the customer had already paid, now owed back to them."""


class CustomerCreditEntry(BaseModel):
    """Credit the customer holds with us (overpayment, return of paid goods),
    or (negative amount) credit used or refunded."""

    idempotency_key: IdempotencyKey
    account_id: str
    currency: str
    amount: Amount
    reason: str
    payment_id: str | None = None
    """The payment whose money this is (overpayment), or that it is refunded to."""


class RefundTarget(BaseModel):
    """A credit refund's account and the payment it would pay back to."""

    account_id: str
    payment_id: str


class CreditBalance(BaseModel):
    account_id: str
    currency: str
    balance: Amount


class DunningNotice(BaseModel):
    idempotency_key: IdempotencyKey
    invoice_id: str
    level: str
    days_past_due: int


class DunningRecord(BaseModel):
    notice_id: str
    invoice_id: str
    level: str
    days_past_due: int
    sent_at: datetime


class Invoice(BaseModel):
    invoice_id: str
    order_id: str
    account_id: str
    currency: str
    amount: Amount
    balance: Amount
    invoice_date: date
    due_date: date
    status: InvoiceStatus


class VoidInvoice(BaseModel):
    """Cancel an invoice (compensation); only one with no payment applied can be voided."""

    idempotency_key: IdempotencyKey
    invoice_id: str
    reason: str


class OpenBalance(BaseModel):
    """What a customer owes on open invoices, for the credit check."""

    customer_id: str
    currency: str
    amount: Amount


class PaymentRecordRequest(BaseModel):
    idempotency_key: IdempotencyKey
    payment_id: str
    order_id: str
    amount: Amount
    currency: str
    reference: str | None = None


class AuthoriseCard(BaseModel):
    """Reserve funds on the customer's card (payment on order)."""

    idempotency_key: IdempotencyKey
    order_id: str
    card_token: str
    amount: Amount
    currency: str


class AuthorisationStatus(StrEnum):
    AUTHORISED = "authorised"
    VOIDED = "voided"


class Authorisation(BaseModel):
    authorisation_id: str
    order_id: str
    amount: Amount
    """Still available to capture."""
    currency: str
    expires_at: datetime
    status: AuthorisationStatus


class CaptureCard(BaseModel):
    """Take (part of) an authorisation; the capture is recorded as a payment.

    BusinessError `authorisation_expired` past `expires_at`, `card_declined`,
    `amount_exceeds_authorisation`.
    """

    idempotency_key: IdempotencyKey
    authorisation_id: str
    payment_id: str
    amount: Amount


class VoidAuthorisation(BaseModel):
    idempotency_key: IdempotencyKey
    authorisation_id: str


class Payment(BaseModel):
    payment_id: str
    order_id: str
    amount: Amount
    currency: str
    reference: str | None = None
    received_at: datetime


class RefundPayment(BaseModel):
    """Give a received payment back (compensation); the same key refunds once."""

    idempotency_key: IdempotencyKey
    payment_id: str
    amount: Amount
    reason: str


class Refund(BaseModel):
    refund_id: str
    payment_id: str
    amount: Amount
    currency: str


class ApplyPayment(BaseModel):
    idempotency_key: IdempotencyKey
    invoice_id: str
    payment_id: str
    amount: Amount


class PaymentApplication(BaseModel):
    application_id: str
    invoice_id: str
    payment_id: str
    amount: Amount
    invoice_balance: Amount
