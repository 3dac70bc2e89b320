"""How a workflow calls an activity: as a normal activity or a local one.

One place for the switch, so every workflow started with `local_activities`
makes each call the same way.
"""

from __future__ import annotations

from typing import TypeVar

from temporalio import workflow
from temporalio.types import MethodAsyncSingleParam

with workflow.unsafe.imports_passed_through():
    from activities import options
    from activities.order_activities import OrderActivities

A = TypeVar("A")
T = TypeVar("T")


async def execute(
    activity: MethodAsyncSingleParam[OrderActivities, A, T],
    argument: A,
    config: workflow.ActivityConfig,
    *,
    local: bool,
) -> T:
    """Local activities cost one history event and no server round trip, but hold the
    workflow task and have no task-queue rate limit; normal ones cost three events and
    a round trip, and show as activities in the UI."""
    if local:
        return await workflow.execute_local_activity_method(
            activity, argument, **options.as_local(config)
        )
    return await workflow.execute_activity_method(activity, argument, **config)
