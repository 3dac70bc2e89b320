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
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


class Shipment(BaseModel):
    shipment_id: str
    order_id: str
    status: ShipmentStatus
    carrier: str | None = None
    tracking_number: str | None = None


class ShipmentConfirmation(BaseModel):
    idempotency_key: IdempotencyKey
    shipment_id: str
    carrier: str
    tracking_number: str


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
