"""`o2c bench`: what one order costs on Temporal, measured against the cheapest workflow.

One run starts a dev server (in memory, on a SQLite file, or uses an existing
server), a worker in a process of its own (`o2c_service.bench_worker`: the
production worker plus the floor workflow), then

1. the floor: N one-activity workflows, `--concurrency` at a time -> workflows/s;
2. N orders started as the API starts them (`OrderService.create`), with the
   outside world answering as soon as each order is ready: the shipment is
   confirmed once it is Booked, the invoice paid once it is Invoiced, until it
   is Closed -> orders/s, latencies, history size, worker memory;

or, with `--parked N`, parks N orders Invoiced, reads the memory held, pays
them all and checks that every one closed.

Each order's progress is read from its history as the server appends to it (a
long poll on GetWorkflowExecutionHistory, the way `handle.result()` waits), so
the observer sends no queries to the worker it measures; the answers to the
shipment and payment Updates carry the status too, and count when they come first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal, TypeVar

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
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from adapters.local import open_local_adapters
from adapters.local.tables import CustomerRow, to_minor
from adapters.models import CustomerStatus
from o2c_service.bench_floor import FloorWorkflow, floor_task_queue
from o2c_service.bench_report import (
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
from o2c_service.dev import _die_with_parent
from o2c_service.orders import OrderError, OrderService
from o2c_service.settings import Settings
from o2c_service.temporal import connect
from o2c_workflows.messages import EventAck, PaymentReceived, ShipmentConfirmed
from o2c_workflows.models import OrderLine, OrderRequest, OrderStatus
from o2c_workflows.order_workflow import OrderWorkflow
from o2c_workflows.search_attributes import ALL, ORDER_STATUS
from o2c_workflows.state import OrderSummary

T = TypeVar("T")

BENCH_CUSTOMER = "CUST-BENCH"
"""Created by the bench in the worker's database, with a credit limit no run reaches."""
BENCH_CREDIT_LIMIT = Decimal("1000000000000.00")
BENCH_SKU = "SKU-WIDGET"
UNIT_PRICE = Decimal("1.00")

STEP_TIMEOUT = 120.0
"""How long one order may take to reach its next status before the run fails."""
WORKER_STOP_TIMEOUT = 15.0
HISTORY_READERS = 20
# As `o2c dev` runs its server on SQLite: WAL, and no fsync per commit.
SQLITE_PRAGMAS = ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]

LIFECYCLE = [
    OrderStatus.ENTERED,
    OrderStatus.BOOKED,
    OrderStatus.SHIPPED,
    OrderStatus.INVOICED,
    OrderStatus.PAID,
    OrderStatus.CLOSED,
]
LOCAL_ACTIVITY_MARKER = "core_local_activity"


class BenchError(Exception):
    """The run could not finish; the message says where and why."""


@dataclass(frozen=True)
class BenchOptions:
    orders: int = 100
    floor: int | None = None
    """Floor workflows; None: as many as orders (0 skips the floor)."""
    concurrency: int = 20
    rate: float | None = None
    local_activities: bool = False
    sqlite: Path | None = None
    address: str | None = None
    parked: int | None = None

    @property
    def floor_count(self) -> int:
        if self.parked is not None:
            return 0 if self.floor is None else self.floor
        return self.orders if self.floor is None else self.floor


# -- processes -----------------------------------------------------------------


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc (Linux)."""
    found: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                found += [int(child) for child in (task / "children").read_text().split()]
    return found


def process_memory(pid: int | None) -> ProcessMemory | None:
    """Resident memory now (VmRSS) and at its peak (VmHWM), from /proc/<pid>/status."""
    if pid is None:
        return None
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    values: dict[str, int] = {}
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(value.split()[0]) * 1024  # reported in kB
    return ProcessMemory(pid=pid, rss_bytes=values.get("VmRSS"), peak_rss_bytes=values.get("VmHWM"))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class Server:
    client: Client
    address: str
    pid: int | None
    mode: Literal["memory", "sqlite", "address"]


@contextlib.asynccontextmanager
async def temporal_server(options: BenchOptions, settings: Settings) -> AsyncIterator[Server]:
    """The server to measure: an existing one, or a dev server this process starts and stops."""
    if options.address is not None:
        try:
            client = await connect(options.address, settings.temporal_namespace)
        except RuntimeError as error:
            raise BenchError(f"cannot connect to Temporal at {options.address}: {error}") from None
        yield Server(client=client, address=options.address, pid=None, mode="address")
        return
    before = set(child_pids(os.getpid()))
    env = await WorkflowEnvironment.start_local(
        namespace=settings.temporal_namespace,
        dev_server_existing_path=str(settings.temporal_cli_path()),
        search_attributes=ALL,
        data_converter=pydantic_data_converter,
        dev_server_database_filename=str(options.sqlite) if options.sqlite else None,
        dev_server_extra_args=SQLITE_PRAGMAS if options.sqlite else [],
        dev_server_log_level="error",
    )
    async with env:
        # The SDK starts the server as a child of this process; it is the new `start-dev` one.
        started = [pid for pid in child_pids(os.getpid()) if pid not in before]
        servers = [pid for pid in started if "start-dev" in _cmdline(pid)]
        yield Server(
            client=env.client,
            address=env.client.service_client.config.target_host,
            pid=servers[0] if servers else None,
            mode="sqlite" if options.sqlite else "memory",
        )


def prepare_database(database_url: str) -> None:
    """The local systems' tables, the demo items, and the bench's own customer."""
    adapters = open_local_adapters(database_url)
    try:
        with adapters.database.session() as session:
            if session.get(CustomerRow, BENCH_CUSTOMER) is None:
                session.add(
                    CustomerRow(
                        customer_id=BENCH_CUSTOMER,
                        name="Bench Customer",
                        email="bench@example.invalid",
                        status=CustomerStatus.ACTIVE.value,
                        currency="EUR",
                        credit_limit_minor=to_minor(BENCH_CREDIT_LIMIT, "EUR"),
                    )
                )
    finally:
        adapters.database.dispose()


class WorkerProcess:
    """`python -m o2c_service.bench_worker` in a process of its own, watched while it runs."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path) -> None:
        self.process = process
        self.log = log
        self._exited = asyncio.ensure_future(process.wait())

    @property
    def pid(self) -> int:
        return self.process.pid

    def memory(self) -> ProcessMemory | None:
        return process_memory(self.pid)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def supervise(self, work: Awaitable[T]) -> T:
        """`work`, unless the worker dies first: then fail at once with the worker's log."""
        task = asyncio.ensure_future(work)
        await asyncio.wait({task, self._exited}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise BenchError(
            f"the worker exited with code {self.process.returncode}; "
            f"the end of its log ({self.log}):\n{self.log_tail()}"
        )

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self._exited), WORKER_STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
        await self._exited


@contextlib.asynccontextmanager
async def worker_process(
    address: str, namespace: str, task_queue: str, database_url: str, local: bool, log: Path
) -> AsyncIterator[WorkerProcess]:
    env = {
        **os.environ,
        "O2C_TEMPORAL_ADDRESS": address,
        "O2C_TEMPORAL_NAMESPACE": namespace,
        "O2C_TASK_QUEUE": task_queue,
        "O2C_DATABASE_URL": database_url,
        "O2C_LOCAL_ACTIVITIES": "true" if local else "false",
    }
    env.pop("O2C_FAULTS", None)  # the bench measures the happy path
    with log.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "o2c_service.bench_worker",
            env=env, stdout=log_file, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
        )  # fmt: skip
    worker = WorkerProcess(process, log)
    try:
        yield worker
    finally:
        await worker.stop()


# -- following an order ----------------------------------------------------------


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
    value = DataConverter.default.payload_converter.from_payloads([payload])[0]
    return OrderStatus(value)


_FAILED_ENDINGS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "was terminated",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "was cancelled",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed out",
}


class OrderWatch:
    """One order's statuses as its history grows, with when this process learnt of each."""

    def __init__(self, client: Client, order_id: str) -> None:
        self._client = client
        self.order_id = order_id
        self._reached = {status: asyncio.Event() for status in LIFECYCLE}
        self.at: dict[OrderStatus, float] = {}
        self.summary: OrderSummary | None = None
        self._finished = asyncio.Event()
        self._failure: str | None = None
        self._follower = asyncio.create_task(self._follow(), name=f"watch {order_id}")

    def saw(self, status: OrderStatus) -> None:
        """The order is (at least) at `status`: from its history or from an Update's answer."""
        if status in (OrderStatus.ON_HOLD, OrderStatus.CANCELLED):
            self._fail(f"went {status.value}; the bench expects the happy path")
            return
        now = time.perf_counter()
        for earlier in LIFECYCLE[: LIFECYCLE.index(status) + 1]:
            if not self._reached[earlier].is_set():
                self.at[earlier] = now
                self._reached[earlier].set()

    def _fail(self, why: str) -> None:
        if self._failure is None:
            self._failure = why
        for event in (*self._reached.values(), self._finished):
            event.set()

    async def _follow(self) -> None:
        run_id: str | None = None
        try:
            while True:
                handle = self._client.get_workflow_handle(self.order_id, run_id=run_id)
                run_id = None
                async for event in handle.fetch_history_events(wait_new_event=True):
                    status = upserted_status(event)
                    if status is not None:
                        self.saw(status)
                    kind = event.event_type
                    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
                        payloads = event.workflow_execution_completed_event_attributes.result
                        [summary] = await self._client.data_converter.decode(
                            payloads.payloads, [OrderSummary]
                        )
                        self.summary = summary
                        self.saw(summary.status)
                        self._finished.set()
                        return
                    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                        attributes = event.workflow_execution_continued_as_new_event_attributes
                        run_id = attributes.new_execution_run_id
                    elif kind in _FAILED_ENDINGS:
                        self._fail(f"its workflow {_FAILED_ENDINGS[kind]}")
                        return
                if run_id is None:
                    self._fail("its history ended without a result")
                    return
        except Exception as error:
            self._fail(f"its history could not be read: {error}")

    async def reached(self, status: OrderStatus) -> float:
        """When the order reached `status`; fails if it cannot, or takes too long."""
        try:
            await asyncio.wait_for(self._reached[status].wait(), STEP_TIMEOUT)
        except TimeoutError:
            self._fail(f"did not reach {status.value} within {STEP_TIMEOUT:.0f} s")
        if self._failure is not None:
            raise BenchError(f"order {self.order_id} {self._failure}")
        return self.at[status]

    async def finished(self) -> OrderSummary:
        try:
            await asyncio.wait_for(self._finished.wait(), STEP_TIMEOUT)
        except TimeoutError:
            self._fail(f"did not finish within {STEP_TIMEOUT:.0f} s")
        if self._failure is not None or self.summary is None:
            raise BenchError(f"order {self.order_id} {self._failure}")
        return self.summary

    async def close(self) -> None:
        self._follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._follower


# -- the run ----------------------------------------------------------------------


@dataclass
class OrderTimes:
    created: float = 0.0
    booked: float = 0.0
    shipment_sent: float = 0.0
    invoiced: float = 0.0
    payment_sent: float = 0.0
    closed: float = 0.0


@dataclass
class Bench:
    options: BenchOptions
    client: Client
    service: OrderService
    worker: WorkerProcess
    task_queue: str
    progress: Progress
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

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

        start = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for index in range(count):
                group.create_task(one(index))
        seconds = time.perf_counter() - start
        history = await self.client.get_workflow_handle(self.floor_id("0")).fetch_history()
        return FloorFigures(
            workflows=count,
            seconds=round(seconds, 3),
            per_second=round(count / seconds, 2),
            events_per_workflow=len(history.events),
        )

    async def to_invoiced(
        self, order: OrderRequest, times: OrderTimes, booked: TaskID | None = None
    ) -> OrderWatch:
        """Create the order; confirm its shipment once Booked; return once it is Invoiced."""
        times.created = time.perf_counter()
        await self.service.create(order)
        watch = OrderWatch(self.client, order.order_id)
        try:
            times.booked = await watch.reached(OrderStatus.BOOKED)
            if booked is not None:
                self.progress.advance(booked)
            times.shipment_sent = time.perf_counter()
            ack = await self.service.confirm_shipment(
                order.order_id,
                ShipmentConfirmed(carrier="BENCH", tracking_number=f"TRK-{order.source_order_id}"),
            )
            self._answered(watch, ack)
            times.invoiced = await watch.reached(OrderStatus.INVOICED)
        except BaseException:
            await watch.close()
            raise
        return watch

    async def pay(self, order: OrderRequest) -> EventAck:
        return await self.service.receive_payment(
            order.order_id,
            PaymentReceived(
                payment_id=f"PAY-{order.source_order_id}",
                amount=order.total(),
                currency=order.currency,
                reference="bench",
            ),
        )

    def _answered(self, watch: OrderWatch, ack: EventAck) -> None:
        if ack.status in LIFECYCLE:
            watch.saw(ack.status)

    async def lifecycle(
        self, order: OrderRequest, booked: TaskID | None = None, closed: TaskID | None = None
    ) -> OrderTimes:
        """One order from create to Closed, the outside world answering as soon as it can."""
        times = OrderTimes()
        watch = await self.to_invoiced(order, times, booked)
        try:
            times.payment_sent = time.perf_counter()
            self._answered(watch, await self.pay(order))
            times.closed = await watch.reached(OrderStatus.CLOSED)
            summary = await watch.finished()
        finally:
            await watch.close()
        if summary.status is not OrderStatus.CLOSED:
            raise BenchError(f"order {order.order_id} ended {summary.status.value}, not Closed")
        if closed is not None:
            self.progress.advance(closed)
        return times

    async def warm_up(self) -> None:
        """One floor workflow and one order first: worker start-up and imports are not measured."""
        task = self.progress.add_task("warming up", total=None)
        await self.floor_workflow("warm-up")
        await self.lifecycle(self.order("warm-up"))
        self.progress.remove_task(task)

    async def orders(self, count: int, floor: FloorFigures | None) -> LifecycleFigures:
        booked = self.progress.add_task("orders booked", total=count)
        closed = self.progress.add_task("orders closed", total=count)
        results: list[OrderTimes] = []

        async def one(index: int) -> None:
            results.append(await self.lifecycle(self.order(str(index)), booked, closed))

        await self.launch(count, one)
        seconds = max(t.closed for t in results) - min(t.created for t in results)
        per_second = count / seconds
        return LifecycleFigures(
            orders=count,
            closed=len(results),
            seconds=round(seconds, 3),
            per_second=round(per_second, 2),
            ratio_to_floor=round(per_second / floor.per_second, 3) if floor else None,
            create_to_booked=Latency.of([t.booked - t.created for t in results]),
            shipment_to_invoiced=Latency.of([t.invoiced - t.shipment_sent for t in results]),
            payment_to_closed=Latency.of([t.closed - t.payment_sent for t in results]),
        )

    async def parked(self, count: int, server_pid: int | None) -> ParkedFigures:
        before = self.worker.memory()
        parking = self.progress.add_task("orders parked Invoiced", total=count)
        orders = [self.order(f"parked-{index}") for index in range(count)]
        times = [OrderTimes() for _ in orders]

        async def park(index: int) -> None:
            watch = await self.to_invoiced(orders[index], times[index])
            await watch.close()
            self.progress.advance(parking)

        await self.launch(count, park)
        seconds_to_park = max(t.invoiced for t in times) - min(t.created for t in times)
        worker_parked = self.worker.memory()
        server_parked = process_memory(server_pid)

        closing = self.progress.add_task("orders closed", total=count)
        summaries: list[OrderSummary] = []
        paid_at: list[float] = []
        closed_at: list[float] = []

        async def close(index: int) -> None:
            paid_at.append(time.perf_counter())
            await self.pay(orders[index])
            handle = self.client.get_workflow_handle_for(OrderWorkflow.run, orders[index].order_id)
            summaries.append(await asyncio.wait_for(handle.result(), STEP_TIMEOUT))
            closed_at.append(time.perf_counter())
            self.progress.advance(closing)

        await self.launch(count, close)
        per_order = None
        if before and worker_parked and before.rss_bytes and worker_parked.rss_bytes:
            per_order = round((worker_parked.rss_bytes - before.rss_bytes) / count, 1)
        return ParkedFigures(
            orders=count,
            seconds_to_park=round(seconds_to_park, 3),
            worker_before=before,
            worker_parked=worker_parked,
            server_parked=server_parked,
            worker_bytes_per_order=per_order,
            closed=sum(1 for s in summaries if s.status is OrderStatus.CLOSED),
            seconds_to_close=round(max(closed_at) - min(paid_at), 3),
        )

    async def histories(self, order_ids: list[str]) -> HistoryFigures:
        """Events, bytes, workflow tasks and activities per order, from the real histories."""
        task = self.progress.add_task("reading histories", total=len(order_ids))
        limit = asyncio.Semaphore(HISTORY_READERS)
        sizes: list[HistorySize] = []

        async def one(order_id: str) -> None:
            async with limit:
                history = await self.client.get_workflow_handle(order_id).fetch_history()
            sizes.append(HistorySize.of(history.events))
            self.progress.advance(task)

        async with asyncio.TaskGroup() as group:
            for order_id in order_ids:
                group.create_task(one(order_id))

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


@dataclass(frozen=True)
class HistorySize:
    events: int
    bytes: int
    """The serialized size of the history proto: what the server stores and replays."""
    workflow_tasks: int
    activities: int
    local_activities: int

    @classmethod
    def of(cls, events: Sequence[HistoryEvent]) -> HistorySize:
        def count(kind: EventType.ValueType) -> int:
            return sum(1 for event in events if event.event_type == kind)

        markers = [
            event.marker_recorded_event_attributes.marker_name
            for event in events
            if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        ]
        return cls(
            events=len(events),
            bytes=History(events=events).ByteSize(),
            workflow_tasks=count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
            activities=count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
            local_activities=markers.count(LOCAL_ACTIVITY_MARKER),
        )


# -- one run, start to end ----------------------------------------------------------


def _command_output(command: list[str], cwd: Path | None = None) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, cwd=cwd)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def machine(settings: Settings, server_version: str | None) -> Machine:
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
    )


async def _server_version(client: Client) -> str | None:
    try:
        info = await client.workflow_service.get_system_info(GetSystemInfoRequest())
    except Exception:
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
    task_queue = f"o2c-bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="o2c-bench-") as scratch:
        database_url = f"sqlite:///{Path(scratch) / 'o2c.db'}"
        prepare_database(database_url)
        async with temporal_server(options, settings) as server, worker_process(
            server.address, settings.temporal_namespace, task_queue, database_url,
            options.local_activities, Path(scratch) / "worker.log",
        ) as worker:  # fmt: skip
            with _progress(console) as progress:
                bench = Bench(
                    options=options,
                    client=server.client,
                    service=OrderService(
                        server.client, task_queue, local_activities=options.local_activities
                    ),
                    worker=worker,
                    task_queue=task_queue,
                    progress=progress,
                )
                return await worker.supervise(_measure(bench, settings, server, started_at))


async def _measure(
    bench: Bench, settings: Settings, server: Server, started_at: str
) -> BenchReport:
    options = bench.options
    await bench.warm_up()
    floor_count = options.floor_count
    floor = await bench.floor(floor_count) if floor_count else None
    lifecycle: LifecycleFigures | None = None
    parked: ParkedFigures | None = None
    if options.parked is not None:
        parked = await bench.parked(options.parked, server.pid)
        order_ids = [bench.order(f"parked-{index}").order_id for index in range(options.parked)]
    else:
        lifecycle = await bench.orders(options.orders, floor)
        order_ids = [bench.order(str(index)).order_id for index in range(options.orders)]
    history = await bench.histories(order_ids)
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
        machine=machine(settings, await _server_version(server.client)),
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
    try:
        return asyncio.run(run_bench(options, console))
    except OrderError as error:
        raise BenchError(f"an order call failed: {error}") from error
