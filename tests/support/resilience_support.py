"""Resilience tests' machinery: real, separately killable processes and an outside world.

`Processes` runs the Temporal dev server (`o2c_service.dev`, a SQLite file in
the test's folder) and `o2c worker` processes, each one its own OS process that
a test can stop or kill. `Batch` plays the 3PL and the bank for a batch of
orders: one driver per order creates it, confirms its shipment once it is
Booked and pays it in full once it has shipped, resending on every pass until
the order is Closed. Whatever fails during an outage is simply tried again on
the next pass: every call is safe to resend (the same order content, tracking
number and payment id each time).
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import col, select
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client

from adapters.billing.models import InvoiceStatus
from adapters.local import open_local_adapters
from adapters.local.tables import (
    PaymentRow,
    ReservationRow,
    ShipmentDispatchRow,
    ShipmentRow,
    to_minor,
)
from adapters.logistics.models import ReservationStatus, ShipmentStatus
from o2c_service import events as order_events
from o2c_service.dev import server_log, start_dev_server, stop_server, wait_for_server
from o2c_service.orders import OrderService
from o2c_service.outcomes import EventRejected, OrderError
from o2c_service.settings import Settings
from o2c_workflows.messages import PaymentReceived, ShipmentConfirmed
from o2c_workflows.models import OrderLine, OrderRequest, OrderStatus
from o2c_workflows.order.workflow import OrderWorkflow
from o2c_workflows.state import OrderState
from tests.support.history import status_transitions
from tests.support.stack import free_port

BATCH_DEADLINE = 180.0
"""Seconds a whole batch may take, outage included, before the test fails."""

DRIVER_PAUSE = 0.3
"""Seconds between two passes of one order's driver, and between two looks of a waiting test."""

WORKER_STARTUP = 60.0
"""Seconds a worker process may take to start polling."""

WORKER_READY = "worker polling task queue"
"""What `o2c worker` logs once it polls (`o2c_service.runners.run_worker`)."""

LOG_TAIL_LINES = 40

LIFECYCLE = [
    OrderStatus.ENTERED,
    OrderStatus.BOOKED,
    OrderStatus.SHIPPED,
    OrderStatus.INVOICED,
    OrderStatus.PAID,
    OrderStatus.CLOSED,
]

CARRIER = "DHL"

NONDETERMINISM = "TMPRL1100"
"""Temporal's code for a history the workflow code cannot replay: never a passing outage."""


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(text) or "(empty)"


# --- processes ----------------------------------------------------------------------------


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path
    killed: bool = False


@dataclass
class Processes:
    """The dev server and the workers of one test, on ports and files of its own."""

    settings: Settings
    server: subprocess.Popen[bytes] | None = None
    server_stopped: bool = False
    workers: list[WorkerProcess] = field(default_factory=list)

    @classmethod
    def for_test(cls, tmp_path: Path) -> Processes:
        return cls(
            Settings(
                temporal_address=f"127.0.0.1:{free_port()}",
                temporal_ui_url=f"http://127.0.0.1:{free_port()}",
                data_dir=tmp_path,
                database_url=f"sqlite:///{tmp_path / 'o2c.db'}",
                task_queue=f"resilience-{uuid.uuid4()}",
            )
        )

    # -- the Temporal dev server ---------------------------------------------------

    async def start_server(self) -> Client:
        """Start the dev server (the same SQLite file and port every time) and connect."""
        assert self.server is None or self.server.poll() is not None, "already running"
        self.server = start_dev_server(self.settings)
        self.server_stopped = False
        return await wait_for_server(self.server, self.settings)

    async def stop_server(self) -> None:
        """SIGTERM the dev server and wait until it has exited."""
        assert self.server is not None
        self.server_stopped = True
        # stop_server blocks while it waits: off the event loop, so the drivers go on.
        await asyncio.to_thread(stop_server, self.server)

    # -- workers ---------------------------------------------------------------------

    def start_worker(
        self, faults: str | None = None, settings: dict[str, str] | None = None
    ) -> WorkerProcess:
        """`python -m o2c_service worker` on this test's server, database and task queue,
        with more O2C_* `settings` if given."""
        log = self.settings.data_dir / f"worker-{len(self.workers) + 1}.log"
        env = os.environ | {
            "O2C_TEMPORAL_ADDRESS": self.settings.temporal_address,
            "O2C_TASK_QUEUE": self.settings.task_queue,
            "O2C_DATABASE_URL": self.settings.database_url,
        }
        env.pop("O2C_FAULTS", None)
        env |= settings or {}
        if faults is not None:
            env["O2C_FAULTS"] = faults
        with log.open("ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "o2c_service", "worker"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        worker = WorkerProcess(process, log)
        self.workers.append(worker)
        return worker

    async def wait_until_polling(self, worker: WorkerProcess) -> None:
        """Return once the worker says it polls its task queue."""
        deadline = asyncio.get_running_loop().time() + WORKER_STARTUP
        while WORKER_READY not in worker.log.read_text(errors="replace"):
            self.check_alive()
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail(f"worker {worker.process.pid} did not start polling\n{self.logs()}")
            await asyncio.sleep(DRIVER_PAUSE)

    async def kill_worker(self, worker: WorkerProcess) -> None:
        """SIGKILL: no graceful shutdown; whatever it was doing is simply lost."""
        worker.killed = True
        worker.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(worker.process.wait)

    # -- watching them -----------------------------------------------------------------

    def check_alive(self) -> None:
        """Fail at once, with the logs, if a process died that the test did not stop."""
        if self.server is not None and not self.server_stopped and self.server.poll() is not None:
            pytest.fail(f"the dev server exited with code {self.server.returncode}\n{self.logs()}")
        for worker in self.workers:
            if not worker.killed and worker.process.poll() is not None:
                pytest.fail(
                    f"worker {worker.process.pid} exited with code {worker.process.returncode}"
                    f"\n{self.logs()}"
                )

    def logs(self) -> str:
        parts = [f"--- {server_log(self.settings)} (tail) ---\n{tail(server_log(self.settings))}"]
        parts += [f"--- {worker.log} (tail) ---\n{tail(worker.log)}" for worker in self.workers]
        return "\n".join(parts)

    def close(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait()
        if self.server is not None:
            stop_server(self.server)


# --- what Temporal says about one activity of an order ----------------------------------


async def activity_running(client: Client, order_id: str, activity: str) -> bool:
    """Whether a worker has started `activity` for the order and not yet finished it."""
    description = await client.get_workflow_handle(order_id).describe()
    return any(
        pending.activity_type.name == activity
        and pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        for pending in description.raw_description.pending_activities
    )


async def completed_attempts(client: Client, order_id: str, activity: str) -> list[int]:
    """For each time the order ran `activity` to completion, the attempt that completed it."""
    scheduled: set[int] = set()
    started: dict[int, int] = {}
    attempts = []
    async for event in client.get_workflow_handle(order_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if event.activity_task_scheduled_event_attributes.activity_type.name == activity:
                scheduled.add(event.event_id)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attributes = event.activity_task_started_event_attributes
            started[attributes.scheduled_event_id] = attributes.attempt
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            scheduled_id = event.activity_task_completed_event_attributes.scheduled_event_id
            if scheduled_id in scheduled:
                attempts.append(started[scheduled_id])
    return attempts


# --- the batch and its outside world -----------------------------------------------------


def batch_orders(count: int) -> list[OrderRequest]:
    """`count` small CUST-ACME orders (far within its credit limit), unique to this run."""
    run = uuid.uuid4().hex[:8]
    return [
        OrderRequest(
            source_system="resilience",
            source_order_id=f"SO-{run}-{number:02d}",
            customer_id="CUST-ACME",
            currency="EUR",
            lines=[
                OrderLine(sku="SKU-WIDGET", quantity=number % 3 + 1, unit_price=Decimal("12.50")),
                OrderLine(sku="SKU-GADGET", quantity=1, unit_price=Decimal("9.99")),
            ],
        )
        for number in range(1, count + 1)
    ]


def with_line(order: OrderRequest, sku: str) -> OrderRequest:
    """The same order with one more line: one `sku` at 5.00."""
    data = order.model_dump(mode="json")
    data["lines"].append({"sku": sku, "quantity": 1, "unit_price": "5.00"})
    return OrderRequest.model_validate(data)


def tracking_number(order: OrderRequest) -> str:
    return f"TRK-{order.source_order_id}"


def payment_id(order: OrderRequest) -> str:
    return f"PAY-{order.source_order_id}"


def progress(status: OrderStatus | None) -> int:
    """How far along the lifecycle a status is; -1 for none, OnHold or Cancelled."""
    return LIFECYCLE.index(status) if status in LIFECYCLE else -1


Condition = Callable[[], bool | Awaitable[bool]]


class Batch:
    """Drives a batch of orders to Closed the way the 3PL and the bank would."""

    def __init__(self, service: OrderService, processes: Processes) -> None:
        self.service = service
        self.processes = processes
        self.orders: list[OrderRequest] = []
        self.seen: dict[str, OrderState] = {}
        """Each order's state as its driver last read it."""
        self.last_error: dict[str, str] = {}
        """Each order's last failed call, for the report."""
        self._drivers: list[asyncio.Task[None]] = []
        self._deadline = asyncio.get_running_loop().time() + BATCH_DEADLINE

    def start(self, orders: list[OrderRequest]) -> None:
        """Create these orders and drive each to Closed, concurrently, in the background."""
        for order in orders:
            self.orders.append(order)
            self._drivers.append(asyncio.create_task(self._drive(order), name=order.order_id))

    async def start_in_turn(self, orders: list[OrderRequest]) -> None:
        """Start these orders one after another, each once the one before it is Booked,
        and return once the last one's workflow runs: the batch is then spread along the
        lifecycle, the first ones paid or closed and the last one still being booked."""
        for order in orders[:-1]:
            self.start([order])
            await self.wait_until(
                functools.partial(self.reached, order, OrderStatus.BOOKED),
                f"{order.order_id} Booked",
            )
        self.start(orders[-1:])
        await self.wait_until(lambda: self.status(orders[-1]) is not None, "the last one read")

    def status(self, order: OrderRequest) -> OrderStatus | None:
        state = self.seen.get(order.order_id)
        return state.status if state is not None else None

    def reached(self, order: OrderRequest, status: OrderStatus) -> bool:
        """Whether the order was last seen at `status` or further along."""
        return progress(self.status(order)) >= progress(status)

    def count_reached(self, status: OrderStatus) -> int:
        return sum(self.reached(order, status) for order in self.orders)

    async def wait_until(self, condition: Condition, what: str) -> None:
        """Return once `condition` holds; fail if a driver or a process fails, or at the
        batch's deadline, with every order's status and the processes' logs."""
        while True:
            holds = condition()
            if holds if isinstance(holds, bool) else await holds:
                return
            self._check(what)
            await asyncio.sleep(DRIVER_PAUSE)

    async def finish(self) -> None:
        """Wait for every driver; fail with every order's status unless all are Closed."""
        await self.wait_until(lambda: all(task.done() for task in self._drivers), "all Closed")
        not_closed = [o for o in self.orders if self.status(o) is not OrderStatus.CLOSED]
        if not_closed:
            pytest.fail(f"{len(not_closed)} orders did not close\n{self.report()}")

    def _check(self, what: str) -> None:
        self.processes.check_alive()
        for task in self._drivers:
            if task.done() and not task.cancelled() and task.exception() is not None:
                self.cancel()
                raise AssertionError(
                    f"the driver of {task.get_name()} failed\n{self.report()}"
                ) from task.exception()
        if asyncio.get_running_loop().time() > self._deadline:
            self.cancel()
            pytest.fail(f"not {what} within {BATCH_DEADLINE}s\n{self.report()}")

    def cancel(self) -> None:
        for task in self._drivers:
            task.cancel()

    def report(self) -> str:
        lines = [
            f"  {order.order_id}: {self.status(order) or 'never read'}"
            + (f" (last error: {error})" if (error := self.last_error.get(order.order_id)) else "")
            for order in self.orders
        ]
        return "order statuses:\n" + "\n".join(lines) + "\n" + self.processes.logs()

    async def _drive(self, order: OrderRequest) -> None:
        shipment = ShipmentConfirmed(carrier=CARRIER, tracking_number=tracking_number(order))
        payment = PaymentReceived(
            payment_id=payment_id(order),
            amount=order.total(),
            currency=order.currency,
            reference=f"BANK-{order.source_order_id}",
        )
        created = False
        while asyncio.get_running_loop().time() < self._deadline:
            try:
                if not created:
                    await self.service.create(order)
                    created = True
                state = await self.service.get(order.order_id)
                self.seen[order.order_id] = state
                if state.status in (OrderStatus.CLOSED, OrderStatus.CANCELLED):
                    return
                if state.status is OrderStatus.BOOKED:
                    await self.service.send(order_events.SHIPMENT, order.order_id, shipment)
                elif state.status in (OrderStatus.SHIPPED, OrderStatus.INVOICED) and not any(
                    known.payment_id == payment.payment_id for known in state.payments
                ):
                    await self.service.send(order_events.PAYMENT, order.order_id, payment)
            except EventRejected as error:
                # Too early or too late is timing: try again. A contradiction is a bug.
                if error.invalid:
                    raise
                self.last_error[order.order_id] = f"EventRejected: {error}"
            except OrderError as error:
                if NONDETERMINISM in str(error):
                    raise AssertionError(f"{order.order_id} cannot be replayed") from error
                # TemporalUnavailable, mostly: the server or the worker is away.
                self.last_error[order.order_id] = f"{type(error).__name__}: {error}"
            await asyncio.sleep(DRIVER_PAUSE)


# --- outcomes -------------------------------------------------------------------------------


async def assert_each_order_done_once(
    client: Client, settings: Settings, orders: list[OrderRequest]
) -> None:
    """Per order, in the local systems: one reservation, one shipment confirmed by one
    dispatch, one invoice (settled), one payment and one application of it; and the
    workflow says Closed, invoiced and paid once, straight through the lifecycle."""
    adapters = open_local_adapters(settings.database_url, seed=False)
    service = OrderService(client, settings.task_queue)
    try:
        for order in orders:
            order_id, total = order.order_id, order.total()

            invoices = await adapters.billing.list_invoices(order_id)
            assert [(i.amount, i.balance, i.status) for i in invoices] == [
                (total, Decimal(0), InvoiceStatus.PAID)
            ], f"{order_id}: invoices {invoices}"
            applications = await adapters.billing.list_applications(invoices[0].invoice_id)
            assert [(a.payment_id, a.amount) for a in applications] == [
                (payment_id(order), total)
            ], f"{order_id}: payment applications {applications}"

            with adapters.database.session() as session:
                payments = session.exec(
                    select(PaymentRow).where(col(PaymentRow.order_id) == order_id)
                ).all()
                shipments = session.exec(
                    select(ShipmentRow).where(col(ShipmentRow.order_id) == order_id)
                ).all()
                reservations = session.exec(
                    select(ReservationRow).where(col(ReservationRow.order_id) == order_id)
                ).all()
                dispatches = session.exec(
                    select(ShipmentDispatchRow).where(
                        col(ShipmentDispatchRow.shipment_id).in_([s.shipment_id for s in shipments])
                    )
                ).all()
            assert [(p.payment_id, p.amount_minor) for p in payments] == [
                (payment_id(order), to_minor(total, order.currency))
            ], f"{order_id}: payments {payments}"
            assert [(s.status, s.tracking_number) for s in shipments] == [
                (ShipmentStatus.CONFIRMED.value, tracking_number(order))
            ], f"{order_id}: shipments {shipments}"
            assert [d.tracking_number for d in dispatches] == [tracking_number(order)], (
                f"{order_id}: dispatches {dispatches}"
            )
            assert [r.status for r in reservations] == [ReservationStatus.RESERVED.value], (
                f"{order_id}: reservations {reservations}"
            )

            state = await service.get(order_id)
            assert state.status is OrderStatus.CLOSED, f"{order_id}: {state.status}"
            assert [(p.payment_id, p.amount) for p in state.payments] == [
                (payment_id(order), total)
            ], f"{order_id}: the workflow's payments {state.payments}"
            assert [(i.invoice_id, i.balance) for i in state.invoices] == [
                (invoices[0].invoice_id, Decimal(0))
            ], f"{order_id}: the workflow's invoices {state.invoices}"
            assert [d.tracking_number for d in state.dispatches] == [tracking_number(order)]
            handle = client.get_workflow_handle_for(OrderWorkflow.run, order_id)
            summary = await handle.result()
            assert (summary.status, summary.paid, summary.tracking_numbers) == (
                OrderStatus.CLOSED,
                total,
                [tracking_number(order)],
            ), summary
            assert await status_transitions(handle) == LIFECYCLE, f"{order_id} went elsewhere"
    finally:
        adapters.database.dispose()
