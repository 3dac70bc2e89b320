"""Payments: money received, recorded once per payment id, in the local database.

The payment id (the gateway's or the bank's) and the idempotency key are both
unique, so duplicate webhooks and retried activities record nothing new; the
same id arriving with another amount, currency or order is a contradiction a
person must look at, not a second payment.
"""

from __future__ import annotations

import asyncio

from sqlmodel import Session, col, or_, select

from adapters.errors import BusinessError
from adapters.local.database import LocalDatabase
from adapters.local.tables import PaymentRow, as_utc, from_minor, to_minor
from adapters.models import Payment, PaymentRecordRequest


def _payment(row: PaymentRow) -> Payment:
    return Payment(
        payment_id=row.payment_id,
        order_id=row.order_id,
        amount=from_minor(row.amount_minor, row.currency),
        currency=row.currency,
        reference=row.reference,
        received_at=as_utc(row.received_at),
    )


def _conflicts(payment: Payment, request: PaymentRecordRequest) -> bool:
    return (payment.payment_id, payment.order_id, payment.currency, payment.amount) != (
        request.payment_id,
        request.order_id,
        request.currency,
        request.amount,
    )


class LocalPayments:
    """A payment provider's ledger of received payments."""

    def __init__(self, database: LocalDatabase) -> None:
        self._db = database

    async def record_payment(self, request: PaymentRecordRequest) -> Payment:
        return await asyncio.to_thread(self._record_payment, request)

    def _record_payment(self, request: PaymentRecordRequest) -> Payment:
        def find(session: Session) -> Payment | None:
            query = select(PaymentRow).where(
                or_(
                    col(PaymentRow.payment_id) == request.payment_id,
                    col(PaymentRow.idempotency_key) == request.idempotency_key,
                )
            )
            rows = list(session.exec(query))
            rows.sort(key=lambda row: row.payment_id != request.payment_id)  # the id first
            return _payment(rows[0]) if rows else None

        def create(session: Session) -> Payment:
            amount = to_minor(request.amount, request.currency)
            if amount <= 0:
                raise BusinessError(
                    "invalid_amount", f"a payment must be positive, not {request.amount}"
                )
            row = PaymentRow(
                payment_id=request.payment_id,
                idempotency_key=request.idempotency_key,
                order_id=request.order_id,
                currency=request.currency,
                amount_minor=amount,
                reference=request.reference,
            )
            session.add(row)
            session.flush()
            return _payment(row)

        payment = self._db.run_once(find, create)
        if _conflicts(payment, request):
            raise BusinessError(
                "payment_conflict",
                f"payment {payment.payment_id} was recorded as {payment.amount} "
                f"{payment.currency} for order {payment.order_id}; now {request.payment_id} "
                f"arrives as {request.amount} {request.currency} for order {request.order_id}",
            )
        return payment
