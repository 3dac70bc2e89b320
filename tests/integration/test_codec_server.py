"""The codec server, as the Temporal UI and the `temporal` CLI call it: real payloads of a
real order (encrypted by the worker) decoded for support and viewer keys only, browsers
let in from the UI's origin only, and the key in a UI endpoint's path never logged.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from o2c_service.access.roles import Role
from o2c_service.codec.encryption import EncryptionCodec
from o2c_service.codec.keys import CodecKeys
from o2c_service.codec.server import create_codec_app
from o2c_service.settings import Settings
from tests.integration.test_end_to_end import demo_order
from tests.support.api_keys import bearer, make_key
from tests.support.codec import TEST_KEYS, test_key
from tests.support.stack import Stack

OTHER_ORIGIN = "https://elsewhere.example"


def as_json(payloads: list[Payload]) -> dict[str, Any]:
    return json_format.MessageToDict(Payloads(payloads=payloads))


def from_json(body: dict[str, Any]) -> list[Payload]:
    return list(json_format.ParseDict(body, Payloads()).payloads)


async def order_input(stack: Stack) -> list[Payload]:
    """The input payloads of a booked order's workflow, as Temporal stores them."""
    response = await stack.http.post("/orders", json=demo_order())
    assert response.status_code == 201, response.text
    handle = stack.env.client.get_workflow_handle(response.json()["order_id"])
    history = await handle.fetch_history()
    return list(history.events[0].workflow_execution_started_event_attributes.input.payloads)


@pytest.fixture
async def stored(stack: Stack) -> list[Payload]:
    return await order_input(stack)


async def test_a_support_or_viewer_key_reads_a_stored_order_in_clear(
    stack: Stack, stored: list[Payload]
) -> None:
    assert b"CUST-ACME" not in stored[0].SerializeToString()
    viewer = make_key(stack.settings, Role.VIEWER)
    for key in (stack.api_key, viewer):
        response = await stack.http.post("/codec/decode", json=as_json(stored), headers=bearer(key))
        assert response.status_code == 200, response.text
        decoded = from_json(response.json())
        assert json.loads(decoded[0].data)["order"]["customer_id"] == "CUST-ACME"


@pytest.mark.parametrize(
    ("caller", "status"), [("no key", 401), ("unknown key", 401), ("integration", 403)]
)
async def test_other_callers_are_refused(
    stack: Stack, stored: list[Payload], caller: str, status: int
) -> None:
    keys = {
        "unknown key": "o2c_" + "x" * 43,
        "integration": make_key(stack.settings, Role.INTEGRATION),
    }
    headers = bearer(keys[caller]) if caller in keys else {}
    async with httpx.AsyncClient(base_url=stack.api_url) as anonymous:
        response = await anonymous.post("/codec/decode", json=as_json(stored), headers=headers)
    assert response.status_code == status, response.text
    assert "CUST-ACME" not in response.text


async def test_the_ui_endpoint_carries_its_key_in_the_path_and_no_log_shows_it(
    stack: Stack, stored: list[Payload], caplog: pytest.LogCaptureFixture
) -> None:
    viewer = make_key(stack.settings, Role.VIEWER)
    async with httpx.AsyncClient(base_url=stack.api_url) as browser:
        with caplog.at_level(logging.INFO, logger="uvicorn.access"):
            response = await browser.post(f"/codec/key/{viewer}/decode", json=as_json(stored))
            refused = await browser.post("/codec/key/o2c_unknown/decode", json=as_json(stored))
    assert response.status_code == 200, response.text
    assert json.loads(from_json(response.json())[0].data)["order"]["customer_id"] == "CUST-ACME"
    assert refused.status_code == 401
    logged = caplog.text
    assert "POST /codec/decode" in logged
    assert viewer not in logged and "o2c_unknown" not in logged


async def test_encode_then_decode_gives_back_what_the_ui_typed(stack: Stack) -> None:
    typed = Payload(metadata={"encoding": b"json/plain"}, data=b'{"note": "call Acme"}')
    encoded = await stack.http.post("/codec/encode", json=as_json([typed]))
    assert encoded.status_code == 200, encoded.text
    sealed = from_json(encoded.json())
    assert sealed[0].metadata["encoding"] == b"binary/encrypted"
    assert sealed[0].metadata["encryption-key-id"] == TEST_KEYS.current.key_id.encode()
    decoded = await stack.http.post("/codec/decode", json=encoded.json())
    assert from_json(decoded.json()) == [typed]


async def test_a_payload_under_a_key_not_held_is_refused_naming_the_key(stack: Stack) -> None:
    foreign = EncryptionCodec(CodecKeys((test_key("retired-0"),))).encrypt(
        Payload(metadata={"encoding": b"json/plain"}, data=b"{}")
    )
    response = await stack.http.post("/codec/decode", json=as_json([foreign]))
    assert response.status_code == 422, response.text
    assert response.json()["type"] == "urn:o2c:problem:payload-not-decodable"
    assert "'retired-0'" in response.json()["detail"]


async def test_a_body_that_is_not_payloads_is_refused(stack: Stack) -> None:
    response = await stack.http.post("/codec/decode", json={"payloads": [{"data": "not base64!"}]})
    assert response.status_code == 400, response.text
    assert "Payloads" in response.json()["detail"]


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace",
    }


async def test_browsers_may_call_the_codec_from_the_ui_origin_only(stack: Stack) -> None:
    ui_origin = stack.settings.codec_origins()[0]
    async with httpx.AsyncClient(base_url=stack.api_url) as browser:
        allowed = await browser.options("/codec/decode", headers=preflight(ui_origin))
        elsewhere = await browser.options("/codec/decode", headers=preflight(OTHER_ORIGIN))
        # the UI's origin gets nothing of the orders API
        orders = await browser.options("/orders", headers=preflight(ui_origin))
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ui_origin
    assert "x-namespace" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in elsewhere.headers
    assert "access-control-allow-origin" not in orders.headers


async def test_the_standalone_codec_server_serves_the_same_routes(
    stack: Stack, stored: list[Payload]
) -> None:
    app = create_codec_app(stack.settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as codec,
    ):
        health = await codec.get("/healthz")
        anonymous = await codec.post("/codec/decode", json=as_json(stored))
        decoded = await codec.post(
            "/codec/decode", json=as_json(stored), headers=bearer(stack.api_key)
        )
        orders = await codec.get("/orders", headers=bearer(stack.api_key))
    assert health.status_code == 200
    assert anonymous.status_code == 401
    assert json.loads(from_json(decoded.json())[0].data)["order"]["customer_id"] == "CUST-ACME"
    assert orders.status_code == 404  # the codec only


async def test_the_standalone_codec_server_will_not_start_without_keys(tmp_path: Any) -> None:
    app = create_codec_app(Settings(data_dir=tmp_path, codec_keys=None))
    with pytest.raises(ValueError, match="no payload codec keys"):
        async with app.router.lifespan_context(app):
            pass


def test_a_new_key_from_the_cli_is_one_o2c_codec_keys_takes() -> None:
    from typer.testing import CliRunner

    from o2c_service.cli import app

    result = CliRunner().invoke(app, ["codec-key", "--id", "k2026"])
    assert result.exit_code == 0, result.output
    keys = CodecKeys.parse(result.output.strip(), "o2c codec-key")
    assert keys.current.key_id == "k2026"
    assert len(base64.b64decode(result.output.strip().split("=", 1)[1])) == 32
