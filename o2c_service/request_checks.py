"""What the API does to every request before, or instead of, a route: bodies over the
limit are refused with 413 before they are parsed, and a validation error names the
field it is about and echoes at most a little of the refused value.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1_000_000
"""Request bodies larger than this are refused (413) before they are parsed."""
MAX_ECHOED_CHARS = 100
"""A validation error shows at most this much of the value it refuses."""


def _echoed(value: Any) -> Any:
    """The refused value, short: scalars as they are, anything longer cut."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else json.dumps(jsonable_encoder(value))
    return text if len(text) <= MAX_ECHOED_CHARS else text[:MAX_ECHOED_CHARS] + "..."


def validation_details(error: RequestValidationError) -> list[dict[str, Any]]:
    """Each error with the field it is about (`loc`) and at most the refused value:
    never the whole body (a missing field's `input` would be the body around it)."""
    details: list[dict[str, Any]] = []
    for item in error.errors():
        detail: dict[str, Any] = {"type": item["type"], "loc": list(item["loc"]),
                                  "msg": item["msg"]}  # fmt: skip
        if item["type"] not in ("missing", "json_invalid") and "input" in item:
            detail["input"] = _echoed(item["input"])
        details.append(detail)
    return details


class BodyLimit:
    """Refuse bodies over `limit` bytes with 413: by Content-Length when it is sent,
    by counting as it streams in when it is not (or when it lies)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._refuse(send)
            return
        received, started, too_large = 0, False, False

        async def counted_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # Read no further; the app sees the client go, and its answer is dropped.
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if too_large and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except Exception:
            if not too_large:
                raise
        if too_large and not started:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {"detail": f"the request body is larger than {self.limit} bytes (1 MB), the limit"}
        ).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})
