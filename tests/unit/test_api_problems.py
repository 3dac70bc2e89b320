"""Every error the API answers is RFC 9457 problem details (`application/problem+json`,
`type`, `title`, `status`, `detail`; `errors` naming each field), and the OpenAPI
document lists each of these statuses on the route, with that schema."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from o2c_service.access.roles import Role
from o2c_service.outcomes import OrderBroken, TemporalUnavailable
from o2c_service.problems import PROBLEM_MEDIA_TYPE, ProblemDetails
from o2c_service.reconciliation.reading import SystemUnreadable
from o2c_service.reports import BillingUnavailable
from tests.integration.test_end_to_end import demo_order
from tests.support.stub_orders import StubApi, stub_api, stub_settings


@pytest_asyncio.fixture(scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[StubApi]:
    async with stub_api(stub_settings(tmp_path_factory.mktemp("problems"))) as api:
        await api.http.post("/orders", json=demo_order("SO-KNOWN"))
        yield api


def problem(response: httpx.Response, status: int, kind: str) -> ProblemDetails:
    """The answer as problem details of this status and kind, with nothing of a traceback."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    details = ProblemDetails.model_validate_json(response.content)
    assert (details.status, details.type) == (status, f"urn:o2c:problem:{kind}")
    assert details.title and details.detail
    assert "Traceback" not in response.text and 'File "' not in response.text
    return details


Provoke = Callable[[StubApi], Awaitable[httpx.Response]]


async def untrusted_host(api: StubApi) -> httpx.Response:
    return await api.http.get("/orders", headers={"host": "evil.example"})


async def unknown_path(api: StubApi) -> httpx.Response:
    return await api.http.get("/nowhere")


async def unknown_order(api: StubApi) -> httpx.Response:
    return await api.http.get("/orders/webshop:SO-NOPE")


async def wrong_method(api: StubApi) -> httpx.Response:
    return await api.http.delete("/orders")


async def other_content(api: StubApi) -> httpx.Response:
    return await api.http.post("/orders", json=demo_order("SO-KNOWN") | {"currency": "USD"})


async def event_refused(api: StubApi) -> httpx.Response:
    return await api.http.post("/orders/webshop:SO-KNOWN/cancel", json={"reason": "changed"})


async def too_large(api: StubApi) -> httpx.Response:
    return await api.http.post("/orders", content=b"[" + b"1," * 600_000 + b"1]",
                               headers={"content-type": "application/json"})  # fmt: skip


async def form_post(api: StubApi) -> httpx.Response:
    return await api.http.post("/orders/webshop:SO-KNOWN/release", data={"note": "x"})


async def not_valid(api: StubApi) -> httpx.Response:
    order = demo_order("SO-BAD")
    order["lines"][0]["quantity"] = 0
    return await api.http.post("/orders", json=order)


async def unhandled(api: StubApi) -> httpx.Response:
    api.orders.fail_next = RuntimeError("secret internals at 0xdeadbeef")
    return await api.http.get("/orders")


async def order_broken(api: StubApi) -> httpx.Response:
    api.orders.fail_next = OrderBroken("order webshop:SO-KNOWN cannot answer: a bug")
    return await api.http.get("/orders/webshop:SO-KNOWN")


async def temporal_down(api: StubApi) -> httpx.Response:
    api.orders.fail_next = TemporalUnavailable("Temporal is unavailable: no answer")
    return await api.http.post("/orders", json=demo_order("SO-DOWN"))


async def billing_down(api: StubApi) -> httpx.Response:
    api.orders.client_failure = BillingUnavailable("billing could not be read: locked")
    try:
        return await api.http.get("/reports/summary")
    finally:
        api.orders.client_failure = None


async def logistics_down(api: StubApi) -> httpx.Response:
    api.orders.client_failure = SystemUnreadable("logistics could not be read: no answer")
    try:
        return await api.http.get("/reports/reconciliation")
    finally:
        api.orders.client_failure = None


ERRORS: list[tuple[Provoke, str, str, int, str]] = [
    (untrusted_host, "GET", "/orders", 400, "untrusted-host"),
    (unknown_path, "GET", "/nowhere", 404, "not-found"),
    (unknown_order, "GET", "/orders/{order_id}", 404, "not-found"),
    (wrong_method, "DELETE", "/orders", 405, "method-not-allowed"),
    (other_content, "POST", "/orders", 409, "conflict"),
    (event_refused, "POST", "/orders/{order_id}/cancel", 409, "event-not-allowed"),
    (too_large, "POST", "/orders", 413, "body-too-large"),
    (form_post, "POST", "/orders/{order_id}/release", 415, "unsupported-media-type"),
    (not_valid, "POST", "/orders", 422, "validation-error"),
    (unhandled, "GET", "/orders", 500, "internal-error"),
    (order_broken, "GET", "/orders/{order_id}", 500, "order-broken"),
    (temporal_down, "POST", "/orders", 503, "service-unavailable"),
    (billing_down, "GET", "/reports/summary", 503, "service-unavailable"),
    (logistics_down, "GET", "/reports/reconciliation", 503, "service-unavailable"),
]


@pytest.mark.parametrize(
    ("provoke", "method", "route", "status", "kind"), ERRORS, ids=[e[0].__name__ for e in ERRORS]
)
async def test_every_error_is_problem_details_and_documented(
    api: StubApi, provoke: Provoke, method: str, route: str, status: int, kind: str
) -> None:
    problem(await provoke(api), status, kind)
    spec = (await api.http.get("/openapi.json")).json()
    if route in spec["paths"] and method.lower() in spec["paths"][route]:
        documented = spec["paths"][route][method.lower()]["responses"][str(status)]
        assert documented["content"] == {
            PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}
        }


async def test_a_validation_error_names_each_field_and_echoes_little(api: StubApi) -> None:
    order = demo_order("SO-BAD")
    order["lines"][0]["quantity"] = 0
    order["customer_id"] = "C" * 5000
    details = problem(await api.http.post("/orders", json=order), 422, "validation-error")
    assert details.errors is not None
    fields = {error.field: error for error in details.errors}
    assert set(fields) == {"body.lines[0].quantity", "body.customer_id"}
    assert fields["body.lines[0].quantity"].loc == ["body", "lines", 0, "quantity"]
    assert fields["body.lines[0].quantity"].input == 0
    assert len(fields["body.customer_id"].input) <= 103
    assert "body.lines[0].quantity" in details.detail


async def test_a_refusal_keeps_its_reason_and_business_code(api: StubApi) -> None:
    refused = await api.http.post("/orders/webshop:SO-KNOWN/cancel", json={"reason": "x"})
    details = problem(refused, 409, "event-not-allowed")
    assert details.code == "stub_refusal"
    assert "takes no cancel" in details.detail


async def test_405_names_every_method_of_the_path(api: StubApi) -> None:
    response = await api.http.delete("/orders")
    assert set(response.headers["allow"].split(", ")) >= {"GET", "POST"}


async def test_an_unhandled_error_shows_nothing_of_itself(api: StubApi) -> None:
    response = await unhandled(api)
    problem(response, 500, "internal-error")
    assert "0xdeadbeef" not in response.text and "RuntimeError" not in response.text


async def test_the_key_checks_answer_problem_details_with_their_headers(
    tmp_path: Path,
) -> None:
    """The 401 (with `WWW-Authenticate: Bearer`) and 403 of the API-key check."""
    async with stub_api(stub_settings(tmp_path), role=Role.VIEWER) as api:
        unknown = await api.http.get("/orders", headers={"Authorization": "Bearer o2c_nobody"})
        assert "key" in problem(unknown, 401, "unauthorized").detail
        assert unknown.headers["WWW-Authenticate"] == "Bearer"
        viewer = await api.http.post("/orders/bulk/cancel", json={"reason": "no"})
        assert "viewer" in problem(viewer, 403, "forbidden").detail


async def test_the_document_lists_every_status_of_every_route(api: StubApi) -> None:
    spec = (await api.http.get("/openapi.json")).json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert {"400", "500"} <= statuses, (method, path)
            if path.startswith("/webhooks/") and method == "post":  # signed, not keyed
                assert {"401", "503"} <= statuses and "403" not in statuses, (method, path)
            elif path != "/healthz":
                assert {"401", "403", "503"} <= statuses, (method, path)
            if "{" in path:
                assert "404" in statuses, (method, path)
            if method == "post":
                assert {"409", "413", "415", "422"} <= statuses, (method, path)
                headers = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
                # Webhooks have their own copies' rule: the sender's webhook-id.
                assert ("Idempotency-Key" in headers) != path.startswith("/webhooks/"), path
    assert {"200", "201", "202"} <= set(spec["paths"]["/orders"]["post"]["responses"])
    assert {"200", "202"} <= set(spec["paths"]["/orders/{order_id}/payments"]["post"]["responses"])
