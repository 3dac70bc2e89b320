"""Idempotency keys on every POST, with Stripe's semantics.

A caller that sends `Idempotency-Key: <up to 255 characters>` with a POST may send the
same request again with the same key, as often as it likes, and gets the first answer
again (status, body, `Location` and the like) with `Idempotent-Replayed: true`, the
request not run a second time. The same key with another request (method, path, query
or body differ) is 422 naming the key; the same key while its first request is still
running is 409 (try again). Answers of 500 and above are not kept, nor 401, 403 and
415 (refusals about the caller or the headers, not the request): a retry runs again.

Keys are kept `O2C_IDEMPOTENCY_KEY_HOURS` (24 by default), then purged, and are per API
key: two callers' keys never meet. They live in the API's store
(`o2c_service/store.py`), keyed by (caller, key) under a unique index, so two API
processes sharing it run a request once: the second to claim a key finds the first's
claim and answers 409 until the first has answered. A claim whose process died
holding it is taken over after `ABANDONED_AFTER`.

Webhooks (`/webhooks/...`) have their own dedupe by `webhook-id` and are left alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Column, LargeBinary, delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, col
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.local.database import LocalDatabase
from o2c_service.access.keys import hash_key
from o2c_service.problems import (
    IDEMPOTENCY_KEY_IN_USE,
    IDEMPOTENCY_KEY_REUSED,
    Problem,
    field_error,
    invalid_request,
)
from o2c_service.store import ApiStore, ApiTable

log = logging.getLogger("o2c.api")

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_CHARS = 255
KEY_PATTERN = r"^[!-~](?:[ -~]*[!-~])?$"
"""Printable ASCII, spaces only inside: a UUID, say (`uuidgen`)."""
ABANDONED_AFTER = timedelta(minutes=15)
"""A claim older than this whose request never answered (its API process died) is taken
over by the next request with the key. Longer than any request runs: the longest waits
are a worker's acceptance and application of an event (70 s) and a refund (30 s)."""
PURGE_EVERY = timedelta(minutes=10)
"""How often (at most) a claim also deletes every expired key."""
KEPT_HEADERS = ("content-type", "location", "preference-applied")
"""The headers of an answer that are part of it, replayed with its status and body."""
NOT_KEPT = frozenset({401, 403, 415})
"""Answers about the caller or its headers, not about the request: a retry runs again."""
EXCLUDED_PREFIXES = ("/webhooks/",)
ANONYMOUS = "anonymous"
"""The scope of requests without an API key."""


def caller_scope(authorization: str | None) -> str:
    """Whose idempotency keys these are: the hash of the bearer token, if any."""
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return hash_key(token.strip())
    return ANONYMOUS


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    """What makes two requests the same request."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class IdempotencyRecord(ApiTable, table=True):
    """One idempotency key of one caller: the request it was first used for, and the
    answer once there is one (`status` None while the request runs)."""

    __tablename__ = "idempotency_keys"

    scope: str = Field(primary_key=True, max_length=64)
    key: str = Field(primary_key=True, max_length=MAX_KEY_CHARS)
    fingerprint: str = Field(max_length=64)
    method: str = Field(max_length=16)
    path: str
    claim: str = Field(max_length=32)
    """Which run of the request holds the key (a takeover gives it another)."""
    created_at: float = Field(index=True)
    """When the key was first used (Unix seconds): it expires from then."""
    started_at: float
    """When the request holding it started."""
    status: int | None = None
    headers: str | None = None
    """The kept headers as a JSON list of [name, value]."""
    body: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))


@dataclass(frozen=True)
class Claimed:
    claim: str


@dataclass(frozen=True)
class Answered:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class InUse:
    pass


@dataclass(frozen=True)
class UsedElsewhere:
    method: str
    path: str


Claim = Claimed | Answered | InUse | UsedElsewhere


class IdempotencyKeys:
    """The keys in the API's store; `clock` gives Unix seconds (tests move it)."""

    def __init__(
        self, store: ApiStore, keep: timedelta, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.keep = keep
        self.clock = clock
        self._purged_at = float("-inf")

    def database(self) -> LocalDatabase:
        return self.store.database()

    def claim(self, scope: str, key: str, request: str, method: str, path: str) -> Claim:
        """Take the key for this request, or what stands in the way of taking it."""
        try:
            return self._claim(scope, key, request, method, path)
        except IntegrityError:
            # Another process inserted the same key between our read and our insert
            # (PostgreSQL; SQLite serialises the whole transaction): read theirs.
            return self._claim(scope, key, request, method, path)

    def _claim(self, scope: str, key: str, request: str, method: str, path: str) -> Claim:
        now = self.clock()
        with self.database().session() as session:
            self._purge_now_and_then(session, now)
            found = session.get(IdempotencyRecord, (scope, key))
            if found is not None and found.created_at <= now - self.keep.total_seconds():
                session.delete(found)
                session.flush()
                found = None
            claim = uuid.uuid4().hex
            if found is None:
                session.add(IdempotencyRecord(
                    scope=scope, key=key, fingerprint=request, method=method, path=path,
                    claim=claim, created_at=now, started_at=now,
                ))  # fmt: skip
                return Claimed(claim)
            if found.fingerprint != request:
                return UsedElsewhere(found.method, found.path)
            if found.status is not None:
                headers = [(name, value) for name, value in json.loads(found.headers or "[]")]
                return Answered(found.status, headers, found.body or b"")
            if found.started_at > now - ABANDONED_AFTER.total_seconds():
                return InUse()
            log.warning("idempotency key %r: its request never answered; running it again", key)
            found.claim, found.started_at = claim, now
            session.add(found)
            return Claimed(claim)

    def _purge_now_and_then(self, session: Session, now: float) -> None:
        if now - self._purged_at < PURGE_EVERY.total_seconds():
            return
        self._purged_at = now
        cutoff = now - self.keep.total_seconds()
        expired = col(IdempotencyRecord.created_at) <= cutoff
        session.execute(delete(IdempotencyRecord).where(expired))

    def answer(self, scope: str, key: str, claim: str, answered: Answered) -> None:
        """Keep the answer of the request holding the key under `claim`."""
        with self.database().session() as session:
            found = session.get(IdempotencyRecord, (scope, key))
            if found is None or found.claim != claim:
                return  # taken over meanwhile (this request ran past ABANDONED_AFTER)
            found.status = answered.status
            found.headers = json.dumps(answered.headers)
            found.body = answered.body
            session.add(found)

    def release(self, scope: str, key: str, claim: str) -> None:
        """Forget the key: its request's answer is not kept, a retry runs again."""
        with self.database().session() as session:
            found = session.get(IdempotencyRecord, (scope, key))
            if found is not None and found.claim == claim:
                session.delete(found)


def _header(scope: Scope, name: bytes) -> str | None:
    for header, value in scope["headers"]:
        if header == name:
            text: str = value.decode("latin-1")
            return text
    return None


def _key_problem(key: str) -> Problem | None:
    if len(key) > MAX_KEY_CHARS:
        message = f"must be at most {MAX_KEY_CHARS} characters, not {len(key)}"
    elif not re.fullmatch(KEY_PATTERN, key):
        message = "must be printable ASCII characters (spaces only between them), such as a UUID"
    else:
        return None
    return invalid_request([field_error(("header", HEADER), message, input=key)])


KnownCaller = Callable[[str | None], Awaitable[bool]]
"""Whether an `Authorization` header carries a valid API key."""


class IdempotencyMiddleware:
    """Replays the kept answer of a POST sent again with the same `Idempotency-Key`."""

    def __init__(
        self, app: ASGIApp, keys: IdempotencyKeys, known_caller: KnownCaller | None = None
    ) -> None:
        self.app = app
        self.keys = keys
        self.known_caller = known_caller

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, b"idempotency-key") if scope["type"] == "http" else None
        path: str = scope.get("path", "")
        if key is None or scope["method"] != "POST" or path.startswith(EXCLUDED_PREFIXES):
            await self.app(scope, receive, send)
            return
        authorization = _header(scope, b"authorization")
        if self.known_caller is not None and not await self.known_caller(authorization):
            # No answer is kept for, or replayed to, a missing, unknown or revoked key:
            # the route refuses it (401) as it refuses any request without a key.
            await self.app(scope, receive, send)
            return
        refused = _key_problem(key)
        if refused is not None:
            await refused.send(send)
            return
        body = await _whole_body(receive)
        if body is None:  # the caller went, or the body is over the limit (BodyLimit answers)
            return
        request = fingerprint(scope["method"], path, scope.get("query_string", b""), body)
        owner = caller_scope(authorization)
        claim = await asyncio.to_thread(self.keys.claim, owner, key, request, "POST", path)
        if isinstance(claim, Answered):
            await _replay(claim, send)
        elif isinstance(claim, InUse):
            await Problem(
                IDEMPOTENCY_KEY_IN_USE,
                f"the request with {HEADER} '{key}' is still running; send it again in a "
                "moment for its answer",
                headers={"Retry-After": "1"},
            ).send(send)
        elif isinstance(claim, UsedElsewhere):
            await Problem(
                IDEMPOTENCY_KEY_REUSED,
                f"{HEADER} '{key}' was used for another request ({claim.method} {claim.path} "
                f"with other content) in the last {self.keys.keep.total_seconds() / 3600:g} "
                "hours; send a new key with a new request",
                errors=[field_error(("header", HEADER), "used for another request", input=key)],
            ).send(send)
        else:
            await self._run(scope, body, receive, send, owner, key, claim.claim)

    async def _run(self, scope: Scope, body: bytes, receive: Receive, send: Send,
                   owner: str, key: str, claim: str) -> None:  # fmt: skip
        delivered = False

        async def replayed_receive() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 0
        headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []
        settled = False

        async def keeping_send(message: Message) -> None:
            nonlocal status, headers, settled
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (name.decode("latin-1").lower(), value.decode("latin-1"))
                    for name, value in message.get("headers", [])
                    if name.decode("latin-1").lower() in KEPT_HEADERS
                ]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False) and not settled:
                    # Kept before the caller has the answer: a retry on receiving it finds
                    # the answer, not a claim still running.
                    settled = True
                    await self._settle(owner, key, claim, Answered(status, headers,
                                                                   b"".join(chunks)))  # fmt: skip
            await send(message)

        try:
            await self.app(scope, replayed_receive, keeping_send)
        finally:
            if not settled:
                await asyncio.to_thread(self.keys.release, owner, key, claim)

    async def _settle(self, owner: str, key: str, claim: str, answered: Answered) -> None:
        try:
            if answered.status >= 500 or answered.status in NOT_KEPT:
                await asyncio.to_thread(self.keys.release, owner, key, claim)
            else:
                await asyncio.to_thread(self.keys.answer, owner, key, claim, answered)
        except Exception:
            log.exception("idempotency key %r: its answer could not be kept; forgetting it", key)
            await asyncio.to_thread(self.keys.release, owner, key, claim)


async def _whole_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _replay(answered: Answered, send: Send) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1"))
               for name, value in answered.headers]  # fmt: skip
    headers += [(b"content-length", str(len(answered.body)).encode()),
                (REPLAYED_HEADER.lower().encode(), b"true")]  # fmt: skip
    await send({"type": "http.response.start", "status": answered.status, "headers": headers})
    await send({"type": "http.response.body", "body": answered.body})
