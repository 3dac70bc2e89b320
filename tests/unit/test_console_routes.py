"""The console's edge, in process over a stub order service: who gets in, the session
cookie's flags, CSRF and viewer refusals that change nothing, field errors beside their
field, and the API's own checks left as they were. The browser tests
(tests/integration/test_console.py) drive the same pages against real orders."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import BaseModel

from o2c_service.access.roles import Role
from o2c_service.api import create_app
from o2c_service.events import M, OrderEvent, R
from o2c_service.listing import OrderListItem, OrderPage
from o2c_service.orders import OrderService
from o2c_service.outcomes import EventRejected, OrderNotFound
from o2c_workflows.messages import EventAck, SupportAck
from o2c_workflows.models import OrderRequest, OrderStatus
from o2c_workflows.state import HoldKind, HoldState, OrderState, UndoKind, UndoRecord
from tests.support.api_keys import bearer, make_key, revoke_key
from tests.support.stub_orders import StubOrders, stub_settings

ORDER_ID = "webshop:SO-CONSOLE-1"


def held_order() -> OrderState:
    request = OrderRequest.model_validate(
        {
            "source_system": "webshop",
            "source_order_id": "SO-CONSOLE-1",
            "customer_id": "CUST-ACME",
            "currency": "EUR",
            "lines": [{"sku": "SKU-WIDGET", "quantity": 4, "unit_price": "12.50"}],
        }
    )
    state = OrderState.entered(request)
    state.status = OrderStatus.ON_HOLD
    state.hold = HoldState(
        kind=HoldKind.CREDIT,
        step="credit_check",
        code="credit_limit_exceeded",
        message="50.00 EUR exceeds the limit",
        since=datetime(2025, 1, 2, tzinfo=UTC),
        resume_status=OrderStatus.ENTERED,
    )
    state.undo = [
        UndoRecord(step="reserve_stock", undo=UndoKind.RELEASE_RESERVATION, forward_key="k")
    ]
    return state


@dataclass
class ConsoleOrders(StubOrders):
    """One held order; every event is taken and recorded."""

    sent: list[tuple[str, BaseModel]] = field(default_factory=list)
    refusal: EventRejected | None = None
    """What the order answers the next event instead of taking it."""

    def __post_init__(self) -> None:
        StubOrders.__init__(self)

    async def get(self, order_id: str) -> OrderState:
        if order_id != ORDER_ID:
            raise OrderNotFound(f"order {order_id} not found")
        return held_order()

    async def search(self, **_: Any) -> OrderPage:
        item = OrderListItem(
            order_id=ORDER_ID,
            status=OrderStatus.ON_HOLD,
            customer_id="CUST-ACME",
            hold_reason="credit_limit_exceeded",
            execution_status="Running",
            started_at=None,
            closed_at=None,
        )
        return OrderPage(orders=[item], next_page_token=None, total=1)

    async def send(self, event: OrderEvent[M, R], order_id: str, message: M) -> R:
        if self.refusal is not None:
            refusal, self.refusal = self.refusal, None
            raise refusal
        self.sent.append((event.name, message))
        if event.ack is SupportAck:
            return SupportAck(
                order_id=order_id,
                status=OrderStatus.BOOKED,  # type: ignore[return-value]
                message="released",
            )
        return EventAck(
            order_id=order_id,
            status=OrderStatus.BOOKED,
            duplicate=False,  # type: ignore[return-value]
            message="applied",
        )


class Elements(HTMLParser):
    """Every element's attributes by id."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, str | None]] = {}
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.by_id[str(found["id"])] = {"tag": tag, **found}


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match is not None, "no CSRF token in the page"
    return match.group(1)


@dataclass
class Console:
    app: Any
    orders: ConsoleOrders
    folder: Path
    keys: dict[Role, str]

    def client(self, base_url: str = "http://127.0.0.1") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        return httpx.AsyncClient(transport=transport, base_url=base_url)


@pytest_asyncio.fixture(scope="module")
async def console(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Console]:
    folder = tmp_path_factory.mktemp("console")
    settings = stub_settings(folder)
    orders = ConsoleOrders()

    async def factory() -> OrderService:
        return orders

    keys = {role: make_key(settings, role) for role in Role}
    app = create_app(settings, factory)
    async with app.router.lifespan_context(app):
        yield Console(app, orders, folder, keys)


async def signed_in(http: httpx.AsyncClient, key: str) -> httpx.Response:
    """Sign in as a person does: the form, then its post; the answer to the post."""
    form = await http.get("/console/sign-in")
    token = re.search(r'name="token" value="([^"]+)"', form.text)
    assert token is not None
    return await http.post(
        "/console/sign-in", data={"token": token.group(1), "api_key": key, "next": "/console/"}
    )


async def test_pages_without_a_session_redirect_to_sign_in(console: Console) -> None:
    async with console.client() as http:
        for path in ("/console/", f"/console/orders/{ORDER_ID}", "/console/dashboard"):
            response = await http.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/console/sign-in?next=")
        assert (await http.get("/")).headers["location"] == "/console/"


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_the_session_cookie_is_http_only_strict_and_scoped_to_the_console(
    console: Console, scheme: str
) -> None:
    async with console.client(f"{scheme}://127.0.0.1") as http:
        response = await signed_in(http, console.keys[Role.SUPPORT])
    assert response.status_code == 303, response.text
    [cookie] = [c for c in response.headers.get_list("set-cookie") if c.startswith("o2c_console=")]
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/console"} <= flags
    assert ("secure" in flags) is (scheme == "https")


async def test_a_wrong_key_or_an_integration_key_is_refused_beside_the_field(
    console: Console,
) -> None:
    async with console.client() as http:
        wrong = await signed_in(http, "o2c_" + "x" * 43)
        integration = await signed_in(http, console.keys[Role.INTEGRATION])
        assert (await http.get("/console/")).status_code == 303
    assert wrong.status_code == 401
    field_ = Elements(wrong.text).by_id["sign-in-api_key"]
    assert field_["aria-invalid"] == "true"
    assert field_["aria-describedby"] == "sign-in-api_key-error"
    assert "not known, or has been revoked" in wrong.text
    assert integration.status_code == 401
    assert "for systems, not people" in integration.text


async def test_a_post_without_the_session_token_is_refused_and_changes_nothing(
    console: Console,
) -> None:
    async with console.client() as http:
        await signed_in(http, console.keys[Role.SUPPORT])
        page = await http.get(f"/console/orders/{ORDER_ID}")
        token = csrf_of(page.text)
        before = len(console.orders.sent)
        missing = await http.post(f"/console/orders/{ORDER_ID}/release", data={"note": "x"})
        wrong = await http.post(
            f"/console/orders/{ORDER_ID}/release",
            data={"note": "x", "csrf_token": token[:-2] + "xx"},
        )
        assert (missing.status_code, wrong.status_code) == (403, 403)
        assert "security token" in missing.text
        assert len(console.orders.sent) == before
        done = await http.post(
            f"/console/orders/{ORDER_ID}/release", data={"note": "approved", "csrf_token": token}
        )
        assert done.status_code == 303
        assert len(console.orders.sent) == before + 1
        after = await http.get(done.headers["location"])
        assert "Release the credit hold: released" in after.text  # the flash, once
        assert "released" not in (await http.get(done.headers["location"])).text


async def test_a_viewer_sees_no_actions_and_its_posts_are_refused(console: Console) -> None:
    async with console.client() as http:
        await signed_in(http, console.keys[Role.VIEWER])
        page = await http.get(f"/console/orders/{ORDER_ID}")
        assert page.status_code == 200
        assert "On hold: credit_limit_exceeded" in page.text
        assert '<form method="post" action="/console/orders/' not in page.text
        queue = await http.get("/console/")
        assert 'name="order_id"' not in queue.text  # no checkboxes, no bulk buttons
        token = csrf_of(page.text)  # the sign-out form's: a valid token of this session
        before = len(console.orders.sent)
        for path in (f"/console/orders/{ORDER_ID}/release", "/console/bulk/confirm"):
            response = await http.post(
                path, data={"csrf_token": token, "action": "release", "order_id": ORDER_ID}
            )
            assert response.status_code == 403, path
            assert "may look but not act" in response.text
        assert len(console.orders.sent) == before


@pytest.mark.parametrize(
    ("action", "data", "field_id", "message"),
    [
        (
            "pay",
            {"amount": "abc", "currency": "EUR", "payment_id": "PAY-1"},
            "pay-amount",
            "must be a plain decimal",
        ),
        (
            "pay",
            {"amount": "12.345", "currency": "EUR", "payment_id": "PAY-1"},
            "pay-amount",
            "decimal places",
        ),
        (
            "pay",
            {"amount": "10", "currency": "EUR", "payment_id": ""},
            "pay-payment_id",
            "Required",
        ),
        (
            "ship",
            {"carrier": "DHL", "tracking_number": "T1", "scope": "chosen", "ship_0": "9"},
            "ship-ship_0",
            "Only 4 left to ship",
        ),
        ("ship", {"carrier": "", "tracking_number": "T1"}, "ship-carrier", "Required"),
        ("amend", {"sku": "SKU-WIDGET", "quantity": "-1"}, "amend-quantity", "greater than"),
        ("cancel", {"reason": ""}, "cancel-reason", "Required"),
    ],
)
async def test_a_bad_field_is_shown_beside_it_with_what_was_entered_and_nothing_is_sent(
    console: Console, action: str, data: dict[str, str], field_id: str, message: str
) -> None:
    async with console.client() as http:
        await signed_in(http, console.keys[Role.SUPPORT])
        token = csrf_of((await http.get(f"/console/orders/{ORDER_ID}")).text)
        before = len(console.orders.sent)
        response = await http.post(
            f"/console/orders/{ORDER_ID}/{action}", data={**data, "csrf_token": token}
        )
    assert response.status_code == 422, response.text
    assert len(console.orders.sent) == before
    element = Elements(response.text).by_id[field_id]
    assert element["aria-invalid"] == "true"
    assert f"{field_id}-error" in str(element["aria-describedby"]).split()
    error = re.search(rf'id="{field_id}-error">([^<]*)<', response.text)
    assert error is not None and message in error.group(1), response.text
    name = field_id.split("-", 1)[1]
    assert element["value"] == data.get(name, "")


async def test_bulk_cancel_previews_what_it_undoes_and_wants_a_reason(console: Console) -> None:
    async with console.client() as http:
        await signed_in(http, console.keys[Role.SUPPORT])
        token = csrf_of((await http.get("/console/")).text)
        preview = await http.post(
            "/console/bulk/preview",
            data={"csrf_token": token, "action": "cancel", "order_id": ORDER_ID},
        )
        assert preview.status_code == 200
        assert "Cancel 1 order?" in preview.text
        assert "release the stock reservation (reserve_stock)" in preview.text
        before = len(console.orders.sent)
        no_reason = await http.post(
            "/console/bulk/confirm",
            data={"csrf_token": token, "action": "cancel", "order_id": ORDER_ID, "reason": ""},
        )
        assert no_reason.status_code == 422
        assert Elements(no_reason.text).by_id["bulk-reason"]["aria-invalid"] == "true"
        assert len(console.orders.sent) == before
        done = await http.post(
            "/console/bulk/confirm",
            data={
                "csrf_token": token,
                "action": "cancel",
                "order_id": ORDER_ID,
                "reason": "customer asked",
            },
        )
        assert "Cancel: 1 of 1 done" in done.text
        assert console.orders.sent[-1][0] == "cancel"


async def test_signing_out_or_revoking_the_key_ends_the_session(console: Console) -> None:
    settings = stub_settings(console.folder)
    key = make_key(settings, Role.SUPPORT, name="console-revoked")
    async with console.client() as http:
        await signed_in(http, key)
        assert (await http.get("/console/")).status_code == 200
        revoke_key(settings, "console-revoked")
        console.app.state.authenticator._cache.clear()  # as the key cache's 5 s later
        assert (await http.get("/console/")).status_code == 303
    async with console.client() as http:
        await signed_in(http, console.keys[Role.SUPPORT])
        token = csrf_of((await http.get("/console/")).text)
        cookie = http.cookies["o2c_console"]
        out = await http.post("/console/sign-out", data={"csrf_token": token})
        assert out.status_code == 303
    async with console.client() as http:
        http.cookies.set("o2c_console", cookie, path="/console")
        assert (await http.get("/console/")).status_code == 303


async def test_the_json_api_keeps_its_own_checks(console: Console) -> None:
    """A console cookie opens no API route, and the API still refuses form posts (415)."""
    async with console.client() as http:
        await signed_in(http, console.keys[Role.SUPPORT])
        assert (await http.get(f"/orders/{ORDER_ID}")).status_code == 401
        form_post = await http.post(
            f"/orders/{ORDER_ID}/release",
            data={"note": "x"},
            headers=bearer(console.keys[Role.SUPPORT]),
        )
        assert form_post.status_code == 415


async def test_an_event_the_order_refuses_is_said_above_the_forms(console: Console) -> None:
    async with console.client() as http:
        await signed_in(http, console.keys[Role.SUPPORT])
        token = csrf_of((await http.get(f"/console/orders/{ORDER_ID}")).text)
        console.orders.refusal = EventRejected(
            "order is OnHold: it takes no shipment until the hold is resolved", invalid=False
        )
        response = await http.post(
            f"/console/orders/{ORDER_ID}/ship",
            data={"carrier": "DHL", "tracking_number": "JD1", "scope": "all", "csrf_token": token},
        )
    assert response.status_code == 409
    assert "Record a shipment was refused: order is OnHold" in response.text
    assert Elements(response.text).by_id["ship-tracking_number"]["value"] == "JD1"
