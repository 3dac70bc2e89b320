"""Billing: accounts, invoices and cash application, in the local database.

A balance only ever moves through one conditional UPDATE in the same
transaction as the application row that claims its idempotency key, so a
replayed or racing request can neither apply a payment twice nor take a
balance below zero.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import case, func, update
from sqlmodel import Session, col, select

from adapters.errors import BusinessError
from adapters.local.database import LocalDatabase
from adapters.local.tables import (
    BillingAccountRow,
    InvoiceLineRow,
    InvoiceRow,
    PaymentApplicationRow,
    PaymentRow,
    from_minor,
    new_id,
    to_minor,
)
from adapters.models import (
    ApplyPayment,
    BillingAccount,
    Customer,
    Invoice,
    InvoiceRequest,
    InvoiceStatus,
    PaymentApplication,
)


def _account(row: BillingAccountRow) -> BillingAccount:
    return BillingAccount(
        account_id=row.account_id, customer_id=row.customer_id, name=row.name, currency=row.currency
    )


def _invoice(row: InvoiceRow) -> Invoice:
    return Invoice(
        invoice_id=row.invoice_id,
        order_id=row.order_id,
        account_id=row.account_id,
        currency=row.currency,
        amount=from_minor(row.amount_minor, row.currency),
        balance=from_minor(row.balance_minor, row.currency),
        invoice_date=row.invoice_date,
        due_date=row.due_date,
        status=InvoiceStatus(row.status),
    )


def _application(row: PaymentApplicationRow) -> PaymentApplication:
    return PaymentApplication(
        application_id=row.application_id,
        invoice_id=row.invoice_id,
        payment_id=row.payment_id,
        amount=from_minor(row.amount_minor, row.currency),
        invoice_balance=from_minor(row.invoice_balance_minor, row.currency),
    )


class LocalBilling:
    """Receivables: one billing account per customer, invoices, payments applied."""

    def __init__(self, database: LocalDatabase) -> None:
        self._db = database

    async def ensure_account(self, customer: Customer) -> BillingAccount:
        return await asyncio.to_thread(self._ensure_account, customer)

    async def create_invoice(self, request: InvoiceRequest) -> Invoice:
        return await asyncio.to_thread(self._create_invoice, request)

    async def apply_payment(self, request: ApplyPayment) -> PaymentApplication:
        return await asyncio.to_thread(self._apply_payment, request)

    async def list_invoices(self, order_id: str) -> list[Invoice]:
        return await asyncio.to_thread(self._list_invoices, order_id)

    async def list_applications(self, invoice_id: str) -> list[PaymentApplication]:
        return await asyncio.to_thread(self._list_applications, invoice_id)

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

    def _create_invoice(self, request: InvoiceRequest) -> Invoice:
        currency = request.currency

        def find(session: Session) -> Invoice | None:
            query = select(InvoiceRow).where(
                col(InvoiceRow.idempotency_key) == request.idempotency_key
            )
            row = session.exec(query).first()
            return None if row is None else _invoice(row)

        def create(session: Session) -> Invoice:
            if session.get(BillingAccountRow, request.account_id) is None:
                raise BusinessError(
                    "account_not_found", f"billing has no account {request.account_id}"
                )
            prices = [
                (to_minor(line.unit_price, currency), to_minor(line.amount, currency))
                for line in request.lines
            ]
            total = sum(amount for _, amount in prices)
            row = InvoiceRow(
                invoice_id=new_id("INV"),
                idempotency_key=request.idempotency_key,
                order_id=request.order_id,
                account_id=request.account_id,
                currency=currency,
                amount_minor=total,
                balance_minor=total,
                invoice_date=request.invoice_date,
                due_date=request.due_date,
                status=InvoiceStatus.PAID if total == 0 else InvoiceStatus.OPEN,
            )
            session.add(row)
            session.flush()  # claims the idempotency key before the lines are written
            session.add_all(
                InvoiceLineRow(
                    invoice_id=row.invoice_id,
                    line_no=number,
                    sku=line.sku,
                    quantity=line.quantity,
                    unit_price_minor=unit_price,
                    amount_minor=amount,
                )
                for number, (line, (unit_price, amount)) in enumerate(
                    zip(request.lines, prices, strict=True), start=1
                )
            )
            return _invoice(row)

        return self._db.run_once(find, create)

    def _apply_payment(self, request: ApplyPayment) -> PaymentApplication:
        def find(session: Session) -> PaymentApplication | None:
            query = select(PaymentApplicationRow).where(
                col(PaymentApplicationRow.idempotency_key) == request.idempotency_key
            )
            row = session.exec(query).first()
            return None if row is None else _application(row)

        def create(session: Session) -> PaymentApplication:
            invoice = session.get(InvoiceRow, request.invoice_id)
            if invoice is None:
                raise BusinessError(
                    "invoice_not_found", f"billing has no invoice {request.invoice_id}"
                )
            # Locked, so that applications of one payment queue up behind each other.
            payment = session.exec(
                select(PaymentRow)
                .where(col(PaymentRow.payment_id) == request.payment_id)
                .with_for_update()
            ).first()
            if payment is None:
                raise BusinessError(
                    "payment_not_found", f"payment {request.payment_id} was never recorded"
                )
            currency = invoice.currency
            if payment.currency != currency:
                raise BusinessError(
                    "currency_mismatch",
                    f"payment {payment.payment_id} is in {payment.currency}, "
                    f"invoice {invoice.invoice_id} in {currency}",
                )
            amount = to_minor(request.amount, currency)
            if amount <= 0:
                raise BusinessError("invalid_amount", f"cannot apply {request.amount} {currency}")
            row = PaymentApplicationRow(
                application_id=new_id("APP"),
                idempotency_key=request.idempotency_key,
                invoice_id=invoice.invoice_id,
                payment_id=payment.payment_id,
                currency=currency,
                amount_minor=amount,
                invoice_balance_minor=0,  # set below, once the balance has moved
            )
            session.add(row)
            session.flush()  # claims the idempotency key before any balance moves
            applied = session.exec(
                select(func.sum(col(PaymentApplicationRow.amount_minor))).where(
                    col(PaymentApplicationRow.payment_id) == payment.payment_id
                )
            ).one()
            if applied is not None and applied > payment.amount_minor:
                raise BusinessError(
                    "amount_exceeds_payment",
                    f"payment {payment.payment_id} of {from_minor(payment.amount_minor, currency)} "
                    f"{currency} cannot cover {request.amount} {currency} more",
                )
            balance = col(InvoiceRow.balance_minor)
            reduced = session.exec(
                update(InvoiceRow)
                .where(col(InvoiceRow.invoice_id) == invoice.invoice_id, balance >= amount)
                .values(
                    balance_minor=balance - amount,
                    status=case(
                        (balance == amount, InvoiceStatus.PAID.value),
                        else_=col(InvoiceRow.status),
                    ),
                )
                .returning(balance)
                .execution_options(synchronize_session=False)
            ).scalar_one_or_none()
            if reduced is None:
                current = session.exec(
                    select(balance).where(col(InvoiceRow.invoice_id) == invoice.invoice_id)
                ).one()
                raise BusinessError(
                    "amount_exceeds_balance",
                    f"{request.amount} {currency} exceeds the balance of invoice "
                    f"{invoice.invoice_id} ({from_minor(current, currency)} {currency})",
                )
            row.invoice_balance_minor = reduced
            return _application(row)

        return self._db.run_once(find, create)

    def _list_invoices(self, order_id: str) -> list[Invoice]:
        query = (
            select(InvoiceRow)
            .where(col(InvoiceRow.order_id) == order_id)
            .order_by(col(InvoiceRow.created_at), col(InvoiceRow.invoice_id))
        )
        with self._db.session() as session:
            return [_invoice(row) for row in session.exec(query)]

    def _list_applications(self, invoice_id: str) -> list[PaymentApplication]:
        row = PaymentApplicationRow
        query = (
            select(row)
            .where(col(row.invoice_id) == invoice_id)
            .order_by(col(row.created_at), col(row.application_id))
        )
        with self._db.session() as session:
            return [_application(row) for row in session.exec(query)]
