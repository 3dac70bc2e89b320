"""The roles a key can have (a module of its own: the CLI reads it without the database)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a key may do (the routes of each: `o2c_service.access.rules`)."""

    INTEGRATION = "integration"
    """Outside systems: create orders, send shipments, payments, amendments, returns; read."""
    SUPPORT = "support"
    """People working orders: all of integration's, plus retry, release, cancel (singly and
    in bulk), credit refunds and reports."""
    VIEWER = "viewer"
    """Reads only."""
