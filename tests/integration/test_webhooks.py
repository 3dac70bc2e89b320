"""Signed webhooks from the 3PL and the payment gateway (docs/webhooks.md).

Without Temporal (the API in process, its store in a temporary file): what is
refused before anything reaches an order (signature, tolerance, body), rotation,
and an outage that leaves nothing recorded. On the real stack: a 3PL ships an
order and the gateway pays it to Closed, the same deliveries replayed through a
restarted API change nothing, and a rejected event is answered 2xx and shown to
support.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from typer.testing import CliRunner

from o2c_service.api import create_app
from o2c_service.cli import app as cli_app
from o2c_service.settings import Settings
from o2c_service.store import open_store
from o2c_service.webhooks import records
from o2c_service.webhooks.signatures import new_secret
from o2c_service.webhooks.sources import WebhookSource
from o2c_workflows.models import OrderStatus
from tests.integration.test_api_outcomes import api_on, booked_order
from tests.integration.test_end_to_end import listed
from tests.support.stack import Stack, free_port


def signed(secret: str, body: dict[str, Any], webhook_id: str | None = None,
           at: float | None = None) -> tuple[bytes, dict[str, str]]:  # fmt: skip
    """A delivery as a Standard Webhooks sender makes it (the spec's formula, written out)."""
    raw = json.dumps(body).encode()
    msg_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    timestamp = str(int(time.time() if at is None else at))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + raw, hashlib.sha256).digest()
    return raw, {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def shipment(order_id: str, tracking: str = "JD014600", **data: Any) -> dict[str, Any]:
    return {
        "type": "shipment.confirmed",
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {"order_id": order_id, "carrier": "DHL", "tracking_number": tracking, **data},
    }


def payment(order_id: str, payment_id: str, amount: str, **data: Any) -> dict[str, Any]:
    return {
        "type": "payment.succeeded",
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {"order_id": order_id, "payment_id": payment_id, "amount": amount,
                 "currency": "EUR", **data},
    }  # fmt: skip


async def deliver(
    http: httpx.AsyncClient,
    source: str,
    secret: str,
    body: dict[str, Any],
    webhook_id: str | None = None,
    at: float | None = None,
) -> httpx.Response:
    raw, headers = signed(secret, body, webhook_id, at)
    return await http.post(f"/webhooks/{source}", content=raw, headers=headers)


def cli(store_url: str, *args: str) -> str:
    result = CliRunner().invoke(cli_app, list(args), env={"O2C_API_DATABASE_URL": store_url})
    assert result.exit_code == 0, result.output
    return result.stdout


# -- without Temporal -------------------------------------------------------------


@pytest_asyncio.fixture
async def lone_api(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The API in process, no Temporal where it looks; its store in `tmp_path`."""
    store_url = f"sqlite:///{tmp_path / 'api.db'}"
    settings = Settings(temporal_address=f"127.0.0.1:{free_port()}", api_database_url=store_url,
                        event_accept_seconds=1)  # fmt: skip
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
        ) as http,
    ):
        yield http, store_url


INCOMPLETE = {"type": "shipment.confirmed", "timestamp": "2030-01-01T00:00:00Z",
              "data": {"order_id": "webshop:SO-1", "carrier": "DHL"}}  # fmt: skip
"""Signed, it passes the signature check and is refused for its body (422): a probe
that says whether a signature verifies without reaching any order."""


async def test_only_a_delivery_signed_with_a_secret_in_force_gets_past_401(
    lone_api: tuple[httpx.AsyncClient, str],
) -> None:
    http, store_url = lone_api
    none_yet = await deliver(http, "logistics", new_secret(), INCOMPLETE)
    assert none_yet.status_code == 401
    assert "o2c webhooks secret --source logistics" in none_yet.json()["detail"]

    secret = cli(store_url, "webhooks", "secret", "--source", "logistics").strip()
    assert secret.startswith("whsec_") and "\n" not in secret  # alone on stdout
    raw, headers = signed(secret, INCOMPLETE)
    checked = await http.post("/webhooks/logistics", content=raw, headers=headers)
    assert checked.status_code == 422
    [error] = checked.json()["errors"]
    assert error["loc"][-2:] == ["data", "tracking_number"]

    refused = {
        "no signature": {k: v for k, v in headers.items() if k != "webhook-signature"},
        "another secret": signed(new_secret(), INCOMPLETE, headers["webhook-id"])[1],
        "another id": {**headers, "webhook-id": "msg_other"},
        "other source": headers,
    }
    for what, sent in refused.items():
        path = "/webhooks/payments" if what == "other source" else "/webhooks/logistics"
        answer = await http.post(path, content=raw, headers=sent)
        assert answer.status_code == 401, what
    tampered = await http.post("/webhooks/logistics", content=raw + b" ", headers=headers)
    assert tampered.status_code == 401
    # Not even a body that is no JSON at all is looked at before the signature.
    garbage = await http.post("/webhooks/logistics", content=b"{", headers=headers)
    assert garbage.status_code == 401


@pytest.mark.parametrize(("offset", "status"), [(-295, 422), (295, 422), (-310, 401), (310, 401)])
async def test_the_timestamp_may_be_five_minutes_off_either_way(
    lone_api: tuple[httpx.AsyncClient, str], offset: int, status: int
) -> None:
    http, store_url = lone_api
    secret = cli(store_url, "webhooks", "secret", "--source", "logistics").strip()
    answer = await deliver(http, "logistics", secret, INCOMPLETE, at=time.time() + offset)
    assert answer.status_code == status, answer.text


async def test_during_rotation_both_secrets_verify_and_the_old_one_not_after(
    lone_api: tuple[httpx.AsyncClient, str],
) -> None:
    http, store_url = lone_api
    old = cli(store_url, "webhooks", "secret", "--source", "payments").strip()
    new = cli(store_url, "webhooks", "secret", "--source", "payments").strip()
    assert new != old
    probe = {**INCOMPLETE, "type": "payment.succeeded"}
    for secret in (old, new):
        assert (await deliver(http, "payments", secret, probe)).status_code == 422
    listed_secrets = json.loads(cli(store_url, "webhooks", "secrets", "-o", "json"))
    assert [s["verifies_until"] is None for s in listed_secrets] == [True, False]

    cli(store_url, "webhooks", "retire", "--source", "payments")
    assert (await deliver(http, "payments", old, probe)).status_code == 401
    assert (await deliver(http, "payments", new, probe)).status_code == 422

    # --retire-previous: no grace at all.
    newest = cli(store_url, "webhooks", "secret", "--source", "payments", "--retire-previous")
    assert (await deliver(http, "payments", new, probe)).status_code == 401
    assert (await deliver(http, "payments", newest.strip(), probe)).status_code == 422


def test_a_grace_period_ends_by_itself(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'api.db'}")
    start = datetime.now(UTC)
    old = records.rotate_secret(store, WebhookSource.LOGISTICS, timedelta(hours=1), start)
    new = records.rotate_secret(store, WebhookSource.LOGISTICS, timedelta(hours=1), start)
    source = WebhookSource.LOGISTICS
    assert records.secrets_in_force(store, source, start + timedelta(minutes=59)) == [new, old]
    assert records.secrets_in_force(store, source, start + timedelta(minutes=61)) == [new]
    assert records.secrets_in_force(store, WebhookSource.PAYMENTS, start) == []
    store.dispose()


async def test_an_event_the_order_could_not_take_is_not_recorded_so_a_retry_is(
    lone_api: tuple[httpx.AsyncClient, str],
) -> None:
    http, store_url = lone_api
    secret = cli(store_url, "webhooks", "secret", "--source", "payments").strip()
    body = payment("webshop:SO-1", "PAY-1", "10.00")
    for _ in range(2):  # the copy is neither replayed as done nor held as in progress
        answer = await deliver(http, "payments", secret, body, webhook_id="msg_retry")
        assert answer.status_code == 503, answer.text


# -- on the real stack --------------------------------------------------------------


@pytest_asyncio.fixture
async def secrets(stack: Stack) -> dict[str, str]:
    store = open_store(stack.settings.api_database_url)
    try:
        return {
            source.value: records.rotate_secret(store, source, timedelta(0), datetime.now(UTC))
            for source in WebhookSource
        }
    finally:
        store.dispose()


async def test_a_3pl_ships_an_order_and_the_gateway_pays_it_to_closed_once(
    stack: Stack, secrets: dict[str, str]
) -> None:
    http, logistics, payments = stack.http, secrets["logistics"], secrets["payments"]
    order_id = await booked_order(http)
    ship = shipment(order_id, tracking=f"JD{uuid.uuid4().hex[:8]}")
    ship_id = f"msg_{uuid.uuid4().hex}"

    # Two copies at once: one goes to the order, the other is answered as such.
    answers = await asyncio.gather(
        *(deliver(http, "logistics", logistics, ship, ship_id) for _ in range(2))
    )
    assert sorted(a.status_code for a in answers) in ([200, 200], [200, 409])
    first = next(a.json() for a in answers if a.status_code == 200)
    assert (first["order_id"], first["outcome"]) == (order_id, "applied")

    tracking = ship["data"]["tracking_number"]
    delivered = {"type": "shipment.delivered", "timestamp": datetime.now(UTC).isoformat(),
                 "data": {"order_id": order_id, "tracking_number": tracking}}  # fmt: skip
    noted = await deliver(http, "logistics", logistics, delivered, "msg_delivered-" + order_id)
    assert (noted.status_code, noted.json()["outcome"]) == (200, "noted")

    [invoice] = (await stack.wait_for_status(order_id, OrderStatus.INVOICED)).invoices
    pay = payment(order_id, f"pay_{uuid.uuid4().hex[:10]}", str(invoice.amount))
    pay_id = f"msg_{uuid.uuid4().hex}"
    paid = await deliver(http, "payments", payments, pay, pay_id)
    assert (paid.status_code, paid.json()["outcome"]) == (200, "applied"), paid.text
    closed = await stack.wait_for_status(order_id, OrderStatus.CLOSED)
    assert [n.type for n in closed.outside_events] == ["shipment.delivered"]
    # Who did it, on the order: the sources, not an API key.
    assert [d.actor for d in closed.dispatches] == ["webhook:logistics"]
    assert [p.actor for p in closed.payments] == ["webhook:payments"]
    assert any("logistics shipment.delivered" in entry.note for entry in closed.timeline)

    # The sender retries every delivery (newly signed, same ids) after the API restarted.
    async with api_on(stack) as restarted:
        for source, secret, body, webhook_id in [
            ("logistics", logistics, ship, ship_id),
            ("payments", payments, pay, pay_id),
        ]:
            again = await deliver(restarted, source, secret, body, webhook_id)
            assert again.status_code == 200, again.text
            assert again.json()["replayed"] is True
            assert again.json()["outcome"] == "applied"
        after = (await restarted.get(f"/orders/{order_id}")).json()
    assert after["status"] == "Closed"
    assert (len(after["dispatches"]), len(after["payments"])) == (1, 1)
    assert Decimal(after["payments"][0]["amount"]) == invoice.amount
    assert after["timeline"] == closed.model_dump(mode="json")["timeline"]


async def test_an_event_the_order_refuses_is_answered_2xx_and_shown_to_support(
    stack: Stack, secrets: dict[str, str]
) -> None:
    http = stack.http
    order_id = await booked_order(http)
    wrong = shipment(order_id, lines=[{"sku": "SKU-NOT-ON-ORDER", "quantity": 1}])
    webhook_id = f"msg_{uuid.uuid4().hex}"
    refused = await deliver(http, "logistics", secrets["logistics"], wrong, webhook_id)
    assert refused.status_code == 200, refused.text
    assert refused.json()["outcome"] == "rejected"
    assert "no line for SKU-NOT-ON-ORDER" in refused.json()["message"]
    again = await deliver(http, "logistics", secrets["logistics"], wrong, webhook_id)
    assert (again.status_code, again.json()["replayed"]) == (200, True)

    nowhere = await deliver(http, "payments", secrets["payments"],
                            payment("webshop:SO-NO-SUCH-ORDER", "pay_x", "1.00"))  # fmt: skip
    assert (nowhere.status_code, nowhere.json()["outcome"]) == (200, "rejected")

    listing = (await http.get("/webhooks/rejected", params={"order_id": order_id})).json()
    assert listing["total"] == 1
    [event] = listing["events"]
    assert (event["source"], event["type"], event["webhook_id"]) == (
        "logistics", "shipment.confirmed", webhook_id)  # fmt: skip
    assert "SKU-NOT-ON-ORDER" in event["reason"]
    unknown = (await http.get("/webhooks/rejected", params={"source": "payments"})).json()
    assert "webshop:SO-NO-SUCH-ORDER" in [e["order_id"] for e in unknown["events"]]

    state = (await http.get(f"/orders/{order_id}")).json()
    assert state["status"] == "Booked"
    assert [(n["type"], n["rejected"]) for n in state["outside_events"]] == [
        ("shipment.confirmed", True)]  # fmt: skip
    [row] = await listed(stack, order_id, status="Booked")
    assert row["rejected_webhooks"] == 1
