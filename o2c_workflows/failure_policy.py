"""What the order does when a step fails for good: park it, or undo and cancel.

System errors are retried by Temporal within each system's time budget
(`activities.options`); only when a step fails for good does this policy
decide. A business error a person can fix (unknown customer, item out of
stock, billing rejecting the invoice) or an exhausted retry budget parks the
order OnHold at that step, to be retried once fixed or cancelled. A business
error that says the order cannot go on (customer blocked in CRM, the 3PL
refusing the shipment) undoes what was done and cancels the order.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as ActivityTimeoutError

ACTIVITY_FAILURES = (ActivityError, ApplicationError, ActivityTimeoutError)
"""What a failed step raises: a normal activity wraps its failure in ActivityError, a local
activity raises the failure itself (ApplicationError, or TimeoutError when its budget ran out)."""


class OnFailure(StrEnum):
    HOLD = "hold"
    COMPENSATE = "compensate"


COMPENSATE_ON: frozenset[str] = frozenset({"customer_blocked", "shipment_refused"})
"""Business error codes after which the order is undone and cancelled, not parked."""

BUDGET_EXHAUSTED = "retry_budget_exhausted"
"""The code a step gets when its system kept failing for the whole retry budget."""


@dataclass(frozen=True)
class StepFailure:
    code: str
    message: str

    @property
    def policy(self) -> OnFailure:
        return OnFailure.COMPENSATE if self.code in COMPENSATE_ON else OnFailure.HOLD

    @classmethod
    def of(cls, error: ActivityError | ApplicationError | ActivityTimeoutError) -> StepFailure:
        cause = error.cause if isinstance(error, ActivityError) else error
        if isinstance(cause, ApplicationError) and cause.non_retryable:
            return cls(code=cause.type or "business_error", message=cause.message)
        return cls(code=BUDGET_EXHAUSTED, message=f"gave up retrying: {_last_error(error)}")


def _last_error(error: BaseException) -> str:
    """The innermost cause: what the system actually said on the last attempt."""
    while error.__cause__ is not None:
        error = error.__cause__
    return str(error)
