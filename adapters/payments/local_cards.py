"""Card authorisations and their captures, the local stand-in for a card gateway.

An authorisation reserves an amount for seven days; each capture takes part of
what is left and is recorded as a payment (the capture's key is the payment's
key, so `find_payment` finds it). The payment row claims the key first; then,
under a lock on the authorisation, the capture is checked and the available
amount lowered in the same transaction, so a replay that waited behind the first
finds its payment, and racing captures can never take more than was authorised.
A void is a one-way status change by a conditional UPDATE, like the other undos.

A card is stored first (`store`, the gateway's vault): the order then carries the
vault's `card_ref`, and an authorisation resolves it, for that order only. Orders
begun before the vault carry the token itself, which is still taken.

Test tokens drive the refusals a real gateway gives: a card token that starts
with `tok_declined` is declined, one that starts with `tok_expiring` is
authorised until the moment it was authorised, so any later capture finds it
expired.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from adapters.errors import BusinessError
from adapters.keys import IdempotencyKey
from adapters.local.database import LocalDatabase
from adapters.local.tables import (
    CardAuthorisationRow,
    CardCaptureRow,
    PaymentRow,
    StoredCardRow,
    as_utc,
    from_minor,
    new_id,
    to_minor,
    utc_now,
)
from adapters.payments.models import (
    Authorisation,
    AuthorisationStatus,
    AuthoriseCard,
    CaptureCard,
    StoreCard,
    StoredCard,
    VoidAuthorisation,
)

AUTHORISATION_LIFETIME = timedelta(days=7)
DECLINED_TOKEN_PREFIX = "tok_declined"
EXPIRING_TOKEN_PREFIX = "tok_expiring"


def _authorisation(row: CardAuthorisationRow) -> Authorisation:
    return Authorisation(
        authorisation_id=row.authorisation_id,
        order_id=row.order_id,
        amount=from_minor(row.available_minor, row.currency),
        currency=row.currency,
        expires_at=as_utc(row.expires_at),
        status=AuthorisationStatus(row.status),
    )


def _authorisation_by_key(session: Session, key: IdempotencyKey) -> Authorisation | None:
    row = session.exec(
        select(CardAuthorisationRow).where(col(CardAuthorisationRow.idempotency_key) == key)
    ).first()
    return None if row is None else _authorisation(row)


def _stored(row: StoredCardRow) -> StoredCard:
    return StoredCard(card_ref=row.card_ref, order_id=row.order_id)


def _stored_by_key(session: Session, key: IdempotencyKey) -> StoredCardRow | None:
    query = select(StoredCardRow).where(col(StoredCardRow.idempotency_key) == key)
    return session.exec(query).first()


def _card_token(session: Session, request: AuthoriseCard) -> str:
    """The token to charge: the stored card `card_ref` names, if it is this order's."""
    if request.card_ref is None:
        assert request.card_token is not None  # AuthoriseCard holds exactly one
        return request.card_token
    row = session.get(StoredCardRow, request.card_ref)
    if row is None or row.order_id != request.order_id:
        raise BusinessError(
            "card_not_found", f"no card {request.card_ref} is stored for {request.order_id}"
        )
    return row.card_token


def _not_found(authorisation_id: str) -> BusinessError:
    return BusinessError(
        "authorisation_not_found", f"the gateway has no authorisation {authorisation_id}"
    )


def _payment_conflict(payment_id: str) -> BusinessError:
    return BusinessError(
        "payment_conflict", f"payment {payment_id} was already recorded; a capture needs a new id"
    )


class LocalCards:
    """Authorise, capture and void card payments; a capture is a `payments` row."""

    def __init__(self, database: LocalDatabase) -> None:
        self._db = database

    def find_stored(self, idempotency_key: IdempotencyKey) -> StoredCard | None:
        with self._db.reading() as session:
            row = _stored_by_key(session, idempotency_key)
            return None if row is None else _stored(row)

    def store(self, request: StoreCard) -> StoredCard:
        """Store the token once per key; a replay answers the first `card_ref`.

        BusinessError `invalid_card` for a token that is blank or not one word.
        """

        def find(session: Session) -> StoredCard | None:
            row = _stored_by_key(session, request.idempotency_key)
            return None if row is None else _stored(row)

        def create(session: Session) -> StoredCard:
            token = request.card_token
            if not token or token != token.strip() or any(c.isspace() for c in token):
                raise BusinessError("invalid_card", "a card token is one word, with no spaces")
            row = StoredCardRow(
                card_ref=new_id("CARD"),
                idempotency_key=request.idempotency_key,
                order_id=request.order_id,
                card_token=token,
            )
            session.add(row)
            session.flush()
            return _stored(row)

        return self._db.run_once(find, create)

    def find_authorisation(self, idempotency_key: IdempotencyKey) -> Authorisation | None:
        with self._db.reading() as session:
            return _authorisation_by_key(session, idempotency_key)

    def authorise(self, request: AuthoriseCard) -> Authorisation:
        """Authorise once per key; a replay returns the authorisation as it stands.

        BusinessError `card_declined`, `card_not_found`, `invalid_amount` (not
        positive, or finer than the currency). A refused request records nothing: its
        key stays free.
        """

        def find(session: Session) -> Authorisation | None:
            return _authorisation_by_key(session, request.idempotency_key)

        def create(session: Session) -> Authorisation:
            amount = to_minor(request.amount, request.currency)
            if amount <= 0:
                raise BusinessError(
                    "invalid_amount", f"an authorisation must be positive, not {request.amount}"
                )
            token = _card_token(session, request)
            if token.startswith(DECLINED_TOKEN_PREFIX):
                raise BusinessError(
                    "card_declined", f"the card was declined for {request.order_id}"
                )
            now = utc_now()
            expiring = token.startswith(EXPIRING_TOKEN_PREFIX)
            row = CardAuthorisationRow(
                authorisation_id=new_id("AUT"),
                idempotency_key=request.idempotency_key,
                order_id=request.order_id,
                currency=request.currency,
                authorised_minor=amount,
                available_minor=amount,
                expires_at=now if expiring else now + AUTHORISATION_LIFETIME,
                status=AuthorisationStatus.AUTHORISED.value,
                created_at=now,
            )
            session.add(row)
            session.flush()
            return _authorisation(row)

        return self._db.run_once(find, create)

    def capture(self, request: CaptureCard) -> PaymentRow:
        """Capture once per key, recorded as payment `payment_id`; returns the payment row.

        BusinessError `authorisation_not_found`, `authorisation_voided`,
        `authorisation_expired` (now past `expires_at`), `invalid_amount`,
        `amount_exceeds_authorisation` (more than is still available) and
        `payment_conflict` (another payment already has this id). A replay returns
        the first capture's payment, whatever amount it now names.
        """

        def find(session: Session) -> PaymentRow | None:
            return session.exec(
                select(PaymentRow).where(col(PaymentRow.idempotency_key) == request.idempotency_key)
            ).first()

        def create(session: Session) -> PaymentRow:
            authorisation = session.get(CardAuthorisationRow, request.authorisation_id)
            if authorisation is None:
                raise _not_found(request.authorisation_id)
            currency = authorisation.currency
            amount = to_minor(request.amount, currency)
            if amount <= 0:
                raise BusinessError(
                    "invalid_amount", f"a capture must be positive, not {request.amount}"
                )
            recorded = session.get(PaymentRow, request.payment_id)
            if recorded is not None:
                if recorded.idempotency_key == request.idempotency_key:
                    return recorded  # this capture, committed since `find` looked
                raise _payment_conflict(request.payment_id)
            row = PaymentRow(
                payment_id=request.payment_id,
                idempotency_key=request.idempotency_key,
                order_id=authorisation.order_id,
                currency=currency,
                amount_minor=amount,
                reference=authorisation.authorisation_id,
            )
            session.add(row)
            session.flush()  # claims the idempotency key before the authorisation is checked
            # Locked, so that captures and voids of one authorisation queue up.
            authorisation = session.exec(
                select(CardAuthorisationRow)
                .where(col(CardAuthorisationRow.authorisation_id) == request.authorisation_id)
                .with_for_update(key_share=True)
                .execution_options(populate_existing=True)
            ).one()
            if authorisation.status == AuthorisationStatus.VOIDED.value:
                raise BusinessError(
                    "authorisation_voided",
                    f"authorisation {authorisation.authorisation_id} was voided",
                )
            if utc_now() > as_utc(authorisation.expires_at):
                raise BusinessError(
                    "authorisation_expired",
                    f"authorisation {authorisation.authorisation_id} expired at "
                    f"{as_utc(authorisation.expires_at).isoformat()}",
                )
            if amount > authorisation.available_minor:
                available = from_minor(authorisation.available_minor, currency)
                raise BusinessError(
                    "amount_exceeds_authorisation",
                    f"{request.amount} {currency} exceeds the {available} {currency} still "
                    f"available on authorisation {authorisation.authorisation_id}",
                )
            authorisation.available_minor -= amount
            session.add(
                CardCaptureRow(
                    payment_id=row.payment_id,
                    authorisation_id=authorisation.authorisation_id,
                    amount_minor=amount,
                )
            )
            session.flush()
            return row

        try:
            return self._db.run_once(find, create)
        except IntegrityError:
            # Not this key's capture (run_once would have returned it): the payment id
            # was taken by a payment recorded at the same moment under another key.
            with self._db.reading() as session:
                if session.get(PaymentRow, request.payment_id) is not None:
                    raise _payment_conflict(request.payment_id) from None
            raise

    def list_authorisations(self, order_id: str) -> list[Authorisation]:
        row = CardAuthorisationRow
        query = (
            select(row)
            .where(col(row.order_id) == order_id)
            .order_by(col(row.created_at), col(row.authorisation_id))
        )
        with self._db.reading() as session:
            return [_authorisation(found) for found in session.exec(query)]

    def void(self, request: VoidAuthorisation) -> Authorisation:
        """Authorised -> voided once, nothing left to capture; voiding again returns it.

        The status change, not the key, is the guard; the key that voided it is
        recorded. BusinessError `authorisation_not_found`.
        """
        with self._db.session() as session:
            session.exec(
                update(CardAuthorisationRow)
                .where(
                    col(CardAuthorisationRow.authorisation_id) == request.authorisation_id,
                    col(CardAuthorisationRow.status) == AuthorisationStatus.AUTHORISED.value,
                )
                .values(
                    status=AuthorisationStatus.VOIDED.value,
                    available_minor=0,
                    void_key=request.idempotency_key,
                    voided_at=utc_now(),
                )
                .execution_options(synchronize_session=False)
            )
            row = session.get(CardAuthorisationRow, request.authorisation_id)
            if row is None:
                raise _not_found(request.authorisation_id)
            return _authorisation(row)
