"""What Billing must do for the orchestrator.

Every method that changes something takes an idempotency key and has a `find_*`
twin to look it up after an unknown outcome; failures are `adapters.errors`.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

from adapters.billing.models import (
    ApplyPayment,
    BillingAccount,
    CreditBalance,
    CreditNote,
    CreditNoteRequest,
    CustomerCreditEntry,
    DunningNotice,
    DunningRecord,
    Invoice,
    InvoiceRequest,
    OpenBalance,
    PaymentApplication,
    VoidInvoice,
)
from adapters.crm.models import Customer
from adapters.keys import IdempotencyKey


class BillingAdapter(Protocol):
    async def ensure_account(self, customer: Customer) -> BillingAccount:
        """The customer's billing account, created from CRM data if missing.

        Never two for one customer, even when two first orders arrive at once.
        """
        ...

    async def create_invoice(self, request: InvoiceRequest) -> Invoice:
        """Raise the invoice; the same idempotency key returns the first invoice."""
        ...

    async def apply_payment(self, request: ApplyPayment) -> PaymentApplication:
        """Apply a payment to an invoice, lowering its balance once per key.

        BusinessError `invoice_not_found`, `currency_mismatch` or
        `amount_exceeds_balance` when it cannot be applied.
        """
        ...

    async def find_invoice(self, idempotency_key: IdempotencyKey) -> Invoice | None:
        """The invoice created with this key, if any."""
        ...

    async def find_application(self, idempotency_key: IdempotencyKey) -> PaymentApplication | None:
        """The payment application made with this key, if any."""
        ...

    async def void_invoice(self, request: VoidInvoice) -> Invoice:
        """Void an open invoice; BusinessError `invoice_has_payments` once cash is applied."""
        ...

    async def open_balance(self, customer_id: str) -> OpenBalance:
        """What the customer owes on open invoices (zero, in no currency, if no account)."""
        ...

    async def create_credit_note(self, request: CreditNoteRequest) -> CreditNote:
        """Raise a credit note against an invoice; the same key returns the first."""
        ...

    async def find_credit_note(self, idempotency_key: IdempotencyKey) -> CreditNote | None: ...

    async def post_customer_credit(self, entry: CustomerCreditEntry) -> CreditBalance:
        """Add (or, negative, use) customer credit once per key.

        BusinessError `insufficient_credit` if the balance would go below zero.
        """
        ...

    async def customer_credit(self, account_id: str) -> CreditBalance: ...

    async def paid_into(self, account_id: str, payment_id: str) -> bool:
        """Whether the payment's money reached this account (applied to one of its
        invoices or kept on it as credit): credit is only ever paid back to such a payment."""
        ...

    async def send_dunning_notice(self, notice: DunningNotice) -> DunningRecord:
        """Send a reminder (or escalation notice) for an overdue invoice, once per key."""
        ...

    async def list_open_invoices(self) -> list[Invoice]:
        """Every invoice with a balance left, for receivables ageing."""
        ...

    async def list_invoices_dated(self, start: date, end: date) -> list[Invoice]:
        """Invoices dated from `start` to `end` inclusive (credit sales, for DSO)."""
        ...

    async def list_invoices(self, order_id: str) -> list[Invoice]:
        """The invoices raised for an order, oldest first."""
        ...

    async def list_applications(self, invoice_id: str) -> list[PaymentApplication]:
        """The payments applied to an invoice, oldest first."""
        ...

    async def list_credit_notes(self, invoice_id: str) -> list[CreditNote]:
        """The credit notes raised against an invoice, oldest first."""
        ...
