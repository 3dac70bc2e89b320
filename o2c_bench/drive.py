"""`Bench`: drives the workflows of one run. The floor workflows, each order from
create to Closed with the outside world answering as soon as it can, the orders
parked Invoiced; it times them and reads their histories. However many worker
processes take the orders, it drives them the same way: they share one task queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from rich.progress import Progress, TaskID
from temporalio.client import Client

from o2c_bench.actions import billable_actions
from o2c_bench.env import BENCH_CUSTOMER, BenchError, CpuSample, Workers, process_memory
from o2c_bench.floor import FloorWorkflow, floor_task_queue
from o2c_bench.histories import HistorySize, history_figures
from o2c_bench.options import BenchOptions
from o2c_bench.report import (
    FloorFigures,
    HistoryFigures,
    Latency,
    LifecycleFigures,
    ParkedFigures,
    ProcessMemory,
    TimeFigures,
    cpu_ratio,
)
from o2c_bench.status_board import STEP_TIMEOUT, StatusBoard, at_least
from o2c_bench.time_spent import time_figures
from o2c_service import events as order_events
from o2c_service.orders import OrderService
from o2c_workflows.messages import EventAck, PaymentReceived, ShipmentConfirmed
from o2c_workflows.models import OrderLine, OrderRequest, OrderStatus
from o2c_workflows.order.workflow import OrderWorkflow
from o2c_workflows.state import OrderSummary

BENCH_SKU = "SKU-WIDGET"
UNIT_PRICE = Decimal("1.00")
HISTORY_READERS = 20
WARM_UP_ROUNDS = 5
"""With several workers: rounds of one warm-up order per worker, until each has run one."""


@dataclass
class OrderRun:
    """When the bench did something to one order (wall clock, to compare with its history)."""

    order_id: str
    created: float = 0.0
    shipment_sent: float = 0.0
    payment_sent: float = 0.0
    closed_seen: float = 0.0


Profiler = Callable[[], contextlib.AbstractAsyncContextManager[None]]


@contextlib.asynccontextmanager
async def not_profiled() -> AsyncIterator[None]:
    yield


@dataclass
class Bench:
    options: BenchOptions
    client: Client
    service: OrderService
    board: StatusBoard
    workers: Workers
    server_pid: int | None
    task_queue: str
    progress: Progress
    profiler: Profiler = not_profiled
    """Run around the orders phase (`--profile`): samples the worker while orders run."""
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def cpu(self) -> CpuSample:
        return CpuSample.now(self.workers.pids, self.server_pid)

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
            actions_per_workflow=billable_actions(history.events).total,
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
        if not at_least(ack.status, OrderStatus.INVOICED):
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
        """One floor workflow and one order first: worker start-up and imports are not measured.

        With several worker processes, one order per worker at once, in rounds, until
        each has started a workflow task of one (the histories say which did): the
        task queue, not the bench, chooses the worker. At most `WARM_UP_ROUNDS`.
        """
        task = self.progress.add_task("warming up", total=None)
        await self.floor_workflow("warm-up")
        processes = self.workers.processes
        cold = {worker.identity for worker in processes}
        for round_ in range(WARM_UP_ROUNDS):
            names = [f"warm-up-{round_}-{index}" for index in range(len(processes))]
            orders = [self.order(name) for name in names]
            async with asyncio.TaskGroup() as group:
                for order in orders:
                    group.create_task(self.lifecycle(order))
            if len(processes) == 1:
                break
            sizes = await self.histories([order.order_id for order in orders], label=None)
            for size in sizes.values():
                cold -= size.workflow_tasks_by_worker.keys()
            if not cold:
                break
        self.progress.remove_task(task)

    # -- the phases ----------------------------------------------------------------

    async def orders(
        self, count: int, floor: FloorFigures | None
    ) -> tuple[LifecycleFigures, HistoryFigures, TimeFigures | None]:
        invoiced = self.progress.add_task("orders invoiced", total=count)
        closed = self.progress.add_task("orders closed", total=count)
        runs: list[OrderRun] = []

        async def one(index: int) -> None:
            runs.append(await self.lifecycle(self.order(str(index)), invoiced))
            self.progress.advance(closed)

        cpu, queries = self.cpu(), self.board.queries
        async with self.profiler():
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
            worker_cpu_ratio_to_floor=cpu_ratio(
                used.worker_ms, floor.cpu.worker_ms if floor else None
            ),
            server_cpu_ratio_to_floor=cpu_ratio(
                used.server_ms, floor.cpu.server_ms if floor else None
            ),
            create_to_booked=latency(OrderStatus.BOOKED, lambda r: r.created),
            shipment_to_invoiced=latency(OrderStatus.INVOICED, lambda r: r.shipment_sent),
            payment_to_closed=latency(OrderStatus.CLOSED, lambda r: r.payment_sent),
            cpu=used,
            status_queries_per_order=round(queries / count, 2),
        )
        return lifecycle, *_figures(sizes)

    async def parked(self, count: int) -> tuple[ParkedFigures, HistoryFigures, TimeFigures | None]:
        """Park `count` orders Invoiced, read what they hold, then pay them all and count Closed."""
        workers_before, server_before = self.workers.memory(), process_memory(self.server_pid)
        parking = self.progress.add_task("orders parked Invoiced", total=count)
        orders = [self.order(f"parked-{index}") for index in range(count)]
        runs = [OrderRun(order.order_id) for order in orders]

        async def park(index: int) -> None:
            await self.to_invoiced(orders[index], runs[index])
            self.progress.advance(parking)

        closing = self.progress.add_task("orders closed", total=count, visible=False)
        summaries: list[OrderSummary] = []

        async def close(index: int) -> None:
            summaries.append(await self.pay_and_close(orders[index], runs[index]))
            self.progress.advance(closing)

        async with self.profiler():
            start = time.perf_counter()
            await self.launch(count, park)
            seconds_to_park = time.perf_counter() - start
            workers_parked = self.workers.memory()
            server_parked = process_memory(self.server_pid)
            self.progress.update(closing, visible=True)
            start = time.perf_counter()
            await self.launch(count, close)
            seconds_to_close = time.perf_counter() - start
        sizes = await self.histories([run.order_id for run in runs])
        parked = ParkedFigures(
            orders=count,
            seconds_to_park=round(seconds_to_park, 3),
            workers_before=workers_before,
            workers_parked=workers_parked,
            worker_bytes_per_order=_growth(workers_before, workers_parked, count),
            server_before=server_before,
            server_parked=server_parked,
            server_bytes_per_order=_growth([server_before], [server_parked], count),
            closed=sum(1 for summary in summaries if summary.status is OrderStatus.CLOSED),
            seconds_to_close=round(seconds_to_close, 3),
        )
        return parked, *_figures(sizes)

    async def histories(
        self, order_ids: list[str], label: str | None = "reading histories"
    ) -> dict[str, HistorySize]:
        """Each order's real history, read once it has finished (shown as `label`, if any)."""
        task = self.progress.add_task(label or "", total=len(order_ids), visible=bool(label))
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


def _figures(sizes: dict[str, HistorySize]) -> tuple[HistoryFigures, TimeFigures | None]:
    """What the orders' histories say: their sizes and Actions, and where their time went."""
    found = list(sizes.values())
    return history_figures(found), time_figures(s.time for s in found if s.time is not None)


def _growth(
    before: Sequence[ProcessMemory | None], after: Sequence[ProcessMemory | None], count: int
) -> float | None:
    """Resident memory gained per order between two readings of the same processes, summed."""
    then, now = _rss(before), _rss(after)
    same = [memory and memory.pid for memory in before] == [
        memory and memory.pid for memory in after
    ]
    if then is None or now is None or not same:
        return None
    return round((now - then) / count, 1)


def _rss(readings: Sequence[ProcessMemory | None]) -> int | None:
    """The processes' resident memory, summed; None if one was not read."""
    total = 0
    for memory in readings:
        if memory is None or memory.rss_bytes is None:
            return None
        total += memory.rss_bytes
    return total if readings else None
