"""How long the Temporal dev server takes to hand a task to a waiting worker, with no o2c
code involved: `python -m o2c_bench.handoff [--rounds 6] [dev server flags...]`.

A workflow runs nine no-op activities one after the other, on its own task queue (the
SDK dispatches them eagerly, in the answer to the workflow task) or on another queue
(as o2c's system queues do), in one process with a worker on each queue. For each run
it prints the mean schedule-to-start of the activity tasks and of the workflow tasks
their completions start, read from the history. Extra arguments go to the dev server
(`--dynamic-config-value matching.numTaskqueueReadPartitions=1 ...`). docs/benchmark.md
("One order alone") quotes it.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from o2c_service.settings import Settings
    from o2c_service.temporal import exit_at_once

STEPS = 9
"""Activities per run: as many as an order paid on invoice calls."""


@activity.defn
async def noop(step: int) -> int:
    return step


@workflow.defn
class Chain:
    @workflow.run
    async def run(self, queue: str) -> None:
        for step in range(STEPS):
            await workflow.execute_activity(
                noop, step, task_queue=queue or None, start_to_close_timeout=timedelta(seconds=10)
            )


async def waits(handle: WorkflowHandle[Chain, None]) -> tuple[float, float]:
    """Mean schedule-to-start, in ms, of the run's activity tasks and workflow tasks."""
    scheduled: dict[int, float] = {}
    activities: list[float] = []
    tasks: list[float] = []
    task_scheduled = 0.0
    async for event in handle.fetch_history_events():
        at = event.event_time.ToDatetime().timestamp()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = at
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            activities.append(at - scheduled[started.scheduled_event_id])
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            task_scheduled = at
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            tasks.append(at - task_scheduled)
    return 1000 * sum(activities) / len(activities), 1000 * sum(tasks) / len(tasks)


async def measure(rounds: int, server_flags: list[str]) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Settings().temporal_cli_path()),
        dev_server_log_level="error",
        dev_server_extra_args=server_flags,
    )
    async with env:
        client = env.client
        own, other = f"handoff-{uuid.uuid4()}", f"handoff-other-{uuid.uuid4()}"
        async with (
            Worker(client, task_queue=own, workflows=[Chain], activities=[noop]),
            Worker(client, task_queue=other, activities=[noop]),
        ):
            for _ in range(rounds):
                for label, queue in (("own queue", ""), ("other queue", other)):
                    began = time.perf_counter()
                    handle = await client.start_workflow(
                        Chain.run, queue, id=str(uuid.uuid4()), task_queue=own
                    )
                    await handle.result()
                    took = 1000 * (time.perf_counter() - began)
                    activity_wait, task_wait = await waits(handle)
                    print(
                        f"{label:<12} {took:5.0f} ms for {STEPS} activities; schedule-to-start "
                        f"mean: activity {activity_wait:5.1f} ms, workflow task {task_wait:5.1f} ms"
                    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    known, server_flags = parser.parse_known_args()
    asyncio.run(measure(known.rounds, server_flags))
    exit_at_once()  # everything is printed


if __name__ == "__main__":
    main()
