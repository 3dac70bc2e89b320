"""The order workflow: one durable execution per order, from Entered to Closed.

`run` reads as the lifecycle. Events from the outside world (shipments,
payments, returns, amendments) and support actions (retry, release, cancel)
arrive as Updates, whose validators answer at once, and as Signals, which the
Temporal UI and `temporal workflow signal` can send; both go through the same
methods, and a rejected message changes nothing. One Update is a read: `booking`
answers how booking ended once it has (`POST /orders` waits on it).

Goods may leave in several shipments; each is invoiced for exactly what it
shipped, every invoice has its due dates as durable timers and is dunned when
late, and cash is applied oldest due first. A step that fails for good parks
the order OnHold where it stands (`failure_policy`); cancelling undoes, in
reverse, every step that took effect. A long-lived order continues as new
with its state when Temporal suggests it.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from o2c_workflows.messages import (
        Amendment,
        AmendmentAck,
        BookingOutcome,
        CancelRequest,
        EventAck,
        OutsideEventNote,
        PaymentReceived,
        ReturnReceived,
        ShipmentConfirmed,
        SupportAck,
        SupportAction,
    )
    from o2c_workflows.models import OrderStatus
    from o2c_workflows.order import guards
    from o2c_workflows.order.base import (
        PATCH_PAYMENTS_IN_FLIGHT,
        WORKFLOW_NAME,
        InFlight,
        OrderInput,
        Resolution,
    )
    from o2c_workflows.order.events import Events
    from o2c_workflows.state import (
        OrderState,
        OrderSummary,
    )


@workflow.defn(name=WORKFLOW_NAME)
class OrderWorkflow(Events):
    """An order's lifecycle across CRM, billing, logistics and payments."""

    @workflow.init
    def __init__(self, start: OrderInput) -> None:
        order = start.order
        self._dunning = start.dunning
        self._local_activities = start.local_activities
        self._system_queues = start.system_queues
        self._state = start.carried or OrderState.entered(order, created_by=start.actor)
        if start.carried is not None:
            self._state.runs += 1
            if self._state.booking and not self._state.undo:  # carried from earlier code
                self._state.undo = self._undo_records_of_an_earlier_state()
        self._in_flight = InFlight()
        self._lifecycle = None
        self._cancelled_in_temporal = False
        self._dunning_tasks = {}
        self._unpublished = {}
        self._spare_timers = []

    @workflow.run
    async def run(self, start: OrderInput) -> OrderSummary:
        self._refuse_a_foreign_workflow_id()
        if start.carried is None:
            self._enter()
        else:
            self._note(f"continued as new (run {self._state.runs})")
        if self._state.process_version >= 2:
            asyncio.create_task(self._publish_when_waiting())  # noqa: RUF006 (lives as long as run)
        if await self._completed_unless_cancelled(self._book_ship_invoice_collect()):
            self._transition(OrderStatus.CLOSED, "every line shipped, every invoice settled")
        else:
            await self._compensate()
            self._transition(OrderStatus.CANCELLED, self._state.cancellation_reason or "",
                             actor=self._state.cancelled_by)  # fmt: skip
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._publish()
        if self._cancelled_in_temporal:
            raise asyncio.CancelledError(self._state.cancellation_reason)
        return self._summary()

    async def _book_ship_invoice_collect(self) -> None:
        """Entered to Paid, each step once, from wherever a continued run left off."""
        if self._state.booking is None:
            await self._book()
        if self._state.shipment is None:
            await self._request_shipment()
        for invoice in self._state.open_invoices():
            self._start_dunning(invoice)  # after continue-as-new
        cash = asyncio.create_task(self._apply_cash_as_it_comes())
        try:
            await self._invoice_each_shipment()
            # A payment still being recorded must be applied or credited before the end.
            in_flight_counts = self._state.process_version >= 2 or workflow.patched(
                PATCH_PAYMENTS_IN_FLIGHT
            )
            await self._wait_for(
                lambda: (
                    self._state.settled
                    and not self._unapplied_cash()
                    and not (in_flight_counts and self._in_flight.pending_payments)
                )
            )
        finally:
            cash.cancel()
        for dunning in self._dunning_tasks.values():
            dunning.cancel()  # every invoice is paid: nothing left to remind
        self._transition(OrderStatus.PAID, "every invoice settled")

    @workflow.update
    async def confirm_shipment(self, event: ShipmentConfirmed) -> EventAck:
        """Goods left (some or all): answer at once whether the order took it."""
        return await self._confirm_shipment(event)

    @confirm_shipment.validator
    def _validate_shipment(self, event: ShipmentConfirmed) -> None:
        if not guards.is_duplicate_shipment(self._state, self._in_flight, event):
            guards.shipped_lines(self._state, self._in_flight, event)

    @workflow.signal(name="shipment_confirmed")
    async def shipment_confirmed(self, event: ShipmentConfirmed) -> None:
        """Fire-and-forget form of `confirm_shipment` for the UI and CLI."""
        await self._as_signal(self._confirm_shipment(event))

    @workflow.update
    async def receive_payment(self, event: PaymentReceived) -> EventAck:
        """Money arrived: record it, apply it to the invoices, answer with the new status."""
        return await self._receive_payment(event)

    @receive_payment.validator
    def _validate_payment(self, event: PaymentReceived) -> None:
        if not guards.is_duplicate_payment(self._state, self._in_flight, event):
            guards.check_payment(self._state, self._in_flight, event)

    @workflow.signal(name="payment_received")
    async def payment_received(self, event: PaymentReceived) -> None:
        """Fire-and-forget form of `receive_payment` for the UI and CLI."""
        await self._as_signal(self._receive_payment(event))

    @workflow.update
    async def amend(self, amendment: Amendment) -> AmendmentAck:
        """Change quantities, add or remove lines, before they ship."""
        return await self._amend(amendment)

    @amend.validator
    def _validate_amend(self, amendment: Amendment) -> None:
        if not guards.is_duplicate_amendment(self._state, self._in_flight, amendment):
            guards.check_amendment(self._state, self._in_flight, amendment)

    @workflow.signal(name="amendment_requested")
    async def amendment_requested(self, amendment: Amendment) -> None:
        await self._as_signal(self._amend(amendment))

    @workflow.update
    async def record_return(self, returned: ReturnReceived) -> EventAck:
        """Goods came back: credit note, then a refund or customer credit."""
        return await self._record_return(returned)

    @record_return.validator
    def _validate_return(self, returned: ReturnReceived) -> None:
        if not guards.is_duplicate_return(self._state, self._in_flight, returned):
            guards.check_return(self._state, self._in_flight, returned)

    @workflow.signal(name="return_received")
    async def return_received(self, returned: ReturnReceived) -> None:
        await self._as_signal(self._record_return(returned))

    @workflow.update
    async def retry(self, action: SupportAction) -> SupportAck:
        """Run the parked step again, after the cause was fixed."""
        return await self._resolve(Resolution.RETRY, action)

    @retry.validator
    def _validate_retry(self, action: SupportAction) -> None:
        guards.check_resolution(self._state, self._in_flight, Resolution.RETRY)

    @workflow.signal(name="retry_requested")
    async def retry_requested(self, action: SupportAction) -> None:
        await self._as_signal(self._resolve(Resolution.RETRY, action))

    @workflow.update
    async def release_hold(self, action: SupportAction) -> SupportAck:
        """Let a credit-held order go on without passing the credit check."""
        return await self._resolve(Resolution.RELEASE, action)

    @release_hold.validator
    def _validate_release(self, action: SupportAction) -> None:
        guards.check_resolution(self._state, self._in_flight, Resolution.RELEASE)

    @workflow.signal(name="release_requested")
    async def release_requested(self, action: SupportAction) -> None:
        await self._as_signal(self._resolve(Resolution.RELEASE, action))

    @workflow.update
    async def cancel(self, request: CancelRequest) -> SupportAck:
        """Cancel before shipment: everything done so far is undone, newest first."""
        return await self._cancel(request)

    @cancel.validator
    def _validate_cancel(self, request: CancelRequest) -> None:
        guards.check_cancel(self._state, self._in_flight)

    @workflow.signal(name="cancel_requested")
    async def cancel_requested(self, request: CancelRequest) -> None:
        await self._as_signal(self._cancel(request))

    @workflow.signal(name="outside_event_noted")
    def outside_event_noted(self, note: OutsideEventNote) -> None:
        """An outside event the order notes but does not act on (a delivery, a failed
        payment, an event it refused): kept in `outside_events` and the timeline. A Signal
        on purpose: durable once Temporal has it, whether or not a worker is running."""
        self._note_outside_event(note)

    @workflow.update
    async def booking(self) -> BookingOutcome:
        """A read: how booking ended (Booked with the shipment requested, OnHold, Cancelled),
        once it has."""
        return await self._booking_outcome()

    @workflow.query(name="state")
    def state(self) -> OrderState:
        """Everything the order knows, days past due as of its last activity; callers
        with a clock (the API) count them to their today with `OrderState.as_of`."""
        return self._state.as_of(workflow.now().date())

    def _summary(self) -> OrderSummary:
        state = self._state
        return OrderSummary(
            order_id=state.order_id,
            status=state.status,
            customer_id=state.order.customer_id,
            currency=state.order.currency,
            total=state.total,
            invoiced=state.invoiced,
            paid=state.paid,
            invoice_ids=[invoice.invoice_id for invoice in state.invoices],
            tracking_numbers=[dispatch.tracking_number for dispatch in state.dispatches],
            customer_credit=sum((p.to_customer_credit for p in state.payments), Decimal(0))
            + sum((n.to_customer_credit - n.refunded for n in state.credit_notes), Decimal(0)),
            cancellation_reason=state.cancellation_reason,
            compensations=state.compensations,
            closed_at=workflow.now(),
        )
