"""Why an event was turned away, in terms the API and CLI can show as-is.

Rejections are `ApplicationError`s: raised in an update validator they reject
the update before anything is written to history; raised in a handler they fail
only that update, never the order workflow.
"""

from __future__ import annotations

from typing import NoReturn

from temporalio.exceptions import ApplicationError

EVENT_NOT_ALLOWED = "EventNotAllowed"
"""The event is well formed but does not fit where the order stands (HTTP 409)."""

INVALID_EVENT = "InvalidEvent"
"""The event contradicts the order itself, e.g. another currency (HTTP 422)."""


def not_allowed(reason: str) -> NoReturn:
    raise ApplicationError(reason, type=EVENT_NOT_ALLOWED, non_retryable=True)


def invalid(reason: str) -> NoReturn:
    raise ApplicationError(reason, type=INVALID_EVENT, non_retryable=True)
