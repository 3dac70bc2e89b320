"""`o2c bench`: what one order costs on Temporal, measured against the cheapest workflow.

One run starts a dev server (in memory, on a SQLite file, or uses an existing
server), a worker in a process of its own (`o2c_bench.worker`: the
production worker plus the floor workflow), warms both up, then

1. the floor: N one-activity workflows, `--concurrency` at a time -> workflows/s;
2. N orders started as the API starts them (`OrderService.create`), with the
   outside world answering as soon as each order is ready: the shipment is
   confirmed once it is Booked, the invoice paid once it is Invoiced, until it
   is Closed -> orders/s, latencies, history size, CPU and memory;

or, with `--parked N`, parks N orders Invoiced, reads the memory they hold,
pays them all and counts the orders that closed.

How the bench sees an order reach Booked or Invoiced: one visibility query
(`WorkflowId IN (...)`, reading the `OrderStatus` search attribute) for every
order waited on, every few milliseconds. It costs the server about the same
whether 1 or 100 orders are in flight and asks the worker nothing, where one
long poll per order on its history would cost the server about as much as the
order's own activities. The answers to the shipment and payment Updates carry
the status too. Latencies are then taken from each order's history after the
run (the event at which it recorded the status), so the polling interval does
not blur them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History, HistoryEvent
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.converter import DataConverter
from temporalio.service import RPCError

from o2c_bench.env import (
    BENCH_CUSTOMER,
    BenchError,
    CpuSample,
    Server,
    WorkerProcess,
    prepare_database,
    process_memory,
    temporal_server,
    worker_process,
)
from o2c_bench.floor import FloorWorkflow, floor_task_queue
from o2c_bench.report import (
    BenchReport,
    FloorFigures,
    HistoryFigures,
    Latency,
    LifecycleFigures,
    Machine,
    ParkedFigures,
    ProcessMemory,
    RunInfo,
    targets,
)
from o2c_service import events as order_events
from o2c_service.orders import OrderService
from o2c_service.outcomes import OrderError
from o2c_service.settings import Settings
from o2c_workflows.messages import EventAck, PaymentReceived, ShipmentConfirmed
from o2c_workflows.models import OrderLine, OrderRequest, OrderStatus
from o2c_workflows.order.workflow import OrderWorkflow
from o2c_workflows.search_attributes import ORDER_STATUS
from o2c_workflows.state import OrderSummary

__all__ = ["BenchError", "BenchOptions", "run"]

BENCH_SKU = "SKU-WIDGET"
UNIT_PRICE = Decimal("1.00")

STEP_TIMEOUT = 120.0
"""How long one order may take to reach its next status before the run fails."""
STATUS_POLL_INTERVAL = 0.01
STATUS_QUERY_IDS = 100
HISTORY_READERS = 20

LIFECYCLE = [
    OrderStatus.ENTERED,
    OrderStatus.BOOKED,
    OrderStatus.SHIPPED,
    OrderStatus.INVOICED,
    OrderStatus.PAID,
    OrderStatus.CLOSED,
]
LOCAL_ACTIVITY_MARKER = "core_local_activity"


@dataclass(frozen=True)
class BenchOptions:
    orders: int = 100
    floor: int | None = None
    """Floor workflows; None: as many as orders (with --parked: none). 0 skips the floor."""
    concurrency: int = 20
    rate: float | None = None
    local_activities: bool = False
    sqlite: Path | None = None
    address: str | None = None
    parked: int | None = None

    @property
    def floor_count(self) -> int:
        if self.floor is not None:
            return self.floor
        return 0 if self.parked is not None else self.orders


def _at_least(status: OrderStatus, wanted: OrderStatus) -> bool:
    return status in LIFECYCLE and LIFECYCLE.index(status) >= LIFECYCLE.index(wanted)


class StatusBoard:
    """Tells each waiting order when it has reached its status, from Temporal's visibility.

    One list query every STATUS_POLL_INTERVAL covers every order waited on
    (`WorkflowId IN (...)`), and only while some order is waited on.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._waiting: dict[str, tuple[OrderStatus, asyncio.Future[None]]] = {}
        self._someone_waits = asyncio.Event()
        self._last_error: str | None = None
        self.queries = 0
        self._poller: asyncio.Task[None] | None = None

    async def __aenter__(self) -> StatusBoard:
        self._poller = asyncio.create_task(self._poll(), name="status board")
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    async def reached(self, order_id: str, status: OrderStatus) -> None:
        """Return once the order is at `status` or beyond; fail if it cannot get there."""
        future = asyncio.get_running_loop().create_future()
        self._waiting[order_id] = (status, future)
        self._someone_waits.set()
        try:
            await asyncio.wait_for(future, STEP_TIMEOUT)
        except TimeoutError:
            why = f" (last visibility error: {self._last_error})" if self._last_error else ""
            raise BenchError(
                f"order {order_id} did not reach {status.value} within {STEP_TIMEOUT:.0f} s{why}"
            ) from None
        finally:
            self._waiting.pop(order_id, None)

    async def _poll(self) -> None:
        while True:
            if not self._waiting:
                self._someone_waits.clear()
                await self._someone_waits.wait()
            ids = list(self._waiting)
            for start in range(0, len(ids), STATUS_QUERY_IDS):
                try:
                    await self._look(ids[start : start + STATUS_QUERY_IDS])
                except RPCError as error:  # retried at the next tick; reported on timeout
                    self._last_error = str(error)
            await asyncio.sleep(STATUS_POLL_INTERVAL)

    async def _look(self, ids: list[str]) -> None:
        self.queries += 1
        query = "WorkflowId IN ({})".format(", ".join(f"'{order_id}'" for order_id in ids))
        async for execution in self._client.list_workflows(query):
            waiting = self._waiting.get(execution.id)
            if waiting is None or waiting[1].done():
                continue
            wanted, future = waiting
            value = execution.typed_search_attributes.get(ORDER_STATUS)
            status = OrderStatus(value) if value else OrderStatus.ENTERED
            ended = execution.status not in (None, WorkflowExecutionStatus.RUNNING)
            if _at_least(status, wanted):
                future.set_result(None)
            elif status in (OrderStatus.ON_HOLD, OrderStatus.CANCELLED) or ended:
                state = execution.status.name if execution.status else "?"
                future.set_exception(
                    BenchError(
                        f"order {execution.id} is {status.value} (workflow {state}) while "
                        f"awaited at {wanted.value}; the bench expects the happy path"
                    )
                )


@dataclass
class OrderRun:
    """When the bench did something to one order (wall clock, to compare with its history)."""

    order_id: str
    created: float = 0.0
    shipment_sent: float = 0.0
    payment_sent: float = 0.0
    closed_seen: float = 0.0


@dataclass(frozen=True)
class HistorySize:
    """One order's history: its size, and when it recorded each status (server clock)."""

    events: int
    bytes: int
    """The serialized size of the history proto: what the server stores and replays."""
    workflow_tasks: int
    activities: int
    local_activities: int
    reached: dict[OrderStatus, float]

    @classmethod
    def of(cls, events: Sequence[HistoryEvent]) -> HistorySize:
        def count(kind: EventType.ValueType) -> int:
            return sum(1 for event in events if event.event_type == kind)

        markers = [
            event.marker_recorded_event_attributes.marker_name
            for event in events
            if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        ]
        reached: dict[OrderStatus, float] = {}
        for event in events:
            status = upserted_status(event)
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
                status = OrderStatus.CLOSED  # the result says so; the bench checks it
            if status is not None:
                reached.setdefault(status, event.event_time.ToMicroseconds() / 1e6)
        return cls(
            events=len(events),
            bytes=History(events=events).ByteSize(),
            workflow_tasks=count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
            activities=count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
            local_activities=markers.count(LOCAL_ACTIVITY_MARKER),
            reached=reached,
        )


def upserted_status(event: HistoryEvent) -> OrderStatus | None:
    """The `OrderStatus` an event sets: at start (set by the starter) or by an upsert.

    Every status change upserts that search attribute, so the history says
    exactly when the order reached each status.
    """
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        attributes = event.workflow_execution_started_event_attributes.search_attributes
    elif event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        attributes = event.upsert_workflow_search_attributes_event_attributes.search_attributes
    else:
        return None
    payload = attributes.indexed_fields.get(ORDER_STATUS.name)
    if payload is None:
        return None
    return OrderStatus(DataConverter.default.payload_converter.from_payloads([payload])[0])


@dataclass
class Bench:
    options: BenchOptions
    client: Client
    service: OrderService
    board: StatusBoard
    worker: WorkerProcess
    server_pid: int | None
    task_queue: str
    progress: Progress
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def cpu(self) -> CpuSample:
        return CpuSample.now(self.worker.pid, self.server_pid)

    def order(self, name: str) -> OrderRequest:
        return OrderRequest(
            source_system="bench",
            source_order_id=f"{self.tag}-{name}",
            customer_id=BENCH_CUSTOMER,
            currency="EUR",
            lines=[OrderLine(sku=BENCH_SKU, quantity=1, unit_price=UNIT_PRICE)],
        )

    async def launch(self, count: int, work: Callable[[int], Coroutine[Any, Any, None]]) -> None:
        """`work(i)` for each order: paced at --rate per second, else --concurrency at a time."""
        rate = self.options.rate
        async with asyncio.TaskGroup() as group:
            if rate is not None:
                # Open loop: an order starts on time whether or not earlier ones are done.
                start = time.perf_counter()
                for index in range(count):
                    delay = start + index / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    group.create_task(work(index))
            else:
                limit = asyncio.Semaphore(self.options.concurrency)

                async def limited(index: int) -> None:
                    async with limit:
                        await work(index)

                for index in range(count):
                    group.create_task(limited(index))

    # -- the floor --------------------------------------------------------------

    def floor_id(self, name: str) -> str:
        return f"bench-floor-{self.tag}-{name}"

    async def floor_workflow(self, name: str) -> None:
        await self.client.execute_workflow(
            FloorWorkflow.run,
            name,
            id=self.floor_id(name),
            task_queue=floor_task_queue(self.task_queue),
            execution_timeout=timedelta(seconds=STEP_TIMEOUT),
        )

    async def floor(self, count: int) -> FloorFigures:
        """`count` floor workflows, always --concurrency at a time: the most this setup does."""
        task = self.progress.add_task("floor workflows", total=count)
        limit = asyncio.Semaphore(self.options.concurrency)

        async def one(index: int) -> None:
            async with limit:
                await self.floor_workflow(str(index))
            self.progress.advance(task)

        cpu, start = self.cpu(), time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for index in range(count):
                group.create_task(one(index))
        seconds = time.perf_counter() - start
        used = self.cpu().per_item(cpu, count)
        history = await self.client.get_workflow_handle(self.floor_id("0")).fetch_history()
        return FloorFigures(
            workflows=count,
            seconds=round(seconds, 3),
            per_second=round(count / seconds, 2),
            events_per_workflow=len(history.events),
            cpu=used,
        )

    # -- one order ----------------------------------------------------------------

    async def to_invoiced(self, order: OrderRequest, run: OrderRun) -> None:
        """Create the order; confirm its shipment once Booked; return once it is Invoiced."""
        run.created = time.time()
        await self.service.create(order)
        await self.board.reached(order.order_id, OrderStatus.BOOKED)
        run.shipment_sent = time.time()
        ack = await self.service.send(
            order_events.SHIPMENT,
            order.order_id,
            ShipmentConfirmed(carrier="BENCH", tracking_number=f"TRK-{order.source_order_id}"),
        )
        if not _at_least(ack.status, OrderStatus.INVOICED):
            await self.board.reached(order.order_id, OrderStatus.INVOICED)

    async def pay_and_close(self, order: OrderRequest, run: OrderRun) -> OrderSummary:
        """Pay the whole total; the workflow's result once it has finished."""
        run.payment_sent = time.time()
        ack: EventAck = await self.service.send(
            order_events.PAYMENT,
            order.order_id,
            PaymentReceived(
                payment_id=f"PAY-{order.source_order_id}",
                amount=order.total(),
                currency=order.currency,
                reference="bench",
            ),
        )
        if ack.status in (OrderStatus.ON_HOLD, OrderStatus.CANCELLED):
            raise BenchError(f"order {order.order_id} went {ack.status.value} on payment")
        handle = self.client.get_workflow_handle_for(OrderWorkflow.run, order.order_id)
        summary = await asyncio.wait_for(handle.result(), STEP_TIMEOUT)
        run.closed_seen = time.time()
        return summary

    async def lifecycle(self, order: OrderRequest, booked: TaskID | None = None) -> OrderRun:
        """One order from create to Closed, the outside world answering as soon as it can."""
        run = OrderRun(order.order_id)
        await self.to_invoiced(order, run)
        if booked is not None:
            self.progress.advance(booked)
        summary = await self.pay_and_close(order, run)
        if summary.status is not OrderStatus.CLOSED:
            raise BenchError(f"order {order.order_id} ended {summary.status.value}, not Closed")
        return run

    async def warm_up(self) -> None:
        """One floor workflow and one order first: worker start-up and imports are not measured."""
        task = self.progress.add_task("warming up", total=None)
        await self.floor_workflow("warm-up")
        await self.lifecycle(self.order("warm-up"))
        self.progress.remove_task(task)

    # -- the phases ----------------------------------------------------------------

    async def orders(
        self, count: int, floor: FloorFigures | None
    ) -> tuple[LifecycleFigures, HistoryFigures]:
        invoiced = self.progress.add_task("orders invoiced", total=count)
        closed = self.progress.add_task("orders closed", total=count)
        runs: list[OrderRun] = []

        async def one(index: int) -> None:
            runs.append(await self.lifecycle(self.order(str(index)), invoiced))
            self.progress.advance(closed)

        cpu, queries = self.cpu(), self.board.queries
        await self.launch(count, one)
        used = self.cpu().per_item(cpu, count)
        queries = self.board.queries - queries
        sizes = await self.histories([run.order_id for run in runs])
        seconds = max(r.closed_seen for r in runs) - min(r.created for r in runs)
        per_second = count / seconds

        def latency(status: OrderStatus, since: Callable[[OrderRun], float]) -> Latency:
            return Latency.of([sizes[r.order_id].reached[status] - since(r) for r in runs])

        lifecycle = LifecycleFigures(
            orders=count,
            closed=len(runs),
            seconds=round(seconds, 3),
            per_second=round(per_second, 2),
            ratio_to_floor=round(per_second / floor.per_second, 3) if floor else None,
            create_to_booked=latency(OrderStatus.BOOKED, lambda r: r.created),
            shipment_to_invoiced=latency(OrderStatus.INVOICED, lambda r: r.shipment_sent),
            payment_to_closed=latency(OrderStatus.CLOSED, lambda r: r.payment_sent),
            cpu=used,
            status_queries_per_order=round(queries / count, 2),
        )
        return lifecycle, history_figures(list(sizes.values()))

    async def parked(self, count: int) -> tuple[ParkedFigures, HistoryFigures]:
        """Park `count` orders Invoiced, read what they hold, then pay them all and count Closed."""
        worker_before, server_before = self.worker.memory(), process_memory(self.server_pid)
        parking = self.progress.add_task("orders parked Invoiced", total=count)
        orders = [self.order(f"parked-{index}") for index in range(count)]
        runs = [OrderRun(order.order_id) for order in orders]

        async def park(index: int) -> None:
            await self.to_invoiced(orders[index], runs[index])
            self.progress.advance(parking)

        start = time.perf_counter()
        await self.launch(count, park)
        seconds_to_park = time.perf_counter() - start
        worker_parked, server_parked = self.worker.memory(), process_memory(self.server_pid)

        closing = self.progress.add_task("orders closed", total=count)
        summaries: list[OrderSummary] = []

        async def close(index: int) -> None:
            summaries.append(await self.pay_and_close(orders[index], runs[index]))
            self.progress.advance(closing)

        start = time.perf_counter()
        await self.launch(count, close)
        seconds_to_close = time.perf_counter() - start
        sizes = await self.histories([run.order_id for run in runs])
        parked = ParkedFigures(
            orders=count,
            seconds_to_park=round(seconds_to_park, 3),
            worker_before=worker_before,
            worker_parked=worker_parked,
            worker_bytes_per_order=_growth(worker_before, worker_parked, count),
            server_before=server_before,
            server_parked=server_parked,
            server_bytes_per_order=_growth(server_before, server_parked, count),
            closed=sum(1 for summary in summaries if summary.status is OrderStatus.CLOSED),
            seconds_to_close=round(seconds_to_close, 3),
        )
        return parked, history_figures(list(sizes.values()))

    async def histories(self, order_ids: list[str]) -> dict[str, HistorySize]:
        """Each order's real history, read once it has finished."""
        task = self.progress.add_task("reading histories", total=len(order_ids))
        limit = asyncio.Semaphore(HISTORY_READERS)
        sizes: dict[str, HistorySize] = {}

        async def one(order_id: str) -> None:
            async with limit:
                history = await self.client.get_workflow_handle(order_id).fetch_history()
            sizes[order_id] = HistorySize.of(history.events)
            self.progress.advance(task)

        async with asyncio.TaskGroup() as group:
            for order_id in order_ids:
                group.create_task(one(order_id))
        return sizes


def history_figures(sizes: list[HistorySize]) -> HistoryFigures:
    def mean(values: Iterable[int]) -> float:
        return round(sum(values) / len(sizes), 1)

    return HistoryFigures(
        orders=len(sizes),
        events_mean=mean(s.events for s in sizes),
        events_max=max(s.events for s in sizes),
        bytes_mean=mean(s.bytes for s in sizes),
        bytes_max=max(s.bytes for s in sizes),
        workflow_tasks_mean=mean(s.workflow_tasks for s in sizes),
        activities_mean=mean(s.activities for s in sizes),
        local_activities_mean=mean(s.local_activities for s in sizes),
    )


def _growth(before: ProcessMemory | None, after: ProcessMemory | None, count: int) -> float | None:
    """Resident memory gained per order between two readings."""
    if before is None or after is None or before.rss_bytes is None or after.rss_bytes is None:
        return None
    return round((after.rss_bytes - before.rss_bytes) / count, 1)


# -- one run, start to end ----------------------------------------------------------


def _command_output(command: list[str], cwd: Path | None = None) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, cwd=cwd)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def machine(settings: Settings, server_version: str | None, load_before: float) -> Machine:
    checkout = Path(__file__).resolve().parents[1]
    commit = _command_output(["git", "rev-parse", "--short", "HEAD"], checkout)
    if commit and _command_output(["git", "status", "--porcelain"], checkout):
        commit += "+dirty"
    try:
        cli = _command_output([str(settings.temporal_cli_path()), "--version"])
    except FileNotFoundError:
        cli = None
    return Machine(
        cores=os.cpu_count(),
        platform=platform.platform(),
        python=platform.python_version(),
        temporalio=version("temporalio"),
        temporal_cli=cli,
        temporal_server=server_version,
        git_commit=commit,
        load_average=(round(load_before, 2), round(os.getloadavg()[0], 2)),
    )


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


async def run_bench(options: BenchOptions, console: Console) -> BenchReport:
    """Everything `o2c bench` does; the report says what it measured."""
    settings = Settings()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    load_before = os.getloadavg()[0]
    task_queue = f"o2c-bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="o2c-bench-") as scratch:
        database_url = f"sqlite:///{Path(scratch) / 'o2c.db'}"
        prepare_database(database_url)
        server_log, worker_log = Path(scratch) / "server.log", Path(scratch) / "worker.log"
        async with (
            temporal_server(settings, options.address, options.sqlite, server_log) as server,
            worker_process(
                server.address, settings.temporal_namespace, task_queue, database_url,
                options.local_activities, worker_log,
            ) as worker,
            StatusBoard(server.client) as board,
        ):  # fmt: skip
            with _progress(console) as progress:
                service = OrderService(
                    server.client, task_queue, local_activities=options.local_activities
                )
                bench = Bench(
                    options=options,
                    client=server.client,
                    service=service,
                    board=board,
                    worker=worker,
                    server_pid=server.pid,
                    task_queue=task_queue,
                    progress=progress,
                )
                return await worker.supervise(
                    _measure(bench, settings, server, started_at, load_before)
                )


async def _measure(
    bench: Bench, settings: Settings, server: Server, started_at: str, load_before: float
) -> BenchReport:
    options = bench.options
    await bench.warm_up()
    floor_count = options.floor_count
    floor = await bench.floor(floor_count) if floor_count else None
    lifecycle: LifecycleFigures | None = None
    parked: ParkedFigures | None = None
    if options.parked is not None:
        parked, history = await bench.parked(options.parked)
    else:
        lifecycle, history = await bench.orders(options.orders, floor)
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
        parked=options.parked,
    )
    return BenchReport(
        machine=machine(settings, await _server_version(server.client), load_before),
        run=run,
        floor=floor,
        lifecycle=lifecycle,
        parked=parked,
        history=history,
        worker=bench.worker.memory(),
        server=process_memory(server.pid),
        targets=targets(run, lifecycle, history),
    )


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
