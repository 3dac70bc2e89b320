"""The worker process `o2c bench` starts: the production order worker, plus the floor.

`python -m o2c_bench.worker` runs exactly what `o2c worker` runs
(`runners.run_worker`, configured by the same O2C_* variables) and, beside it,
a second small worker for the floor workflow on its own task queue
(`<O2C_TASK_QUEUE>-floor`), so the order worker is not changed in any way for
the benchmark. It runs in a process of its own so that its peak memory can be
read from /proc and its CPU is not shared with the load generator.

`--no-floor` leaves the floor's worker out: `o2c bench --workers N` starts N of
these on the same task queue, and only the first runs the floor.

`--cprofile FILE` (`o2c bench --profile` where py-spy cannot attach) runs it
under cProfile, every thread from its start, and dumps the stats to FILE at exit.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import pstats
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from temporalio.worker import Worker

from o2c_bench.floor import FloorWorkflow, floor_activity, floor_task_queue
from o2c_service.runners import run_worker, stop_on_signals
from o2c_service.settings import Settings
from o2c_service.temporal import connect


async def run_floor_worker(settings: Settings, stop: asyncio.Event) -> None:
    client = await connect(settings)
    async with Worker(
        client,
        task_queue=floor_task_queue(settings.task_queue),
        workflows=[FloorWorkflow],
        activities=[floor_activity],
    ):
        await stop.wait()


async def main(floor: bool = True) -> None:
    settings = Settings()
    stop = asyncio.Event()
    stop_on_signals(stop)
    workers = [asyncio.create_task(run_worker(settings, stop), name="orders")]
    if floor:
        workers.append(asyncio.create_task(run_floor_worker(settings, stop), name="floor"))
    # Either failing stops the other; the error surfaces as a non-zero exit.
    await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
    stop.set()
    for worker in workers:
        await worker


@contextmanager
def cprofiled(output: Path) -> Iterator[None]:
    """cProfile on this thread and on every thread started inside; their stats merged.

    Each thread's profiler counts that thread's CPU time (`time.thread_time`),
    so a thread waiting for work or I/O adds nothing.

    A profiler hooks only the thread that enables it, and the SDK runs workflow
    tasks on threads of its own, so each new thread enables one of its own on its
    first profile event.
    """
    profilers: list[cProfile.Profile] = []
    lock = threading.Lock()

    def enable_here(_frame: FrameType, _event: str, _arg: Any) -> None:
        profiler = cProfile.Profile(time.thread_time)
        with lock:
            profilers.append(profiler)
        profiler.enable()  # replaces this hook, on this thread

    main = cProfile.Profile(time.thread_time)
    profilers.append(main)
    threading.setprofile(enable_here)
    main.enable()
    try:
        yield
    finally:
        main.disable()
        threading.setprofile(None)
        merged = pstats.Stats()
        with lock:
            for profiler in profilers:
                profiler.create_stats()
                if profiler.stats:  # empty for a thread that never ran Python
                    merged.add(profiler)
        merged.dump_stats(output)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m o2c_bench.worker")
    parser.add_argument("--cprofile", type=Path, help="profile every thread, dump stats here")
    parser.add_argument(
        "--no-floor", dest="floor", action="store_false", help="run the order worker only"
    )
    arguments = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if arguments.cprofile is None:
        asyncio.run(main(arguments.floor))
    else:
        with cprofiled(arguments.cprofile):
            asyncio.run(main(arguments.floor))
