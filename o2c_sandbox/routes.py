"""One system's contract served over its adapter, as a FastAPI app.

The routes are made from the contract's `Operation`s, so the server answers exactly
what the HTTP client adapters call, and the OpenAPI document it generates is the
contract an integrator implements.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Annotated, Any

from fastapi import Body, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from adapters.errors import (
    BusinessError,
    RateLimited,
    SystemFailure,
    SystemTimeout,
    UnknownOutcome,
)
from adapters.http.client import IDEMPOTENCY_KEY_HEADER
from adapters.http.contract import Contract, Operation
from adapters.http.problems import NOT_FOUND, PROBLEM_MEDIA_TYPE, SystemProblem

log = logging.getLogger("o2c.sandbox")

CALLS_PATH = "/_sandbox/calls"
"""Where each system lists the requests it answered (`CallLog`), oldest first."""


@dataclass(frozen=True)
class Call:
    """One request as the sandbox saw it."""

    system: str
    operation: str
    method: str
    path: str
    status: int
    idempotency_key: str | None
    at: float
    """When it arrived, seconds since the epoch."""
    duration_ms: float


class CallLog:
    """The most recent requests to every system of one sandbox, oldest first."""

    def __init__(self, keep: int = 100_000) -> None:
        self._calls: deque[Call] = deque(maxlen=keep)

    def add(self, call: Call) -> None:
        self._calls.append(call)
        log.info(
            "%s %s %s -> %d in %.0f ms (%s%s)",
            call.system,
            call.method,
            call.path,
            call.status,
            call.duration_ms,
            call.operation,
            f", key {call.idempotency_key}" if call.idempotency_key else "",
        )

    def calls(self, system: str | None = None) -> list[Call]:
        return [call for call in self._calls if system is None or call.system == system]


@dataclass(frozen=True)
class Behaviour:
    """How the sandbox disturbs every request, besides the fault profile's rules."""

    latency_ms: int = 0
    hold_seconds: float = 10.0
    """How long a timeout or unknown outcome holds the request before answering 504:
    longer than the client's read timeout, so the client sees no answer at all."""
    token: str | None = None
    """When set, requests must carry `Authorization: Bearer <token>`."""


def problem(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = SystemProblem.of(status, code, detail).model_dump()
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def business_status(code: str) -> int:
    return 404 if code.endswith("_not_found") else 422


def contract_app(
    contract: Contract, adapter: object, calls: CallLog, behaviour: Behaviour = Behaviour()
) -> FastAPI:
    """`adapter` (any object with the contract's methods, faults applied or not) served
    at the contract's paths."""
    app = FastAPI(
        title=f"{contract.title} (o2c system contract)",
        description=contract.description,
        version="1",
        openapi_tags=[{"name": contract.system}],
    )
    for operation in contract.operations:
        app.add_api_route(
            operation.path,
            _endpoint(contract.system, operation, adapter, behaviour),
            methods=[operation.method],
            name=operation.name,
            operation_id=operation.name,
            summary=operation.summary,
            response_model=_response_model(operation),
            responses=_problem_responses(operation),
            status_code=200,
            tags=[contract.system],
        )

    def openapi() -> dict[str, Any]:
        document = app.openapi_schema
        if document is None:
            document = FastAPI.openapi(app)  # kept in app.openapi_schema
            _problems_as_problem_json(document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        where = "; ".join(
            f"{'.'.join(str(part) for part in detail['loc'])}: {detail['msg']}"
            for detail in error.errors()
        )
        return problem(422, "invalid_request", where)

    @app.get(CALLS_PATH, include_in_schema=False)
    async def recorded_calls() -> list[dict[str, Any]]:
        return [asdict(call) for call in calls.calls(contract.system)]

    @app.middleware("http")
    async def record(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        if request.url.path.startswith("/_sandbox"):
            return await call_next(request)
        arrived = time.time()
        started = time.perf_counter()
        if behaviour.token is not None and request.headers.get("Authorization") != (
            f"Bearer {behaviour.token}"
        ):
            response: Any = problem(401, "unauthorized", "a valid bearer token is required")
        else:
            if behaviour.latency_ms:
                await asyncio.sleep(behaviour.latency_ms / 1000)
            response = await call_next(request)
        route = request.scope.get("route")
        calls.add(
            Call(
                system=contract.system,
                operation=getattr(route, "name", "") or "",
                method=request.method,
                path=request.url.path,
                status=response.status_code,
                idempotency_key=request.headers.get(IDEMPOTENCY_KEY_HEADER),
                at=arrived,
                duration_ms=(time.perf_counter() - started) * 1000,
            )
        )
        return response

    return app


def _response_model(operation: Operation) -> Any:
    return operation.answer


def _problem_responses(operation: Operation) -> dict[int | str, dict[str, Any]]:
    retry_after = {"description": "Seconds to wait, or an HTTP date", "schema": {"type": "string"}}
    timed_out = "No answer in time"
    if operation.writes:
        timed_out += "; the write may have taken effect, and the same key answers its result"
    described: dict[int | str, dict[str, Any]] = {
        "4XX": {"model": SystemProblem, "description": "Refused: the problem's `code` says why"},
        429: {
            "model": SystemProblem,
            "description": "Rate limited; see `Retry-After`",
            "headers": {"Retry-After": retry_after},
        },
        503: {"model": SystemProblem, "description": "Unavailable; try again later"},
        504: {"model": SystemProblem, "description": timed_out},
    }
    if operation.absent_is_none:
        described[404] = {"model": SystemProblem, "description": f"`{NOT_FOUND}`: none made"}
    return described


def _problems_as_problem_json(document: dict[str, Any]) -> None:
    """FastAPI describes every response as `application/json`; problems are sent as
    `application/problem+json`, so the document says so."""
    problem_schema = {"$ref": f"#/components/schemas/{SystemProblem.__name__}"}
    for path in document["paths"].values():
        for described in path.values():
            for response in described["responses"].values():
                content = response.get("content", {})
                if content.get("application/json", {}).get("schema") == problem_schema:
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")


def _endpoint(
    system: str, operation: Operation, adapter: object, behaviour: Behaviour
) -> Callable[..., Awaitable[Any]]:
    method: Callable[..., Awaitable[Any]] = getattr(adapter, operation.name)

    async def endpoint(**given: Any) -> Any:
        body: BaseModel | None = given.get("body")
        if body is not None:
            if given["idempotency_key_header"] != operation.idempotency_key(body):
                return problem(
                    422,
                    "idempotency_key_mismatch",
                    f"the {IDEMPOTENCY_KEY_HEADER} header is not the request's key",
                )
            arguments: list[Any] = [body]
        else:
            arguments = [given[name] for name in operation.path_parameters]
            arguments += [given[name] for name, _ in operation.query]
        try:
            answer = await method(*arguments)
        except BusinessError as error:
            return problem(business_status(error.code), error.code, error.message)
        except RateLimited as error:
            seconds = error.retry_after.total_seconds() if error.retry_after else 1.0
            return problem(
                429, "rate_limited", str(error), {"Retry-After": str(max(1, math.ceil(seconds)))}
            )
        except (SystemTimeout, UnknownOutcome) as error:
            # No answer in time: the client gives up before this one comes.
            await asyncio.sleep(behaviour.hold_seconds)
            return problem(504, error.kind, str(error))
        except SystemFailure as error:
            return problem(503, error.kind, str(error))
        if answer is None and operation.absent_is_none:
            return problem(404, NOT_FOUND, f"no {system} {operation.name} result for this key")
        return answer

    endpoint.__name__ = operation.name
    endpoint.__signature__ = inspect.Signature(_parameters(operation))  # type: ignore[attr-defined]
    return endpoint


def _parameters(operation: Operation) -> list[inspect.Parameter]:
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [
        inspect.Parameter(name, keyword, annotation=Annotated[str, Path()])
        for name in operation.path_parameters
    ]
    parameters += [
        inspect.Parameter(name, keyword, annotation=Annotated[kind, Query()])
        for name, kind in operation.query
    ]
    if operation.body is not None:
        parameters.append(
            inspect.Parameter("body", keyword, annotation=Annotated[operation.body, Body()])
        )
        parameters.append(
            inspect.Parameter(
                "idempotency_key_header",
                keyword,
                annotation=Annotated[
                    str,
                    Header(
                        alias=IDEMPOTENCY_KEY_HEADER,
                        description="The request's `idempotency_key`; the same key answers "
                        "the first result again",
                    ),
                ],
            )
        )
    return parameters
