"""The order workflow: one durable execution per order, from Entered to Closed.

`run` reads as the lifecycle. Events from the outside world (shipment
confirmed, payment received) and support actions (retry, release, cancel)
arrive as Updates, whose validators answer at once, and as Signals, which the
Temporal UI and `temporal workflow signal` can send; both go through the same
methods, and a rejected message changes nothing.

A step that fails for good parks the order OnHold where it stands
(`failure_policy`); cancelling undoes, in reverse, every step that took effect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.types import MethodAsyncSingleParam

with workflow.unsafe.imports_passed_through():
    from activities import options
    from activities.order_activities import CustomerCheck, OrderActivities, Undo, UndoResult
    from adapters.models import (
        ApplyPayment,
        Customer,
        InvoiceLine,
        InvoiceRequest,
        PaymentRecordRequest,
        ReserveStock,
        ShipmentConfirmation,
        ShipmentRequest,
        StockLine,
    )
    from o2c_workflows import presentation, rejections
    from o2c_workflows.failure_policy import OnFailure, StepFailure
    from o2c_workflows.models import (
        BookingState,
        CancelRequest,
        CompensationRecord,
        CompensationStatus,
        EventAck,
        HoldKind,
        HoldState,
        InvoiceState,
        OrderRequest,
        OrderState,
        OrderStatus,
        OrderSummary,
        PaymentReceived,
        PaymentState,
        ShipmentConfirmed,
        ShipmentState,
        SupportAck,
        SupportAction,
        TimelineEntry,
    )
    from o2c_workflows.money import fits_currency
    from o2c_workflows.search_attributes import CUSTOMER_ID, HOLD_REASON, ORDER_STATUS

WORKFLOW_NAME = "Order"

A = TypeVar("A")
T = TypeVar("T")

COMPENSATION_FAILED = "compensation_failed"
"""HoldReason of a cancelled order whose compensation could not undo everything."""

FINISHED = frozenset({OrderStatus.PAID, OrderStatus.CLOSED, OrderStatus.CANCELLED})


class Resolution(StrEnum):
    RETRY = "retry"
    RELEASE = "release"


class _Abandon(Exception):
    """A step failed in a way that means the order cannot go on: undo and cancel."""

    def __init__(self, step: str, failure: StepFailure) -> None:
        super().__init__(f"{step} failed: {failure.message}")
        self.reason = f"{step} failed ({failure.code}): {failure.message}"


@dataclass(frozen=True)
class _UndoStep:
    """How to undo a forward step: registered before the step runs."""

    step: str
    activity: MethodAsyncSingleParam[OrderActivities, Undo, UndoResult]
    forward_key: str


@workflow.defn(name=WORKFLOW_NAME)
class OrderWorkflow:
    """An order's lifecycle across CRM, billing, logistics and payments."""

    @workflow.init
    def __init__(self, order: OrderRequest) -> None:
        self._state = OrderState(
            order_id=order.order_id,
            status=OrderStatus.ENTERED,
            order=order,
            total=order.total(),
        )
        self._undo_steps: list[_UndoStep] = []
        # Payments are applied one at a time, oldest first, by the lifecycle.
        # Amounts accepted but not yet recorded count against the open balance,
        # so two payments at once cannot overpay.
        self._pending_payments: dict[str, Decimal] = {}
        self._confirming_shipment = False
        self._resolution: Resolution | None = None
        self._lifecycle: asyncio.Task[None] | None = None
        self._stopping = False
        self._cancelled_in_temporal = False

    @workflow.run
    async def run(self, order: OrderRequest) -> OrderSummary:
        self._enter()
        if await self._completed_unless_cancelled(self._book_ship_invoice_collect()):
            self._transition(OrderStatus.CLOSED, "every invoice settled")
        else:
            await self._compensate()
            self._transition(OrderStatus.CANCELLED, self._state.cancellation_reason or "")
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._cancelled_in_temporal:
            raise asyncio.CancelledError(self._state.cancellation_reason)
        return self._summary()

    async def _book_ship_invoice_collect(self) -> None:
        await self._book()
        await self._ship()
        await self._invoice()
        await self._collect_payment()

    # -- the lifecycle -------------------------------------------------------

    def _enter(self) -> None:
        order = self._state.order
        # Orders started by the API carry their search attributes from the
        # start; one started from the UI or CLI gets them here.
        if workflow.info().typed_search_attributes.get(ORDER_STATUS) is None:
            workflow.upsert_search_attributes(
                [
                    ORDER_STATUS.value_set(OrderStatus.ENTERED.value),
                    CUSTOMER_ID.value_set(order.customer_id),
                ]
            )
        self._record(OrderStatus.ENTERED, f"{len(order.lines)} lines from {order.source_system}")

    async def _book(self) -> None:
        order = self._state.order
        check = CustomerCheck(order_id=order.order_id, customer_id=order.customer_id)
        customer = await self._step(
            "validate_customer", OrderActivities.validate_customer, check, options.CRM
        )
        account = await self._step(
            "ensure_billing_account", OrderActivities.ensure_billing_account, customer,
            options.BILLING,
        )  # fmt: skip
        await self._check_credit(customer, check)
        reserve = ReserveStock(
            idempotency_key=self._key("reserve"), order_id=order.order_id, lines=self._stock_lines()
        )
        self._undo_steps.append(
            _UndoStep("reserve_stock", OrderActivities.release_reservation, reserve.idempotency_key)
        )
        reservation = await self._step(
            "reserve_stock", OrderActivities.reserve_stock, reserve, options.LOGISTICS
        )
        self._state.booking = BookingState(
            customer_name=customer.name,
            billing_account_id=account.account_id,
            reservation_id=reservation.reservation_id,
        )
        self._transition(OrderStatus.BOOKED, f"stock reserved as {reservation.reservation_id}")

    async def _check_credit(self, customer: Customer, check: CustomerCheck) -> None:
        """Open balance plus this order must stay within the CRM credit limit."""
        while True:
            balance = await self._step(
                "credit_check", OrderActivities.open_balance, check, options.BILLING
            )
            if balance.currency not in ("", customer.currency):
                code = "credit_currency_mismatch"
                message = f"open balance in {balance.currency}, credit limit in {customer.currency}"
            elif self._state.order.currency != customer.currency:
                code = "credit_currency_mismatch"
                message = (
                    f"order in {self._state.order.currency}, "
                    f"credit limit in {customer.currency}: needs review"
                )
            elif balance.amount + self._state.total > customer.credit_limit:
                code = "credit_limit_exceeded"
                message = (
                    f"open balance {balance.amount} + this order {self._state.total} exceeds "
                    f"the credit limit {customer.credit_limit} {customer.currency}"
                )
            else:
                return
            if await self._park(HoldKind.CREDIT, "credit_check", code, message) is (
                Resolution.RELEASE
            ):
                return

    async def _ship(self) -> None:
        assert self._state.booking is not None
        request = ShipmentRequest(
            idempotency_key=self._key("ship"),
            order_id=self._state.order_id,
            reservation_id=self._state.booking.reservation_id,
            ship_to=self._state.booking.customer_name,
            lines=self._stock_lines(),
        )
        self._undo_steps.append(
            _UndoStep("request_shipment", OrderActivities.cancel_shipment, request.idempotency_key)
        )
        shipment = await self._step(
            "request_shipment", OrderActivities.request_shipment, request, options.LOGISTICS
        )
        self._state.shipment = ShipmentState(
            shipment_id=shipment.shipment_id, requested_at=workflow.now()
        )
        self._show_details()
        # The shipment-confirmed event moves the order to Shipped.
        await workflow.wait_condition(lambda: self._state.shipped)

    async def _invoice(self) -> None:
        order = self._state.order
        assert self._state.booking is not None
        today = workflow.now().date()
        request = InvoiceRequest(
            idempotency_key=self._key("invoice"),
            order_id=order.order_id,
            account_id=self._state.booking.billing_account_id,
            currency=order.currency,
            invoice_date=today,
            due_date=order.payment_terms.due_date(today),
            lines=[
                InvoiceLine(
                    sku=line.sku,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    amount=line.amount(),
                )
                for line in order.lines
            ],
        )
        self._undo_steps.append(
            _UndoStep("create_invoice", OrderActivities.void_invoice, request.idempotency_key)
        )
        invoice = await self._step(
            "create_invoice", OrderActivities.create_invoice, request, options.BILLING
        )
        self._state.invoice = InvoiceState(
            invoice_id=invoice.invoice_id,
            amount=invoice.amount,
            balance=invoice.balance,
            issued_at=workflow.now(),
            due_date=invoice.due_date,
        )
        self._transition(OrderStatus.INVOICED, f"invoice {invoice.invoice_id} raised")

    async def _collect_payment(self) -> None:
        """Apply each recorded payment to the invoice, oldest first, until it is settled."""
        invoice = self._state.invoice
        assert invoice is not None
        while invoice.balance > 0:
            await workflow.wait_condition(lambda: self._unapplied_payment() is not None)
            payment = self._unapplied_payment()
            assert payment is not None
            application = await self._step(
                "apply_payment",
                OrderActivities.apply_payment,
                ApplyPayment(
                    idempotency_key=self._key(f"apply:{payment.payment_id}"),
                    invoice_id=invoice.invoice_id,
                    payment_id=payment.payment_id,
                    amount=payment.amount,
                ),
                options.BILLING,
            )
            invoice.balance = application.invoice_balance
            payment.applied_to = invoice.invoice_id
            self._show_details()
        self._transition(OrderStatus.PAID, f"invoice {invoice.invoice_id} settled")

    # -- running steps: park on failure, undo on cancel ------------------------

    async def _step(
        self,
        step: str,
        activity: MethodAsyncSingleParam[OrderActivities, A, T],
        argument: A,
        config: workflow.ActivityConfig,
    ) -> T:
        """Run one step; if it fails for good, act on the failure policy.

        Parked, the order waits here for support: `retry` runs the same step
        again with the same idempotency key, so nothing is lost or repeated.
        """
        while True:
            self._stop_if_cancelled()
            try:
                result = await workflow.execute_activity_method(activity, argument, **config)
            except ActivityError as error:
                self._stop_if_cancelled()
                failure = StepFailure.of(error)
                if failure.policy is OnFailure.COMPENSATE:
                    raise _Abandon(step, failure) from error
                await self._park(HoldKind.FALLOUT, step, failure.code, failure.message)
                continue
            self._stop_if_cancelled()
            return result

    def _stop_if_cancelled(self) -> None:
        # An activity may finish after the order was cancelled; its effect is
        # then undone by compensation, but the lifecycle must not go on.
        if self._stopping:
            raise asyncio.CancelledError()

    async def _park(self, kind: HoldKind, step: str, code: str, message: str) -> Resolution:
        """Put the order OnHold at `step` until support retries, releases or cancels it."""
        hold = HoldState(
            kind=kind,
            step=step,
            code=code,
            message=message,
            since=workflow.now(),
            resume_status=self._state.status,
        )
        self._state.hold = hold
        self._resolution = None
        self._transition(OrderStatus.ON_HOLD, f"{step}: {message}", hold_reason=code)
        await workflow.wait_condition(lambda: self._resolution is not None)
        resolution, self._resolution = self._resolution, None
        assert resolution is not None
        self._state.hold = None
        self._transition(hold.resume_status, f"{resolution.value} at {step}", hold_reason=None)
        return resolution

    async def _completed_unless_cancelled(self, lifecycle: Coroutine[Any, Any, None]) -> bool:
        """Run the lifecycle to its end (True), or until the order is cancelled (False).

        A cancel Update stops the lifecycle task directly; cancelling the
        workflow in Temporal (UI, CLI) cancels `run`, and is honoured the same
        way unless the goods have shipped.
        """
        self._lifecycle = asyncio.create_task(lifecycle)
        while True:
            try:
                await asyncio.shield(self._lifecycle)
                return True
            except asyncio.CancelledError:
                if self._lifecycle.done():
                    return False
                # A confirmation being applied decides which side of the point of no return we are.
                await workflow.wait_condition(lambda: not self._confirming_shipment)
                if self._state.shipped:
                    self._note("cancellation requested in Temporal refused: the goods have shipped")
                    continue
                self._cancelled_in_temporal = True
                self._stop("cancelled in Temporal")
            except _Abandon as abandoned:
                self._state.cancellation_reason = abandoned.reason
                self._stopping = True
                return False

    def _stop(self, reason: str) -> None:
        self._state.cancellation_reason = reason
        self._stopping = True
        assert self._lifecycle is not None
        self._lifecycle.cancel()

    async def _compensate(self) -> None:
        """Undo, newest first, every step that took effect; a further cancel cannot stop it."""
        undoing = asyncio.ensure_future(self._undo_all())
        while not undoing.done():
            try:
                await asyncio.shield(undoing)
            except asyncio.CancelledError:
                if not undoing.done():
                    self._cancelled_in_temporal = True
                    self._note("cancelled in Temporal while compensating: compensation goes on")

    async def _undo_all(self) -> None:
        if self._lifecycle is not None and not self._lifecycle.done():
            # Let an activity in flight finish, so its effect can be found and undone.
            await asyncio.wait([self._lifecycle])
        # Likewise a payment being recorded: it must be found to be refunded.
        await workflow.wait_condition(lambda: not self._pending_payments)
        reason = self._state.cancellation_reason or "order cancelled"
        while self._undo_steps:
            undo = self._undo_steps.pop()
            try:
                result = await workflow.execute_activity_method(
                    undo.activity,
                    Undo(forward_key=undo.forward_key, undo_key=f"{undo.forward_key}:undo",
                         reason=reason),
                    **options.COMPENSATION,
                )  # fmt: skip
            except ActivityError as error:
                # Cannot be undone (e.g. the goods left after all): keep going, and
                # leave the order findable as fallout for a person to sort out.
                failure = StepFailure.of(error)
                self._compensated(undo.step, CompensationStatus.FAILED, failure.message)
                workflow.upsert_search_attributes([HOLD_REASON.value_set(COMPENSATION_FAILED)])
                continue
            status = CompensationStatus.DONE if result.done else CompensationStatus.NOTHING_TO_UNDO
            self._compensated(undo.step, status, result.note)

    def _compensated(self, step: str, status: CompensationStatus, note: str) -> None:
        self._state.compensations.append(
            CompensationRecord(step=step, status=status, note=note, at=workflow.now())
        )
        self._show_details()

    # -- shipment events -----------------------------------------------------

    @workflow.update(name="confirm_shipment")
    async def confirm_shipment(self, event: ShipmentConfirmed) -> EventAck:
        """The shipment left: answer at once whether the order took it."""
        return await self._confirm_shipment(event)

    @confirm_shipment.validator
    def _validate_shipment(self, event: ShipmentConfirmed) -> None:
        if not self._is_duplicate_shipment(event):
            self._check_shipment(event)

    @workflow.signal(name="shipment_confirmed")
    async def shipment_confirmed(self, event: ShipmentConfirmed) -> None:
        """Fire-and-forget form of `confirm_shipment` for the UI and CLI."""
        await self._as_signal(self._confirm_shipment(event))

    async def _confirm_shipment(self, event: ShipmentConfirmed) -> EventAck:
        if self._is_duplicate_shipment(event):
            return self._ack("shipment already confirmed", duplicate=True)
        self._check_shipment(event)
        self._confirming_shipment = True
        try:
            # The event may overtake the shipment request's own answer.
            await workflow.wait_condition(
                lambda: (
                    self._state.shipment is not None
                    or self._state.status is not OrderStatus.BOOKED
                    or self._stopping
                )
            )
            shipment = self._state.shipment
            if shipment is None or self._stopping:
                rejections.not_allowed(
                    f"order {self._state.order_id} is {self._state.status.value} and has no "
                    "shipment awaiting confirmation"
                )
            await workflow.execute_activity_method(
                OrderActivities.confirm_shipment,
                ShipmentConfirmation(
                    idempotency_key=self._key("ship-confirm"),
                    shipment_id=shipment.shipment_id,
                    carrier=event.carrier,
                    tracking_number=event.tracking_number,
                ),
                **options.LOGISTICS,
            )
        finally:
            self._confirming_shipment = False
        shipment.carrier = event.carrier
        shipment.tracking_number = event.tracking_number
        shipment.event_id = event.dedup_key
        shipment.confirmed_at = workflow.now()
        self._transition(OrderStatus.SHIPPED, f"{event.carrier} {event.tracking_number}")
        return self._ack("shipment confirmed", duplicate=False)

    def _is_duplicate_shipment(self, event: ShipmentConfirmed) -> bool:
        shipment = self._state.shipment
        return shipment is not None and shipment.event_id == event.dedup_key

    def _check_shipment(self, event: ShipmentConfirmed) -> None:
        status = self._state.status
        shipment = self._state.shipment
        if shipment is not None and shipment.confirmed_at is not None:
            rejections.not_allowed(
                f"order {self._state.order_id} already shipped with {shipment.carrier} "
                f"{shipment.tracking_number}; it is {status.value}"
            )
        if self._stopping:
            rejections.not_allowed(f"order {self._state.order_id} is being cancelled")
        if self._confirming_shipment:
            rejections.not_allowed(
                f"a shipment confirmation for order {self._state.order_id} is being applied"
            )
        if status is not OrderStatus.BOOKED:
            rejections.not_allowed(
                f"order {self._state.order_id} is {status.value}; "
                "a shipment can be confirmed once it is Booked"
            )

    # -- payment events ------------------------------------------------------

    @workflow.update(name="receive_payment")
    async def receive_payment(self, event: PaymentReceived) -> EventAck:
        """Money arrived: record it, apply it to the invoice, answer with the new status."""
        return await self._receive_payment(event)

    @receive_payment.validator
    def _validate_payment(self, event: PaymentReceived) -> None:
        if not self._is_duplicate_payment(event):
            self._check_payment(event)

    @workflow.signal(name="payment_received")
    async def payment_received(self, event: PaymentReceived) -> None:
        """Fire-and-forget form of `receive_payment` for the UI and CLI."""
        await self._as_signal(self._receive_payment(event))

    async def _receive_payment(self, event: PaymentReceived) -> EventAck:
        """Record the payment now; the lifecycle applies it once there is an invoice."""
        if self._is_duplicate_payment(event):
            return self._ack(f"payment {event.payment_id} already received", duplicate=True)
        self._check_payment(event)
        request = PaymentRecordRequest(
            idempotency_key=f"payment:{event.payment_id}",
            payment_id=event.payment_id,
            order_id=self._state.order_id,
            amount=event.amount,
            currency=event.currency,
            reference=event.reference,
        )
        self._pending_payments[event.payment_id] = event.amount
        try:
            # Registered first: if the order is cancelled, a recorded payment is refunded.
            self._undo_steps.append(
                _UndoStep(
                    f"payment {event.payment_id}",
                    OrderActivities.refund_payment,
                    request.idempotency_key,
                )
            )
            await workflow.execute_activity_method(
                OrderActivities.record_payment, request, **options.PAYMENTS
            )
        finally:
            del self._pending_payments[event.payment_id]
        payment = PaymentState(
            payment_id=event.payment_id,
            amount=event.amount,
            currency=event.currency,
            reference=event.reference,
            received_at=workflow.now(),
        )
        self._state.payments.append(payment)
        self._show_details()
        if self._state.invoice is None:
            return self._ack(
                f"payment {event.payment_id} recorded; it is applied when the order is invoiced",
                duplicate=False,
            )
        await workflow.wait_condition(
            lambda: (
                payment.applied_to is not None
                or self._state.status is OrderStatus.ON_HOLD
                or self._stopping
            )
        )
        if payment.applied_to is None:
            return self._ack(
                f"payment {event.payment_id} recorded; applying it is on hold", duplicate=False
            )
        return self._ack(
            f"payment {event.payment_id} applied; balance {self._state.invoice.balance}",
            duplicate=False,
        )

    def _unapplied_payment(self) -> PaymentState | None:
        return next((p for p in self._state.payments if p.applied_to is None), None)

    def _is_duplicate_payment(self, event: PaymentReceived) -> bool:
        known = {p.payment_id: p.amount for p in self._state.payments} | self._pending_payments
        if event.payment_id not in known:
            return False
        if known[event.payment_id] != event.amount:
            rejections.invalid(
                f"payment {event.payment_id} was already received for "
                f"{known[event.payment_id]}, not {event.amount}"
            )
        return True

    def _check_payment(self, event: PaymentReceived) -> None:
        order_id, status = self._state.order_id, self._state.status
        currency = self._state.order.currency
        if event.currency != currency:
            rejections.invalid(
                f"order {order_id} is in {currency}, the payment in {event.currency}"
            )
        if not fits_currency(event.amount, currency):
            rejections.invalid(f"{event.amount} has more decimal places than {currency} allows")
        if self._stopping or status in FINISHED:
            rejections.not_allowed(f"order {order_id} is {status.value}; it takes no payments")
        if self._state.booking is None:
            rejections.not_allowed(
                f"order {order_id} is {status.value}; payments are accepted once it is Booked"
            )
        if event.amount > self._open_balance():
            rejections.not_allowed(
                f"payment of {event.amount} {currency} exceeds the open balance of "
                f"{self._open_balance()} {currency} on order {order_id}"
            )

    def _open_balance(self) -> Decimal:
        """What is still owed once every payment received or in flight is counted."""
        return (
            self._state.total - self._state.paid - sum(self._pending_payments.values(), Decimal(0))
        )

    # -- support actions -------------------------------------------------------

    @workflow.update(name="retry")
    async def retry(self, action: SupportAction) -> SupportAck:
        """Run the parked step again, after the cause was fixed."""
        return await self._resolve(Resolution.RETRY, action)

    @retry.validator
    def _validate_retry(self, action: SupportAction) -> None:
        self._check_resolution(Resolution.RETRY)

    @workflow.signal(name="retry_requested")
    async def retry_requested(self, action: SupportAction) -> None:
        await self._as_signal(self._resolve(Resolution.RETRY, action))

    @workflow.update(name="release_hold")
    async def release_hold(self, action: SupportAction) -> SupportAck:
        """Let a credit-held order go on without passing the credit check."""
        return await self._resolve(Resolution.RELEASE, action)

    @release_hold.validator
    def _validate_release(self, action: SupportAction) -> None:
        self._check_resolution(Resolution.RELEASE)

    @workflow.signal(name="release_requested")
    async def release_requested(self, action: SupportAction) -> None:
        await self._as_signal(self._resolve(Resolution.RELEASE, action))

    async def _resolve(self, resolution: Resolution, action: SupportAction) -> SupportAck:
        self._check_resolution(resolution)
        hold = self._state.hold
        assert hold is not None
        self._resolution = resolution
        if action.note:
            self._note(f"{resolution.value}: {action.note}")
        await workflow.wait_condition(lambda: self._state.hold is not hold)
        return SupportAck(
            order_id=self._state.order_id,
            status=self._state.status,
            message=f"{resolution.value} of {hold.step} ({hold.code}) accepted",
        )

    def _check_resolution(self, resolution: Resolution) -> None:
        hold, order_id = self._state.hold, self._state.order_id
        if hold is None or self._resolution is not None or self._stopping:
            rejections.not_allowed(
                f"order {order_id} is {self._state.status.value}, not waiting on a hold"
            )
        if resolution is Resolution.RELEASE and hold.kind is not HoldKind.CREDIT:
            rejections.not_allowed(
                f"order {order_id} is held at {hold.step} ({hold.code}), not for credit: "
                "fix the cause and retry, or cancel"
            )

    @workflow.update(name="cancel")
    async def cancel(self, request: CancelRequest) -> SupportAck:
        """Cancel before shipment: everything done so far is undone, newest first."""
        return await self._cancel(request)

    @cancel.validator
    def _validate_cancel(self, request: CancelRequest) -> None:
        self._check_cancel()

    @workflow.signal(name="cancel_requested")
    async def cancel_requested(self, request: CancelRequest) -> None:
        await self._as_signal(self._cancel(request))

    async def _cancel(self, request: CancelRequest) -> SupportAck:
        self._check_cancel()
        self._stop(request.reason)
        await workflow.wait_condition(lambda: self._state.status is OrderStatus.CANCELLED)
        undone = [c.note for c in self._state.compensations if c.status is CompensationStatus.DONE]
        return SupportAck(
            order_id=self._state.order_id,
            status=self._state.status,
            message="cancelled; " + ("; ".join(undone) if undone else "nothing to undo"),
        )

    def _check_cancel(self) -> None:
        state = self._state
        if state.shipped:
            rejections.not_allowed(
                f"order {state.order_id} has shipped ({state.status.value}): past the point of "
                "no return, so it cannot be cancelled; return the goods instead"
            )
        if self._stopping or state.status in FINISHED:
            rejections.not_allowed(f"order {state.order_id} is already {state.status.value}")
        if self._confirming_shipment:
            rejections.not_allowed(f"order {state.order_id} is confirming its shipment")

    # -- reads ---------------------------------------------------------------

    @workflow.query(name="state")
    def state(self) -> OrderState:
        """Everything the order knows now."""
        return self._state

    # -- helpers -------------------------------------------------------------

    async def _as_signal(self, handling: Awaitable[object]) -> None:
        """Run a message as a signal: a rejection is logged, never fails the order."""
        try:
            await handling
        except (ApplicationError, ActivityError) as error:
            workflow.logger.warning("signal rejected: %s", error)

    def _key(self, step: str) -> str:
        """Idempotency key for a side effect: the same order and step, the same key."""
        return f"{self._state.order_id}:{step}"

    def _stock_lines(self) -> list[StockLine]:
        return [StockLine(sku=line.sku, quantity=line.quantity) for line in self._state.order.lines]

    def _transition(
        self, status: OrderStatus, note: str, *, hold_reason: str | bool | None = False
    ) -> None:
        """Move to `status`; `hold_reason` sets (a code) or clears (None) HoldReason."""
        updates = [ORDER_STATUS.value_set(status.value)]
        if hold_reason is None:
            updates.append(HOLD_REASON.value_unset())
        elif isinstance(hold_reason, str):
            updates.append(HOLD_REASON.value_set(hold_reason))
        workflow.upsert_search_attributes(updates)
        self._record(status, note)

    def _record(self, status: OrderStatus, note: str) -> None:
        self._state.status = status
        self._state.timeline.append(TimelineEntry(status=status, at=workflow.now(), note=note))
        self._show_details()

    def _note(self, note: str) -> None:
        """A timeline entry that does not change the status."""
        self._record(self._state.status, note)

    def _show_details(self) -> None:
        workflow.set_current_details(presentation.current_details(self._state))

    def _ack(self, message: str, *, duplicate: bool) -> EventAck:
        return EventAck(
            order_id=self._state.order_id,
            status=self._state.status,
            duplicate=duplicate,
            message=message,
        )

    def _summary(self) -> OrderSummary:
        state = self._state
        return OrderSummary(
            order_id=state.order_id,
            status=state.status,
            customer_id=state.order.customer_id,
            currency=state.order.currency,
            total=state.total,
            invoiced=state.invoice.amount if state.invoice else Decimal(0),
            paid=state.paid,
            invoice_id=state.invoice.invoice_id if state.invoice else None,
            tracking_number=state.shipment.tracking_number if state.shipment else None,
            cancellation_reason=state.cancellation_reason,
            compensations=state.compensations,
            closed_at=workflow.now(),
        )
