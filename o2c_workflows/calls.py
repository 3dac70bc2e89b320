"""How a workflow calls an activity: as a normal activity or a local one, and on which queue.

One place for the switch, so every workflow started with `local_activities`
makes each call the same way: all of them local (`True`), none (`False`), or
those of the systems listed (`["crm", "billing"]`), so a remote system can keep
normal activities on a task queue of its own while the embedded ones run local.

A workflow started with `system_queues` sends each normal activity to its
system's task queue, `<the workflow's task queue>.<system>` (`o2c-orders.billing`),
where only that system's workers poll, each with its own rate limit and slots: a
slow or throttled billing then holds up billing calls only. Started without
(the orders from before), every normal activity goes to the workflow's own queue.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TypeVar

from temporalio import workflow
from temporalio.types import MethodAsyncSingleParam

from o2c_domain.systems import LocalCalls

with workflow.unsafe.imports_passed_through():
    from activities import options
    from activities.order_activities import OrderActivities, system_of

A = TypeVar("A")
T = TypeVar("T")


def system_queue(task_queue: str, system: str) -> str:
    """The task queue of one system's activities beside the order task queue `task_queue`."""
    return f"{task_queue}.{system}"


def runs_locally(
    activity: MethodAsyncSingleParam[OrderActivities, A, T], local: bool | Collection[str]
) -> bool:
    if isinstance(local, bool):
        return local
    return system_of(activity) in local


async def execute(
    activity: MethodAsyncSingleParam[OrderActivities, A, T],
    argument: A,
    config: workflow.ActivityConfig,
    *,
    local: bool | Collection[str],
    system_queues: bool = False,
) -> T:
    """Local activities cost one history event and no server round trip, but hold the
    workflow task and have no task-queue rate limit; normal ones cost three events and
    a round trip, and show as activities in the UI. With `system_queues` a normal one
    goes to its system's queue (`system_queue`), else to the workflow's own."""
    if runs_locally(activity, local):
        return await workflow.execute_local_activity_method(
            activity, argument, **options.as_local(config)
        )
    if system_queues:
        # The workflow's task queue comes from its start event: the same on every replay.
        queue = system_queue(workflow.info().task_queue, system_of(activity))
        config = config.copy()
        config["task_queue"] = queue
    return await workflow.execute_activity_method(activity, argument, **config)


@dataclass(frozen=True)
class Caller:
    """Calls activities as one workflow was started: local or normal (`local`), on the
    systems' queues or its own (`system_queues`)."""

    local: LocalCalls
    system_queues: bool

    async def __call__(
        self,
        activity: MethodAsyncSingleParam[OrderActivities, A, T],
        argument: A,
        config: workflow.ActivityConfig,
    ) -> T:
        return await execute(
            activity, argument, config, local=self.local, system_queues=self.system_queues
        )
