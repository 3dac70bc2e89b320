"""Invoices and what is read or sent about them, in the local database: raised once
per key, voided, listed, dunned.

A void is one conditional UPDATE that only matches an invoice no payment has
touched, and an application's UPDATE (`adapters.billing.local_cash`) never matches
a void invoice, so a void and a payment racing for one invoice cannot both succeed.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import update
from sqlmodel import Session, col, select

from adapters.billing.models import (
    DunningNotice,
    DunningRecord,
    Invoice,
    InvoiceRequest,
    InvoiceStatus,
    VoidInvoice,
)
from adapters.errors import BusinessError
from adapters.keys import IdempotencyKey
from adapters.local.database import LocalDatabase
from adapters.local.tables import (
    BillingAccountRow,
    DunningNoticeRow,
    InvoiceLineRow,
    InvoiceRow,
    as_utc,
    from_minor,
    new_id,
    priced_line_rows,
    to_minor,
    utc_now,
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


def _invoice_by_key(session: Session, key: IdempotencyKey) -> Invoice | None:
    row = session.exec(select(InvoiceRow).where(col(InvoiceRow.idempotency_key) == key)).first()
    return None if row is None else _invoice(row)


def _dunning(row: DunningNoticeRow) -> DunningRecord:
    return DunningRecord(
        notice_id=row.notice_id,
        invoice_id=row.invoice_id,
        level=row.level,
        days_past_due=row.days_past_due,
        sent_at=as_utc(row.sent_at),
    )


class LocalInvoices:
    """Invoices on billing accounts: raised, voided, listed, and dunning notices sent."""

    def __init__(self, database: LocalDatabase) -> None:
        self._db = database

    def create_invoice(self, request: InvoiceRequest) -> Invoice:
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

    def find_invoice(self, idempotency_key: IdempotencyKey) -> Invoice | None:
        with self._db.reading() as session:
            return _invoice_by_key(session, idempotency_key)

    def void_invoice(self, request: VoidInvoice) -> Invoice:
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

    def list_invoices(self, order_id: str) -> list[Invoice]:
        query = (
            select(InvoiceRow)
            .where(col(InvoiceRow.order_id) == order_id)
            .order_by(col(InvoiceRow.created_at), col(InvoiceRow.invoice_id))
        )
        with self._db.reading() as session:
            return [_invoice(row) for row in session.exec(query)]

    def send_dunning_notice(self, notice: DunningNotice) -> DunningRecord:
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

    def list_open_invoices(self) -> list[Invoice]:
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
        with self._db.reading() as session:
            return [_invoice(row) for row in session.exec(query)]

    def list_invoices_dated(self, start: date, end: date) -> list[Invoice]:
        """Every invoice dated `start` to `end` inclusive, void ones too (with their
        status, for the caller to leave out), oldest first."""
        query = (
            select(InvoiceRow)
            .where(col(InvoiceRow.invoice_date) >= start, col(InvoiceRow.invoice_date) <= end)
            .order_by(
                col(InvoiceRow.invoice_date), col(InvoiceRow.created_at), col(InvoiceRow.invoice_id)
            )
        )
        with self._db.reading() as session:
            return [_invoice(row) for row in session.exec(query)]
