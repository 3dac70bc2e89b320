"""Billing: accounts, invoices and cash application, in the local database.

A balance only ever moves through one conditional UPDATE in the same
transaction as the application row that claims its idempotency key, so a
replayed or racing request can neither apply a payment twice nor take a
balance below zero. A void is one conditional UPDATE that only matches an
invoice no payment has touched, and an application's UPDATE never matches a void
invoice, so a void and a payment racing for one invoice cannot both succeed.
Credit notes and customer credit are in `adapters.billing.local_credit`.
"""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal

from sqlalchemy import case, func, update
from sqlmodel import Session, col, select

from adapters.billing.local_credit import LocalCredit
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
from adapters.errors import BusinessError
from adapters.keys import IdempotencyKey
from adapters.local.database import LocalDatabase
from adapters.local.tables import (
    BillingAccountRow,
    CustomerRow,
    DunningNoticeRow,
    InvoiceLineRow,
    InvoiceRow,
    PaymentApplicationRow,
    PaymentRow,
    as_utc,
    from_minor,
    new_id,
    priced_line_rows,
    to_minor,
    utc_now,
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


def _invoice_by_key(session: Session, key: IdempotencyKey) -> Invoice | None:
    row = session.exec(select(InvoiceRow).where(col(InvoiceRow.idempotency_key) == key)).first()
    return None if row is None else _invoice(row)


def _application_by_key(session: Session, key: IdempotencyKey) -> PaymentApplication | None:
    row = session.exec(
        select(PaymentApplicationRow).where(col(PaymentApplicationRow.idempotency_key) == key)
    ).first()
    return None if row is None else _application(row)


def _dunning(row: DunningNoticeRow) -> DunningRecord:
    return DunningRecord(
        notice_id=row.notice_id,
        invoice_id=row.invoice_id,
        level=row.level,
        days_past_due=row.days_past_due,
        sent_at=as_utc(row.sent_at),
    )


def _voided(invoice_id: str) -> BusinessError:
    return BusinessError("invoice_void", f"invoice {invoice_id} is void and takes no payment")


class LocalBilling:
    """Receivables: one billing account per customer, invoices, payments applied,
    credit notes, customer credit and dunning notices."""

    def __init__(self, database: LocalDatabase) -> None:
        self._db = database
        self._credit = LocalCredit(database)

    async def ensure_account(self, customer: Customer) -> BillingAccount:
        return await asyncio.to_thread(self._ensure_account, customer)

    async def create_invoice(self, request: InvoiceRequest) -> Invoice:
        return await asyncio.to_thread(self._create_invoice, request)

    async def apply_payment(self, request: ApplyPayment) -> PaymentApplication:
        return await asyncio.to_thread(self._apply_payment, request)

    async def find_invoice(self, idempotency_key: IdempotencyKey) -> Invoice | None:
        return await asyncio.to_thread(self._find_invoice, idempotency_key)

    async def find_application(self, idempotency_key: IdempotencyKey) -> PaymentApplication | None:
        return await asyncio.to_thread(self._find_application, idempotency_key)

    async def void_invoice(self, request: VoidInvoice) -> Invoice:
        return await asyncio.to_thread(self._void_invoice, request)

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
        return await asyncio.to_thread(self._send_dunning_notice, notice)

    async def list_open_invoices(self) -> list[Invoice]:
        return await asyncio.to_thread(self._list_open_invoices)

    async def list_invoices_dated(self, start: date, end: date) -> list[Invoice]:
        return await asyncio.to_thread(self._list_invoices_dated, start, end)

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
            return _invoice_by_key(session, request.idempotency_key)

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
                priced_line_rows(
                    InvoiceLineRow, {"invoice_id": row.invoice_id}, request.lines, prices
                )
            )
            return _invoice(row)

        return self._db.run_once(find, create)

    def _apply_payment(self, request: ApplyPayment) -> PaymentApplication:
        def find(session: Session) -> PaymentApplication | None:
            return _application_by_key(session, request.idempotency_key)

        def create(session: Session) -> PaymentApplication:
            invoice = session.get(InvoiceRow, request.invoice_id)
            if invoice is None:
                raise BusinessError(
                    "invoice_not_found", f"billing has no invoice {request.invoice_id}"
                )
            if invoice.status == InvoiceStatus.VOID.value:
                raise _voided(invoice.invoice_id)
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
                .where(
                    col(InvoiceRow.invoice_id) == invoice.invoice_id,
                    col(InvoiceRow.status) != InvoiceStatus.VOID.value,
                    balance >= amount,
                )
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
                current, status = session.exec(
                    select(balance, col(InvoiceRow.status)).where(
                        col(InvoiceRow.invoice_id) == invoice.invoice_id
                    )
                ).one()
                if status == InvoiceStatus.VOID.value:  # voided since we read it
                    raise _voided(invoice.invoice_id)
                raise BusinessError(
                    "amount_exceeds_balance",
                    f"{request.amount} {currency} exceeds the balance of invoice "
                    f"{invoice.invoice_id} ({from_minor(current, currency)} {currency})",
                )
            row.invoice_balance_minor = reduced
            return _application(row)

        return self._db.run_once(find, create)

    def _find_invoice(self, idempotency_key: IdempotencyKey) -> Invoice | None:
        with self._db.session() as session:
            return _invoice_by_key(session, idempotency_key)

    def _find_application(self, idempotency_key: IdempotencyKey) -> PaymentApplication | None:
        with self._db.session() as session:
            return _application_by_key(session, idempotency_key)

    def _void_invoice(self, request: VoidInvoice) -> Invoice:
        """Open and untouched -> void, balance 0; voiding a void invoice returns it as it is.

        "Untouched" is `balance == amount`, a condition on the invoice row itself: every
        application lowers the balance by a positive amount in the UPDATE that locks
        that row, so the check cannot miss one committing at the same moment (a
        subquery on the applications could, on PostgreSQL). Money applied needs a
        credit note or a refund, not a void: `invoice_has_payments`.
        """
        with self._db.session() as session:
            session.exec(
                update(InvoiceRow)
                .where(
                    col(InvoiceRow.invoice_id) == request.invoice_id,
                    col(InvoiceRow.status) != InvoiceStatus.VOID.value,
                    col(InvoiceRow.balance_minor) == col(InvoiceRow.amount_minor),
                )
                .values(
                    status=InvoiceStatus.VOID.value,
                    balance_minor=0,
                    void_key=request.idempotency_key,
                    void_reason=request.reason,
                    voided_at=utc_now(),
                )
                .execution_options(synchronize_session=False)
            )
            row = session.get(InvoiceRow, request.invoice_id)
            if row is None:
                raise BusinessError(
                    "invoice_not_found", f"billing has no invoice {request.invoice_id}"
                )
            if row.status != InvoiceStatus.VOID.value:
                paid = from_minor(row.amount_minor - row.balance_minor, row.currency)
                raise BusinessError(
                    "invoice_has_payments",
                    f"invoice {row.invoice_id} has {paid} {row.currency} paid or credited; "
                    "it needs a credit note, not a void",
                )
            return _invoice(row)

    def _open_balance(self, customer_id: str) -> OpenBalance:
        """The balances of the customer's open invoices in the account's currency, summed.

        Invoices in another currency are left out: they cannot be added without an
        exchange rate. A customer without a billing account owes nothing, stated in the
        currency the local CRM table gives them, or in "" (no currency) if it has no
        such customer either.
        """
        with self._db.session() as session:
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

    def _send_dunning_notice(self, notice: DunningNotice) -> DunningRecord:
        """Record the notice once per key (the local stand-in for sending it).

        BusinessError `invoice_not_found`. A replay returns the first record, sent_at
        and all.
        """

        def find(session: Session) -> DunningRecord | None:
            row = session.exec(
                select(DunningNoticeRow).where(
                    col(DunningNoticeRow.idempotency_key) == notice.idempotency_key
                )
            ).first()
            return None if row is None else _dunning(row)

        def create(session: Session) -> DunningRecord:
            if session.get(InvoiceRow, notice.invoice_id) is None:
                raise BusinessError(
                    "invoice_not_found", f"billing has no invoice {notice.invoice_id}"
                )
            row = DunningNoticeRow(
                notice_id=new_id("DUN"),
                idempotency_key=notice.idempotency_key,
                invoice_id=notice.invoice_id,
                level=notice.level,
                days_past_due=notice.days_past_due,
            )
            session.add(row)
            session.flush()
            return _dunning(row)

        return self._db.run_once(find, create)

    def _list_open_invoices(self) -> list[Invoice]:
        """Open invoices with a balance left, in every currency, the longest due first."""
        query = (
            select(InvoiceRow)
            .where(
                col(InvoiceRow.status) == InvoiceStatus.OPEN.value,
                col(InvoiceRow.balance_minor) > 0,
            )
            .order_by(
                col(InvoiceRow.due_date), col(InvoiceRow.created_at), col(InvoiceRow.invoice_id)
            )
        )
        with self._db.session() as session:
            return [_invoice(row) for row in session.exec(query)]

    def _list_invoices_dated(self, start: date, end: date) -> list[Invoice]:
        """Every invoice dated `start` to `end` inclusive, void ones too (with their
        status, for the caller to leave out), oldest first."""
        query = (
            select(InvoiceRow)
            .where(col(InvoiceRow.invoice_date) >= start, col(InvoiceRow.invoice_date) <= end)
            .order_by(
                col(InvoiceRow.invoice_date), col(InvoiceRow.created_at), col(InvoiceRow.invoice_id)
            )
        )
        with self._db.session() as session:
            return [_invoice(row) for row in session.exec(query)]
