"""What crosses the boundary to billing."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from adapters.keys import IdempotencyKey
from o2c_domain.money import Amount


class BillingAccount(BaseModel):
    """The receivables account invoices are raised on; one per customer."""

    account_id: str
    customer_id: str
    name: str
    currency: str


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
