"""Cash application: recorded payments applied to invoices, in the local database.

A balance only ever moves through one conditional UPDATE in the same transaction
as the application row that claims its idempotency key, so a replayed or racing
request can neither apply a payment twice nor take a balance below zero. That
UPDATE never matches a void invoice, and a void (`adapters.billing.local_invoices`)
only matches an invoice no payment has touched, so a void and a payment racing for
one invoice cannot both succeed.
"""

from __future__ import annotations

from sqlalchemy import case, func, update
from sqlmodel import Session, col, select

from adapters.billing.models import ApplyPayment, InvoiceStatus, PaymentApplication
from adapters.errors import BusinessError
from adapters.keys import IdempotencyKey
from adapters.local.database import LocalDatabase
from adapters.local.tables import (
    InvoiceRow,
    PaymentApplicationRow,
    PaymentRow,
    from_minor,
    new_id,
    to_minor,
)


def _application(row: PaymentApplicationRow) -> PaymentApplication:
    return PaymentApplication(
        application_id=row.application_id,
        invoice_id=row.invoice_id,
        payment_id=row.payment_id,
        amount=from_minor(row.amount_minor, row.currency),
        invoice_balance=from_minor(row.invoice_balance_minor, row.currency),
    )


def _application_by_key(session: Session, key: IdempotencyKey) -> PaymentApplication | None:
    row = session.exec(
        select(PaymentApplicationRow).where(col(PaymentApplicationRow.idempotency_key) == key)
    ).first()
    return None if row is None else _application(row)


def _voided(invoice_id: str) -> BusinessError:
    return BusinessError("invoice_void", f"invoice {invoice_id} is void and takes no payment")


class LocalCashApplication:
    """Payments applied to invoices, each application once per key."""

    def __init__(self, database: LocalDatabase) -> None:
        self._db = database

    def apply_payment(self, request: ApplyPayment) -> PaymentApplication:
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

    def find_application(self, idempotency_key: IdempotencyKey) -> PaymentApplication | None:
        with self._db.reading() as session:
            return _application_by_key(session, idempotency_key)

    def list_applications(self, invoice_id: str) -> list[PaymentApplication]:
        row = PaymentApplicationRow
        query = (
            select(row)
            .where(col(row.invoice_id) == invoice_id)
            .order_by(col(row.created_at), col(row.application_id))
        )
        with self._db.reading() as session:
            return [_application(row) for row in session.exec(query)]
