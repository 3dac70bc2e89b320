"""What the API does to every request before, or instead of, a route, against callers
and against browsers that carry attacks to it: a `Host` not in the trusted list is 400
(DNS rebinding), bodies over the limit are 413 before they are parsed, a state-changing
request that is not `application/json` is 415 (a cross-site form or `text/plain` post,
which a browser sends without asking), and no browser may read an answer across origins
unless `O2C_API_CORS_ORIGINS` names its origin. Each refusal is problem details.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from email.message import Message as MimeHeader

from fastapi import Request
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from o2c_service.problems import BODY_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, UNTRUSTED_HOST, Problem

MAX_BODY_BYTES = 1_000_000
"""Request bodies larger than this are refused (413) before they are parsed."""


class BodyLimit:
    """Refuse bodies over `limit` bytes with 413: by Content-Length when it is sent,
    by counting as it streams in when it is not (or when it lies)."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int = MAX_BODY_BYTES,
        larger: Sequence[tuple[Callable[[str], bool], int]] = (),
    ) -> None:
        self.app = app
        self.limit = limit
        self.larger = larger
        """Paths (by predicate) allowed more: the codec's, whose bodies are payloads."""

    def _limit(self, path: str) -> int:
        return next((limit for applies, limit in self.larger if applies(path)), self.limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await self._refuse(send, limit)
            return
        received, started, too_large = 0, False, False

        async def counted_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
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
            await self._refuse(send, limit)

    async def _refuse(self, send: Send, limit: int) -> None:
        await Problem(
            BODY_TOO_LARGE,
            f"the request body is larger than {limit} bytes ({limit / 1_000_000:g} MB), the limit",
        ).send(send)


STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_MEDIA_TYPE = "application/json"


def require_json(request: Request) -> None:
    """A state-changing request with a body, or with a `Content-Type`, must say it is
    `application/json` (parameters such as `charset` are fine): 415 otherwise. A browser
    posts a form, or `text/plain`, to another site without asking it first; JSON it must
    ask for (CORS). A request with neither (`retry` without a note) carries nothing to
    misread; API keys, which a browser sends nowhere unasked, are what guard it."""
    if request.method not in STATE_CHANGING:
        return
    sent = request.headers.get("content-type")
    length = request.headers.get("content-length")
    has_body = (length is not None and length.strip() != "0") or (
        "transfer-encoding" in request.headers
    )
    if sent is None and not has_body:
        return
    if sent is not None:
        header = MimeHeader()
        header["content-type"] = sent
        if header.get_content_type() == JSON_MEDIA_TYPE:
            return
    said = f"'{sent[:100]}'" if sent is not None else "no Content-Type"
    raise Problem(
        UNSUPPORTED_MEDIA_TYPE,
        f"{request.method} takes a JSON body: send Content-Type: application/json, not {said}",
        headers={"Accept-Post": JSON_MEDIA_TYPE} if request.method == "POST" else None,
    )


def host_name(host: str) -> str:
    """The `Host` header without its port, lower case: `[::1]:8000` -> `::1`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


class TrustedHosts:
    """Answer 400 to a request whose `Host` is not one of `hosts` (port ignored): a page
    on another site that rebinds its own name to this machine's address (DNS
    rebinding) reaches the API under that name, never under a trusted one.

    `*` trusts any host; `*.example.com` any name under example.com."""

    def __init__(self, app: ASGIApp, hosts: Sequence[str]) -> None:
        self.app = app
        self.hosts = frozenset(host_name(host) for host in hosts)
        self.any = "*" in self.hosts
        self.suffixes = tuple(host[1:] for host in self.hosts if host.startswith("*."))

    def trusted(self, host: str) -> bool:
        name = host_name(host)
        return self.any or name in self.hosts or (bool(name) and name.endswith(self.suffixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
        if self.trusted(host):
            await self.app(scope, receive, send)
            return
        shown = f"'{host[:100]}'" if host else "none"
        await Problem(
            UNTRUSTED_HOST,
            f"the Host header ({shown}) is not one this API answers to; trusted: "
            f"{', '.join(sorted(self.hosts))} (O2C_API_TRUSTED_HOSTS)",
        ).send(send)


CORS_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "Prefer")
"""What a browser page of an allowed origin may send."""
CORS_EXPOSED = ("Location", "Idempotent-Replayed", "Preference-Applied", "WWW-Authenticate")
"""What it may read of an answer, besides the body."""


def api_cors(app: ASGIApp, origins: Sequence[str]) -> ASGIApp:
    """Let browser pages of `origins` call the API (none by default: no CORS at all)."""
    if not origins:
        return app
    return CORSMiddleware(
        app,
        allow_origins=list(origins),
        allow_methods=["GET", "POST"],
        allow_headers=list(CORS_HEADERS),
        expose_headers=list(CORS_EXPOSED),
        max_age=600,
    )
