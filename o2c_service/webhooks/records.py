"""What the API keeps about webhooks in its own store (`o2c_service/store.py`): each
source's secrets, and each delivery by its `webhook-id`.

Secrets: the newest of a source is current; rotating gives the one before it an end
(`expires_at`, after a grace period), and until then both verify. They are kept as
they are, not hashed: verifying a signature needs the secret itself.

Deliveries: a row per (source, webhook-id), under a unique index. Inserting it
claims the delivery, so of two copies arriving at once only one goes to the order;
the row is completed (`outcome`) once the event is durably with the order or was
recorded as rejected, and deleted again when it was not taken (Temporal down), so
the sender's retry is. A claim left by a process that died mid-way is taken over
after `lease`: the order applies a copy of an event once, so sending it again is safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import DateTime, Index, UniqueConstraint, delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, col, select

from adapters.local.database import LocalDatabase
from o2c_service.store import ApiTable
from o2c_service.webhooks.signatures import new_secret
from o2c_service.webhooks.sources import WebhookSource


class Outcome(StrEnum):
    APPLIED = "applied"
    """The order applied the event (or had: a copy is answered as a duplicate)."""
    ACCEPTED = "accepted"
    """The order accepted the event durably and is still applying it."""
    NOTED = "noted"
    """Kept as a note on the order (an event it does not act on)."""
    REJECTED = "rejected"
    """The order refused it (or there is no such order): recorded for support."""


def as_utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they were stored in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class WebhookSecret(ApiTable, table=True):
    __tablename__ = "webhook_secrets"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(index=True)
    secret: str
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    expires_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    """None while current; set when a newer secret replaces it."""


class WebhookDelivery(ApiTable, table=True):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("source", "webhook_id"),
        Index("ix_webhook_deliveries_outcome_order", "outcome", "order_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str
    webhook_id: str
    claimed_at: datetime = Field(sa_type=DateTime(timezone=True))
    event_type: str | None = None
    order_id: str | None = None
    outcome: str | None = None
    """None while a request is taking it to the order."""
    reason: str | None = None
    answer: str | None = None
    """The answer given (JSON), given again to a copy."""
    recorded_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


# -- secrets ---------------------------------------------------------------------


def rotate_secret(store: LocalDatabase, source: WebhookSource, grace: timedelta,
                  now: datetime) -> str:  # fmt: skip
    """A new current secret for `source`; the secrets current until now verify until
    `now + grace` (at once no more with a zero grace). The first call just creates one."""
    secret = new_secret()
    with store.session() as session:
        ending = now + grace
        expires = col(WebhookSecret.expires_at)
        session.execute(
            update(WebhookSecret)
            .where(col(WebhookSecret.source) == source.value)
            .where(expires.is_(None) | (expires > ending))
            .values(expires_at=ending)
        )
        session.add(WebhookSecret(source=source.value, secret=secret, created_at=now))
    return secret


def retire_previous(store: LocalDatabase, source: WebhookSource, now: datetime) -> int:
    """End the grace period of every secret of `source` but the current one, now; how
    many still verified until then."""
    with store.session() as session:
        ended = session.execute(
            update(WebhookSecret)
            .where(col(WebhookSecret.source) == source.value)
            .where(col(WebhookSecret.expires_at) > now)
            .values(expires_at=now)
        )
    return int(ended.rowcount)  # type: ignore[attr-defined]


def secrets_in_force(store: LocalDatabase, source: WebhookSource, now: datetime) -> list[str]:
    """The secrets that verify a delivery from `source` now, newest first."""
    with store.reading() as session:
        rows = session.exec(
            select(WebhookSecret)
            .where(WebhookSecret.source == source.value)
            .order_by(col(WebhookSecret.id).desc())
        ).all()
    return [row.secret for row in rows if row.expires_at is None or as_utc(row.expires_at) > now]


@dataclass(frozen=True)
class SecretInfo:
    source: str
    created_at: datetime
    expires_at: datetime | None


def list_secrets(store: LocalDatabase, now: datetime) -> list[SecretInfo]:
    """The secrets in force, without the secrets themselves: newest first per source."""
    with store.reading() as session:
        rows = session.exec(
            select(WebhookSecret).order_by(col(WebhookSecret.source), col(WebhookSecret.id).desc())
        ).all()
    return [
        SecretInfo(row.source, as_utc(row.created_at),
                   as_utc(row.expires_at) if row.expires_at else None)
        for row in rows
        if row.expires_at is None or as_utc(row.expires_at) > now
    ]  # fmt: skip


# -- deliveries ------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """This request takes the delivery to the order; `claimed_at` identifies its claim."""

    claimed_at: datetime


@dataclass(frozen=True)
class AlreadyDone:
    """A copy of a delivery already completed: its answer, given again."""

    outcome: Outcome
    answer: str


@dataclass(frozen=True)
class InProgress:
    """Another request is taking the same delivery to the order right now."""


def claim(store: LocalDatabase, source: WebhookSource, webhook_id: str, now: datetime,
          lease: timedelta) -> Claimed | AlreadyDone | InProgress:  # fmt: skip
    """Claim the delivery `webhook_id` of `source`, or say who has it."""
    try:
        with store.session() as session:
            session.add(WebhookDelivery(source=source.value, webhook_id=webhook_id,
                                        claimed_at=now))  # fmt: skip
        return Claimed(now)
    except IntegrityError:
        pass
    with store.session() as session:
        row = session.exec(
            select(WebhookDelivery)
            .where(WebhookDelivery.source == source.value)
            .where(WebhookDelivery.webhook_id == webhook_id)
        ).one()
        if row.outcome is not None:
            assert row.answer is not None
            return AlreadyDone(Outcome(row.outcome), row.answer)
        if as_utc(row.claimed_at) > now - lease:
            return InProgress()
        # The claim's request died mid-way: take it over, unless another just did.
        taken = session.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id) == row.id)
            .where(col(WebhookDelivery.claimed_at) == row.claimed_at)
            .where(col(WebhookDelivery.outcome).is_(None))
            .values(claimed_at=now)
        )
        return Claimed(now) if taken.rowcount == 1 else InProgress()  # type: ignore[attr-defined]


def complete(
    store: LocalDatabase,
    source: WebhookSource,
    webhook_id: str,
    claimed: Claimed,
    *,
    event_type: str,
    order_id: str,
    outcome: Outcome,
    reason: str | None,
    answer: str,
    now: datetime,
) -> None:
    """Record how the claimed delivery ended: from now on a copy is answered `answer`."""
    with store.session() as session:
        session.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.source) == source.value)
            .where(col(WebhookDelivery.webhook_id) == webhook_id)
            .where(col(WebhookDelivery.claimed_at) == claimed.claimed_at)
            .values(event_type=event_type, order_id=order_id, outcome=outcome.value,
                    reason=reason, answer=answer, recorded_at=now)
        )  # fmt: skip


def release(store: LocalDatabase, source: WebhookSource, webhook_id: str,
            claimed: Claimed) -> None:  # fmt: skip
    """Forget a claimed delivery the order did not take: the sender's retry is taken."""
    with store.session() as session:
        session.execute(
            delete(WebhookDelivery)
            .where(col(WebhookDelivery.source) == source.value)
            .where(col(WebhookDelivery.webhook_id) == webhook_id)
            .where(col(WebhookDelivery.claimed_at) == claimed.claimed_at)
            .where(col(WebhookDelivery.outcome).is_(None))
        )


def rejected(store: LocalDatabase, *, order_id: str | None, source: WebhookSource | None,
             limit: int) -> tuple[list[WebhookDelivery], int]:  # fmt: skip
    """Rejected deliveries, newest first (at most `limit`), and how many match in all."""
    query = select(WebhookDelivery).where(WebhookDelivery.outcome == Outcome.REJECTED.value)
    count = (
        select(func.count())
        .select_from(WebhookDelivery)
        .where(col(WebhookDelivery.outcome) == Outcome.REJECTED.value)
    )
    if order_id is not None:
        query = query.where(WebhookDelivery.order_id == order_id)
        count = count.where(col(WebhookDelivery.order_id) == order_id)
    if source is not None:
        query = query.where(WebhookDelivery.source == source.value)
        count = count.where(col(WebhookDelivery.source) == source.value)
    with store.reading() as session:
        rows = session.exec(query.order_by(col(WebhookDelivery.id).desc()).limit(limit)).all()
        total = session.exec(count).one()
    return list(rows), int(total)


def rejected_counts(store: LocalDatabase, order_ids: list[str]) -> dict[str, int]:
    """How many rejected deliveries each of these orders has (orders with none left out)."""
    if not order_ids:
        return {}
    with store.reading() as session:
        rows = session.exec(
            select(WebhookDelivery.order_id, func.count())
            .where(WebhookDelivery.outcome == Outcome.REJECTED.value)
            .where(col(WebhookDelivery.order_id).in_(order_ids))
            .group_by(col(WebhookDelivery.order_id))
        ).all()
    return {order_id: int(n) for order_id, n in rows if order_id is not None}
