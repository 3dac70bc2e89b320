"""Billing: accounts, invoices and cash application, in the local database.

A balance only ever moves through one conditional UPDATE in the same
transaction as the application row that claims its idempotency key, so a
replayed or racing request can neither apply a payment twice nor take a
balance below zero. A void is one conditional UPDATE that only matches an
invoice no payment has touched, and an application's UPDATE never matches a void
invoice, so a void and a payment racing for one invoice cannot both succeed.
Invoices, voids and dunning are in `adapters.billing.local_invoices`, payments applied
to invoices in `adapters.billing.local_cash`, credit notes and customer credit in
`adapters.billing.local_credit`; billing accounts and the open balance are here.
"""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal

from sqlalchemy import func
from sqlmodel import Session, col, select

from adapters.billing.local_cash import LocalCashApplication
from adapters.billing.local_credit import LocalCredit
from adapters.billing.local_invoices import LocalInvoices
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
    InvoiceStatus,
    OpenBalance,
    PaymentApplication,
    VoidInvoice,
)
from adapters.crm.models import Customer
from adapters.keys import IdempotencyKey
from adapters.local.database import LocalDatabase
from adapters.local.tables import BillingAccountRow, CustomerRow, InvoiceRow, from_minor, new_id


def _account(row: BillingAccountRow) -> BillingAccount:
    return BillingAccount(
        account_id=row.account_id, customer_id=row.customer_id, name=row.name, currency=row.currency
    )


class LocalBilling:
    """Receivables: one billing account per customer, invoices, payments applied,
    credit notes, customer credit and dunning notices."""

    def __init__(self, database: LocalDatabase) -> None:
        self._db = database
        self._invoices = LocalInvoices(database)
        self._cash = LocalCashApplication(database)
        self._credit = LocalCredit(database)

    async def ensure_account(self, customer: Customer) -> BillingAccount:
        return await asyncio.to_thread(self._ensure_account, customer)

    async def create_invoice(self, request: InvoiceRequest) -> Invoice:
        return await asyncio.to_thread(self._invoices.create_invoice, request)

    async def apply_payment(self, request: ApplyPayment) -> PaymentApplication:
        return await asyncio.to_thread(self._cash.apply_payment, request)

    async def find_invoice(self, idempotency_key: IdempotencyKey) -> Invoice | None:
        return await asyncio.to_thread(self._invoices.find_invoice, idempotency_key)

    async def find_application(self, idempotency_key: IdempotencyKey) -> PaymentApplication | None:
        return await asyncio.to_thread(self._cash.find_application, idempotency_key)

    async def void_invoice(self, request: VoidInvoice) -> Invoice:
        return await asyncio.to_thread(self._invoices.void_invoice, request)

    async def open_balance(self, customer_id: str) -> OpenBalance:
        return await asyncio.to_thread(self._open_balance, customer_id)

    async def create_credit_note(self, request: CreditNoteRequest) -> CreditNote:
        return await asyncio.to_thread(self._credit.create_credit_note, request)

    async def find_credit_note(self, idempotency_key: IdempotencyKey) -> CreditNote | None:
        return await asyncio.to_thread(self._credit.find_credit_note, idempotency_key)

    async def post_customer_credit(self, entry: CustomerCreditEntry) -> CreditBalance:
        return await asyncio.to_thread(self._credit.post_customer_credit, entry)

    async def paid_into(self, account_id: str, payment_id: str) -> bool:
        return await asyncio.to_thread(self._credit.paid_into, account_id, payment_id)

    async def customer_credit(self, account_id: str) -> CreditBalance:
        return await asyncio.to_thread(self._credit.customer_credit, account_id)

    async def send_dunning_notice(self, notice: DunningNotice) -> DunningRecord:
        return await asyncio.to_thread(self._invoices.send_dunning_notice, notice)

    async def list_open_invoices(self) -> list[Invoice]:
        return await asyncio.to_thread(self._invoices.list_open_invoices)

    async def list_invoices_dated(self, start: date, end: date) -> list[Invoice]:
        return await asyncio.to_thread(self._invoices.list_invoices_dated, start, end)

    async def list_invoices(self, order_id: str) -> list[Invoice]:
        return await asyncio.to_thread(self._invoices.list_invoices, order_id)

    async def list_applications(self, invoice_id: str) -> list[PaymentApplication]:
        return await asyncio.to_thread(self._cash.list_applications, invoice_id)

    async def list_credit_notes(self, invoice_id: str) -> list[CreditNote]:
        return await asyncio.to_thread(self._credit.list_credit_notes, invoice_id)

    def _ensure_account(self, customer: Customer) -> BillingAccount:
        def find(session: Session) -> BillingAccount | None:
            query = select(BillingAccountRow).where(
                col(BillingAccountRow.customer_id) == customer.customer_id
            )
            row = session.exec(query).first()
            return None if row is None else _account(row)

        def create(session: Session) -> BillingAccount:
            row = BillingAccountRow(
                account_id=new_id("BA"),
                customer_id=customer.customer_id,
                name=customer.name,
                currency=customer.currency,
            )
            session.add(row)
            session.flush()
            return _account(row)

        return self._db.run_once(find, create)

    def _open_balance(self, customer_id: str) -> OpenBalance:
        """The balances of the customer's open invoices in the account's currency, summed.

        Invoices in another currency are left out: they cannot be added without an
        exchange rate. A customer without a billing account owes nothing, stated in the
        currency the local CRM table gives them, or in "" (no currency) if it has no
        such customer either.
        """
        with self._db.reading() as session:
            account = session.exec(
                select(BillingAccountRow).where(col(BillingAccountRow.customer_id) == customer_id)
            ).first()
            if account is None:
                customer = session.get(CustomerRow, customer_id)
                if customer is None:
                    return OpenBalance(customer_id=customer_id, currency="", amount=Decimal(0))
                currency = customer.currency
                return OpenBalance(
                    customer_id=customer_id, currency=currency, amount=from_minor(0, currency)
                )
            total = session.exec(
                select(func.coalesce(func.sum(col(InvoiceRow.balance_minor)), 0)).where(
                    col(InvoiceRow.account_id) == account.account_id,
                    col(InvoiceRow.status) == InvoiceStatus.OPEN.value,
                    col(InvoiceRow.currency) == account.currency,
                )
            ).one()
        return OpenBalance(
            customer_id=customer_id,
            currency=account.currency,
            amount=from_minor(int(total), account.currency),
        )
