"""Payments: money received, recorded once per payment id, in the local database.

The payment id (the gateway's or the bank's) and the idempotency key are both
unique, so duplicate webhooks and retried activities record nothing new; the
same id arriving with another amount, currency or order is a contradiction a
person must look at, not a second payment. A refund claims its own unique key
and is checked against the payment's earlier refunds under a lock on the
payment row, so racing refunds can never give back more than was received.
Card authorisations and captures are in `adapters.payments.local_cards`.
"""

from __future__ import annotations

import asyncio

from sqlmodel import Session, col, func, or_, select

from adapters.errors import BusinessError
from adapters.keys import IdempotencyKey
from adapters.local.database import LocalDatabase
from adapters.local.tables import PaymentRow, RefundRow, as_utc, from_minor, new_id, to_minor
from adapters.payments.local_cards import LocalCards
from adapters.payments.models import (
    Authorisation,
    AuthoriseCard,
    CaptureCard,
    Payment,
    PaymentRecordRequest,
    Refund,
    RefundPayment,
    StoreCard,
    StoredCard,
    VoidAuthorisation,
)


def _payment(row: PaymentRow) -> Payment:
    return Payment(
        payment_id=row.payment_id,
        order_id=row.order_id,
        amount=from_minor(row.amount_minor, row.currency),
        currency=row.currency,
        reference=row.reference,
        received_at=as_utc(row.received_at),
    )


def _refund(row: RefundRow) -> Refund:
    return Refund(
        refund_id=row.refund_id,
        payment_id=row.payment_id,
        amount=from_minor(row.amount_minor, row.currency),
        currency=row.currency,
    )


def _conflicts(payment: Payment, request: PaymentRecordRequest) -> bool:
    return (payment.payment_id, payment.order_id, payment.currency, payment.amount) != (
        request.payment_id,
        request.order_id,
        request.currency,
        request.amount,
    )


class LocalPayments:
    """A payment provider's ledger of received payments, and card authorisations."""

    def __init__(self, database: LocalDatabase) -> None:
        self._db = database
        self._cards = LocalCards(database)

    async def record_payment(self, request: PaymentRecordRequest) -> Payment:
        return await asyncio.to_thread(self._record_payment, request)

    async def find_payment(self, idempotency_key: IdempotencyKey) -> Payment | None:
        """The payment `record_payment` recorded with this key, if any."""
        return await asyncio.to_thread(self._find_payment, idempotency_key)

    async def refund_payment(self, request: RefundPayment) -> Refund:
        return await asyncio.to_thread(self._refund_payment, request)

    async def store_card(self, request: StoreCard) -> StoredCard:
        return await asyncio.to_thread(self._cards.store, request)

    async def find_stored_card(self, idempotency_key: IdempotencyKey) -> StoredCard | None:
        return await asyncio.to_thread(self._cards.find_stored, idempotency_key)

    async def authorise_card(self, request: AuthoriseCard) -> Authorisation:
        return await asyncio.to_thread(self._cards.authorise, request)

    async def find_authorisation(self, idempotency_key: IdempotencyKey) -> Authorisation | None:
        return await asyncio.to_thread(self._cards.find_authorisation, idempotency_key)

    async def capture_card(self, request: CaptureCard) -> Payment:
        return _payment(await asyncio.to_thread(self._cards.capture, request))

    async def void_authorisation(self, request: VoidAuthorisation) -> Authorisation:
        return await asyncio.to_thread(self._cards.void, request)

    async def list_payments(self, order_id: str) -> list[Payment]:
        return await asyncio.to_thread(self._list_payments, order_id)

    async def list_authorisations(self, order_id: str) -> list[Authorisation]:
        return await asyncio.to_thread(self._cards.list_authorisations, order_id)

    async def list_refunds(self, order_id: str) -> list[Refund]:
        return await asyncio.to_thread(self._list_refunds, order_id)

    def _list_payments(self, order_id: str) -> list[Payment]:
        query = (
            select(PaymentRow)
            .where(col(PaymentRow.order_id) == order_id)
            .order_by(col(PaymentRow.received_at), col(PaymentRow.payment_id))
        )
        with self._db.reading() as session:
            return [_payment(row) for row in session.exec(query)]

    def _list_refunds(self, order_id: str) -> list[Refund]:
        query = (
            select(RefundRow)
            .join(PaymentRow, col(PaymentRow.payment_id) == col(RefundRow.payment_id))
            .where(col(PaymentRow.order_id) == order_id)
            .order_by(col(RefundRow.created_at), col(RefundRow.refund_id))
        )
        with self._db.reading() as session:
            return [_refund(row) for row in session.exec(query)]

    def _find_payment(self, idempotency_key: IdempotencyKey) -> Payment | None:
        with self._db.reading() as session:
            query = select(PaymentRow).where(col(PaymentRow.idempotency_key) == idempotency_key)
            row = session.exec(query).first()
            return None if row is None else _payment(row)

    def _refund_payment(self, request: RefundPayment) -> Refund:
        """Refund once per key; all refunds of a payment together at most its amount.

        A replay returns the first refund as it was, whatever amount it now names. A
        refused refund (`payment_not_found`, `invalid_amount`, `refund_exceeds_payment`)
        rolls back its row, so its key stays free for a corrected request.
        """

        def find(session: Session) -> Refund | None:
            query = select(RefundRow).where(
                col(RefundRow.idempotency_key) == request.idempotency_key
            )
            row = session.exec(query).first()
            return None if row is None else _refund(row)

        def create(session: Session) -> Refund:
            # Locked, so that refunds of one payment queue up and each sees the others.
            payment = session.exec(
                select(PaymentRow)
                .where(col(PaymentRow.payment_id) == request.payment_id)
                .with_for_update()
            ).first()
            if payment is None:
                raise BusinessError(
                    "payment_not_found", f"payment {request.payment_id} was never recorded"
                )
            currency = payment.currency
            amount = to_minor(request.amount, currency)
            if amount <= 0:
                raise BusinessError(
                    "invalid_amount", f"a refund must be positive, not {request.amount}"
                )
            row = RefundRow(
                refund_id=new_id("RFD"),
                idempotency_key=request.idempotency_key,
                payment_id=payment.payment_id,
                currency=currency,
                amount_minor=amount,
                reason=request.reason,
            )
            session.add(row)
            session.flush()  # claims the idempotency key before the total is checked
            refunded = session.exec(
                select(func.sum(col(RefundRow.amount_minor))).where(
                    col(RefundRow.payment_id) == payment.payment_id
                )
            ).one()
            if refunded is not None and refunded > payment.amount_minor:
                earlier = from_minor(int(refunded) - amount, currency)
                raise BusinessError(
                    "refund_exceeds_payment",
                    f"payment {payment.payment_id} of {from_minor(payment.amount_minor, currency)} "
                    f"{currency} has {earlier} {currency} refunded already; "
                    f"{request.amount} {currency} more is too much",
                )
            return _refund(row)

        return self._db.run_once(find, create)

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
