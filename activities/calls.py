"""How every activity calls its adapter, and the arguments more than one system takes.

Activities stay thin: they call one adapter and translate its errors into
Temporal's terms: a business error becomes a non-retryable `ApplicationError`
whose type is the error code; a system failure a retryable one whose type is
its kind (a rate limit carries the delay the system asked for). A retry after
an unknown outcome first looks the operation up by its idempotency key, so a
request that did take effect is never made twice. Undo activities (for
compensation) find what the forward step did by the same key, and all answer
an `Undo` with an `UndoResult`.

These pieces live apart from the per-system modules (`crm.py`, `billing.py`,
`logistics.py`, `payments.py`) so that every system's activities follow the
same rules from one place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from adapters.errors import BusinessError, RateLimited, SystemFailure

T = TypeVar("T")


class CustomerCheck(BaseModel):
    order_id: str
    customer_id: str


class Undo(BaseModel):
    """Undo what the forward step with `forward_key` did, if it did anything."""

    forward_key: str
    undo_key: str
    reason: str


class UndoResult(BaseModel):
    done: bool
    """False when the forward step had left nothing to undo."""
    note: str


async def translated(call: Awaitable[T]) -> T:
    """Await an adapter call, raising its failures as Temporal understands them."""
    try:
        return await call
    except BusinessError as error:
        raise business_outcome(error) from error
    except RateLimited as error:
        raise ApplicationError(
            str(error), type=error.kind, next_retry_delay=error.retry_after
        ) from error
    except SystemFailure as error:
        raise ApplicationError(str(error), type=error.kind) from error


def business_outcome(error: BusinessError) -> ApplicationError:
    """A business refusal is an outcome, not a fault: one line at INFO, and marked benign
    so the SDK logs no traceback and counts no failure metric for it."""
    activity.logger.info("business outcome %s: %s", error.code, error.message)
    return ApplicationError(
        error.message,
        type=error.code,
        non_retryable=True,
        category=ApplicationErrorCategory.BENIGN,
    )


async def once(
    find: Callable[[str], Awaitable[T | None]], key: str, do: Callable[[], Awaitable[T]]
) -> T:
    """Do a keyed operation; on a retry, first ask whether an earlier attempt did it.

    An earlier attempt may have timed out after the system acted (unknown
    outcome); the lookup makes the retry safe even for a system that does not
    honour idempotency keys itself.
    """
    if activity.info().attempt > 1:
        found = await translated(find(key))
        if found is not None:
            activity.logger.info("%s was already done by an earlier attempt", key)
            return found
    return await translated(do())
