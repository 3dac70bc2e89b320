"""Who may call which route: one table, every route of the API in it.

A rule is the roles whose keys may call the route, or `PUBLIC` (no key: health
and the docs) or `SIGNED` (no key: the 3PL's and the gateway's webhooks, which
authenticate each request by its Standard Webhooks signature instead). The API
refuses to start with a route the table does not name (`o2c_service.access.guard`),
and `tests/integration/test_api_keys.py` calls every route with every kind of key.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from o2c_service.access.roles import Role


class Open(StrEnum):
    PUBLIC = "public"
    """Anyone: liveness and the docs."""
    SIGNED = "signed"
    """Anyone with a valid webhook signature: the route checks it."""
    SESSION = "session"
    """The console (`o2c_service.console`): a mounted app that checks its own session
    cookie, the key behind it and each page's roles (`CONSOLE_RULES`) on every request."""


PUBLIC = Open.PUBLIC
SIGNED = Open.SIGNED
SESSION = Open.SESSION
Rule = frozenset[Role] | Open

READ = frozenset(Role)
"""Reads: every role."""
EVENTS = frozenset({Role.INTEGRATION, Role.SUPPORT})
"""Creating orders and sending them the outside world's events."""
SUPPORT = frozenset({Role.SUPPORT})
"""Working orders by hand: retry, release, cancel, refunds."""
REPORTS = frozenset({Role.SUPPORT, Role.VIEWER})
"""The summary report: support's, and a read (viewers)."""

METRICS = READ
"""Prometheus's scrape: a key of any role; a viewer key is enough (docs/operations.md)."""

CODEC = frozenset({Role.SUPPORT, Role.VIEWER})
"""Decoding what Temporal stores of orders: the people who read orders (the codec server)."""

ROUTE_RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/"): PUBLIC,  # to the console
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/metrics"): METRICS,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/static/docs"): PUBLIC,  # the docs' assets (a mount: any file under it)
    ("POST", "/orders"): EVENTS,
    ("GET", "/orders"): READ,
    ("GET", "/orders/{order_id}"): READ,
    ("POST", "/orders/{order_id}/shipments"): EVENTS,
    ("POST", "/orders/{order_id}/payments"): EVENTS,
    ("POST", "/orders/{order_id}/amendments"): EVENTS,
    ("POST", "/orders/{order_id}/returns"): EVENTS,
    ("POST", "/orders/{order_id}/retry"): SUPPORT,
    ("POST", "/orders/{order_id}/release"): SUPPORT,
    ("POST", "/orders/{order_id}/cancel"): SUPPORT,
    ("POST", "/orders/bulk/retry"): SUPPORT,
    ("POST", "/orders/bulk/release"): SUPPORT,
    ("POST", "/orders/bulk/cancel"): SUPPORT,
    ("POST", "/credits/refunds"): SUPPORT,
    ("GET", "/reports/summary"): REPORTS,
    ("GET", "/reports/reconciliation"): SUPPORT,
    ("POST", "/codec/encode"): CODEC,
    ("POST", "/codec/decode"): CODEC,
    ("POST", "/webhooks/logistics"): SIGNED,
    ("POST", "/webhooks/payments"): SIGNED,
    ("GET", "/webhooks/rejected"): SUPPORT,
    ("GET", "/console"): SESSION,  # the console's mount: CONSOLE_RULES below, per page
}
"""(method, path template) -> who may call it."""

CONSOLE_READ = frozenset({Role.SUPPORT, Role.VIEWER})
"""People reading orders in the console (integration keys are for systems, not people)."""
CONSOLE_ACT = frozenset({Role.SUPPORT})
"""People working orders in the console: every form that changes an order."""

CONSOLE_RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/sign-in"): PUBLIC,
    ("POST", "/sign-in"): PUBLIC,  # the key in the form is what it checks
    ("GET", "/static"): PUBLIC,  # the stylesheet (a mount)
    ("POST", "/sign-out"): CONSOLE_READ,
    ("GET", "/"): CONSOLE_READ,
    ("GET", "/dashboard"): CONSOLE_READ,
    ("GET", "/orders/{order_id}"): CONSOLE_READ,
    ("POST", "/orders/{order_id}/{action}"): CONSOLE_ACT,
    ("POST", "/bulk/preview"): CONSOLE_ACT,
    ("POST", "/bulk/confirm"): CONSOLE_ACT,
}
"""The console's pages, relative to its mount at `/console` -> who may open them: every
route of the console app is here, or the console is not created."""


class NoRule(LookupError):
    """A route the table does not name: the API must not serve it to anyone by default."""


def rule_for(method: str, path: str, table: dict[tuple[str, str], Rule] = ROUTE_RULES) -> Rule:
    """The rule of a route, by its method and path template (`/orders/{order_id}`)."""
    rule = table.get(("GET" if method == "HEAD" else method, path))
    if rule is None:
        raise NoRule(
            f"{method} {path} has no rule in o2c_service/access/rules.py: say which roles "
            "may call it (or that it is public)"
        )
    return rule


@dataclass(frozen=True)
class Caller:
    """Who made a request: the key it carried (`request.state.caller`)."""

    key_id: str
    name: str
    role: Role

    @property
    def actor(self) -> str:
        """How the order's state and timeline name this caller: `name (key_id)`."""
        return f"{self.name} ({self.key_id})"
