"""The API's request metrics: how many, how they were answered, how long they took."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNROUTED = "<unrouted>"
"""The route label of a request answered before it was routed (a wrong `Host`, say) or
that matched no route: never its path, which would make a series per path."""

REQUESTS = Counter(
    "o2c_http_requests",
    "HTTP requests the API answered, by method, route template and status code.",
    ["method", "route", "status"],
    registry=None,
)
REQUEST_SECONDS = Histogram(
    "o2c_http_request_duration_seconds",
    "Seconds from a request's arrival until its answer was sent, by method and route "
    "template (`POST /orders` waits for the booking, up to O2C_BOOKING_WAIT_SECONDS).",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=None,
)


class RequestMetrics:
    """ASGI middleware, outermost, so every answer counts, refusals included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before it answers

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            # The router puts the matched route on the scope it was given: this one.
            route = getattr(scope.get("route"), "path", None) or UNROUTED
            method = scope["method"]
            REQUESTS.labels(method=method, route=route, status=str(status)).inc()
            REQUEST_SECONDS.labels(method=method, route=route).observe(
                time.perf_counter() - started
            )
