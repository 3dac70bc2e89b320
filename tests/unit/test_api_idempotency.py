"""`Idempotency-Key` on a POST, Stripe's way: the same key and request replay the first
answer; another request under the key is 422; a key still running is 409; 5xx answers
are not kept; keys expire, and belong to one API key."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlmodel import select

from o2c_service.access.roles import Role
from o2c_service.idempotency import IdempotencyKeys, IdempotencyRecord
from o2c_service.outcomes import TemporalUnavailable
from tests.integration.test_end_to_end import demo_order
from tests.support.api_keys import make_key
from tests.support.stub_orders import StubApi, stub_api, stub_settings


@pytest_asyncio.fixture(scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[StubApi]:
    async with stub_api(stub_settings(tmp_path_factory.mktemp("idempotency"))) as api:
        yield api


def new_key() -> str:
    return str(uuid.uuid4())


def keyed(key: str, api_key: str | None = None) -> dict[str, str]:
    headers = {"Idempotency-Key": key}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def keys_of(api: StubApi) -> IdempotencyKeys:
    keys: IdempotencyKeys = api.app.state.idempotency_keys
    return keys


async def test_the_same_key_and_request_replay_the_first_answer(api: StubApi) -> None:
    key, order = new_key(), demo_order(f"SO-{uuid.uuid4().hex[:8]}")
    first = await api.http.post("/orders", json=order, headers=keyed(key))
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    creates = api.orders.creates

    again = await api.http.post("/orders", json=order, headers=keyed(key))
    assert (again.status_code, again.content) == (201, first.content)
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["idempotent-replayed"] == "true"
    assert api.orders.creates == creates  # not run again

    # Without the key the same request runs, and is answered as a repeat (200).
    assert (await api.http.post("/orders", json=order)).status_code == 200


async def test_a_refusal_is_replayed_too(api: StubApi) -> None:
    key = new_key()
    first = await api.http.post("/orders/webshop:nope/shipments", headers=keyed(key),
                                json={"carrier": "DHL", "tracking_number": "1"})  # fmt: skip
    again = await api.http.post("/orders/webshop:nope/shipments", headers=keyed(key),
                                json={"carrier": "DHL", "tracking_number": "1"})  # fmt: skip
    assert (first.status_code, again.status_code) == (404, 404)
    assert again.content == first.content
    assert again.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("change", ["body", "path", "query"])
async def test_the_same_key_with_another_request_is_422_naming_the_key(
    api: StubApi, change: str
) -> None:
    key, order = new_key(), demo_order(f"SO-{uuid.uuid4().hex[:8]}")
    assert (await api.http.post("/orders", json=order, headers=keyed(key))).is_success
    if change == "body":
        other = api.http.post("/orders", json=order | {"currency": "USD"}, headers=keyed(key))
    elif change == "path":
        other = api.http.post("/orders/bulk/retry", json={}, headers=keyed(key))
    else:
        other = api.http.post("/orders?x=1", json=order, headers=keyed(key))
    response = await other
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "urn:o2c:problem:idempotency-key-reused"
    assert key in problem["detail"] and "POST /orders" in problem["detail"]
    assert [error["field"] for error in problem["errors"]] == ["header.Idempotency-Key"]


async def test_the_same_key_while_the_first_runs_is_409(api: StubApi) -> None:
    key, order = new_key(), demo_order(f"SO-{uuid.uuid4().hex[:8]}")
    api.orders.hold, api.orders.holding = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(api.http.post("/orders", json=order, headers=keyed(key)))
    try:
        await asyncio.wait_for(api.orders.holding.wait(), 10)
        second = await api.http.post("/orders", json=order, headers=keyed(key))
        assert second.status_code == 409, second.text
        assert second.json()["type"] == "urn:o2c:problem:idempotency-key-in-use"
        assert second.headers["retry-after"] == "1"
    finally:
        api.orders.hold.set()
        api.orders.hold = None
    assert (await first).status_code == 201
    replayed = await api.http.post("/orders", json=order, headers=keyed(key))
    assert replayed.headers["idempotent-replayed"] == "true"


async def test_a_server_error_is_not_kept(api: StubApi) -> None:
    key, order = new_key(), demo_order(f"SO-{uuid.uuid4().hex[:8]}")
    api.orders.fail_next = TemporalUnavailable("Temporal is unavailable: down")
    failed = await api.http.post("/orders", json=order, headers=keyed(key))
    assert failed.status_code == 503
    retried = await api.http.post("/orders", json=order, headers=keyed(key))
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers


async def test_keys_belong_to_one_api_key(api: StubApi) -> None:
    key = new_key()
    mine = demo_order(f"SO-{uuid.uuid4().hex[:8]}")
    theirs = demo_order(f"SO-{uuid.uuid4().hex[:8]}")
    key_of_a = make_key(api.settings, Role.INTEGRATION)
    key_of_b = make_key(api.settings, Role.INTEGRATION)
    first = await api.http.post("/orders", json=mine, headers=keyed(key, key_of_a))
    other = await api.http.post("/orders", json=theirs, headers=keyed(key, key_of_b))
    assert (first.status_code, other.status_code) == (201, 201), other.text
    assert "idempotent-replayed" not in other.headers
    again = await api.http.post("/orders", json=mine, headers=keyed(key, key_of_a))
    assert again.headers["idempotent-replayed"] == "true"
    # Without a valid key the request is refused, never answered from what was kept.
    for authorization in ("", "Bearer o2c_" + "x" * 43):
        headers = {"Idempotency-Key": key, "Authorization": authorization}
        refused = await api.http.post("/orders", json=mine, headers=headers)
        assert refused.status_code == 401, refused.text
        assert "idempotent-replayed" not in refused.headers


@pytest.mark.parametrize(
    "key", [b"k" * 256, b" padded", b"caf\xe9", b""], ids=["long", "space", "latin1", "empty"]
)
async def test_a_key_out_of_shape_is_422(api: StubApi, key: bytes) -> None:
    response = await api.http.post(
        "/orders", json=demo_order("SO-SHAPE"), headers={b"Idempotency-Key": key}
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "header.Idempotency-Key"


async def test_keys_expire_and_are_purged(tmp_path: Path) -> None:
    async with stub_api(stub_settings(tmp_path, idempotency_key_hours=24)) as api:
        keys, now = keys_of(api), time.time()
        keys.clock = lambda: now
        key, order = new_key(), demo_order("SO-EXPIRY")
        assert (await api.http.post("/orders", json=order, headers=keyed(key))).is_success
        keys.clock = lambda: now + timedelta(hours=23, minutes=59).total_seconds()
        kept = await api.http.post("/orders", json=order, headers=keyed(key))
        assert kept.headers["idempotent-replayed"] == "true"

        keys.clock = lambda: now + timedelta(hours=24, seconds=1).total_seconds()
        expired = await api.http.post("/orders", json=order | {"currency": "USD"},
                                      headers=keyed(key))  # fmt: skip
        assert expired.status_code == 409  # the key is free again; the stub's order is not
        assert expired.json()["type"] == "urn:o2c:problem:conflict"

        stale = new_key()
        keys.clock = lambda: now
        await api.http.post("/orders", json=demo_order("SO-STALE"), headers=keyed(stale))
        keys.clock, keys._purged_at = lambda: now + 25 * 3600, float("-inf")
        await api.http.post("/orders", json=demo_order("SO-FRESH"), headers=keyed(new_key()))
        with keys.database().reading() as session:
            left = session.exec(select(IdempotencyRecord.key)).all()
        assert stale not in left and key in left  # key: taken again at 24 h, 1 h old


async def test_two_api_processes_sharing_the_store_run_a_key_once(tmp_path: Path) -> None:
    settings = stub_settings(tmp_path)
    async with stub_api(settings) as one, stub_api(settings) as two:
        key, order = new_key(), demo_order("SO-TWO")
        # The same caller (one API key) sends to both processes.
        two.http.headers["Authorization"] = one.http.headers["Authorization"]
        one.orders.hold, one.orders.holding = asyncio.Event(), asyncio.Event()
        first = asyncio.create_task(one.http.post("/orders", json=order, headers=keyed(key)))
        await asyncio.wait_for(one.orders.holding.wait(), 10)
        assert (await two.http.post("/orders", json=order, headers=keyed(key))).status_code == 409
        one.orders.hold.set()
        assert (await first).status_code == 201
        replayed = await two.http.post("/orders", json=order, headers=keyed(key))
        assert (replayed.status_code, replayed.headers["idempotent-replayed"]) == (201, "true")
        assert two.orders.creates == 0


async def test_webhooks_are_left_to_their_own_dedupe(api: StubApi) -> None:
    key = new_key()
    for _ in range(2):
        response = await api.http.post("/webhooks/logistics", json={}, headers=keyed(key))
        assert "idempotent-replayed" not in response.headers
    with keys_of(api).database().reading() as session:
        assert session.get(IdempotencyRecord, ("anonymous", key)) is None


def test_an_http_client_can_send_the_header() -> None:
    assert httpx.Headers(keyed("abc"))["idempotency-key"] == "abc"
