"""Console sessions: who is signed in, kept in the API's own database.

The cookie holds a random session id; the database keeps only its SHA-256 beside
the SHA-256 of the API key that signed in, the session's CSRF token and a flash
message for the next page. So a copy of the database signs no one in, every API
process sees the same sessions, and each request checks the key again through the
API's `Authenticator`: a revoked key ends its sessions within the key cache's 5 s.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime
from sqlmodel import Field, col, delete, select

from o2c_service.access.rules import Caller
from o2c_service.store import ApiStore, ApiTable

COOKIE = "o2c_console"
SIGN_IN_COOKIE = "o2c_console_sign_in"
"""The sign-in form's own token (double-submit): a cross-site page cannot sign a
browser in under a key of its choosing."""
COOKIE_PATH = "/console"
SESSION_HOURS = 12


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _as_utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they were stored in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class ConsoleSessionRow(ApiTable, table=True):
    __tablename__ = "console_sessions"

    session_sha256: str = Field(primary_key=True)
    key_sha256: str = Field(index=True)
    csrf_token: str
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    flash: str | None = None


@dataclass(frozen=True)
class Session:
    """A signed-in person: the key's caller, the session's id (the cookie) and CSRF token."""

    session_id: str
    caller: Caller
    csrf_token: str

    def csrf_matches(self, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(sent.encode(), self.csrf_token.encode())


class ConsoleSessions:
    """Opening, finding and ending sessions in the API's database."""

    def __init__(self, store: ApiStore, hours: int = SESSION_HOURS) -> None:
        self._store = store
        self.lifetime = timedelta(hours=hours)

    def _open(self, key_sha256: str) -> tuple[str, str]:
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._store.database().session() as db:
            db.execute(delete(ConsoleSessionRow).where(col(ConsoleSessionRow.expires_at) < _now()))
            db.add(
                ConsoleSessionRow(
                    session_sha256=_digest(session_id),
                    key_sha256=key_sha256,
                    csrf_token=csrf,
                    expires_at=_now() + self.lifetime,
                )
            )
        return session_id, csrf

    async def open(self, key_sha256: str) -> str:
        """A new session for the key; its id, for the cookie."""
        session_id, _ = await asyncio.to_thread(self._open, key_sha256)
        return session_id

    def _find(self, session_id: str) -> ConsoleSessionRow | None:
        with self._store.database().reading() as db:
            row = db.exec(
                select(ConsoleSessionRow).where(
                    ConsoleSessionRow.session_sha256 == _digest(session_id)
                )
            ).first()
        if row is None or _as_utc(row.expires_at) <= _now():
            return None
        return row

    async def find(self, session_id: str) -> tuple[str, str] | None:
        """The key digest and CSRF token of a live session; None if it is unknown or over."""
        row = await asyncio.to_thread(self._find, session_id)
        return None if row is None else (row.key_sha256, row.csrf_token)

    def _end(self, session_id: str) -> None:
        with self._store.database().session() as db:
            db.execute(
                delete(ConsoleSessionRow).where(
                    col(ConsoleSessionRow.session_sha256) == _digest(session_id)
                )
            )

    async def end(self, session_id: str) -> None:
        await asyncio.to_thread(self._end, session_id)

    def _set_flash(self, session_id: str, message: str | None) -> str | None:
        with self._store.database().session() as db:
            row = db.get(ConsoleSessionRow, _digest(session_id))
            if row is None or (message is None and row.flash is None):
                return None
            before, row.flash = row.flash, message
            db.add(row)
            return before

    async def flash(self, session_id: str, message: str) -> None:
        """A message for the next page this session opens (Post/Redirect/Get)."""
        await asyncio.to_thread(self._set_flash, session_id, message)

    async def take_flash(self, session_id: str) -> str | None:
        """The message left for this page, once."""
        return await asyncio.to_thread(self._set_flash, session_id, None)
