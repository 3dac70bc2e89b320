"""Bad input is answered with 422 naming the field; a Temporal outage with 503."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from o2c_service.runners import serve_api
from o2c_service.settings import Settings
from tests.integration.test_end_to_end import demo_order
from tests.support.api_keys import bearer, make_key
from tests.support.stack import free_port


@pytest_asyncio.fixture(scope="module")
async def api_without_temporal(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[httpx.AsyncClient]:
    """The real API on loopback, pointed at a port where no Temporal listens."""
    port = free_port()
    settings = Settings(temporal_address=f"127.0.0.1:{free_port()}", api_port=port,
                        data_dir=tmp_path_factory.mktemp("api"))  # fmt: skip
    key = make_key(settings)
    stop, listening = asyncio.Event(), asyncio.Event()
    api = asyncio.create_task(serve_api(settings, stop, listening))
    await asyncio.wait_for(listening.wait(), 30)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=30, headers=bearer(key)
    ) as http:
        yield http
    stop.set()
    await api


def with_change(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    order = demo_order("SO-1")
    target: Any = order
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return order


def error_locations(response: httpx.Response) -> list[tuple[Any, ...]]:
    assert response.status_code == 422, response.text
    return [tuple(error["loc"]) for error in response.json()["errors"]]


@pytest.mark.parametrize(
    ("order", "location"),
    [
        (with_change(("lines",), []), ("body", "lines")),
        (with_change(("lines", 0, "quantity"), 0), ("body", "lines", 0, "quantity")),
        (with_change(("lines", 0, "quantity"), "four"), ("body", "lines", 0, "quantity")),
        (with_change(("lines", 1, "unit_price"), "-1.00"), ("body", "lines", 1, "unit_price")),
        (with_change(("lines", 1, "unit_price"), "1.999"), ("body", "lines")),
        (with_change(("lines", 1, "unit_price"), "-0"), ("body", "lines", 1, "unit_price")),
        (with_change(("lines", 1, "unit_price"), "1_000"), ("body", "lines", 1, "unit_price")),
        (with_change(("lines", 1, "unit_price"), "1e1"), ("body", "lines", 1, "unit_price")),
        (with_change(("lines", 1, "unit_price"), 99.99), ("body", "lines", 1, "unit_price")),
        (with_change(("currency",), "EURO"), ("body", "currency")),
        (with_change(("currency",), "XXY"), ("body", "currency")),
        (with_change(("customer_id",), "C" * 65), ("body", "customer_id")),
        (with_change(("source_order_id",), "SO:1"), ("body", "source_order_id")),
        (with_change(("payment_terms",), {"kind": "net", "net_days": 0}),
         ("body", "payment_terms")),
        (with_change(("coupon",), "FREE"), ("body", "coupon")),
    ],
    ids=[
        "no-lines", "zero-quantity", "quantity-not-a-number", "negative-price", "sub-cent-price",
        "minus-zero-price", "underscore-price", "exponent-price", "json-float-price",
        "currency-shape", "unknown-currency", "long-customer-id", "colon-in-id", "net-0-days",
        "unknown-field",
    ],
)  # fmt: skip
async def test_invalid_orders_name_the_field(
    api_without_temporal: httpx.AsyncClient, order: dict[str, Any], location: tuple[Any, ...]
) -> None:
    response = await api_without_temporal.post("/orders", json=order)
    assert location in error_locations(response)


async def test_malformed_json_is_422(api_without_temporal: httpx.AsyncClient) -> None:
    response = await api_without_temporal.post(
        "/orders", content=b'{"source_system": "web",', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["type"] == "json_invalid"


@pytest.mark.parametrize(
    ("path", "event", "location"),
    [
        ("shipments", {"carrier": "", "tracking_number": "1"}, ("body", "carrier")),
        ("shipments", {"carrier": "DHL"}, ("body", "tracking_number")),
        ("payments", {"payment_id": "P1", "amount": "0", "currency": "EUR"}, ("body", "amount")),
        ("payments", {"payment_id": "P1", "amount": 1.5, "currency": "EUR", "x": 1}, ("body", "x")),
        ("payments", {"payment_id": "P1", "amount": "NaN", "currency": "EUR"}, ("body", "amount")),
        (
            "payments",
            {"payment_id": "P1", "amount": "10.001", "currency": "EUR"},
            ("body", "amount"),
        ),
        (
            "payments",
            {"payment_id": "P1", "amount": " 1.00", "currency": "EUR"},
            ("body", "amount"),
        ),
        ("cancel", {}, ("body", "reason")),
        ("cancel", {"reason": ""}, ("body", "reason")),
        ("retry", {"note": "x" * 200}, ("body", "note")),
    ],
    ids=[
        "empty-carrier",
        "no-tracking",
        "zero-amount",
        "unknown-field",
        "nan-amount",
        "sub-cent-amount",
        "padded-amount",
        "cancel-without-reason",
        "empty-reason",
        "long-note",
    ],
)
async def test_invalid_events_name_the_field(
    api_without_temporal: httpx.AsyncClient,
    path: str,
    event: dict[str, Any],
    location: tuple[Any, ...],
) -> None:
    response = await api_without_temporal.post(f"/orders/web:SO-1/{path}", json=event)
    assert location in error_locations(response)


@pytest.mark.parametrize(
    ("path", "body", "location"),
    [
        ("/orders/bulk/retry", {"selection": {"hold_reason": "x' OR 1=1"}},
         ("body", "selection", "hold_reason")),
        ("/orders/bulk/cancel", {"selection": {}}, ("body", "reason")),
        ("/orders/bulk/release", {"selection": {"status": "Lost"}},
         ("body", "selection", "status")),
        ("/orders/bulk/retry", {"selection": {"limit": 0}}, ("body", "selection", "limit")),
    ],
    ids=["quote-in-reason", "cancel-without-reason", "unknown-status", "zero-limit"],
)  # fmt: skip
async def test_bulk_selections_are_validated(
    api_without_temporal: httpx.AsyncClient, path: str, body: dict[str, Any],
    location: tuple[Any, ...],
) -> None:  # fmt: skip
    response = await api_without_temporal.post(path, json=body)
    assert location in error_locations(response)


async def test_list_filters_are_validated(api_without_temporal: httpx.AsyncClient) -> None:
    response = await api_without_temporal.get("/orders", params={"status": "Lost"})
    assert ("query", "status") in error_locations(response)
    response = await api_without_temporal.get("/orders", params={"customer_id": "x' OR 1=1"})
    assert ("query", "customer_id") in error_locations(response)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/orders", demo_order("SO-2")),
        ("GET", "/orders/web:SO-2", None),
        ("GET", "/orders", None),
        ("POST", "/orders/web:SO-2/shipments", {"carrier": "DHL", "tracking_number": "1"}),
    ],
    ids=["create", "show", "list", "ship"],
)
async def test_temporal_unreachable_is_a_plain_503(
    api_without_temporal: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    response = await api_without_temporal.request(method, path, json=body)
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert "Temporal is unavailable" in detail
    assert "Traceback" not in detail


async def test_health_and_docs_are_served(api_without_temporal: httpx.AsyncClient) -> None:
    assert (await api_without_temporal.get("/healthz")).json() == {"status": "ok"}
    assert (await api_without_temporal.get("/docs")).status_code == 200
    spec = (await api_without_temporal.get("/openapi.json")).json()
    assert {"/orders", "/orders/{order_id}", "/orders/{order_id}/shipments",
            "/orders/{order_id}/payments", "/healthz"} <= set(spec["paths"])  # fmt: skip


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"end": "9999-12-31"}, "end"),
        ({"start": "0001-01-01"}, "start"),
        ({"start": "0"}, "start"),
        ({"start": "1700000000"}, "start"),
        ({"end": "2026-1-5"}, "end"),
        ({"start": "1970-12-31"}, "start"),
    ],
    ids=["end-overflows", "start-year-1", "start-zero", "start-timestamp", "not-iso", "too-early"],
)
async def test_report_dates_outside_the_range_name_the_parameter(
    api_without_temporal: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await api_without_temporal.get("/reports/summary", params=params)
    assert ("query", field) in error_locations(response)
    [error] = response.json()["errors"]
    assert "YYYY-MM-DD" in error["msg"] or "1971-01-01 to 9998-12-31" in error["msg"]


async def test_a_body_over_one_megabyte_is_413(api_without_temporal: httpx.AsyncClient) -> None:
    huge = b'{"note": "' + b"x" * 10_000_000 + b'"}'
    response = await api_without_temporal.post(
        "/orders", content=huge, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "1000000 bytes" in response.json()["detail"]

    async def streamed() -> AsyncIterator[bytes]:
        yield b'{"note": "'
        for _ in range(20):
            yield b"x" * 100_000
        yield b'"}'

    # No Content-Length: the body is counted as it arrives.
    response = await api_without_temporal.post(
        "/orders", content=streamed(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "1000000 bytes" in response.json()["detail"]


async def test_validation_errors_echo_only_the_offending_value_cut_short(
    api_without_temporal: httpx.AsyncClient,
) -> None:
    order = with_change(("customer_id",), "C" * 500_000)
    response = await api_without_temporal.post("/orders", json=order)
    [error] = response.json()["errors"]
    assert error["loc"] == ["body", "customer_id"]
    assert len(error["input"]) <= 103
    assert len(response.content) < 1000

    without_lines = with_change(("lines",), [{"sku": "SKU-WIDGET", "quantity": 1}])
    without_lines["payment_terms"] = {"kind": "net", "net_days": 30, "padding": "p" * 500_000}
    response = await api_without_temporal.post("/orders", json=without_lines)
    assert ("body", "lines", 0, "unit_price") in error_locations(response)
    assert len(response.content) < 2000


async def test_the_docs_load_their_assets_from_the_api_itself(
    api_without_temporal: httpx.AsyncClient,
) -> None:
    for page in ("/docs", "/redoc"):
        html = (await api_without_temporal.get(page)).text
        urls = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]+)['"]""", html)
        urls += re.findall(r"""url:\s*['"]([^'"]+)['"]""", html)
        assert urls, html
        for url in urls:
            assert url.startswith("/"), f"{page} loads {url} from elsewhere"
            asset = await api_without_temporal.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 100, url
        assert "://" not in html.replace("http://www.w3.org", ""), html
