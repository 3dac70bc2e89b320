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
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import col, select
from temporalio.client import Client

from adapters.local import LocalAdapters, open_local_adapters
from adapters.local.tables import PaymentRow, ReservationRow, ShipmentRow, to_minor
from adapters.models import InvoiceStatus, ReservationStatus, ShipmentStatus
from o2c_service.dev import server_log, start_dev_server, stop_server, wait_for_server
from o2c_service.orders import EventRejected, OrderError, OrderService
from o2c_service.settings import Settings
from o2c_workflows.models import (
    OrderLine,
    OrderRequest,
    OrderState,
    OrderStatus,
    PaymentReceived,
    ShipmentConfirmed,
)
from o2c_workflows.order_workflow import OrderWorkflow
from tests.history import status_transitions
from tests.stack import free_port

BATCH_DEADLINE = 180.0
"""Seconds a whole batch may take, outage included, before the test fails."""

DRIVER_PAUSE = 0.3
"""Seconds between two passes of one order's driver (polling, not synchronisation)."""

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


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(text) or "(empty)"


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
        """Start the dev server (on the same SQLite file and port every time) and connect."""
        assert self.server is None or self.server.poll() is not None, "already running"
        self.server = start_dev_server(self.settings)
        return await wait_for_server(self.server, self.settings)

    async def stop_server(self) -> int:
        """SIGTERM the dev server and wait until it has exited; its exit code."""
        server = self.server
        assert server is not None
        # stop_server blocks (it waits): off the event loop, so drivers keep going.
        await asyncio.to_thread(stop_server, server)
        return server.returncode

    # -- workers ---------------------------------------------------------------------

    def start_worker(self, faults: str | None = None) -> WorkerProcess:
        """`python -m o2c_service worker` on this test's server, database and task queue."""
        number = len(self.workers) + 1
        log = self.settings.data_dir / f"worker-{number}.log"
        env = os.environ | {
            "O2C_TEMPORAL_ADDRESS": self.settings.temporal_address,
            "O2C_TASK_QUEUE": self.settings.task_queue,
            "O2C_DATABASE_URL": self.settings.database_url,
        }
        env.pop("O2C_FAULTS", None)
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

    async def wait_until_polling(self, worker: WorkerProcess, within: float) -> None:
        """Return once the worker says it polls its task queue; fail if it exits first."""
        deadline = asyncio.get_running_loop().time() + within
        while WORKER_READY not in worker.log.read_text(errors="replace"):
            self.check_alive()
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail(f"worker {worker.process.pid} did not start polling\n{self.logs()}")
            await asyncio.sleep(DRIVER_PAUSE)

    async def kill_worker(self, worker: WorkerProcess) -> None:
        """SIGKILL: no graceful shutdown, its activities in flight are simply lost."""
        worker.killed = True
        worker.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(worker.process.wait)

    def check_alive(self) -> None:
        """Fail at once, with its log, if a process died that the test did not stop."""
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


# --- the batch and its outside world -----------------------------------------------------


def batch_orders(count: int) -> list[OrderRequest]:
    """`count` small CUST-ACME orders (well within its credit limit), unique per test run."""
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


def tracking_number(order: OrderRequest) -> str:
    return f"TRK-{order.source_order_id}"


def payment_id(order: OrderRequest) -> str:
    return f"PAY-{order.source_order_id}"


def progress(status: OrderStatus | None) -> int:
    """How far along the lifecycle a status is; -1 for none, OnHold or Cancelled."""
    return LIFECYCLE.index(status) if status in LIFECYCLE else -1


class Batch:
    """Drives a batch of orders to Closed the way the 3PL and the bank would."""

    def __init__(self, service: OrderService, processes: Processes) -> None:
        self.service = service
        """What the drivers call; a test may swap it (e.g. for a new client)."""
        self.processes = processes
        self.orders: list[OrderRequest] = []
        self.seen: dict[str, OrderState] = {}
        self.last_error: dict[str, str] = {}
        self._drivers: list[asyncio.Task[None]] = []
        self._deadline = asyncio.get_running_loop().time() + BATCH_DEADLINE

    def start(self, orders: list[OrderRequest]) -> None:
        """Create these orders and drive each to Closed, concurrently, in the background."""
        for order in orders:
            self.orders.append(order)
            self._drivers.append(asyncio.create_task(self._drive(order), name=order.order_id))

    def status(self, order: OrderRequest) -> OrderStatus | None:
        state = self.seen.get(order.order_id)
        return state.status if state is not None else None

    def count_reached(self, status: OrderStatus) -> int:
        """How many orders were last seen at `status` or further along."""
        return sum(progress(self.status(order)) >= progress(status) for order in self.orders)

    async def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        while not condition():
            self._check(what)
            await asyncio.sleep(DRIVER_PAUSE)

    async def finish(self) -> dict[str, OrderState]:
        """Wait for every driver; fail with every order's status unless all are Closed."""
        await self.wait_until(lambda: all(task.done() for task in self._drivers), "all Closed")
        not_closed = [o for o in self.orders if self.status(o) is not OrderStatus.CLOSED]
        if not_closed:
            pytest.fail(f"{len(not_closed)} orders did not reach Closed\n{self.report()}")
        return dict(self.seen)

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
        created = False
        shipment = ShipmentConfirmed(carrier=CARRIER, tracking_number=tracking_number(order))
        payment = PaymentReceived(
            payment_id=payment_id(order),
            amount=order.total(),
            currency=order.currency,
            reference=f"BANK-{order.source_order_id}",
        )
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
                    await self.service.confirm_shipment(order.order_id, shipment)
                elif state.status in (OrderStatus.SHIPPED, OrderStatus.INVOICED) and not any(
                    known.payment_id == payment.payment_id for known in state.payments
                ):
                    await self.service.receive_payment(order.order_id, payment)
            except EventRejected as error:
                # Too early or too late is timing (try again); a contradiction is a bug.
                if error.invalid:
                    raise
                self.last_error[order.order_id] = f"EventRejected: {error}"
            except OrderError as error:
                # TemporalUnavailable, and whatever an outage makes of a call.
                self.last_error[order.order_id] = f"{type(error).__name__}: {error}"
            await asyncio.sleep(DRIVER_PAUSE)


# --- outcomes -------------------------------------------------------------------------------


async def assert_each_order_done_once(
    client: Client, settings: Settings, orders: list[OrderRequest]
) -> None:
    """Every order: one reservation, shipment, invoice (settled), payment and application,
    in the local systems' database; and the workflow itself says Closed, paid once."""
    adapters: LocalAdapters = open_local_adapters(settings.database_url, seed=False)
    service = OrderService(client, settings.task_queue)
    try:
        for order in orders:
            order_id, total = order.order_id, order.total()

            invoices = await adapters.billing.list_invoices(order_id)
            assert len(invoices) == 1, f"{order_id}: invoices {invoices}"
            invoice = invoices[0]
            assert (invoice.amount, invoice.balance) == (total, 0), f"{order_id}: {invoice}"
            assert invoice.status is InvoiceStatus.PAID, f"{order_id}: {invoice}"

            applications = await adapters.billing.list_applications(invoice.invoice_id)
            assert [(a.payment_id, a.amount) for a in applications] == [
                (payment_id(order), total)
            ], f"{order_id}: applications {applications}"

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
            assert [(p.payment_id, p.amount_minor) for p in payments] == [
                (payment_id(order), to_minor(total, order.currency))
            ], f"{order_id}: payments {payments}"
            assert [(s.status, s.tracking_number) for s in shipments] == [
                (ShipmentStatus.CONFIRMED.value, tracking_number(order))
            ], f"{order_id}: shipments {shipments}"
            assert [r.status for r in reservations] == [ReservationStatus.RESERVED.value], (
                f"{order_id}: reservations {reservations}"
            )

            state = await service.get(order_id)
            assert state.status is OrderStatus.CLOSED, f"{order_id}: {state.status}"
            assert [(p.payment_id, p.amount, p.applied_to) for p in state.payments] == [
                (payment_id(order), total, invoice.invoice_id)
            ], f"{order_id}: workflow payments {state.payments}"
            assert state.invoice is not None
            assert (state.invoice.invoice_id, state.invoice.balance) == (invoice.invoice_id, 0)
            handle = client.get_workflow_handle_for(OrderWorkflow.run, order_id)
            summary = await handle.result()
            assert (summary.status, summary.paid) == (OrderStatus.CLOSED, total)
            # Straight through: never OnHold, every status once.
            assert await status_transitions(handle) == LIFECYCLE, order_id
    finally:
        adapters.database.dispose()
