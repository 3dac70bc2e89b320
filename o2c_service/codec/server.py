"""The codec server: the Temporal UI and the `temporal` CLI send it payloads to decode
(and, for input an engineer types, to encode), per Temporal's codec server protocol.

`POST .../encode` and `POST .../decode` take and answer a `Payloads` message in
protobuf JSON (`{"payloads": [{"metadata": {...}, "data": "<base64>"}]}`); the
protocol routes by the last part of the path, so the same routes serve:

- `/codec/encode`, `/codec/decode` with `Authorization: Bearer <key>`: the CLI
  (`--codec-endpoint .../codec --codec-auth "Bearer <key>"`) and any client that can
  send a header;
- `/codec/key/<key>/encode`, `/codec/key/<key>/decode`: the Temporal UI, which sends
  no header of ours, given `.../codec/key/<key>` as its codec endpoint. The path is
  rewritten to the first form before anything else sees it, so the key never
  reaches a log line.

Either way the key must be a support or viewer key (`o2c_service/access/rules.py`);
browsers may call only from `O2C_CODEC_CORS_ORIGINS` (the UI's origin). The API
serves these routes on its own port; `o2c codec-server` serves them alone.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from google.protobuf import json_format
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payloads

from o2c_service.access.guard import Authenticator, protect, require_rules
from o2c_service.codec.encryption import EncryptionCodec
from o2c_service.codec.keys import CodecKeys, CodecKeysError
from o2c_service.problems import BAD_REQUEST, PAYLOAD_NOT_DECODABLE, Problem, add_problem_handlers
from o2c_service.request_checks import BodyLimit, TrustedHosts, require_json
from o2c_service.settings import Settings
from o2c_service.store import ApiStore

PREFIX = "/codec"
CODEC_BODY_BYTES = 8_000_000
"""A UI or CLI request carries the payloads of one event or one page of them: Temporal's
own limit is 2 MB per payload."""
_KEY_IN_PATH = re.compile(r"^/codec/key/([^/]+)/(encode|decode)$")
CODEC_CORS_HEADERS = ("Authorization", "Content-Type", "X-Namespace")
"""What the UI sends: its namespace in `X-Namespace` (one namespace's keys here: unread)."""


class KeyInPath:
    """`/codec/key/<key>/<op>` becomes `/codec/<op>` with `Authorization: Bearer <key>`,
    in the request's own scope, so the access log and every later step see only that."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (found := _KEY_IN_PATH.match(scope["path"])):
            key, operation = found.groups()
            path = f"{PREFIX}/{operation}"
            scope["path"] = path
            scope["raw_path"] = path.encode()
            scope["headers"] = [
                *((name, value) for name, value in scope["headers"] if name != b"authorization"),
                (b"authorization", f"Bearer {key}".encode("latin-1", errors="replace")),
            ]
        await self.app(scope, receive, send)


def is_codec_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


class CorsByPath:
    """Browsers may call the codec routes from the codec's origins (the Temporal UI) only,
    and the rest of the API from the API's origins only: two policies, one per path."""

    def __init__(
        self, app: ASGIApp, codec_origins: list[str], api: Callable[[ASGIApp], ASGIApp]
    ) -> None:
        self.api = api(app)
        self.codec: ASGIApp = app
        if codec_origins:
            self.codec = CORSMiddleware(
                app,
                allow_origins=codec_origins,
                allow_methods=["POST"],
                allow_headers=list(CODEC_CORS_HEADERS),
                max_age=600,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_codec_path(scope["path"]):
            await self.codec(scope, receive, send)
        else:
            await self.api(scope, receive, send)


async def _payloads(request: Request) -> Payloads:
    try:
        body: Any = await request.json()
        return json_format.ParseDict(body, Payloads(), ignore_unknown_fields=True)
    except (ValueError, json_format.ParseError) as error:
        raise Problem(
            BAD_REQUEST,
            "the body must be a Payloads message in protobuf JSON, "
            f'{{"payloads": [{{"metadata": {{...}}, "data": "<base64>"}}]}}: {error}',
        ) from None


def _answer(payloads: Payloads) -> Response:
    return Response(json_format.MessageToJson(payloads, indent=None), media_type="application/json")


def add_codec_routes(app: FastAPI, keys: Callable[[], CodecKeys]) -> None:
    """`POST /codec/encode` and `/codec/decode` on `app`, whose guard checks the key.
    `keys` is read at the first request, so the app starts without them."""
    codecs: list[EncryptionCodec] = []

    def codec() -> EncryptionCodec:
        if not codecs:
            codecs.append(EncryptionCodec(keys()))
        return codecs[0]

    @app.post(f"{PREFIX}/encode", include_in_schema=False)
    async def encode(request: Request) -> Response:
        """Encrypt under the current key: input an engineer types in the UI."""
        payloads = await _payloads(request)
        return _answer(Payloads(payloads=await codec().encode(payloads.payloads)))

    @app.post(f"{PREFIX}/decode", include_in_schema=False)
    async def decode(request: Request) -> Response:
        """Decrypt what this codec encrypted, under any key held; the rest as it is."""
        payloads = await _payloads(request)
        try:
            decoded = await codec().decode(payloads.payloads)
        except CodecKeysError as error:
            raise Problem(PAYLOAD_NOT_DECODABLE, str(error)) from None
        return _answer(Payloads(payloads=decoded))


def add_codec_middleware(app: FastAPI) -> None:
    """The rewrite of keys in paths, run before anything reads the path (added last)."""
    app.add_middleware(KeyInPath)


def create_codec_app(settings: Settings) -> FastAPI:
    """`o2c codec-server`: the codec routes alone, checking keys in the API's database."""
    api_store = ApiStore(settings.api_database_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        settings.codec()  # no keys: fail at start, not at the first request
        try:
            yield
        finally:
            api_store.close()

    app = FastAPI(
        title="o2c codec server",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(require_json)],
    )
    protect(app, Authenticator(api_store))

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    add_codec_routes(app, settings.codec)
    app.add_middleware(BodyLimit, limit=CODEC_BODY_BYTES)
    app.add_middleware(CorsByPath, codec_origins=settings.codec_origins(), api=lambda inner: inner)
    app.add_middleware(TrustedHosts, hosts=settings.api_trusted_hosts)
    add_codec_middleware(app)
    add_problem_handlers(app)
    require_rules(app)
    return app
