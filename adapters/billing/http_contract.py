"""Billing's REST contract (docs/contracts/billing.openapi.json is generated from it)."""

from __future__ import annotations

from datetime import date

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
from adapters.http.contract import Contract, Operation, lookup


def _account_key(customer: Customer) -> str:
    """An account is created once per customer: the customer id is the key."""
    return f"account-{customer.customer_id}"


BILLING_CONTRACT = Contract(
    system="billing",
    title="Billing",
    description="Accounts, invoices, cash applications, credit notes, customer credit, dunning.",
    operations=(
        Operation(
            "ensure_account",
            "POST",
            "/accounts",
            BillingAccount,
            "The customer's billing account, created from CRM data if missing",
            body=Customer,
            key_of=_account_key,
        ),
        Operation(
            "create_invoice",
            "POST",
            "/invoices",
            Invoice,
            "Raise an invoice; the same key answers the first invoice",
            body=InvoiceRequest,
        ),
        lookup("find_invoice", "invoices", Invoice, "invoice"),
        Operation(
            "apply_payment",
            "POST",
            "/applications",
            PaymentApplication,
            "Apply a payment to an invoice, lowering its balance once per key",
            body=ApplyPayment,
        ),
        lookup("find_application", "applications", PaymentApplication, "payment application"),
        Operation(
            "void_invoice",
            "POST",
            "/invoice-voids",
            Invoice,
            "Void an open invoice; `invoice_has_payments` once cash is applied",
            body=VoidInvoice,
        ),
        Operation(
            "open_balance",
            "GET",
            "/customers/{customer_id}/open-balance",
            OpenBalance,
            "What the customer owes on open invoices",
        ),
        Operation(
            "create_credit_note",
            "POST",
            "/credit-notes",
            CreditNote,
            "Raise a credit note against an invoice; the same key answers the first",
            body=CreditNoteRequest,
        ),
        lookup("find_credit_note", "credit-notes", CreditNote, "credit note"),
        Operation(
            "post_customer_credit",
            "POST",
            "/customer-credit",
            CreditBalance,
            "Add (or, negative, use) customer credit once per key",
            body=CustomerCreditEntry,
        ),
        Operation(
            "customer_credit",
            "GET",
            "/accounts/{account_id}/credit",
            CreditBalance,
            "The account's customer credit",
        ),
        Operation(
            "paid_into",
            "GET",
            "/accounts/{account_id}/payments/{payment_id}/received",
            bool,
            "Whether the payment's money reached this account (applied or kept as credit)",
        ),
        Operation(
            "send_dunning_notice",
            "POST",
            "/dunning-notices",
            DunningRecord,
            "Send a reminder or escalation notice for an overdue invoice, once per key",
            body=DunningNotice,
        ),
        Operation(
            "list_open_invoices",
            "GET",
            "/invoices/open",
            list[Invoice],
            "Every invoice with a balance left",
        ),
        Operation(
            "list_invoices_dated",
            "GET",
            "/invoices/dated",
            list[Invoice],
            "Invoices dated from `start` to `end` inclusive",
            query=(("start", date), ("end", date)),
        ),
        Operation(
            "list_invoices",
            "GET",
            "/orders/{order_id}/invoices",
            list[Invoice],
            "The invoices raised for an order, oldest first",
        ),
        Operation(
            "list_applications",
            "GET",
            "/invoices/{invoice_id}/applications",
            list[PaymentApplication],
            "The payments applied to an invoice, oldest first",
        ),
        Operation(
            "list_credit_notes",
            "GET",
            "/invoices/{invoice_id}/credit-notes",
            list[CreditNote],
            "The credit notes raised against an invoice, oldest first",
        ),
    ),
)
