"""Keys and roles at the API's edge: every route with every kind of caller, and which key
did what on the order.

The table below is the issue's statement of the roles, written out per route: a route
the API serves that the table does not name fails `test_every_route_is_in_the_table`,
and each (route, caller) pair is a test of its own.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client

from o2c_service.access.roles import Role
from o2c_service.api import create_app
from o2c_service.orders import OrderService
from o2c_service.outcomes import OrderNotFound, TemporalUnavailable
from o2c_service.settings import Settings
from o2c_workflows.models import OrderStatus
from tests.integration.test_end_to_end import demo_order
from tests.support.api_keys import bearer, make_key, revoke_key
from tests.support.stack import Stack

PUBLIC = "public"
SIGNED = "signed"
READS = {Role.INTEGRATION, Role.SUPPORT, Role.VIEWER}
EVENTS = {Role.INTEGRATION, Role.SUPPORT}
SUPPORT = {Role.SUPPORT}
REPORTS = {Role.SUPPORT, Role.VIEWER}

EXPECTED: dict[tuple[str, str], set[Role] | str] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/static/docs/swagger-ui.css"): PUBLIC,
    # Prometheus scrapes with a key of any role (a viewer's)
    ("GET", "/metrics"): READS,
    # integration: create orders, send shipment, payment, amendment and return events, read
    ("POST", "/orders"): EVENTS,
    ("GET", "/orders"): READS,
    ("GET", "/orders/{order_id}"): READS,
    ("POST", "/orders/{order_id}/shipments"): EVENTS,
    ("POST", "/orders/{order_id}/payments"): EVENTS,
    ("POST", "/orders/{order_id}/amendments"): EVENTS,
    ("POST", "/orders/{order_id}/returns"): EVENTS,
    # support: all of that, plus retry, release, cancel (singly, in bulk), refunds, reports
    ("POST", "/orders/{order_id}/retry"): SUPPORT,
    ("POST", "/orders/{order_id}/release"): SUPPORT,
    ("POST", "/orders/{order_id}/cancel"): SUPPORT,
    ("POST", "/orders/bulk/retry"): SUPPORT,
    ("POST", "/orders/bulk/release"): SUPPORT,
    ("POST", "/orders/bulk/cancel"): SUPPORT,
    ("POST", "/credits/refunds"): SUPPORT,
    ("GET", "/reports/reconciliation"): SUPPORT,
    # viewer: reads only
    ("GET", "/reports/summary"): REPORTS,
    # the codec server: decoding what Temporal stores of orders is a read of them
    ("POST", "/codec/encode"): REPORTS,
    ("POST", "/codec/decode"): REPORTS,
    # the 3PL and the payment gateway sign their webhooks instead; support reads the rejected
    ("POST", "/webhooks/logistics"): SIGNED,
    ("POST", "/webhooks/payments"): SIGNED,
    ("GET", "/webhooks/rejected"): SUPPORT,
}
"""(method, path) -> the roles allowed, or public, or signed."""

CALLERS = ["no key", "unknown key", "revoked key", *(role.value for role in Role)]
NOT_IN_SCHEMA = {("GET", "/docs"), ("GET", "/redoc"), ("GET", "/openapi.json"),
                 ("GET", "/static/docs/swagger-ui.css"),
                 # Prometheus's text format, not the o2c API (docs/operations.md)
                 ("GET", "/metrics"),
                 # Temporal's codec server protocol, not the o2c API (docs/security.md)
                 ("POST", "/codec/encode"), ("POST", "/codec/decode")}  # fmt: skip


def schema_routes() -> set[tuple[str, str]]:
    paths: dict[str, dict[str, Any]] = create_app(Settings()).openapi()["paths"]
    return {(method.upper(), path) for path, operations in paths.items() for method in operations}


class NoOrders:
    """The order service of an API with no orders: every call answers 404, and there is no
    Temporal to read visibility from (the metrics say so)."""

    @property
    def client(self) -> Client:
        raise TemporalUnavailable("Temporal is unavailable: this API has no orders")

    def __getattr__(self, name: str) -> Any:
        async def not_found(*_: Any, **__: Any) -> Any:
            raise OrderNotFound("no such order")

        return not_found


@dataclass
class Edge:
    http: httpx.AsyncClient
    keys: dict[str, str]


@pytest_asyncio.fixture(scope="module")
async def edge(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Edge]:
    """The API in process with a key of each role, one unknown, one revoked."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("api-keys"))

    async def no_orders() -> OrderService:
        return cast(OrderService, NoOrders())

    keys = {role.value: make_key(settings, role) for role in Role}
    keys["unknown key"] = "o2c_" + "x" * 43
    keys["revoked key"] = make_key(settings, Role.SUPPORT, name="gone")
    revoke_key(settings, "gone")
    app = create_app(settings, no_orders)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http,
    ):
        yield Edge(http, keys)


def test_every_route_is_in_the_table() -> None:
    assert schema_routes() == set(EXPECTED) - NOT_IN_SCHEMA


def test_the_openapi_says_which_routes_take_a_key_and_which_roles() -> None:
    spec = create_app(Settings()).openapi()
    assert spec["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["apiKey"]["description"],
    }
    for (method, path), allowed in EXPECTED.items():
        if (method, path) in NOT_IN_SCHEMA:
            continue
        operation = spec["paths"][path][method.lower()]
        if isinstance(allowed, str):
            assert "security" not in operation, path
        else:
            assert operation["security"] == [{"apiKey": []}], path
            assert set(operation["x-roles"]) == {role.value for role in allowed}, path


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(
    ("method", "path"), [pytest.param(*route, id=" ".join(route)) for route in sorted(EXPECTED)]
)
async def test_each_route_answers_each_caller_by_its_role(
    edge: Edge, method: str, path: str, caller: str
) -> None:
    url = re.sub(r"\{order_id\}", "webshop:SO-1", path)
    headers = bearer(edge.keys[caller]) if caller in edge.keys else {}
    response = await edge.http.request(method, url, headers=headers)
    allowed = EXPECTED[(method, path)]
    if allowed == SIGNED:  # no key stands in for the sender's signature
        assert response.status_code == 401, response.text
        assert "webhook" in response.text
    elif allowed == PUBLIC:
        assert response.status_code == 200, response.text
    elif caller in ("no key", "unknown key", "revoked key"):
        assert response.status_code == 401, response.text
        assert response.headers["WWW-Authenticate"] == "Bearer"
    elif Role(caller) in allowed:
        assert response.status_code not in (401, 403), response.text
    else:
        assert response.status_code == 403, response.text
        assert caller in response.json()["detail"]


async def test_a_malformed_authorization_header_is_401_before_the_body_is_read(
    edge: Edge,
) -> None:
    for header in ("Basic dXNlcjpwdw==", "Bearer", edge.keys["support"]):
        response = await edge.http.post(
            "/orders", content=b"{not json", headers={"Authorization": header}
        )
        assert response.status_code == 401, header
        assert response.headers["WWW-Authenticate"] == "Bearer"


# -- which key did what, on a real order ------------------------------------------


async def test_the_order_records_which_key_created_shipped_paid_and_cancelled_it(
    stack: Stack, tmp_path: Path
) -> None:
    webshop = make_key(stack.settings, Role.INTEGRATION, name=f"webshop-{tmp_path.name[-6:]}")
    as_webshop = bearer(webshop)
    created = await stack.http.post("/orders", json=demo_order(), headers=as_webshop)
    assert created.status_code == 201, created.text
    order_id = created.json()["order_id"]
    shipped = await stack.http.post(
        f"/orders/{order_id}/shipments",
        # Whatever the sender claims, the key it sent is what is recorded.
        json={"carrier": "DHL", "tracking_number": f"T-{order_id}", "actor": "someone else"},
        headers=as_webshop,
    )
    assert shipped.status_code == 200, shipped.text
    await stack.wait_for_status(order_id, OrderStatus.INVOICED)
    payment_id = f"P-{uuid.uuid4().hex[:10]}"
    paid = await stack.http.post(
        f"/orders/{order_id}/payments",
        json={"payment_id": payment_id, "amount": "149.99", "currency": "EUR"},
    )
    assert paid.status_code == 200, paid.text
    state = (await stack.http.get(f"/orders/{order_id}")).json()

    webshop_key = state["created_by"]
    assert re.fullmatch(r"webshop-\w+ \(key_[0-9a-f]{12}\)", webshop_key)
    support_key = state["payments"][0]["actor"]
    assert support_key.startswith("stack-support (key_")
    assert state["dispatches"][0]["actor"] == webshop_key
    by_note = {entry["note"]: entry["actor"] for entry in state["timeline"]}
    assert by_note["2 lines from webshop"] == webshop_key
    assert by_note[f"DHL T-{order_id}: 4 SKU-WIDGET, 1 SKU-GADGET"] == webshop_key
    invoice = state["invoices"][0]["invoice_id"]
    assert by_note[f"invoice {invoice} raised for shipment 1"] == webshop_key
    assert by_note[f"payment {payment_id} applied"] == support_key
    assert "someone else" not in str(state)

    second = (await stack.http.post("/orders", json=demo_order(), headers=as_webshop)).json()
    cancelled = await stack.http.post(
        f"/orders/{second['order_id']}/cancel", json={"reason": "customer withdrew"}
    )
    assert cancelled.status_code == 200, cancelled.text
    state = (await stack.http.get(f"/orders/{second['order_id']}")).json()
    assert state["cancelled_by"] == support_key
    assert state["timeline"][-1] | {"at": None} == {
        "status": "Cancelled", "at": None, "note": "customer withdrew", "actor": support_key
    }  # fmt: skip
