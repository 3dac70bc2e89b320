"""The OpenAPI document, with every error status each route can answer, derived in one
place from what the route is (its method, whether it names an order, whether it is
public) rather than declared by hand on each: a new route is documented as its kind is.

Every error is problem details (`o2c_service.problems.ProblemDetails`) as
`application/problem+json`. A route's own description of a status (`responses=` on the
route, e.g. what a 409 means for an event) is kept; only its schema is set here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from o2c_service.access.rules import PUBLIC, SIGNED, rule_for
from o2c_service.idempotency import (
    EXCLUDED_PREFIXES,
    HEADER,
    KEY_PATTERN,
    MAX_KEY_CHARS,
    REPLAYED_HEADER,
)
from o2c_service.problems import PROBLEM_MEDIA_TYPE, FieldError, ProblemDetails
from o2c_service.request_checks import STATE_CHANGING

GENERIC: dict[int, str] = {
    400: "The `Host` header is not one the API answers to (`O2C_API_TRUSTED_HOSTS`)",
    401: "No API key, or an unknown or revoked one (`WWW-Authenticate: Bearer`); for a "
    "webhook, no valid signature",
    403: "The API key's role does not allow this",
    404: "No order (or other resource) with this id",
    409: "Conflicts with the order as it stands, or the same `Idempotency-Key` is still "
    "running (try again)",
    413: "The request body is over 1 MB",
    415: "The request is not `Content-Type: application/json`",
    422: "The request is not valid (`errors` names each field), or its `Idempotency-Key` "
    "was used for another request",
    500: "The API or the order failed (a bug): no details beyond `detail`",
    503: "Temporal, a worker or billing cannot answer now: nothing was done; try again",
}

IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": "Send the request again with the same key to get its first answer "
    f"(`{REPLAYED_HEADER}: true`) instead of running it twice; the same key with another "
    "request is 422; kept 24 hours (`O2C_IDEMPOTENCY_KEY_HOURS`), per API key. "
    "See docs/errors.md.",
    "schema": {"type": "string", "maxLength": MAX_KEY_CHARS, "pattern": KEY_PATTERN},
}
REPLAYED_RESPONSE_HEADER: dict[str, Any] = {
    "description": "`true` when this is the kept answer of an earlier request with the "
    "same `Idempotency-Key`",
    "schema": {"type": "string", "enum": ["true"]},
}


def error_statuses(path: str, method: str, operation: dict[str, Any]) -> list[int]:
    """Every error status a route can answer, from what kind of route it is."""
    rule = rule_for(method.upper(), path)
    statuses = {400, 500}  # any route: an untrusted Host; a bug
    if rule is SIGNED:
        statuses |= {401, 503}  # the sender's signature; Temporal behind it
    elif rule is not PUBLIC:
        statuses |= {401, 403, 503}  # API keys; Temporal or billing behind it
    if "{" in path:
        statuses.add(404)  # the id may name nothing
    if operation.get("parameters") or "requestBody" in operation:
        statuses.add(422)
    if method.upper() in STATE_CHANGING:
        statuses |= {409, 413, 415, 422}  # idempotency keys; a body, and of which type
    return sorted(statuses)


def _problem_schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in (FieldError, ProblemDetails):
        schema = model.model_json_schema(
            ref_template="#/components/schemas/{model}", mode="serialization"
        )
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def document_errors(document: dict[str, Any]) -> dict[str, Any]:
    """Add each route's error statuses as problem details to an OpenAPI document."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    components.update(_problem_schemas())
    problem = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for status in error_statuses(path, method, operation):
                documented = responses.setdefault(str(status), {})
                documented.setdefault("description", GENERIC[status])
                documented["content"] = problem
                if status == 401 and rule_for(method.upper(), path) is not SIGNED:
                    documented["headers"] = {"WWW-Authenticate": {
                        "description": "`Bearer`", "schema": {"type": "string"}}}  # fmt: skip
            if method.upper() == "POST" and not path.startswith(EXCLUDED_PREFIXES):
                operation.setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
                for code, answer in responses.items():
                    if code.startswith("2"):
                        answer.setdefault("headers", {})[REPLAYED_HEADER] = REPLAYED_RESPONSE_HEADER
    return document


def document_every_status(app: FastAPI) -> None:
    """Serve the app's OpenAPI document with every error status of every route."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
