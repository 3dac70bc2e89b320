"""What a browser can carry to the API from another site: a form or `text/plain` post
(415), a rebound DNS name (400 for a `Host` not trusted), a read across origins (no CORS
unless configured)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from o2c_service.settings import Settings
from tests.integration.test_end_to_end import demo_order
from tests.support.stub_orders import StubApi, stub_api, stub_settings


@pytest_asyncio.fixture(scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[StubApi]:
    async with stub_api(stub_settings(tmp_path_factory.mktemp("browser"))) as api:
        await api.http.post("/orders", json=demo_order("SO-HELD"))
        yield api


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"note=released+by+a+stranger"),
        ("multipart/form-data; boundary=x", b"--x\r\n\r\nnote\r\n--x--\r\n"),
        ("text/plain", b'{"note": "json in disguise"}'),
        ("text/plain", b""),
        (None, b'{"note": "no type"}'),
    ],
    ids=["form", "multipart", "text-plain", "empty-text-plain", "no-content-type"],
)
async def test_a_state_change_that_is_not_json_is_415(
    api: StubApi, content_type: str | None, body: bytes
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await api.http.post("/orders/webshop:SO-HELD/release", content=body,
                                   headers=headers)  # fmt: skip
    assert response.status_code == 415, response.text
    assert response.json()["type"] == "urn:o2c:problem:unsupported-media-type"
    assert response.headers["accept-post"] == "application/json"


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
async def test_json_with_or_without_parameters_is_taken(api: StubApi, content_type: str) -> None:
    response = await api.http.post("/orders", content=httpx.Request(
        "POST", "/", json=demo_order("SO-JSON")).content,
        headers={"content-type": content_type})  # fmt: skip
    assert response.status_code in (200, 201), response.text


async def test_a_post_without_a_body_needs_no_content_type(api: StubApi) -> None:
    response = await api.http.post("/orders/webshop:SO-HELD/retry")
    assert response.status_code != 415, response.text


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "localhost.", ""]
)
async def test_a_host_not_trusted_is_400(api: StubApi, host: str) -> None:
    response = await api.http.get("/healthz", headers={"host": host})
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "urn:o2c:problem:untrusted-host"


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.1:8000", "localhost:8000", "LOCALHOST", "[::1]:8000", "[::1]"]
)
async def test_the_loopback_names_are_trusted_on_any_port(api: StubApi, host: str) -> None:
    assert (await api.http.get("/healthz", headers={"host": host})).status_code == 200


async def test_trusted_hosts_are_configured_by_name_and_wildcard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("O2C_API_TRUSTED_HOSTS", "o2c.example.com, *.internal.example")
    settings = Settings(**stub_settings(tmp_path).model_dump(exclude={"api_trusted_hosts"}))
    async with stub_api(settings, base_url="http://o2c.example.com") as api:
        for host, status in [("o2c.example.com", 200), ("api.internal.example:443", 200),
                             ("internal.example", 400), ("127.0.0.1", 400)]:  # fmt: skip
            response = await api.http.get("/healthz", headers={"host": host})
            assert response.status_code == status, host


async def test_no_cors_by_default(api: StubApi) -> None:
    origin = {"origin": "https://evil.example"}
    read = await api.http.get("/orders", headers=origin)
    assert read.status_code == 200
    assert not any(name.startswith("access-control-") for name in read.headers)
    preflight = await api.http.options("/orders", headers=origin | {
        "access-control-request-method": "POST"})  # fmt: skip
    assert preflight.status_code == 405
    assert not any(name.startswith("access-control-") for name in preflight.headers)


async def test_cors_for_a_configured_origin_only(tmp_path: Path) -> None:
    allowed = "https://support.example.com"
    settings = stub_settings(tmp_path, api_cors_origins=[allowed])
    async with stub_api(settings) as api:
        asked = {
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type, idempotency-key",
        }
        preflight = await api.http.options("/orders", headers={"origin": allowed} | asked)
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == allowed
        assert "idempotency-key" in preflight.headers["access-control-allow-headers"].lower()
        read = await api.http.get("/orders", headers={"origin": allowed})
        assert read.headers["access-control-allow-origin"] == allowed
        assert "Location" in read.headers["access-control-expose-headers"]

        stranger = await api.http.get("/orders", headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in stranger.headers
        refused = await api.http.options("/orders", headers={"origin": "https://evil.example"}
                                         | asked)  # fmt: skip
        assert "access-control-allow-origin" not in refused.headers


def test_host_and_origin_lists_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O2C_API_TRUSTED_HOSTS", '["a.example", "b.example"]')
    monkeypatch.setenv("O2C_API_CORS_ORIGINS", "https://a.example,https://b.example")
    settings = Settings()
    assert settings.api_trusted_hosts == ["a.example", "b.example"]
    assert settings.api_cors_origins == ["https://a.example", "https://b.example"]
