"""`SystemClient`: one pooled `httpx.AsyncClient` per system, and the one place where
an HTTP answer becomes an adapter's answer or error.

No retries here: a failure is raised as `adapters.errors` and Temporal's retry policy
decides (activities/options.py). A write whose answer never came is an
`UnknownOutcome`, so the activity looks the operation up by its key before it tries
again (activities/calls.py `once`).
"""

from __future__ import annotations

import email.utils
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from adapters.errors import (
    BusinessError,
    RateLimited,
    SystemFailure,
    SystemTimeout,
    SystemUnavailable,
    UnknownOutcome,
)
from adapters.http.contract import Contract, Operation
from adapters.http.pacing import Pacer
from adapters.http.problems import NOT_FOUND

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class Remote:
    """Where one system is and how to reach it."""

    base_url: str
    token: str | None = None
    connect_timeout: float = 2.0
    read_timeout: float = 10.0
    rate_limit: float | None = None
    """Calls per second this process may start (`Pacer`); None: as fast as asked."""


@cache
def _reader(answer: Any) -> TypeAdapter[Any]:
    return TypeAdapter(answer)


def retry_after(value: str | None, now: datetime | None = None) -> timedelta | None:
    """`Retry-After` as seconds or as an HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(timedelta(0), when - (now or datetime.now(UTC)))


class SystemClient:
    """Calls one system's contract over HTTP."""

    def __init__(
        self,
        contract: Contract,
        remote: Remote,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.contract = contract
        self.remote = remote
        self._pacer = Pacer(remote.rate_limit) if remote.rate_limit else None
        headers = {"Accept": "application/json"}
        if remote.token:
            headers["Authorization"] = f"Bearer {remote.token}"
        self._http = httpx.AsyncClient(
            base_url=remote.base_url,
            headers=headers,
            timeout=httpx.Timeout(remote.read_timeout, connect=remote.connect_timeout),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(self, name: str, *args: Any) -> Any:
        """Make the operation `name` with the method's arguments; answer its result."""
        operation = self.contract.operation(name)
        request = self._request(operation, args)
        where = f"{self.contract.system} {operation.method} {operation.path}"
        if self._pacer is not None:
            await self._pacer.turn()
        try:
            response = await self._http.send(request)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            # Nothing reached the system: safe to send again.
            kind = SystemTimeout if isinstance(error, httpx.TimeoutException) else SystemUnavailable
            raise kind(f"{where}: could not connect ({self._transport(error)})") from error
        except httpx.TransportError as error:
            why = f"no answer ({self._transport(error)})"
            if operation.writes:
                raise UnknownOutcome(f"{where}: {why}; it may have taken effect") from error
            if isinstance(error, httpx.TimeoutException):
                raise SystemTimeout(f"{where}: {why}") from error
            raise SystemUnavailable(f"{where}: {why}") from error
        return self._answer(operation, response, where)

    def _transport(self, error: httpx.TransportError) -> str:
        """The transport error for a person: httpx's timeouts and resets carry no text."""
        said = str(error)
        if not said:
            if isinstance(error, httpx.ConnectTimeout):
                said = f"not connected within {self.remote.connect_timeout:g} s"
            elif isinstance(error, httpx.TimeoutException):
                said = f"nothing within {self.remote.read_timeout:g} s"
            else:
                said = "the connection was closed"
        return f"{type(error).__name__}: {said}"

    def _request(self, operation: Operation, args: tuple[Any, ...]) -> httpx.Request:
        given = list(args)
        path = operation.path
        for parameter in operation.path_parameters:
            path = path.replace(f"{{{parameter}}}", quote(str(given.pop(0)), safe=""))
        if operation.body is not None:
            (body,) = given
            if not isinstance(body, BaseModel):
                raise TypeError(f"{operation.name} takes a {operation.body.__name__}")
            return self._http.build_request(
                operation.method,
                path,
                content=body.model_dump_json(),
                headers={
                    "Content-Type": "application/json",
                    IDEMPOTENCY_KEY_HEADER: operation.idempotency_key(body),
                },
            )
        query = {name: str(value) for (name, _), value in zip(operation.query, given, strict=True)}
        return self._http.build_request(operation.method, path, params=query)

    def _answer(self, operation: Operation, response: httpx.Response, where: str) -> Any:
        status = response.status_code
        if 200 <= status < 300:
            try:
                return _reader(operation.answer).validate_json(response.content)
            except ValidationError as error:
                why = f"answered {status} with a body that is not a {operation.answer!r}: {error}"
                if operation.writes:
                    raise UnknownOutcome(f"{where}: {why}; it may have taken effect") from error
                raise SystemFailure(f"{where}: {why}") from error
        code, detail = _problem(response)
        if status == 404 and operation.absent_is_none and code == NOT_FOUND:
            return None
        if status == 429:
            raise RateLimited(
                f"{where}: rate limited (429){_said(detail)}",
                retry_after=retry_after(response.headers.get("Retry-After")),
            )
        if status in (502, 503):
            raise SystemUnavailable(f"{where}: unavailable ({status}){_said(detail)}")
        if status == 504:
            if operation.writes:
                raise UnknownOutcome(
                    f"{where}: gateway timeout (504); it may have taken effect{_said(detail)}"
                )
            raise SystemTimeout(f"{where}: gateway timeout (504){_said(detail)}")
        if status in (401, 403):
            # Our credentials, not the order: retried (and alerted on) until someone fixes
            # the token, never an order held for a business reason it does not have.
            raise SystemFailure(
                f"{where}: {status}, the system refused our credentials "
                f"(O2C_{self.contract.system.upper()}_TOKEN){_said(detail)}"
            )
        if 400 <= status < 500 and code is not None:
            raise BusinessError(code, detail or code)
        raise SystemFailure(
            f"{where}: unexpected status {status}{_said(detail or response.text[:200])}"
        )


def _said(detail: str | None) -> str:
    return f": {detail}" if detail else ""


def _problem(response: httpx.Response) -> tuple[str | None, str | None]:
    """The business code and detail of a problem body, if it is one."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    code = body.get("code")
    detail = body.get("detail")
    return (
        code if isinstance(code, str) and code else None,
        detail if isinstance(detail, str) else None,
    )
