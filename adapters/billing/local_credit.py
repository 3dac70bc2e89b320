"""Credit notes and customer credit, the receivables that run the other way.

A credit note lowers its invoice's balance by as much as is still owed; the rest
(money the customer had already paid) becomes customer credit on the billing
account, in the same transaction. Customer credit is a ledger of entries per
account; its balance is their sum. Each entry claims its idempotency key under a
lock on the account row, then checks the sum, so a replay that waited behind the
first finds it, and racing uses can never take the balance below zero.

Locks, always in this order: invoice, billing account. Both are taken `FOR NO KEY
UPDATE`, which does not wait for the key-share locks the foreign keys of new
invoices, payments and entries hold on PostgreSQL.
"""

from __future__ import annotations

from sqlmodel import Session, col, func, select

from adapters.billing.models import (
    CreditBalance,
    CreditNote,
    CreditNoteRequest,
    CustomerCreditEntry,
    InvoiceStatus,
)
from adapters.errors import BusinessError
from adapters.keys import IdempotencyKey
from adapters.local.database import LocalDatabase
from adapters.local.tables import (
    BillingAccountRow,
    CreditNoteLineRow,
    CreditNoteRow,
    CustomerCreditRow,
    InvoiceRow,
    PaymentApplicationRow,
    from_minor,
    new_id,
    priced_line_rows,
    to_minor,
)
from o2c_domain.money import MAX_AMOUNT_DIGITS, fits_amount_digits


def _credit_note(row: CreditNoteRow) -> CreditNote:
    return CreditNote(
        credit_note_id=row.credit_note_id,
        invoice_id=row.invoice_id,
        amount=from_minor(row.amount_minor, row.currency),
        applied_to_invoice=from_minor(row.applied_minor, row.currency),
        to_customer_credit=from_minor(row.to_credit_minor, row.currency),
    )


def _balance(account: BillingAccountRow, minor: int) -> CreditBalance:
    return CreditBalance(
        account_id=account.account_id,
        currency=account.currency,
        balance=from_minor(minor, account.currency),
    )


def credit_note_by_key(session: Session, key: IdempotencyKey) -> CreditNote | None:
    row = session.exec(
        select(CreditNoteRow).where(col(CreditNoteRow.idempotency_key) == key)
    ).first()
    return None if row is None else _credit_note(row)


def _account(session: Session, account_id: str, *, lock: bool = False) -> BillingAccountRow:
    query = select(BillingAccountRow).where(col(BillingAccountRow.account_id) == account_id)
    if lock:
        query = query.with_for_update(key_share=True).execution_options(populate_existing=True)
    row = session.exec(query).first()
    if row is None:
        raise BusinessError("account_not_found", f"billing has no account {account_id}")
    return row


def _credit_sum(session: Session, account_id: str) -> int:
    total = session.exec(
        select(func.coalesce(func.sum(col(CustomerCreditRow.amount_minor)), 0)).where(
            col(CustomerCreditRow.account_id) == account_id
        )
    ).one()
    return int(total)


def _post(
    session: Session,
    account: BillingAccountRow,
    key: IdempotencyKey,
    amount: int,
    reason: str,
    credit_note_id: str | None = None,
    payment_id: str | None = None,
) -> CustomerCreditRow:
    """Claim `key` with an entry, then refuse it if the balance would go below zero
    (or grow past the largest amount an account can hold).

    The caller holds the lock on `account`.
    """
    row = CustomerCreditRow(
        entry_id=new_id("CCR"),
        idempotency_key=key,
        account_id=account.account_id,
        currency=account.currency,
        amount_minor=amount,
        balance_after_minor=0,  # set below, once the sum includes this entry
        reason=reason,
        credit_note_id=credit_note_id,
        payment_id=payment_id,
    )
    session.add(row)
    session.flush()  # claims the idempotency key before the balance is checked
    balance = _credit_sum(session, account.account_id)
    if balance < 0:
        currency = account.currency
        raise BusinessError(
            "insufficient_credit",
            f"account {account.account_id} holds {from_minor(balance - amount, currency)} "
            f"{currency} of credit; {from_minor(-amount, currency)} {currency} cannot be used",
        )
    if not fits_amount_digits(from_minor(balance, account.currency), account.currency):
        raise BusinessError(
            "credit_balance_too_large",
            f"account {account.account_id} would hold more customer credit than an amount "
            f"can express ({MAX_AMOUNT_DIGITS} digits)",
        )
    row.balance_after_minor = balance
    return row


class LocalCredit:
    """Credit notes against invoices and the customer credit they leave over."""

    def __init__(self, database: LocalDatabase) -> None:
        self._db = database

    def find_credit_note(self, idempotency_key: IdempotencyKey) -> CreditNote | None:
        with self._db.reading() as session:
            return credit_note_by_key(session, idempotency_key)

    def list_credit_notes(self, invoice_id: str) -> list[CreditNote]:
        query = (
            select(CreditNoteRow)
            .where(col(CreditNoteRow.invoice_id) == invoice_id)
            .order_by(col(CreditNoteRow.created_at), col(CreditNoteRow.credit_note_id))
        )
        with self._db.reading() as session:
            return [_credit_note(row) for row in session.exec(query)]

    def paid_into(self, account_id: str, payment_id: str) -> bool:
        """Whether the payment's money reached this account: applied to one of its
        invoices, or kept on it as customer credit."""
        with self._db.reading() as session:
            applied = session.exec(
                select(PaymentApplicationRow.application_id)
                .join(
                    InvoiceRow, col(InvoiceRow.invoice_id) == col(PaymentApplicationRow.invoice_id)
                )
                .where(col(PaymentApplicationRow.payment_id) == payment_id)
                .where(col(InvoiceRow.account_id) == account_id)
            ).first()
            credited = session.exec(
                select(CustomerCreditRow.entry_id)
                .where(col(CustomerCreditRow.payment_id) == payment_id)
                .where(col(CustomerCreditRow.account_id) == account_id)
            ).first()
            return applied is not None or credited is not None

    def customer_credit(self, account_id: str) -> CreditBalance:
        """The account's credit (0 with no entries); `account_not_found`."""
        with self._db.reading() as session:
            account = _account(session, account_id)
            return _balance(account, _credit_sum(session, account_id))

    def post_customer_credit(self, entry: CustomerCreditEntry) -> CreditBalance:
        """Add (positive) or use (negative) credit once per key.

        BusinessError `account_not_found`, `currency_mismatch` (credit is held in the
        account's currency), `invalid_amount` (zero, or finer than the currency),
        `insufficient_credit`. A replay returns the balance right after the entry.
        """

        def find(session: Session) -> CreditBalance | None:
            row = session.exec(
                select(CustomerCreditRow).where(
                    col(CustomerCreditRow.idempotency_key) == entry.idempotency_key
                )
            ).first()
            if row is None:
                return None
            return _balance(_account(session, row.account_id), row.balance_after_minor)

        def create(session: Session) -> CreditBalance:
            account = _account(session, entry.account_id, lock=True)
            if entry.currency != account.currency:
                raise BusinessError(
                    "currency_mismatch",
                    f"account {account.account_id} holds credit in {account.currency}, "
                    f"not {entry.currency}",
                )
            amount = to_minor(entry.amount, entry.currency)
            if amount == 0:
                raise BusinessError("invalid_amount", "a credit entry cannot be zero")
            row = _post(
                session,
                account,
                entry.idempotency_key,
                amount,
                entry.reason,
                payment_id=entry.payment_id,
            )
            return _balance(account, row.balance_after_minor)

        return self._db.run_once(find, create)

    def create_credit_note(self, request: CreditNoteRequest) -> CreditNote:
        """Raise a credit note once per key: first off the invoice, the rest as credit.

        Its amount is the sum of its lines' amounts. It lowers the invoice's balance
        by up to that balance (an invoice brought to 0 is paid); what is left over is
        posted as customer credit on the invoice's account. BusinessError
        `invoice_not_found` (also for an invoice of another account),
        `currency_mismatch` (the invoice's currency, or an account in another
        currency that would have to hold the credit), `invoice_void`,
        `invalid_amount` (a negative line, a zero total) and `credit_exceeds_invoice`
        (all credit notes on an invoice together at most its amount).
        """

        def find(session: Session) -> CreditNote | None:
            return credit_note_by_key(session, request.idempotency_key)

        def create(session: Session) -> CreditNote:
            invoice = session.exec(
                select(InvoiceRow)
                .where(col(InvoiceRow.invoice_id) == request.invoice_id)
                .with_for_update(key_share=True)
                .execution_options(populate_existing=True)
            ).first()
            if invoice is None or invoice.account_id != request.account_id:
                raise BusinessError(
                    "invoice_not_found",
                    f"billing has no invoice {request.invoice_id} on account {request.account_id}",
                )
            currency = invoice.currency
            if request.currency != currency:
                raise BusinessError(
                    "currency_mismatch",
                    f"invoice {invoice.invoice_id} is in {currency}, the credit note in "
                    f"{request.currency}",
                )
            prices = [
                (to_minor(line.unit_price, currency), to_minor(line.amount, currency))
                for line in request.lines
            ]
            total = sum(amount for _, amount in prices)
            if total <= 0 or any(amount < 0 for _, amount in prices):
                raise BusinessError(
                    "invalid_amount", "a credit note needs a positive total and no negative line"
                )
            account = _account(session, invoice.account_id, lock=True)
            note = CreditNoteRow(
                credit_note_id=new_id("CN"),
                idempotency_key=request.idempotency_key,
                invoice_id=invoice.invoice_id,
                order_id=request.order_id,
                account_id=invoice.account_id,
                currency=currency,
                amount_minor=total,
                applied_minor=0,  # set below, once the invoice has moved
                to_credit_minor=0,
                reason=request.reason,
            )
            session.add(note)
            session.flush()  # claims the idempotency key before anything is checked
            if invoice.status == InvoiceStatus.VOID.value:
                raise BusinessError(
                    "invoice_void",
                    f"invoice {invoice.invoice_id} is void: there is nothing to credit",
                )
            credited = session.exec(
                select(func.sum(col(CreditNoteRow.amount_minor))).where(
                    col(CreditNoteRow.invoice_id) == invoice.invoice_id
                )
            ).one()
            if credited is not None and credited > invoice.amount_minor:
                earlier = from_minor(int(credited) - total, currency)
                raise BusinessError(
                    "credit_exceeds_invoice",
                    f"invoice {invoice.invoice_id} of {from_minor(invoice.amount_minor, currency)} "
                    f"{currency} has {earlier} {currency} credited already; "
                    f"{from_minor(total, currency)} {currency} more is too much",
                )
            applied = min(total, invoice.balance_minor)
            note.applied_minor, note.to_credit_minor = applied, total - applied
            invoice.balance_minor -= applied
            if invoice.balance_minor == 0:
                invoice.status = InvoiceStatus.PAID.value
            if note.to_credit_minor:
                if account.currency != currency:
                    raise BusinessError(
                        "currency_mismatch",
                        f"account {account.account_id} holds credit in {account.currency}; "
                        f"{from_minor(note.to_credit_minor, currency)} {currency} cannot go there",
                    )
                _post(
                    session,
                    account,
                    f"credit-note:{note.credit_note_id}",
                    note.to_credit_minor,
                    f"credit note {note.credit_note_id}: {request.reason}",
                    note.credit_note_id,
                )
            session.add_all(
                priced_line_rows(
                    CreditNoteLineRow,
                    {"credit_note_id": note.credit_note_id},
                    request.lines,
                    prices,
                )
            )
            session.flush()
            return _credit_note(note)

        return self._db.run_once(find, create)
