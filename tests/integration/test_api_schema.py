"""Schemathesis against the API's own `/openapi.json`, every check on (the CLI's
`--checks all`): no status the document does not list, no answer off its schema, no
server error, bad input refused and good input taken. In process, over the stub order
service (`tests/support/stub_orders.py`): it is the API's edge that is fuzzed, not
Temporal.

A few examples per operation here; `O2C_SCHEMATHESIS_EXAMPLES=1000` for a long run by hand.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import (
    CHECKS,
    CheckContext,
    is_check_class,
    load_all_checks,
    not_a_server_error,
)
from schemathesis.core.failures import Failure
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import positive_data_acceptance
from starlette.types import Receive, Scope, Send

from o2c_service.access.roles import Role
from o2c_service.api import create_app
from o2c_service.idempotency import HEADER, KEY_PATTERN, MAX_KEY_CHARS
from o2c_service.orders import OrderService
from o2c_service.settings import Settings
from tests.support.api_keys import make_key
from tests.support.stub_orders import BASE_URL, StubOrders, stub_settings

OpenApiCase = Case[Any]
EXAMPLES = int(os.environ.get("O2C_SCHEMATHESIS_EXAMPLES", "3"))


def schema_valid_requests_are_taken(
    ctx: CheckContext, response: Response, case: OpenApiCase
) -> None:
    """`positive_data_acceptance`, but for a 422 whose every error is a `value_error`: a
    rule across fields or against reference data that JSON Schema cannot state (net days
    that fit the payment terms' kind, one line per SKU, an amount at its currency's scale,
    a known currency). Such a request is not valid, whatever its schema says."""
    try:
        positive_data_acceptance(ctx, response, case)
    except Failure:
        if response.status_code != 422:
            raise
        errors = response.json().get("errors") or [{}]
        if any(error.get("type") != "value_error" for error in errors):
            raise


REPORTS = ("/reports/summary", "/reports/reconciliation")


def no_server_error(ctx: CheckContext, response: Response, case: OpenApiCase) -> None:
    """`not_a_server_error`, but for the reports' documented 503: reports read Temporal's
    visibility, which the stub does not have (every other route works over the stub)."""
    if response.status_code == 503 and case.operation.path in REPORTS:
        return
    not_a_server_error(ctx, response, case)


load_all_checks()
ALL_CHECKS: list[Callable[..., Any]] = [
    check
    for check in CHECKS.get_all()
    if not is_check_class(check) and check not in (positive_data_acceptance, not_a_server_error)
] + [schema_valid_requests_are_taken, no_server_error]

# The document is the app's own; the requests go to the fixture's app, built the same way.
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi())


@pytest.fixture(scope="module")
def api_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The fuzzed API's settings: its keys and idempotency keys in a scratch store."""
    return stub_settings(tmp_path_factory.mktemp("schemathesis"))


@pytest.fixture(scope="module")
def api_key(api_settings: Settings) -> str:
    """The key the fuzzer sends as `Authorization: Bearer`: a support key, the widest role,
    so that every route is reached past its key check."""
    return make_key(api_settings, Role.SUPPORT, name="schemathesis")


class Counted:
    """The app, counting the HTTP requests it is sent (reported when the module ends)."""

    def __init__(self) -> None:
        self.app: FastAPI | None = None
        self.requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "the api_app fixture sets the app"
        if scope["type"] == "http":
            self.requests += 1
        await self.app(scope, receive, send)


FUZZED = Counted()
# The schema's app: its cases, and the checks' own probes (a request without the key,
# say), go to the app in process. The fixture puts the app behind it.
schema.app = FUZZED


@pytest.fixture(scope="module")
def api_app(api_settings: Settings) -> Iterator[Counted]:
    """The API over the stub."""
    orders = StubOrders()

    async def factory() -> OrderService:
        return orders

    FUZZED.app = create_app(api_settings, factory)
    yield FUZZED
    print(f"\nschemathesis: {FUZZED.requests} requests at {EXAMPLES} examples per operation")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_answers_as_its_openapi_document_says(
    case: OpenApiCase, api_app: Counted, api_key: str
) -> None:
    key = case.headers.get(HEADER) if case.headers else None
    if isinstance(key, str) and len(key) <= MAX_KEY_CHARS and re.fullmatch(KEY_PATTERN, key):
        # A valid key the fuzzer draws twice for two requests is rightly 422 (a key is for
        # one request): each case's key is its own, kept valid.
        case.headers[HEADER] = f"{uuid.uuid4().hex[:8]}-{key[-(MAX_KEY_CHARS - 9) :]}"
    case.call_and_validate(
        base_url=BASE_URL,
        headers={"Authorization": f"Bearer {api_key}"},
        checks=ALL_CHECKS,
    )
