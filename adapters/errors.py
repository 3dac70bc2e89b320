"""How an adapter says that a system refused or failed.

Business errors are final answers a person must act on (never retried blindly);
system errors are passing faults that a retry may cure.
"""

from __future__ import annotations


class BusinessError(Exception):
    """The system understood the request and refused it, e.g. `customer_not_found`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SystemFailure(Exception):
    """The system could not answer now (timeout, unavailable); retrying may help."""
