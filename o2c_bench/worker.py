"""The worker process `o2c bench` starts: the production order worker, plus the floor.

`python -m o2c_bench.worker` runs exactly what `o2c worker` runs
(`runners.run_worker`, configured by the same O2C_* variables) and, beside it,
a second small worker for the floor workflow on its own task queue
(`<O2C_TASK_QUEUE>-floor`), so the order worker is not changed in any way for
the benchmark. It runs in a process of its own so that its peak memory can be
read from /proc and its CPU is not shared with the load generator.
"""

from __future__ import annotations

import asyncio
import logging

from temporalio.worker import Worker

from o2c_bench.floor import FloorWorkflow, floor_activity, floor_task_queue
from o2c_service.runners import run_worker, stop_on_signals
from o2c_service.settings import Settings
from o2c_service.temporal import connect


async def run_floor_worker(settings: Settings, stop: asyncio.Event) -> None:
    client = await connect(settings.temporal_address, settings.temporal_namespace)
    async with Worker(
        client,
        task_queue=floor_task_queue(settings.task_queue),
        workflows=[FloorWorkflow],
        activities=[floor_activity],
    ):
        await stop.wait()


async def main() -> None:
    settings = Settings()
    stop = asyncio.Event()
    stop_on_signals(stop)
    workers = [
        asyncio.create_task(run_worker(settings, stop), name="orders"),
        asyncio.create_task(run_floor_worker(settings, stop), name="floor"),
    ]
    # Either failing stops the other; the error surfaces as a non-zero exit.
    await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
    stop.set()
    for worker in workers:
        await worker


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(main())
