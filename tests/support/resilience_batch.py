"""Resilience tests' outside world: a batch of orders, driven to Closed and checked.

`Batch` plays the 3PL and the bank for a batch of orders: one driver per order
creates it, confirms its shipment once it is Booked and pays it in full once it
has shipped (unless the order is paid by card: the order captures the card once
invoiced), resending on every pass until the order is Closed. Whatever fails
during an outage is simply tried again on the next pass: every call is safe to
resend (the same order content, tracking number and payment id each time). The
processes it runs against are `tests.support.resilience_processes.Processes`.
`assert_each_order_done_once` then reads the local systems (the sandbox's database,
when they are remote) and the workflows.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest
from sqlmodel import col, select
from temporalio.client import Client

from adapters.billing.models import InvoiceStatus
from adapters.local import open_local_adapters
from adapters.local.database import LocalDatabase
from adapters.local.tables import (
    CardAuthorisationRow,
    CardCaptureRow,
    PaymentRow,
    ReservationRow,
    ShipmentDispatchRow,
    ShipmentRow,
    StoredCardRow,
    to_minor,
)
from adapters.logistics.models import ReservationStatus, ShipmentStatus
from adapters.payments.models import AuthorisationStatus
from o2c_service import events as order_events
from o2c_service.creating import PaymentsSource
from o2c_service.orders import OrderService
from o2c_service.outcomes import EventRejected, OrderError
from o2c_service.reconciliation.service import ReconciliationService
from o2c_service.settings import Settings
from o2c_service.systems import ApiSystems
from o2c_workflows.messages import PaymentReceived, ShipmentConfirmed
from o2c_workflows.models import CardPayment, OrderLine, OrderRequest, OrderStatus
from o2c_workflows.order.workflow import OrderWorkflow
from o2c_workflows.state import OrderState
from tests.support.history import status_transitions
from tests.support.resilience_processes import DRIVER_PAUSE, Processes

BATCH_DEADLINE = 180.0
"""Seconds a whole batch may take, outage included, before the test fails."""

LIFECYCLE = [
    OrderStatus.ENTERED,
    OrderStatus.BOOKED,
    OrderStatus.SHIPPED,
    OrderStatus.INVOICED,
    OrderStatus.PAID,
    OrderStatus.CLOSED,
]

CARRIER = "DHL"

CARD_TOKEN = "tok_visa_4242"
"""The card a card-paid order is sent with (the payments system's test card)."""

STATE_CHANGES = [
    ("billing", "ensure_account"),
    ("billing", "create_invoice"),
    ("billing", "apply_payment"),
    ("logistics", "reserve_stock"),
    ("logistics", "request_shipment"),
    ("logistics", "confirm_shipment"),
    ("payments", "record_payment"),
]
"""The adapter calls of an order paid on invoice that change something: where a lost
answer matters (the fault rules' system and operation)."""

NONDETERMINISM = "TMPRL1100"
"""Temporal's code for a history the workflow code cannot replay: never a passing outage."""


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


def paid_by_card(order: OrderRequest) -> OrderRequest:
    """The same order paid on order by card: authorised at booking, captured once invoiced."""
    return order.model_copy(update={"payment_method": CardPayment(card_token=CARD_TOKEN)})


def with_line(order: OrderRequest, sku: str) -> OrderRequest:
    """The same order with one more line: one `sku` at 5.00."""
    data = order.model_dump(mode="json")
    data["lines"].append({"sku": sku, "quantity": 1, "unit_price": "5.00"})
    return OrderRequest.model_validate(data)


def tracking_number(order: OrderRequest) -> str:
    return f"TRK-{order.source_order_id}"


def payment_id(order: OrderRequest) -> str:
    """The bank's payment for an order paid on invoice."""
    return f"PAY-{order.source_order_id}"


def paid_with(order: OrderRequest, invoice_id: str) -> str:
    """The payment that pays the order's one invoice: the bank's, or the card's capture."""
    if order.payment_method is None:
        return payment_id(order)
    return f"{invoice_id}-card-0"  # o2c_workflows/order/cash.py `_capture`, first attempt


def progress(status: OrderStatus | None) -> int:
    """How far along the lifecycle a status is; -1 for none, OnHold or Cancelled."""
    return LIFECYCLE.index(status) if status in LIFECYCLE else -1


Condition = Callable[[], bool | Awaitable[bool]]


class Batch:
    """Drives a batch of orders to Closed the way the 3PL and the bank would."""

    def __init__(
        self, service: OrderService, processes: Processes, deadline: float = BATCH_DEADLINE
    ) -> None:
        self.service = service
        self.processes = processes
        self.orders: list[OrderRequest] = []
        self.seen: dict[str, OrderState] = {}
        """Each order's state as its driver last read it."""
        self.last_error: dict[str, str] = {}
        """Each order's last failed call, for the report."""
        self._drivers: list[asyncio.Task[None]] = []
        self.deadline = deadline
        """Seconds the whole batch may take, outage included, before the test fails."""
        self._deadline = asyncio.get_running_loop().time() + deadline

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
            pytest.fail(f"not {what} within {self.deadline}s\n{self.report()}")

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
                    # As `Prefer: respond-async`: the driver follows the order by reading
                    # it, so a test can catch its booking under way.
                    await self.service.create(order, wait=False)
                    created = True
                state = await self.service.get(order.order_id)
                self.seen[order.order_id] = state
                if state.status in (OrderStatus.CLOSED, OrderStatus.CANCELLED):
                    return
                if state.status is OrderStatus.BOOKED:
                    await self.service.send(order_events.SHIPMENT, order.order_id, shipment)
                elif (
                    state.status in (OrderStatus.SHIPPED, OrderStatus.INVOICED)
                    and order.payment_method is None
                    and not any(known.payment_id == payment.payment_id for known in state.payments)
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


def reservations_made(database: LocalDatabase, order_id: str) -> int:
    """Reservations logistics holds for the order (any status), as its database says."""
    with database.reading() as session:
        rows = session.exec(select(ReservationRow).where(col(ReservationRow.order_id) == order_id))
        return len(rows.all())


def service_for(
    client: Client, processes: Processes, payments: PaymentsSource | None = None
) -> OrderService:
    """The order service as the API builds it from the processes' settings: the embedded
    adapters' calls as local activities (the default mode), a remote system's as normal
    activities on its queue; a card stored in `payments` before its order starts."""
    settings = processes.settings
    return OrderService(
        client,
        settings.task_queue,
        local_activities=settings.local_calls(),
        system_queues=settings.system_queues,
        payments=payments,
    )


async def assert_each_order_done_once(
    client: Client, settings: Settings, orders: list[OrderRequest]
) -> None:
    """Per order, in the local systems: one reservation, one shipment confirmed by one
    dispatch, one invoice (settled), one payment and one application of it (for a card
    order: one card stored, one authorisation and one capture, the payment); and the
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
            paid = paid_with(order, invoices[0].invoice_id)
            applications = await adapters.billing.list_applications(invoices[0].invoice_id)
            assert [(a.payment_id, a.amount) for a in applications] == [(paid, total)], (
                f"{order_id}: payment applications {applications}"
            )

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
                (paid, to_minor(total, order.currency))
            ], f"{order_id}: payments {payments}"
            if order.payment_method is not None:
                assert_card_charged_once(adapters.database, order, paid)
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
            assert [(p.payment_id, p.amount) for p in state.payments] == [(paid, total)], (
                f"{order_id}: the workflow's payments {state.payments}"
            )
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
    await assert_reconciled(service, settings, orders)


async def assert_reconciled(
    service: OrderService, settings: Settings, orders: list[OrderRequest]
) -> None:
    """`o2c reconcile` of the batch finds nothing: each system read through the adapter
    the API would use (over HTTP when `settings` name the sandbox's URLs)."""
    systems = ApiSystems(settings)
    try:
        report = await ReconciliationService(service, systems.for_reconciliation).run(
            [order.order_id for order in orders]
        )
    finally:
        await systems.close()
    lines = [mismatch.line() for mismatch in report.mismatches]
    assert (lines, report.unreadable) == ([], []), "\n".join(lines)
    assert report.orders_checked == len(orders)
    print(f"reconcile: {report.orders_checked} orders checked, {len(lines)} mismatches")


def assert_card_charged_once(database: LocalDatabase, order: OrderRequest, paid: str) -> None:
    """The order's card: stored once, authorised once for the total, captured once as `paid`."""
    order_id = order.order_id
    with database.reading() as session:
        cards = session.exec(select(StoredCardRow).where(col(StoredCardRow.order_id) == order_id))
        authorisations = session.exec(
            select(CardAuthorisationRow).where(col(CardAuthorisationRow.order_id) == order_id)
        ).all()
        captures = session.exec(
            select(CardCaptureRow).where(
                col(CardCaptureRow.authorisation_id).in_(
                    [a.authorisation_id for a in authorisations]
                )
            )
        ).all()
        stored = [card.card_token for card in cards]
    total = to_minor(order.total(), order.currency)
    assert stored == [CARD_TOKEN], f"{order_id}: cards stored {stored}"
    assert [(a.status, a.authorised_minor, a.available_minor) for a in authorisations] == [
        (AuthorisationStatus.AUTHORISED.value, total, 0)
    ], f"{order_id}: authorisations {authorisations}"
    assert [(c.payment_id, c.amount_minor) for c in captures] == [(paid, total)], (
        f"{order_id}: captures {captures}"
    )
