"""`o2c bench`: what one order costs on Temporal, measured against the cheapest workflow.

One run starts a dev server (in memory, on a SQLite file, or uses an existing
server), a worker in a process of its own (`o2c_bench.worker`: the
production worker plus the floor workflow), or `--workers N` of them on one task
queue and one local-systems database (the floor's worker in the first only),
warms them up, then

1. the floor: N one-activity workflows, `--concurrency` at a time -> workflows/s;
2. N orders started as the API starts them (`OrderService.create`), with the
   outside world answering as soon as each order is ready: the shipment is
   confirmed once it is Booked, the invoice paid once it is Invoiced, until it
   is Closed -> orders/s, latencies, history size, CPU and memory;

or, with `--parked N`, parks N orders Invoiced, reads the memory they hold,
pays them all and counts the orders that closed. With `--profile FILE` the
(first) worker is profiled while the orders run (`profile`). With `--remote`
a sandbox (`sandbox`) serves the four systems over HTTP, started before the
workers and stopped after them, and the workers call it from normal activities
on the systems' task queues. Where the orders' time went (`time_spent`) is
read from their histories whenever they ran normal activities.

How the bench sees an order reach Booked or Invoiced: one visibility query
(`WorkflowId IN (...)`, reading the `OrderStatus` search attribute) for every
order waited on, every few milliseconds. It costs the server about the same
whether 1 or 100 orders are in flight and asks the worker nothing, where one
long poll per order on its history would cost the server about as much as the
order's own activities. The answers to the shipment and payment Updates carry
the status too. Latencies are then taken from each order's history after the
run (the event at which it recorded the status), so the polling interval does
not blur them.

This module is the run from start to end (`run`); the rest is beside it: the
options (`options`), the driving of workflows and orders (`drive`), the status
board (`status_board`), what histories say (`histories`) and the Actions they
bill (`actions`), the profiler (`profile`) and the machine the run ran on
(`machine`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError

from o2c_bench.drive import Bench, Profiler, not_profiled
from o2c_bench.env import (
    BenchError,
    Server,
    Workers,
    prepare_database,
    process_memory,
    temporal_server,
    worker_processes,
)
from o2c_bench.machine import machine
from o2c_bench.options import BenchOptions
from o2c_bench.profile import (
    Tool,
    choose_tool,
    cprofile_figures,
    py_spy_figures,
    py_spy_recording,
)
from o2c_bench.report import (
    BenchReport,
    HistoryFigures,
    LifecycleFigures,
    ParkedFigures,
    ProcessMemory,
    ProfileFigures,
    RunInfo,
    SandboxFigures,
    WorkerProcessFigures,
    highest_peak,
    targets,
)
from o2c_bench.sandbox import Sandbox, sandbox_figures, sandbox_process
from o2c_bench.status_board import StatusBoard
from o2c_service.codec.keys import CodecKeysError, new_key
from o2c_service.orders import OrderService
from o2c_service.outcomes import OrderError
from o2c_service.settings import Settings

__all__ = ["BenchError", "BenchOptions", "run"]


async def _server_version(client: Client) -> str | None:
    try:
        info = await client.workflow_service.get_system_info(GetSystemInfoRequest())
    except RPCError:
        return None
    return info.server_version or None


@contextlib.contextmanager
def _progress(console: Console) -> Iterator[Progress]:
    progress = Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        yield progress


def bench_settings() -> Settings:
    """The settings, with payloads encrypted as in production: under the configured codec
    keys, or under a key of the bench's own (its orders live and die with its run). Its
    worker processes inherit the key through the environment."""
    settings = Settings()
    try:
        settings.codec()
    except CodecKeysError:
        os.environ["O2C_CODEC_KEYS"] = new_key("bench").line()
        settings = Settings()
    return settings


async def run_bench(options: BenchOptions, console: Console) -> BenchReport:
    """Everything `o2c bench` does; the report says what it measured."""
    settings = bench_settings()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    load_before = os.getloadavg()[0]
    task_queue = f"o2c-bench-{uuid.uuid4().hex[:8]}"
    tool: Tool | None = None
    if options.profile is not None:
        tool, why_not = choose_tool()
        if why_not:
            console.print(f"profiling the worker with cProfile, not py-spy: {why_not}")
    cprofile = options.profile if tool == "cProfile" else None
    with tempfile.TemporaryDirectory(prefix="o2c-bench-") as scratch:
        database_url = f"sqlite:///{Path(scratch) / 'o2c.db'}"
        prepare_database(database_url)
        server_log = Path(scratch) / "server.log"
        sandbox_log = Path(scratch) / "sandbox.log"
        async with (
            temporal_server(settings, options.address, options.sqlite, server_log) as server,
            _sandbox(options, database_url, sandbox_log) as sandbox,
            worker_processes(
                options.workers, server.address, settings.temporal_namespace, task_queue,
                database_url, options.local_activities, Path(scratch), cprofile,
                urls=sandbox.urls if sandbox else None,
            ) as workers,
            StatusBoard(server.client) as board,
        ):  # fmt: skip
            with _progress(console) as progress:
                service = OrderService(
                    server.client,
                    task_queue,
                    local_activities=options.local_activities,
                    system_queues=options.system_queues,
                )
                profiler: Profiler = not_profiled
                if tool == "py-spy" and options.profile is not None:
                    output, log = options.profile, Path(scratch) / "py-spy.log"
                    pid = workers.first.pid
                    profiler = lambda: py_spy_recording(pid, output, log)  # noqa: E731
                bench = Bench(
                    options=options,
                    client=server.client,
                    service=service,
                    board=board,
                    workers=workers,
                    server_pid=server.pid,
                    task_queue=task_queue,
                    progress=progress,
                    profiler=profiler,
                )
                measured = _measure(bench, settings, server, sandbox, started_at, load_before)
                report = await workers.supervise(
                    sandbox.supervise(measured) if sandbox else measured
                )
    # After the worker has stopped: under cProfile, it writes its stats as it exits.
    return report.model_copy(update={"profile": _profile(options, tool, report)})


_MEMORY = set(ProcessMemory.model_fields)


def _profile(
    options: BenchOptions, tool: Tool | None, report: BenchReport
) -> ProfileFigures | None:
    if options.profile is None or tool is None:
        return None
    of = f", the first of {options.workers} worker processes" if options.workers > 1 else ""
    if tool == "cProfile":
        figures = cprofile_figures(options.profile)
        return figures.model_copy(update={"scope": figures.scope + of})
    scope = "orders phase" if report.parked is None else "parked orders, parking and closing"
    return py_spy_figures(options.profile).model_copy(update={"scope": scope + of})


@contextlib.asynccontextmanager
async def _sandbox(
    options: BenchOptions, database_url: str, log: Path
) -> AsyncIterator[Sandbox | None]:
    """With `--remote`, the sandbox over the bench's systems database; else None."""
    if not options.remote:
        yield None
        return
    async with sandbox_process(database_url, options.latency_ms, log) as sandbox:
        yield sandbox


async def _measure(
    bench: Bench,
    settings: Settings,
    server: Server,
    sandbox: Sandbox | None,
    started_at: str,
    load_before: float,
) -> BenchReport:
    options = bench.options
    await bench.warm_up()
    floor_count = options.floor_count
    floor = await bench.floor(floor_count) if floor_count else None
    lifecycle: LifecycleFigures | None = None
    parked: ParkedFigures | None = None
    # The warm-up's calls and the floor's (none) are before this.
    since, sandbox_cpu = time.time(), sandbox.cpu_seconds() if sandbox else None
    if options.parked is not None:
        parked, history, spent = await bench.parked(options.parked)
    else:
        lifecycle, history, spent = await bench.orders(options.orders, floor)
    remote = await _remote(sandbox, since, sandbox_cpu, history.orders)
    workers = _workers(bench.workers, history, options)
    # The parked target is per worker process: the one that held the most is the one to judge.
    peak = highest_peak(workers)
    worker = (
        None if peak is None else ProcessMemory.model_validate(peak.model_dump(include=_MEMORY))
    )
    run = RunInfo(
        started_at=started_at,
        mode=server.mode,
        address=server.address,
        sqlite=str(options.sqlite) if options.sqlite else None,
        task_queue=bench.task_queue,
        orders=options.parked if options.parked is not None else options.orders,
        floor=floor_count,
        concurrency=options.concurrency,
        rate=options.rate,
        local_activities=options.local_activities,
        system_queues=options.system_queues,
        parked=options.parked,
        workers=options.workers,
        remote=options.remote,
        sandbox_latency_ms=options.latency_ms if options.remote else None,
    )
    return BenchReport(
        machine=machine(settings, await _server_version(server.client), load_before),
        run=run,
        floor=floor,
        lifecycle=lifecycle,
        parked=parked,
        history=history,
        worker=worker,
        workers=workers,
        server=process_memory(server.pid),
        targets=targets(run, history, lifecycle, parked, worker),
        time=spent,
        sandbox=remote,
    )


async def _remote(
    sandbox: Sandbox | None, since: float, cpu_before: float | None, orders: int
) -> SandboxFigures | None:
    """The sandbox's requests since `since` (the measured orders'), and its CPU since then."""
    if sandbox is None:
        return None
    cpu_now = sandbox.cpu_seconds()
    cpu = None if cpu_now is None or cpu_before is None else cpu_now - cpu_before
    calls = [call for call in await sandbox.calls() if call.at >= since]
    return sandbox_figures(sandbox, calls, orders, cpu)


def _workers(
    workers: Workers, history: HistoryFigures, options: BenchOptions
) -> list[WorkerProcessFigures]:
    """Each worker process now, and the measured orders' tasks it started."""
    found: list[WorkerProcessFigures] = []
    for index, worker in enumerate(workers.processes):
        memory = worker.memory()
        if memory is None:
            continue
        found.append(
            WorkerProcessFigures(
                **memory.model_dump(),
                identity=worker.identity,
                floor=worker.floor,
                profiled=index == 0 and options.profile is not None,
                workflow_tasks=history.workflow_tasks_by_worker.get(worker.identity, 0),
                activity_tasks=history.activity_tasks_by_worker.get(worker.identity, 0),
            )
        )
    return found


def run(options: BenchOptions, console: Console) -> BenchReport:
    """Run the bench; any way it can fail is a BenchError saying why."""
    try:
        return asyncio.run(run_bench(options, console))
    except BaseExceptionGroup as group:  # from the task groups: the first failure says why
        raise _explained(_first(group)) from group
    except Exception as error:
        raise _explained(error) from error


def _first(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def _explained(error: BaseException) -> BaseException:
    if isinstance(error, BenchError):
        return error
    if isinstance(error, OrderError | RPCError | WorkflowFailureError | TimeoutError):
        return BenchError(f"{type(error).__name__}: {error}")
    return error
