"""Orders begun on the previous code finish on the current code, each effect once.

The workflow code changed shape (one module became the package `o2c_workflows/order/`)
and behaviour, every behaviour change behind a `workflow.patched` marker: idempotency
keys scoped per execution ("execution-scoped-keys"), payments in flight keeping the
order open, credit-refund refusals as results. The replay tests check recorded
histories; this test makes the switch live, as a deployment would:

1. The code of `PREVIOUS_RELEASE` is extracted from git into a folder of its own.
2. A worker process runs that code (`python -m o2c_service worker` with the old tree
   first on the path) against the dev server, on a task queue and a SQLite database of
   the test's own; a script on the same old code starts orders through the old
   `OrderService` and parks them at different points: Booked, Invoiced and partly paid,
   OnHold (out of stock), card-paid Booked, and shipped in part.
3. The old worker stops (SIGTERM, as a deployment stops it) and a worker on the current
   code takes over the same task queue and database. Every order is driven to Closed
   through the current `OrderService`.
4. Each order must be Closed with one reservation, one shipment request, one invoice per
   dispatch and each payment recorded and applied once, under the keys it began with
   (`<order_id>:<step>`: no execution scope, since it started before the patch), and no
   workflow task may have failed (a nondeterminism error fails the task).

Why one file of some 650 lines: it is one test. The orders it plans, the script it
runs on the previous code (a string: that code is not this one, nor linted or typed
with it), the worker processes, the driver on the current code and the checks of
the outcome serve this test alone and read in the order it runs them; in modules
of their own they would be pieces of one scenario to be followed from file to file.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlmodel import col, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from adapters.local import LocalAdapters, open_local_adapters
from adapters.local.tables import (
    CardAuthorisationRow,
    InvoiceRow,
    ItemRow,
    PaymentApplicationRow,
    PaymentRow,
    ReservationRow,
    ShipmentDispatchRow,
    ShipmentRow,
    to_minor,
)
from o2c_service import events as order_events
from o2c_service.orders import OrderService
from o2c_service.outcomes import EventNotTaken, TemporalUnavailable
from o2c_workflows.messages import PaymentReceived, ShipmentConfirmed, SupportAction
from o2c_workflows.models import OrderRequest, OrderStatus
from o2c_workflows.order.base import PATCH_EXECUTION_KEYS, PATCH_PAYMENTS_IN_FLIGHT
from o2c_workflows.order.workflow import OrderWorkflow
from o2c_workflows.state import OrderState
from tests.support.codec import TEST_KEYS, keys_setting

pytestmark = pytest.mark.timeout(180)

REPOSITORY = Path(__file__).resolve().parents[2]

PREVIOUS_RELEASE = "062580a0f7c832c94b8b95f4cc36d40820d31d1b"
"""The last commit before the order workflow became a package and its changes went behind
patches: "One activity-call switch (calls.execute) for both workflows; credit refunds read
failures with StepFailure.of; days past due counted by dunning.days_past_due"."""

DEADLINE = 90.0
"""Seconds each phase (parking on the old code, closing on the new) may take."""

POLL = 0.1
"""Seconds between two looks at an order or a log."""

WORKER_READY = "worker polling task queue"
"""What `o2c worker` logs once it polls, in both versions (`o2c_service.runners`)."""

PATCH_MARKER = "core_patch"
"""The marker a `workflow.patched` call that took its patch records in the history."""

OUT_OF_STOCK = "SKU-UPGRADE-NONE"
CARRIER = "DHL"
PARTIAL = Decimal("20.00")
"""What the Invoiced order is paid before the switch; the rest is paid after it."""

OLD_DRIVER = r'''
"""Runs on the previous code: start the orders and park each where the test wants it."""
import asyncio
import json
import os
import sys
import time
from decimal import Decimal

import o2c_service
from adapters.local import open_local_adapters
from adapters.local.tables import ItemRow
from o2c_service.orders import OrderError, OrderService
from o2c_service.temporal import connect
from o2c_workflows.messages import PaymentReceived, ShipmentConfirmed, ShippedLine
from o2c_workflows.models import OrderRequest, OrderStatus

plan = json.loads(sys.argv[1])
deadline = time.monotonic() + plan["deadline"]
assert o2c_service.__file__.startswith(plan["tree"]), f"not the old code: {o2c_service.__file__}"


async def until(service, order_id, holds, what):
    while True:
        try:
            state = await service.get(order_id)
        except OrderError as error:  # not yet answering: look again
            state, seen = None, str(error)
        else:
            if holds(state):
                return state
            seen = f"{state.status} (hold: {state.hold})"
        if time.monotonic() > deadline:
            sys.exit(f"{order_id} not {what} in time: {seen}")
        await asyncio.sleep(0.1)


def booked(state):
    return state.status is OrderStatus.BOOKED


async def main():
    adapters = open_local_adapters(plan["database_url"])
    with adapters.database.session() as session:
        session.add(ItemRow(sku=plan["out_of_stock"], name="Nothing on hand", on_hand=0))
    adapters.database.dispose()
    service = OrderService(await connect(plan["address"], "default"), plan["task_queue"])
    orders = {name: OrderRequest.model_validate(data) for name, data in plan["orders"].items()}
    for order in orders.values():
        assert (await service.create(order)).created, order.order_id

    await until(service, orders["booked"].order_id, booked, "Booked")
    await until(service, orders["card"].order_id, booked, "Booked")
    await until(
        service, orders["held"].order_id, lambda s: s.status is OrderStatus.ON_HOLD, "OnHold"
    )

    invoiced = orders["invoiced"]
    partial = Decimal(plan["partial"])
    await until(service, invoiced.order_id, booked, "Booked")
    await service.confirm_shipment(
        invoiced.order_id,
        ShipmentConfirmed(carrier=plan["carrier"], tracking_number=plan["tracking"]["invoiced"][0]),
    )
    await until(
        service, invoiced.order_id, lambda s: s.status is OrderStatus.INVOICED, "Invoiced"
    )
    await service.receive_payment(
        invoiced.order_id,
        PaymentReceived(
            payment_id=plan["payment"]["invoiced"][0], amount=partial, currency=invoiced.currency
        ),
    )
    await until(
        service,
        invoiced.order_id,
        lambda s: s.invoices[0].balance == invoiced.total() - partial,
        "partly paid",
    )

    split = orders["split"]
    first = split.lines[0]
    await until(service, split.order_id, booked, "Booked")
    await service.confirm_shipment(
        split.order_id,
        ShipmentConfirmed(
            carrier=plan["carrier"],
            tracking_number=plan["tracking"]["split"][0],
            lines=[ShippedLine(sku=first.sku, quantity=first.quantity)],
        ),
    )
    await until(service, split.order_id, lambda s: len(s.invoices) == 1, "invoiced in part")

    statuses = {name: (await service.get(o.order_id)).status.value for name, o in orders.items()}
    print(json.dumps(statuses))


asyncio.run(main())
# The SDK's core threads can race the interpreter's finalization (an intermittent
# "PyGILState_Release" abort): everything is said, so leave at once.
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
'''


# --- the orders ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """One order of the test: what it is, and the outside world's events for it."""

    name: str
    request: OrderRequest
    tracking: list[str]
    """Tracking number of each shipment, in order: before the switch first, if any."""
    payments: list[str]
    """Payment id of each bank payment, in order."""

    @property
    def order_id(self) -> str:
        return self.request.order_id


def plan_orders() -> dict[str, Planned]:
    run = uuid.uuid4().hex[:8]

    def order(name: str, lines: list[tuple[str, int, str]], **more: Any) -> OrderRequest:
        return OrderRequest.model_validate(
            {
                "source_system": "upgrade",
                "source_order_id": f"SO-{run}-{name}",
                "customer_id": "CUST-ACME",
                "currency": "EUR",
                "lines": [
                    {"sku": sku, "quantity": quantity, "unit_price": price}
                    for sku, quantity, price in lines
                ],
                **more,
            }
        )

    two_lines = [("SKU-WIDGET", 2, "12.50"), ("SKU-GADGET", 1, "9.99")]
    requests = {
        "booked": order("booked", two_lines),
        "invoiced": order("invoiced", two_lines),
        "held": order("held", [("SKU-WIDGET", 1, "12.50"), (OUT_OF_STOCK, 3, "5.00")]),
        "card": order(
            "card", [("SKU-GIZMO", 1, "30.00")], payment_method={"card_token": "tok_visa_4242"}
        ),
        "split": order("split", [("SKU-WIDGET", 1, "12.50"), ("SKU-GADGET", 2, "9.99")]),
    }
    shipments = {"split": 2}
    payments = {"invoiced": 2, "card": 0}
    return {
        name: Planned(
            name=name,
            request=request,
            tracking=[
                f"TRK-{request.source_order_id}-{n}" for n in range(1, shipments.get(name, 1) + 1)
            ],
            payments=[
                f"PAY-{request.source_order_id}-{n}" for n in range(1, payments.get(name, 1) + 1)
            ],
        )
        for name, request in requests.items()
    }


# --- the previous code and the processes ----------------------------------------------------


def extract_previous_release(into: Path) -> Path:
    """The code of PREVIOUS_RELEASE in `into`; skip when there is no history to take it from."""
    git, tar = shutil.which("git"), shutil.which("tar")
    if git is None or tar is None:
        pytest.skip("git or tar is not installed: the previous release cannot be extracted")
    known = subprocess.run(
        [git, "-C", str(REPOSITORY), "cat-file", "-e", f"{PREVIOUS_RELEASE}^{{commit}}"],
        capture_output=True,
    )
    if known.returncode != 0:
        pytest.skip(
            f"commit {PREVIOUS_RELEASE[:7]} is not in this checkout (no git history, "
            "e.g. a tarball, or a shallow clone): the previous release cannot be extracted"
        )
    into.mkdir()
    archive = subprocess.Popen(
        [git, "-C", str(REPOSITORY), "archive", PREVIOUS_RELEASE], stdout=subprocess.PIPE
    )
    assert archive.stdout is not None
    subprocess.run([tar, "-x", "-C", str(into)], stdin=archive.stdout, check=True)
    archive.stdout.close()
    assert archive.wait() == 0, "git archive failed"
    assert (into / "o2c_workflows" / "order_workflow.py").exists(), "not the previous layout"
    return into


def process_env(extra: dict[str, str]) -> dict[str, str]:
    """This environment without any O2C_* setting or PYTHONPATH of its own, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("O2C_") and k != "PYTHONPATH"}
    return env | extra


@dataclass
class Deployment:
    """The dev server, one task queue and one database: what both versions share."""

    address: str
    task_queue: str
    database_url: str
    folder: Path
    old_tree: Path

    def settings_env(self) -> dict[str, str]:
        return {
            "O2C_TEMPORAL_ADDRESS": self.address,
            "O2C_TASK_QUEUE": self.task_queue,
            "O2C_DATA_DIR": str(self.folder),
            "O2C_DATABASE_URL": self.database_url,
        }

    def current_env(self) -> dict[str, str]:
        """The current code reads and writes payloads through the codec: it needs keys."""
        return process_env(self.settings_env() | {"O2C_CODEC_KEYS": keys_setting(TEST_KEYS)})

    def old_env(self) -> dict[str, str]:
        """The same Python and venv, the previous code shadowing the installed (current) one."""
        return process_env(self.settings_env() | {"PYTHONPATH": str(self.old_tree)})


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        lines = self.log.read_text(errors="replace").splitlines()[-40:]
        return f"--- {self.log} (tail) ---\n" + "\n".join(lines)


def start_worker(deployment: Deployment, *, old: bool) -> WorkerProcess:
    """`python -m o2c_service worker` on the old or the current code. Run from the code's
    own folder, which `-m` puts first on the path."""
    log = deployment.folder / ("worker-old.log" if old else "worker-current.log")
    with log.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "o2c_service", "worker"],
            cwd=deployment.old_tree if old else REPOSITORY,
            env=deployment.old_env() if old else deployment.current_env(),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return WorkerProcess(process, log)


async def wait_until_polling(worker: WorkerProcess) -> None:
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while WORKER_READY not in worker.log.read_text(errors="replace"):
        if worker.process.poll() is not None:
            pytest.fail(f"the worker exited with {worker.process.returncode}\n{worker.tail()}")
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"the worker did not start polling\n{worker.tail()}")
        await asyncio.sleep(POLL)


async def stop_worker(worker: WorkerProcess) -> None:
    """SIGTERM, as a deployment stops a worker: it finishes its tasks and leaves."""
    worker.process.send_signal(signal.SIGTERM)
    try:
        await asyncio.to_thread(worker.process.wait, DEADLINE)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker did not stop on SIGTERM\n{worker.tail()}")


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()


@pytest.fixture
def deployment(dev_env: WorkflowEnvironment, tmp_path: Path) -> Deployment:
    old_tree = extract_previous_release(tmp_path / "previous")
    folder = tmp_path / "data"
    folder.mkdir()
    return Deployment(
        address=dev_env.client.service_client.config.target_host,
        task_queue=f"upgrade-{uuid.uuid4()}",
        database_url=f"sqlite:///{folder / 'o2c.db'}",
        folder=folder,
        old_tree=old_tree,
    )


async def park_on_old_code(deployment: Deployment, orders: dict[str, Planned]) -> dict[str, str]:
    """Run OLD_DRIVER on the previous code; the status it left each order at, by name."""
    plan = {
        "tree": str(deployment.old_tree),
        "address": deployment.address,
        "task_queue": deployment.task_queue,
        "database_url": deployment.database_url,
        "deadline": DEADLINE,
        "out_of_stock": OUT_OF_STOCK,
        "carrier": CARRIER,
        "partial": str(PARTIAL),
        "orders": {
            name: o.request.model_dump(mode="json", exclude_none=True) for name, o in orders.items()
        },
        "tracking": {name: o.tracking for name, o in orders.items()},
        "payment": {name: o.payments for name, o in orders.items()},
    }
    driver = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", OLD_DRIVER, json.dumps(plan)],
        cwd=deployment.old_tree,
        env=deployment.old_env(),
        capture_output=True,
        text=True,
        timeout=DEADLINE + 30,
    )
    assert driver.returncode == 0, f"the old code's driver failed:\n{driver.stderr}"
    statuses: dict[str, str] = json.loads(driver.stdout.splitlines()[-1])
    return statuses


# --- on the current code ------------------------------------------------------------------

T = TypeVar("T")


class Driver:
    """The outside world on the current code: the 3PL, the bank and support."""

    def __init__(self, service: OrderService) -> None:
        self.service = service
        self.deadline = asyncio.get_running_loop().time() + DEADLINE

    def check_deadline(self, what: str) -> None:
        if asyncio.get_running_loop().time() > self.deadline:
            raise AssertionError(f"not {what} within {DEADLINE}s")

    async def send(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Send an event until a worker takes it: resending is safe, a copy is a duplicate.
        (The first task of each order after the switch may wait for the old worker's sticky
        queue to time out.)"""
        while True:
            try:
                return await call()
            except (EventNotTaken, TemporalUnavailable):
                self.check_deadline(what)
                await asyncio.sleep(POLL)

    async def until(self, order_id: str, holds: Callable[[OrderState], bool], what: str) -> None:
        while True:
            state = await self.send(f"{order_id} read", lambda: self.service.get(order_id))
            if holds(state):
                return
            self.check_deadline(f"{order_id} {what} (it is {state.status}, hold {state.hold})")
            await asyncio.sleep(POLL)

    async def reach(self, order_id: str, status: OrderStatus) -> None:
        await self.until(order_id, lambda state: state.status is status, str(status))

    async def ship(self, order: Planned, number: int) -> None:
        event = ShipmentConfirmed(carrier=CARRIER, tracking_number=order.tracking[number])
        await self.send(
            "shipped", lambda: self.service.send(order_events.SHIPMENT, order.order_id, event)
        )

    async def pay(self, order: Planned, number: int, amount: Decimal) -> None:
        event = PaymentReceived(
            payment_id=order.payments[number], amount=amount, currency=order.request.currency
        )
        await self.send(
            "paid", lambda: self.service.send(order_events.PAYMENT, order.order_id, event)
        )

    async def close(self, order: Planned, adapters: LocalAdapters) -> None:
        """Drive one order from where the old code left it to Closed."""
        total = order.request.total()
        match order.name:
            case "booked":
                await self.ship(order, 0)
                await self.reach(order.order_id, OrderStatus.INVOICED)
                await self.pay(order, 0, total)
            case "invoiced":
                await self.pay(order, 1, total - PARTIAL)
            case "held":
                restock(adapters, OUT_OF_STOCK, 100)
                note = SupportAction(note="restocked after the upgrade")
                await self.send(
                    "retried", lambda: self.service.send(order_events.RETRY, order.order_id, note)
                )
                await self.reach(order.order_id, OrderStatus.BOOKED)
                await self.ship(order, 0)
                await self.reach(order.order_id, OrderStatus.INVOICED)
                await self.pay(order, 0, total)
            case "card":
                await self.ship(order, 0)  # invoiced and captured from the card
            case "split":
                await self.ship(order, 1)  # everything not shipped yet
                await self.until(order.order_id, lambda s: len(s.invoices) == 2, "invoiced twice")
                await self.pay(order, 0, total)
            case _:
                raise AssertionError(f"no plan for {order.name}")
        await self.reach(order.order_id, OrderStatus.CLOSED)


def restock(adapters: LocalAdapters, sku: str, on_hand: int) -> None:
    with adapters.database.session() as session:
        item = session.get(ItemRow, sku)
        assert item is not None, f"{sku} is not in the database the old code made"
        item.on_hand = on_hand
        session.add(item)


# --- outcomes -------------------------------------------------------------------------------


async def assert_done_once_under_old_keys(
    client: Client, service: OrderService, adapters: LocalAdapters, order: Planned
) -> None:
    """Closed, each effect once in the local systems, every key `<order_id>:<step>`."""
    order_id, currency = order.order_id, order.request.currency
    state = await service.get(order_id)
    assert state.status is OrderStatus.CLOSED, f"{order_id}: {state.status}"
    assert state.key_scope is None, f"{order_id} took an execution scope: {state.key_scope}"
    with adapters.database.session() as session:

        def rows(table: type[T], where: Any) -> list[T]:
            return list(session.exec(select(table).where(where)).all())

        reservations = rows(ReservationRow, col(ReservationRow.order_id) == order_id)
        shipments = rows(ShipmentRow, col(ShipmentRow.order_id) == order_id)
        invoices = rows(InvoiceRow, col(InvoiceRow.order_id) == order_id)
        payments = rows(PaymentRow, col(PaymentRow.order_id) == order_id)
        dispatches = rows(
            ShipmentDispatchRow,
            col(ShipmentDispatchRow.shipment_id).in_([s.shipment_id for s in shipments]),
        )
        applications = rows(
            PaymentApplicationRow,
            col(PaymentApplicationRow.invoice_id).in_([i.invoice_id for i in invoices]),
        )
        authorisations = rows(CardAuthorisationRow, col(CardAuthorisationRow.order_id) == order_id)

    assert [r.idempotency_key for r in reservations] == [f"{order_id}:reserve"], reservations
    assert [s.idempotency_key for s in shipments] == [f"{order_id}:ship"], shipments
    assert sorted(d.tracking_number for d in dispatches) == sorted(order.tracking), dispatches
    assert sorted(i.idempotency_key for i in invoices) == [
        f"{order_id}:invoice:{n}" for n in range(1, len(order.tracking) + 1)
    ], f"{order_id}: one invoice per dispatch, under its old key: {invoices}"
    assert {d.invoice_id for d in state.dispatches} == {i.invoice_id for i in invoices}
    assert all(i.balance_minor == 0 for i in invoices), invoices

    # Each payment recorded once and applied once: its applications add up to it, one per
    # invoice, and together they settle the order.
    assert sorted(p.payment_id for p in payments) == sorted(p.payment_id for p in state.payments)
    for payment in payments:
        applied = [a for a in applications if a.payment_id == payment.payment_id]
        assert sum(a.amount_minor for a in applied) == payment.amount_minor, applied
        assert len({a.invoice_id for a in applied}) == len(applied), f"applied twice: {applied}"
    total_minor = to_minor(order.request.total(), currency)
    assert sum(p.amount_minor for p in payments) == total_minor, payments
    if order.request.payment_method is None:
        assert sorted(p.payment_id for p in payments) == sorted(order.payments), payments
        assert not authorisations
    else:
        assert [a.idempotency_key for a in authorisations] == [f"{order_id}:authorise:0"]
        assert all(p.idempotency_key.startswith(f"{order_id}:capture:") for p in payments)

    summary = await client.get_workflow_handle_for(OrderWorkflow.run, order_id).result()
    assert (summary.status, summary.paid) == (OrderStatus.CLOSED, order.request.total())


async def failed_workflow_tasks(client: Client, order_id: str) -> list[str]:
    """Why each workflow task of the order failed (nondeterminism among the causes)."""
    return [
        f"{order_id} event {event.event_id}: {event.workflow_task_failed_event_attributes.failure}"
        async for event in client.get_workflow_handle(order_id).fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    ]


async def patches_and_workers(client: Client, order_id: str) -> tuple[set[str], set[str]]:
    """The patches the order's history marks as taken, and the identities of the workers
    that completed its workflow tasks."""
    patches: set[str] = set()
    identities: set[str] = set()
    async for event in client.get_workflow_handle(order_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            identities.add(event.workflow_task_completed_event_attributes.identity)
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == PATCH_MARKER:
                for payloads in marker.details.values():
                    for payload in payloads.payloads:
                        patches.add(json.loads(payload.data)["id"])
    return patches, identities


# --- the test -------------------------------------------------------------------------------


async def test_orders_begun_on_the_previous_code_close_on_the_current_code_once(
    dev_env: WorkflowEnvironment, deployment: Deployment, workers: list[WorkerProcess]
) -> None:
    orders = plan_orders()

    old_worker = start_worker(deployment, old=True)
    workers.append(old_worker)
    await wait_until_polling(old_worker)
    statuses = await park_on_old_code(deployment, orders)
    assert statuses == {
        "booked": OrderStatus.BOOKED.value,
        "invoiced": OrderStatus.INVOICED.value,
        "held": OrderStatus.ON_HOLD.value,
        "card": OrderStatus.BOOKED.value,
        "split": OrderStatus.BOOKED.value,  # one line shipped and invoiced, one still booked
    }, statuses
    await stop_worker(old_worker)

    current = start_worker(deployment, old=False)
    workers.append(current)
    # Opened by the current code: it adds the columns the old database lacks.
    adapters = open_local_adapters(deployment.database_url, seed=False)
    try:
        await wait_until_polling(current)
        service = OrderService(dev_env.client, deployment.task_queue)
        # Sent again, an order begun on the old code is found as it is, not a conflict.
        for order in orders.values():
            assert not (await service.create(order.request)).created, order.order_id
        driver = Driver(service)
        closing = [
            asyncio.create_task(driver.close(order, adapters), name=order.name)
            for order in orders.values()
        ]
        try:
            await asyncio.gather(*closing)
        except BaseException as error:
            for task in closing:
                task.cancel()
            raise AssertionError(f"{error}\n{current.tail()}") from error

        for order in orders.values():
            await assert_done_once_under_old_keys(dev_env.client, service, adapters, order)
        failures = [
            failure
            for order in orders.values()
            for failure in await failed_workflow_tasks(dev_env.client, order.order_id)
        ]
        assert not failures, "workflow tasks failed:\n" + "\n".join(failures)
        for order in orders.values():
            patches, identities = await patches_and_workers(dev_env.client, order.order_id)
            # Each order ran on both: the switch happened in the middle of every one.
            for worker in (old_worker, current):
                assert any(i.startswith(f"{worker.process.pid}@") for i in identities), (
                    f"{order.order_id}: no workflow task completed by {worker.log.stem}: "
                    f"{identities}"
                )
            # Begun before the patch, never scoped per execution; the Invoiced order passed
            # every patched point on the old code, and replay keeps it on the old branches;
            # the others first reach the payments-in-flight check on the current code.
            assert PATCH_EXECUTION_KEYS not in patches, order.order_id
            expected = set() if order.name == "invoiced" else {PATCH_PAYMENTS_IN_FLIGHT}
            assert patches == expected, f"{order.order_id}: patches taken {patches}"
        assert current.process.poll() is None, current.tail()
    finally:
        adapters.database.dispose()
