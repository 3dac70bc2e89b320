"""The floor of `o2c bench`: the cheapest workflow Temporal can run, to compare orders with.

One workflow that runs one trivial activity: every round trip an order pays for
beyond these is the order's own cost. Kept in a module of its own that imports
nothing but the SDK, so the workflow sandbox loads it at once.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

FLOOR_WORKFLOW = "BenchFloor"


def floor_task_queue(task_queue: str) -> str:
    """The floor's task queue beside the orders' one (the order worker stays as it is)."""
    return f"{task_queue}-floor"


@activity.defn(name="bench.floor")
async def floor_activity(value: str) -> str:
    return value


@workflow.defn(name=FLOOR_WORKFLOW)
class FloorWorkflow:
    @workflow.run
    async def run(self, value: str) -> str:
        return await workflow.execute_activity(
            floor_activity, value, start_to_close_timeout=timedelta(seconds=30)
        )
