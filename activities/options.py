"""Timeouts and retry policies per external system, in one place.

Retrying forever means forever: every policy has a time budget
(`schedule_to_close_timeout`) after which the step fails for the workflow to
handle. Business errors are raised non-retryable by the activities, so they
are never retried whatever the policy says.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityConfig


def _system_policy(*, call: timedelta, budget: timedelta) -> ActivityConfig:
    return ActivityConfig(
        start_to_close_timeout=call,
        schedule_to_close_timeout=budget,
        retry_policy=RetryPolicy(
            initial_interval=timedelta(seconds=1),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=30),
        ),
    )


CRM = _system_policy(call=timedelta(seconds=10), budget=timedelta(minutes=5))
BILLING = _system_policy(call=timedelta(seconds=15), budget=timedelta(minutes=10))
LOGISTICS = _system_policy(call=timedelta(seconds=15), budget=timedelta(minutes=10))
PAYMENTS = _system_policy(call=timedelta(seconds=15), budget=timedelta(minutes=10))
