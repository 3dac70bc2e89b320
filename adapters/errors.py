"""How an adapter says that a system refused or failed.

Business errors are final answers a person must act on (never retried blindly).
System failures are passing faults that a retry may cure; `UnknownOutcome`
among them means the request may have taken effect, so the caller must look
the operation up by its idempotency key before doing it again.
"""

from __future__ import annotations

from datetime import timedelta


class BusinessError(Exception):
    """The system understood the request and refused it, e.g. `customer_not_found`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SystemFailure(Exception):
    """The system could not answer now; retrying may help."""

    kind = "system_failure"


class SystemTimeout(SystemFailure):
    """No answer in time, and the request was never received (safe to resend)."""

    kind = "system_timeout"


class SystemUnavailable(SystemFailure):
    """The system is down or answering 5xx."""

    kind = "system_unavailable"


class RateLimited(SystemFailure):
    """The system asks us to slow down, optionally saying for how long."""

    kind = "rate_limited"

    def __init__(self, message: str, retry_after: timedelta | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnknownOutcome(SystemFailure):
    """The request was sent but no answer came back: it may have taken effect."""

    kind = "unknown_outcome"
