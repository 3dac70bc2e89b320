"""API keys: who may call the API, kept in the API's own database (`o2c_service.store`).

A key is a long random token (`o2c_` and 43 URL-safe characters, 256 bits) shown
once, when it is created. The database keeps only its SHA-256, beside a public id
(`key_...`), a name, a role and when it was created and revoked: a copy of the
database lets no one call the API. Names are unique among keys not revoked, so a
key can be named to revoke it, and a rotated key can take its predecessor's name
once that one is revoked.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import DateTime
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, col, select

from adapters.local.database import LocalDatabase
from o2c_service.access.roles import Role
from o2c_service.store import ApiTable, open_store

SECRET_PREFIX = "o2c_"
KEY_ID_PREFIX = "key_"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
"""1-64 letters, digits, '_', '.', '-', starting with a letter or digit."""


def hash_key(secret: str) -> str:
    """The hex SHA-256 of a key (of any bearer token): what the database keeps of it."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _as_utc(moment: datetime | None) -> datetime | None:
    """SQLite hands timestamps back without their zone; they were stored in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


class ApiKeyRow(ApiTable, table=True):
    __tablename__ = "api_keys"

    key_id: str = Field(primary_key=True)
    name: str = Field(index=True)
    active_name: str | None = Field(default=None, unique=True)
    """The name while the key is not revoked, NULL after: unique among live keys only."""
    role: str
    secret_sha256: str = Field(unique=True)
    created_at: datetime = Field(default_factory=_utc_now, sa_type=DateTime(timezone=True))
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class ApiKey(BaseModel):
    """A key as `o2c keys list` shows it: never its secret."""

    key_id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def actor(self) -> str:
        """How the order's state and timeline name what this key did: `name (key_id)`."""
        return f"{self.name} ({self.key_id})"

    @classmethod
    def of(cls, row: ApiKeyRow) -> ApiKey:
        created = _as_utc(row.created_at)
        assert created is not None
        return cls(
            key_id=row.key_id,
            name=row.name,
            role=Role(row.role),
            created_at=created,
            revoked_at=_as_utc(row.revoked_at),
        )


class NewKey(ApiKey):
    """A key just created: the only time its secret is known."""

    key: str


class KeyRefused(Exception):
    """A key command that cannot be done: the message says why."""


class KeyStore:
    """Creating, listing, revoking and finding keys in the API's database."""

    def __init__(self, database: LocalDatabase) -> None:
        self.database = database

    @classmethod
    def open(cls, url: str) -> KeyStore:
        return cls(open_store(url))

    def close(self) -> None:
        self.database.dispose()

    def create(self, name: str, role: Role) -> NewKey:
        if not NAME_PATTERN.match(name):
            raise KeyRefused(
                f"name '{name}' is not 1-64 letters, digits, '_', '.', '-' starting with a "
                "letter or digit"
            )
        secret = new_secret()
        row = ApiKeyRow(
            key_id=KEY_ID_PREFIX + secrets.token_hex(6),
            name=name,
            active_name=name,
            role=role.value,
            secret_sha256=hash_key(secret),
        )
        try:
            with self.database.session() as session:
                session.add(row)
        except IntegrityError:
            if self.find_active(name) is not None:
                raise KeyRefused(
                    f"a key named '{name}' exists and is not revoked: choose another name, "
                    f"or revoke it first (o2c keys revoke {name})"
                ) from None
            raise
        return NewKey(**ApiKey.of(row).model_dump(), key=secret)

    def list(self) -> list[ApiKey]:
        """Every key, oldest first, revoked ones too."""
        with self.database.reading() as session:
            rows = session.exec(select(ApiKeyRow).order_by(col(ApiKeyRow.created_at))).all()
            return [ApiKey.of(row) for row in rows]

    def find_active(self, name: str) -> ApiKey | None:
        with self.database.reading() as session:
            row = session.exec(select(ApiKeyRow).where(ApiKeyRow.active_name == name)).first()
            return ApiKey.of(row) if row is not None else None

    def by_secret(self, secret: str) -> ApiKey | None:
        """The key with this secret if it is not revoked."""
        return self.by_hash(hash_key(secret))

    def by_hash(self, secret_sha256: str) -> ApiKey | None:
        """The key whose secret has this SHA-256, if it is not revoked: one read of a
        unique index."""
        with self.database.reading() as session:
            row = session.exec(
                select(ApiKeyRow).where(
                    ApiKeyRow.secret_sha256 == secret_sha256,
                    col(ApiKeyRow.revoked_at).is_(None),
                )
            ).first()
            return ApiKey.of(row) if row is not None else None

    def revoke(self, id_or_name: str) -> tuple[ApiKey, bool]:
        """Revoke the key with this id, or the live key with this name; the key, and whether
        this call revoked it (False: it was revoked already)."""
        with self.database.session() as session:
            row = _found(session, id_or_name)
            if row.revoked_at is not None:
                return ApiKey.of(row), False
            row.revoked_at = _utc_now()
            row.active_name = None
            session.add(row)
            session.flush()
            return ApiKey.of(row), True


def _found(session: Session, id_or_name: str) -> ApiKeyRow:
    row = session.get(ApiKeyRow, id_or_name)
    if row is None:
        row = session.exec(select(ApiKeyRow).where(ApiKeyRow.active_name == id_or_name)).first()
    if row is None:
        row = session.exec(
            select(ApiKeyRow)
            .where(ApiKeyRow.name == id_or_name)
            .order_by(col(ApiKeyRow.created_at).desc())
        ).first()
    if row is None:
        raise KeyRefused(f"no key has the id or name '{id_or_name}' (see o2c keys list)")
    return row
