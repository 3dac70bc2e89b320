"""The sandbox's fault profile as it shows on the wire, and to o2c's HTTP adapters.

Each test serves the four systems with `sandbox_apps` over the local systems on a
SQLite file of its own (demo data in), with O2C_SANDBOX_FAULTS' rules, and calls them
through the HTTP adapters the worker uses. Whether a write took effect is asked the
way an activity asks after an unknown outcome: by looking it up by its key.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.crm.http import HttpCrm
from adapters.errors import (
    BusinessError,
    RateLimited,
    SystemFailure,
    SystemTimeout,
    SystemUnavailable,
    UnknownOutcome,
)
from adapters.faults import FaultProfile
from adapters.http.client import Remote
from adapters.payments.http import HttpPayments
from adapters.payments.models import PaymentRecordRequest
from o2c_sandbox.routes import CALLS_PATH, CallLog
from o2c_sandbox.serve import running_sandbox, sandbox_apps
from o2c_service.settings import Settings
from tests.support.fixtures_db import open_sqlite

PAYMENT = PaymentRecordRequest(
    idempotency_key="payment-webshop:SO-9-BANK-9",
    payment_id="BANK-9",
    order_id="webshop:SO-9",
    amount=Decimal("49.90"),
    currency="EUR",
    reference="BANK-9",
)
ON_RECORD_PAYMENT = {"system": "payments", "operation": "record_payment"}


@dataclass
class Sandbox:
    urls: dict[str, str]
    _clients: AsyncExitStack

    def payments(self, *, token: str | None = None, read_timeout: float = 5.0) -> HttpPayments:
        client = HttpPayments(Remote(self.urls["payments"], token=token, read_timeout=read_timeout))
        self._clients.push_async_callback(client.aclose)
        return client

    def crm(self, *, read_timeout: float = 5.0) -> HttpCrm:
        client = HttpCrm(Remote(self.urls["crm"], read_timeout=read_timeout))
        self._clients.push_async_callback(client.aclose)
        return client

    async def calls(self, system: str) -> list[dict[str, Any]]:
        """What `/_sandbox/calls` lists for one system."""
        async with httpx.AsyncClient(base_url=self.urls[system]) as http:
            listed: list[dict[str, Any]] = (await http.get(CALLS_PATH)).json()
        return listed

    async def recorded(self, system: str) -> list[tuple[str, str, int, str | None]]:
        """Each call's operation, path, status and idempotency key."""
        return [
            (call["operation"], call["path"], call["status"], call["idempotency_key"])
            for call in await self.calls(system)
        ]


@asynccontextmanager
async def sandbox(
    tmp_path: Path, *rules: dict[str, Any], **settings: Any
) -> AsyncIterator[Sandbox]:
    """The four systems on free loopback ports, with these fault rules and settings."""
    profile = FaultProfile.model_validate({"rules": list(rules)})
    with open_sqlite(tmp_path) as adapters:
        apps = sandbox_apps(adapters, CallLog(), Settings(**settings), profile)
        async with running_sandbox(apps) as urls, AsyncExitStack() as clients:
            yield Sandbox(urls, clients)


async def test_an_unavailable_system_answers_503_and_records_nothing(tmp_path: Path) -> None:
    async with sandbox(tmp_path, ON_RECORD_PAYMENT | {"error_rate": 1}) as systems:
        payments = systems.payments()
        with pytest.raises(SystemFailure) as caught:
            await payments.record_payment(PAYMENT)

        assert type(caught.value) is SystemUnavailable
        assert "(503)" in str(caught.value)
        assert await payments.find_payment(PAYMENT.idempotency_key) is None
        assert await systems.recorded("payments") == [
            ("record_payment", "/payments", 503, PAYMENT.idempotency_key),
            ("find_payment", f"/payments/by-key/{PAYMENT.idempotency_key}", 404, None),
        ]


async def test_a_rate_limited_system_answers_429_with_retry_after(tmp_path: Path) -> None:
    rule = ON_RECORD_PAYMENT | {
        "error_rate": 1,
        "error_kind": "rate_limited",
        "retry_after_ms": 2500,
    }
    async with sandbox(tmp_path, rule) as systems:
        payments = systems.payments()
        with pytest.raises(RateLimited) as caught:
            await payments.record_payment(PAYMENT)

        assert caught.value.retry_after == timedelta(seconds=3)  # whole seconds, rounded up
        assert await payments.find_payment(PAYMENT.idempotency_key) is None
        assert [status for *_, status, _ in await systems.recorded("payments")] == [429, 404]


async def test_a_timed_out_write_is_an_unknown_outcome_that_did_not_happen(
    tmp_path: Path,
) -> None:
    rule = ON_RECORD_PAYMENT | {"error_rate": 1, "error_kind": "timeout"}
    async with sandbox(tmp_path, rule, sandbox_hold_seconds=0.6) as systems:
        payments = systems.payments(read_timeout=0.2)
        with pytest.raises(SystemFailure) as caught:
            await payments.record_payment(PAYMENT)

        assert type(caught.value) is UnknownOutcome
        assert await payments.find_payment(PAYMENT.idempotency_key) is None


async def test_a_timed_out_read_is_a_timeout(tmp_path: Path) -> None:
    rule = {"system": "crm", "operation": "get_customer", "error_rate": 1, "error_kind": "timeout"}
    async with sandbox(tmp_path, rule, sandbox_hold_seconds=0.6) as systems:
        with pytest.raises(SystemFailure) as caught:
            await systems.crm(read_timeout=0.2).get_customer("CUST-ACME")

        assert type(caught.value) is SystemTimeout


@pytest.mark.parametrize(
    ("hold_seconds", "read_timeout"),
    [
        pytest.param(0.6, 0.2, id="client-gives-up-first"),
        pytest.param(0.05, 5.0, id="client-hears-504"),
    ],
)
async def test_an_unknown_outcome_write_took_effect_and_is_found_by_its_key(
    tmp_path: Path, hold_seconds: float, read_timeout: float
) -> None:
    rule = ON_RECORD_PAYMENT | {"unknown_outcome_rate": 1}
    async with sandbox(tmp_path, rule, sandbox_hold_seconds=hold_seconds) as systems:
        payments = systems.payments(read_timeout=read_timeout)
        with pytest.raises(SystemFailure) as caught:
            await payments.record_payment(PAYMENT)

        assert type(caught.value) is UnknownOutcome
        found = await payments.find_payment(PAYMENT.idempotency_key)
        assert found is not None and found.payment_id == PAYMENT.payment_id


@pytest.mark.parametrize(
    ("code", "status"), [("customer_blocked", 422), ("customer_not_found", 404)]
)
async def test_a_business_error_rule_is_a_refusal_with_its_code(
    tmp_path: Path, code: str, status: int
) -> None:
    rule = {"system": "crm", "customer_id": "CUST-GLOBEX", "business_error": code}
    async with sandbox(tmp_path, rule) as systems:
        crm = systems.crm()
        with pytest.raises(BusinessError) as caught:
            await crm.get_customer("CUST-GLOBEX")
        acme = await crm.get_customer("CUST-ACME")

        assert caught.value.code == code
        assert acme.customer_id == "CUST-ACME"
        assert [status for *_, status, _ in await systems.recorded("crm")] == [status, 200]


@pytest.mark.parametrize(
    ("rules", "settings"),
    [
        pytest.param([], {"sandbox_latency_ms": 300}, id="O2C_SANDBOX_LATENCY_MS"),
        pytest.param([{"system": "crm", "latency_ms": 300}], {}, id="latency_ms-rule"),
    ],
)
async def test_latency_delays_every_answer(
    tmp_path: Path, rules: list[dict[str, Any]], settings: dict[str, Any]
) -> None:
    async with sandbox(tmp_path, *rules, **settings) as systems:
        started = time.monotonic()
        await systems.crm().get_customer("CUST-ACME")
        took = time.monotonic() - started

        (call,) = await systems.calls("crm")
    assert took >= 0.3
    assert call["duration_ms"] >= 300


async def test_a_system_with_a_token_refuses_requests_without_it(tmp_path: Path) -> None:
    async with sandbox(tmp_path, payments_token="s3cret-payments") as systems:
        url = systems.urls["payments"]
        lookup = f"/payments/by-key/{PAYMENT.idempotency_key}"
        async with httpx.AsyncClient(base_url=url) as http:
            without = await http.get(lookup)
            wrong = await http.get(lookup, headers={"Authorization": "Bearer guess"})
        payments = systems.payments(token="s3cret-payments")
        recorded = await payments.record_payment(PAYMENT)
        found = await payments.find_payment(PAYMENT.idempotency_key)
        customer = await systems.crm().get_customer("CUST-ACME")  # CRM has no token set

    assert [without.status_code, wrong.status_code] == [401, 401]
    assert without.headers["content-type"] == "application/problem+json"
    assert without.json()["code"] == "unauthorized"
    assert found == recorded
    assert customer.customer_id == "CUST-ACME"


async def test_the_sandbox_lists_each_systems_calls(tmp_path: Path) -> None:
    async with sandbox(tmp_path) as systems:
        payments = systems.payments()
        await payments.record_payment(PAYMENT)
        await payments.record_payment(PAYMENT)
        await payments.find_payment(PAYMENT.idempotency_key)
        with pytest.raises(BusinessError):
            await systems.crm().get_customer("CUST-NOBODY")

        assert await systems.recorded("payments") == [
            ("record_payment", "/payments", 200, PAYMENT.idempotency_key),
            ("record_payment", "/payments", 200, PAYMENT.idempotency_key),
            ("find_payment", f"/payments/by-key/{PAYMENT.idempotency_key}", 200, None),
        ]
        assert await systems.recorded("crm") == [
            ("get_customer", "/customers/CUST-NOBODY", 404, None)
        ]
