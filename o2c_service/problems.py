"""Every error the API answers, as an RFC 9457 problem details object.

`application/problem+json`: `type` (a URI naming the kind of problem, listed in
docs/errors.md), `title` (the kind, for people), `status`, `detail` (this
occurrence, for people), and extension members: `errors` for a request that is not
valid (each naming the field, `body.lines[0].quantity`, and what is wrong with it)
and `code` where the refusal has a business code (`payment_conflict`,
`insufficient_credit`). Routes raise `Problem` (or the `OrderError` family, or
Starlette's `HTTPException`); middlewares that answer before a route send
`problem_message` themselves. `add_problem_handlers` answers all of them, and
anything unexpected as a 500 that shows no traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Send

from o2c_service.outcomes import (
    EventRejected,
    EventStillApplying,
    InvalidOrder,
    InvalidParameter,
    OrderBroken,
    OrderConflict,
    OrderError,
    OrderNotFound,
    PaymentsUnavailable,
    TemporalUnavailable,
)

log = logging.getLogger("o2c.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:o2c:problem:"
"""Problem types are URNs, `urn:o2c:problem:<kind>`: stable names a client can match on,
each described under its kind in docs/errors.md (not addresses to fetch)."""
MAX_ECHOED_CHARS = 100
"""A validation error shows at most this much of the value it refuses."""
MAX_ERRORS_IN_DETAIL = 3
"""How many field errors `detail` spells out; `errors` lists them all."""


@dataclass(frozen=True)
class ProblemType:
    """One kind of problem: its `type` URI names it, its title and status go with it."""

    kind: str
    title: str
    status: int

    @property
    def uri(self) -> str:
        return f"{TYPE_PREFIX}{self.kind}"


BAD_REQUEST = ProblemType("bad-request", "Bad request", 400)
UNTRUSTED_HOST = ProblemType("untrusted-host", "Host not trusted", 400)
UNAUTHORIZED = ProblemType("unauthorized", "Not authenticated", 401)
FORBIDDEN = ProblemType("forbidden", "Not allowed", 403)
NOT_FOUND = ProblemType("not-found", "Not found", 404)
METHOD_NOT_ALLOWED = ProblemType("method-not-allowed", "Method not allowed", 405)
CONFLICT = ProblemType("conflict", "Conflicts with the order", 409)
EVENT_NOT_ALLOWED = ProblemType("event-not-allowed", "Event not allowed now", 409)
IDEMPOTENCY_KEY_IN_USE = ProblemType(
    "idempotency-key-in-use", "Idempotency key in use by a request still running", 409
)
BODY_TOO_LARGE = ProblemType("body-too-large", "Request body too large", 413)
UNSUPPORTED_MEDIA_TYPE = ProblemType("unsupported-media-type", "Unsupported media type", 415)
VALIDATION_ERROR = ProblemType("validation-error", "Request not valid", 422)
INVALID_EVENT = ProblemType("invalid-event", "Event contradicts the order", 422)
PAYLOAD_NOT_DECODABLE = ProblemType("payload-not-decodable", "Payload cannot be decrypted", 422)
IDEMPOTENCY_KEY_REUSED = ProblemType(
    "idempotency-key-reused", "Idempotency key used for another request", 422
)
INTERNAL_ERROR = ProblemType("internal-error", "Internal error", 500)
ORDER_BROKEN = ProblemType("order-broken", "The order cannot answer", 500)
SERVICE_UNAVAILABLE = ProblemType("service-unavailable", "Service unavailable", 503)

PROBLEM_TYPES: tuple[ProblemType, ...] = (
    BAD_REQUEST, UNTRUSTED_HOST, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, METHOD_NOT_ALLOWED,
    CONFLICT, EVENT_NOT_ALLOWED, IDEMPOTENCY_KEY_IN_USE, BODY_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE, VALIDATION_ERROR, INVALID_EVENT, IDEMPOTENCY_KEY_REUSED,
    PAYLOAD_NOT_DECODABLE,
    INTERNAL_ERROR, ORDER_BROKEN, SERVICE_UNAVAILABLE,
)  # fmt: skip
"""Every kind the API answers with (docs/errors.md has a section for each)."""

_BY_STATUS: dict[int, ProblemType] = {
    BAD_REQUEST.status: BAD_REQUEST,
    UNAUTHORIZED.status: UNAUTHORIZED,
    FORBIDDEN.status: FORBIDDEN,
    NOT_FOUND.status: NOT_FOUND,
    METHOD_NOT_ALLOWED.status: METHOD_NOT_ALLOWED,
    CONFLICT.status: CONFLICT,
    BODY_TOO_LARGE.status: BODY_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE.status: UNSUPPORTED_MEDIA_TYPE,
    VALIDATION_ERROR.status: VALIDATION_ERROR,
    INTERNAL_ERROR.status: INTERNAL_ERROR,
    SERVICE_UNAVAILABLE.status: SERVICE_UNAVAILABLE,
}


def problem_type_for(status: int) -> ProblemType:
    """The generic kind of an HTTP error status (`about:blank` style for any other)."""
    known = _BY_STATUS.get(status)
    if known is not None:
        return known
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return ProblemType(phrase.lower().replace(" ", "-"), phrase, status)


class FieldError(BaseModel):
    """One thing wrong with the request, and where."""

    field: str = Field(
        description="Where, as a path: `body.lines[0].quantity`, `query.limit`, "
        "`header.Idempotency-Key`."
    )
    loc: list[str | int] = Field(description="The same place as a list of keys and indexes.")
    type: str = Field(description="What kind of error, e.g. `greater_than`, `missing`.")
    msg: str = Field(description="What is wrong, for people.")
    input: Any = Field(
        default=None,
        description="The refused value, cut to 100 characters; absent for a missing field.",
    )


class ProblemDetails(BaseModel):
    """An error, as RFC 9457 problem details (`application/problem+json`)."""

    type: str = Field(description="Names the kind of problem: `urn:o2c:problem:<kind>`.")
    title: str = Field(description="The kind of problem, for people; the same for every one.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="This occurrence, for people: what went wrong and why.")
    code: str | None = Field(
        default=None,
        description="The business code of a refusal, e.g. `payment_conflict`, "
        "`insufficient_credit`, where there is one.",
    )
    errors: list[FieldError] | None = Field(
        default=None, description="Each field that is not valid, and why (422)."
    )


class Problem(Exception):
    """Raise to answer with a problem: `raise Problem(NOT_FOUND, "no such order")`."""

    def __init__(
        self,
        problem_type: ProblemType,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        code: str | None = None,
        errors: Sequence[FieldError] | None = None,
    ) -> None:
        super().__init__(detail)
        self.problem_type = problem_type
        self.detail = detail
        self.headers = headers or {}
        self.code = code
        self.errors = list(errors) if errors is not None else None

    def body(self) -> ProblemDetails:
        problem = ProblemDetails(
            type=self.problem_type.uri,
            title=self.problem_type.title,
            status=self.problem_type.status,
            detail=self.detail,
        )
        if self.code is not None:
            problem.code = self.code
        if self.errors is not None:
            problem.errors = self.errors
        return problem

    def encoded(self) -> bytes:
        # Unset members are left out: `input` only where a value was refused.
        return json.dumps(self.body().model_dump(mode="json", exclude_unset=True)).encode()

    def response(self) -> Response:
        return Response(
            self.encoded(),
            status_code=self.problem_type.status,
            headers=self.headers,
            media_type=PROBLEM_MEDIA_TYPE,
        )

    async def send(self, send: Send) -> None:
        """Answer from raw ASGI code (a middleware that refuses before any route runs)."""
        body = self.encoded()
        headers = [(b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                   (b"content-length", str(len(body)).encode())]  # fmt: skip
        headers += [(name.lower().encode(), value.encode()) for name, value in self.headers.items()]
        await send({"type": "http.response.start", "status": self.problem_type.status,
                    "headers": headers})  # fmt: skip
        await send({"type": "http.response.body", "body": body})


# -- validation errors ------------------------------------------------------------------------


def field_path(loc: Iterable[str | int]) -> str:
    """`("body", "lines", 0, "quantity")` -> `body.lines[0].quantity`."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def echoed(value: Any) -> Any:
    """The refused value, short: scalars as they are, anything longer cut."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else json.dumps(jsonable_encoder(value))
    return text if len(text) <= MAX_ECHOED_CHARS else text[:MAX_ECHOED_CHARS] + "..."


def field_error(
    loc: Sequence[str | int], message: str, *, kind: str = "value_error", **refused: Any
) -> FieldError:
    """One field error; pass `input=` to echo (cut short) the value refused."""
    error = FieldError(field=field_path(loc), loc=list(loc), type=kind, msg=message)
    if "input" in refused:
        error.input = echoed(refused["input"])
    return error


def field_errors(error: RequestValidationError) -> list[FieldError]:
    """Each error with the field it is about and at most the refused value: never the
    whole body (a missing field's `input` would be the body around it)."""
    found: list[FieldError] = []
    for item in error.errors():
        loc = [part if isinstance(part, int) else str(part) for part in item["loc"]]
        refused = (
            {"input": item["input"]}
            if item["type"] not in ("missing", "json_invalid") and "input" in item
            else {}
        )
        found.append(field_error(loc, item["msg"], kind=item["type"], **refused))
    return found


def invalid_request(errors: Sequence[FieldError]) -> Problem:
    """422 for a request that is not valid, its first few errors spelt out in `detail`."""
    said = "; ".join(f"{error.field}: {error.msg}" for error in errors[:MAX_ERRORS_IN_DETAIL])
    more = len(errors) - MAX_ERRORS_IN_DETAIL
    if more > 0:
        said += f"; and {more} more (see errors)"
    return Problem(VALIDATION_ERROR, said or "the request is not valid", errors=errors)


# -- the order service's outcomes -------------------------------------------------------------


def order_problem(error: OrderError) -> Problem:
    """The problem an `OrderError` is (not `EventStillApplying`, a 202, not an error)."""
    if isinstance(error, InvalidParameter):
        return invalid_request([field_error(("query", error.field), str(error))])
    if isinstance(error, InvalidOrder):
        return invalid_request([field_error(error.loc, str(error))])
    if isinstance(error, PaymentsUnavailable):
        return Problem(SERVICE_UNAVAILABLE, str(error))
    if isinstance(error, EventRejected):
        kind = INVALID_EVENT if error.invalid else EVENT_NOT_ALLOWED
        return Problem(kind, str(error), code=error.code)
    if isinstance(error, OrderNotFound):
        return Problem(NOT_FOUND, str(error))
    if isinstance(error, OrderConflict):
        return Problem(CONFLICT, str(error))
    if isinstance(error, OrderBroken):
        return Problem(ORDER_BROKEN, str(error))
    if isinstance(error, TemporalUnavailable):
        return Problem(SERVICE_UNAVAILABLE, str(error))
    assert not isinstance(error, EventStillApplying), "a 202, answered by the route"
    return Problem(INTERNAL_ERROR, f"the order service failed: {error}")


# -- the handlers -----------------------------------------------------------------------------


def _http_problem(request: Request, error: HTTPException) -> Problem:
    """Starlette's and FastAPI's own errors (404 no route, 405, an auth check's 401/403)."""
    headers = dict(error.headers or {})
    problem_type = problem_type_for(error.status_code)
    detail = error.detail if isinstance(error.detail, str) else None
    if error.status_code == 404 and detail in (None, "Not Found"):
        detail = f"nothing is at {request.url.path}"
    elif error.status_code == 405:
        # Starlette names the methods of the first route at the path; a path may have several.
        allowed = _allowed_methods(request)
        headers = {name: value for name, value in headers.items() if name.lower() != "allow"}
        headers["Allow"] = ", ".join(allowed)
        if detail in (None, "Method Not Allowed"):
            detail = f"{request.method} is not allowed on {request.url.path}; allowed: " + (
                ", ".join(allowed)
            )
    return Problem(problem_type, detail or problem_type.title, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route at the request's path answers."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": ""})
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def add_problem_handlers(app: FastAPI) -> None:
    """Answer every error the routes raise as problem details."""

    @app.exception_handler(Problem)
    async def problem(_: Request, error: Problem) -> Response:
        return error.response()

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        return _http_problem(request, error).response()

    @app.exception_handler(RequestValidationError)
    async def not_valid(_: Request, error: RequestValidationError) -> Response:
        return invalid_request(field_errors(error)).response()

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        # Starlette logs the exception with its traceback; the caller sees none of it.
        del error
        return Problem(
            INTERNAL_ERROR,
            f"the API failed to answer {request.method} {request.url.path}; the API's log "
            "has the details",
        ).response()
