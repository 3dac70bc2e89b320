"""How a workflow calls an activity: as a normal activity or a local one.

One place for the switch, so every workflow started with `local_activities`
makes each call the same way: all of them local (`True`), none (`False`), or
those of the systems listed (`["crm", "billing"]`), so a remote system can keep
normal activities on a task queue of its own while the embedded ones run local.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal, TypeAlias, TypeVar

from temporalio import workflow
from temporalio.types import MethodAsyncSingleParam

with workflow.unsafe.imports_passed_through():
    from activities import options
    from activities.order_activities import OrderActivities, activity_name

A = TypeVar("A")
T = TypeVar("T")

System = Literal["crm", "billing", "logistics", "payments"]
"""The systems o2c calls; each activity's name starts with its system (`billing.…`)."""
LocalCalls: TypeAlias = bool | list[System]
"""Which systems' calls run as local activities: all, none, or those listed."""


def runs_locally(
    activity: MethodAsyncSingleParam[OrderActivities, A, T], local: bool | Collection[str]
) -> bool:
    if isinstance(local, bool):
        return local
    return activity_name(activity).partition(".")[0] in local


async def execute(
    activity: MethodAsyncSingleParam[OrderActivities, A, T],
    argument: A,
    config: workflow.ActivityConfig,
    *,
    local: bool | Collection[str],
) -> T:
    """Local activities cost one history event and no server round trip, but hold the
    workflow task and have no task-queue rate limit; normal ones cost three events and
    a round trip, and show as activities in the UI."""
    if runs_locally(activity, local):
        return await workflow.execute_local_activity_method(
            activity, argument, **options.as_local(config)
        )
    return await workflow.execute_activity_method(activity, argument, **config)
