"""Timeouts and retry policies per external system, in one place.

Retrying forever means forever: every policy has a time budget
(`schedule_to_close_timeout`) after which the step fails for the workflow to
handle. Business errors are raised non-retryable by the activities, so they
are never retried whatever the policy says.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityCancellationType, ActivityConfig, LocalActivityConfig


def _system_policy(
    *, call: timedelta, budget: timedelta, longest_wait: timedelta = timedelta(seconds=30)
) -> ActivityConfig:
    return ActivityConfig(
        start_to_close_timeout=call,
        schedule_to_close_timeout=budget,
        retry_policy=RetryPolicy(
            initial_interval=timedelta(seconds=1),
            backoff_coefficient=2.0,
            maximum_interval=longest_wait,
        ),
        # When an order is cancelled mid-step, wait for the step's attempt to
        # end: compensation then finds whatever it did by its idempotency key.
        cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    )


CRM = _system_policy(call=timedelta(seconds=10), budget=timedelta(minutes=5))
BILLING = _system_policy(call=timedelta(seconds=15), budget=timedelta(minutes=10))
LOGISTICS = _system_policy(call=timedelta(seconds=15), budget=timedelta(minutes=10))
PAYMENTS = _system_policy(call=timedelta(seconds=15), budget=timedelta(minutes=10))

COMPENSATION = _system_policy(
    call=timedelta(seconds=15), budget=timedelta(days=7), longest_wait=timedelta(minutes=5)
)
"""Undo steps are retried until done: a week of retries, at most five minutes apart."""


def as_local(config: ActivityConfig) -> LocalActivityConfig:
    """The same timeouts and retries for a local activity (it has no task queue)."""
    return LocalActivityConfig(
        start_to_close_timeout=config.get("start_to_close_timeout"),
        schedule_to_close_timeout=config.get("schedule_to_close_timeout"),
        retry_policy=config.get("retry_policy"),
        cancellation_type=config.get(
            "cancellation_type", ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
        ),
    )
