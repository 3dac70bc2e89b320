"""What each outside event does once it is accepted: shipments, payments, amendments,
returns, and support's retry, release and cancel. A copy of an event already
applied, or being applied, is answered as a duplicate with the original's outcome.
Also the one read that waits: the booking's outcome, for `POST /orders`.
"""

from __future__ import annotations

from collections.abc import Awaitable
from decimal import Decimal
from typing import TypeVar

from temporalio import workflow

from activities import options
from activities.order_activities import OrderActivities
from adapters.logistics.models import AmendReservation, ShipmentConfirmation
from adapters.payments.models import PaymentRecordRequest
from o2c_domain.lines import SkuQuantity
from o2c_workflows import (
    keys,
    rejections,
    return_steps,
)
from o2c_workflows.failure_policy import ACTIVITY_FAILURES, StepFailure
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
    Applying,
    Resolution,
)
from o2c_workflows.order.fulfilment import Fulfilment
from o2c_workflows.return_steps import ReturnSteps
from o2c_workflows.state import (
    CompensationStatus,
    OutsideEventState,
    PaymentState,
    UndoKind,
)

A = TypeVar("A")
T = TypeVar("T")


class Events(Fulfilment):
    async def _confirm_shipment(self, event: ShipmentConfirmed) -> EventAck:
        await self._after_the_original(Applying.SHIPMENT, event.dedup_key)
        applied = self._state.dispatch(event.dedup_key)
        if applied is not None:
            return self._ack(
                f"shipment already confirmed: {_quantities(applied.lines)}", duplicate=True
            )
        lines = guards.shipped_lines(self._state, self._in_flight, event)
        self._in_flight.applying[Applying.SHIPMENT] = event.dedup_key
        try:
            # The event may overtake the shipment request's own answer.
            await workflow.wait_condition(
                lambda: (
                    self._state.shipment is not None
                    or self._state.status is not OrderStatus.BOOKED
                    or self._in_flight.stopping
                )
            )
            shipment = self._state.shipment
            if shipment is None or self._in_flight.stopping:
                rejections.not_allowed(
                    f"order {self._state.order_id} is {self._state.status.value} and has no "
                    "shipment awaiting confirmation"
                )
            await self._call(
                OrderActivities.confirm_shipment,
                ShipmentConfirmation(
                    idempotency_key=self._keys.dispatch(event.dedup_key),
                    shipment_id=shipment.shipment_id,
                    carrier=event.carrier,
                    tracking_number=event.tracking_number,
                    lines=lines,
                ),
                options.LOGISTICS,
            )
        finally:
            del self._in_flight.applying[Applying.SHIPMENT]
        dispatch = self._state.record_dispatch(
            event.dedup_key, event.carrier, event.tracking_number, lines, workflow.now()
        )
        dispatch.actor = event.actor
        shipped = _quantities(lines)
        self._update_status(f"{event.carrier} {event.tracking_number}: {shipped}", event.actor)
        return self._ack(f"shipment confirmed: {shipped}", duplicate=False)

    async def _receive_payment(self, event: PaymentReceived) -> EventAck:
        """Record the payment now; cash application applies it as invoices allow."""
        if guards.is_duplicate_payment(self._state, self._in_flight, event):
            # A copy racing the original waits for it, and answers as the original will.
            await workflow.wait_condition(
                lambda: event.payment_id not in self._in_flight.pending_payments
            )
            received = self._state.payment(event.payment_id)
            if received is not None:
                await self._applied_as_far_as_it_can_be(received)
                return self._ack(
                    f"already received: {self._payment_outcome(received)}", duplicate=True
                )
        guards.check_payment(self._state, self._in_flight, event)
        request = PaymentRecordRequest(
            idempotency_key=keys.payment(event.payment_id),
            payment_id=event.payment_id,
            order_id=self._state.order_id,
            amount=event.amount,
            currency=event.currency,
            reference=event.reference,
        )
        self._in_flight.pending_payments[event.payment_id] = event.amount
        try:
            # Registered first: if the order is cancelled, a recorded payment is refunded.
            self._will_undo(
                f"payment {event.payment_id}", UndoKind.REFUND_PAYMENT, request.idempotency_key
            )
            await self._call(OrderActivities.record_payment, request, options.PAYMENTS)
        finally:
            del self._in_flight.pending_payments[event.payment_id]
        payment = PaymentState(
            payment_id=event.payment_id,
            amount=event.amount,
            currency=event.currency,
            reference=event.reference,
            received_at=workflow.now(),
            invoice_id=event.invoice_id,
            actor=event.actor,
        )
        self._state.payments.append(payment)
        self._show_details()
        await self._applied_as_far_as_it_can_be(payment)
        return self._ack(self._payment_outcome(payment), duplicate=False)

    async def _amend(self, amendment: Amendment) -> AmendmentAck:
        state = self._state
        if amendment.event_id is not None:
            await self._after_the_original(Applying.AMENDMENT, amendment.event_id)
            if amendment.event_id in state.amendments:
                return self._amendment_ack("amendment already applied", [], duplicate=True)
        plan = guards.check_amendment(self._state, self._in_flight, amendment)
        booking = state.booking
        assert booking is not None
        number = len(state.amendments) + 1
        self._in_flight.applying[Applying.AMENDMENT] = amendment.event_id or f"amendment-{number}"
        try:
            await self._call(
                OrderActivities.amend_reservation,
                AmendReservation(
                    idempotency_key=self._keys.amend(amendment.event_id or str(number)),
                    reservation_id=booking.reservation_id,
                    shipment_id=state.shipment.shipment_id if state.shipment else None,
                    lines=[SkuQuantity(sku=line.sku, quantity=line.ordered) for line in plan.lines],
                ),
                options.LOGISTICS,
            )
        finally:
            del self._in_flight.applying[Applying.AMENDMENT]
        amendment_id = amendment.event_id or f"amendment-{number}"
        state.amend(plan.lines, plan.total_after, amendment_id)
        if amendment.actor is not None:
            state.amended_by[amendment_id] = amendment.actor
        self._update_status("amended: " + "; ".join(plan.changes), amendment.actor)
        return self._amendment_ack("amendment applied", plan.changes, duplicate=False,
                                   before=plan.total_before)  # fmt: skip

    def _amendment_ack(
        self, message: str, changes: list[str], *, duplicate: bool, before: Decimal | None = None
    ) -> AmendmentAck:
        return AmendmentAck(
            order_id=self._state.order_id,
            status=self._state.status,
            duplicate=duplicate,
            message=message,
            changes=changes,
            total_before=self._state.total if before is None else before,
            total_after=self._state.total,
        )

    async def _record_return(self, returned: ReturnReceived) -> EventAck:
        await self._after_the_original(Applying.RETURN, returned.return_id)
        if self._state.returned(returned.return_id) is not None:
            return self._ack(
                f"return {returned.return_id} already recorded: "
                f"{return_steps.outcome(self._state, returned.return_id)}",
                duplicate=True,
            )
        plan = guards.check_return(self._state, self._in_flight, returned)
        steps = ReturnSteps(self._state, self._call, self._keys.return_(returned.return_id))
        self._in_flight.applying[Applying.RETURN] = returned.return_id
        try:
            await steps.receive(returned)
            notes = [await steps.credit(returned, i, lines) for i, lines in plan.items()]
        finally:
            del self._in_flight.applying[Applying.RETURN]
        return_steps.record(self._state, returned, notes, workflow.now())
        credited = sum((note.amount for note in notes), Decimal(0))
        self._show_payment_due()
        self._update_status(f"return {returned.return_id}: credit notes for {credited}",
                            returned.actor)  # fmt: skip
        return self._ack(
            f"return {returned.return_id}: {return_steps.outcome(self._state, returned.return_id)}",
            duplicate=False,
        )

    async def _resolve(self, resolution: Resolution, action: SupportAction) -> SupportAck:
        guards.check_resolution(self._state, self._in_flight, resolution)
        hold = self._state.hold
        assert hold is not None
        self._in_flight.resolution = resolution
        self._in_flight.resolved_with = action
        if action.note:
            self._note(f"{resolution.value}: {action.note}", action.actor)
        await workflow.wait_condition(lambda: self._state.hold is not hold)
        return SupportAck(
            order_id=self._state.order_id,
            status=self._state.status,
            message=f"{resolution.value} of {hold.step} ({hold.code}) accepted",
        )

    async def _cancel(self, request: CancelRequest) -> SupportAck:
        guards.check_cancel(self._state, self._in_flight)
        self._stop(request.reason, request.actor)
        await workflow.wait_condition(lambda: self._state.status is OrderStatus.CANCELLED)
        undone = [c.note for c in self._state.compensations if c.status is CompensationStatus.DONE]
        return SupportAck(
            order_id=self._state.order_id,
            status=self._state.status,
            message="cancelled; " + ("; ".join(undone) if undone else "nothing to undo"),
        )

    def _note_outside_event(self, note: OutsideEventNote) -> None:
        """Keep a note of an outside event the order does not act on (once per id), in its
        state and timeline. State only: no command, so any order takes it at any time."""
        if self._state.outside_event(note.source, note.event_id) is not None:
            return
        self._state.outside_events.append(
            OutsideEventState(**note.model_dump(), noted_at=workflow.now())
        )
        what = f"{note.source} {note.type}"
        if note.rejected:
            self._note(f"{what} rejected: {note.detail or 'no reason given'}")
        else:
            self._note(f"{what}: {note.detail}" if note.detail else what)

    async def _booking_outcome(self) -> BookingOutcome:
        """How booking ended, once it has: booked (stock reserved and the shipment requested,
        so the order takes every event of a Booked order), held, or cancelled. A read: it
        only waits and answers, so it adds no command to the order's history."""
        await workflow.wait_condition(self._booking_ended)
        state = self._state
        hold = state.hold if state.status is OrderStatus.ON_HOLD else None
        return BookingOutcome(
            order_id=state.order_id,
            status=state.status,
            hold_reason=hold.code if hold else None,
            hold_message=hold.message if hold else None,
            cancellation_reason=(
                state.cancellation_reason if state.status is OrderStatus.CANCELLED else None
            ),
        )

    def _booking_ended(self) -> bool:
        status = self._state.status
        if status in (OrderStatus.ON_HOLD, OrderStatus.CANCELLED):
            return True
        return status is not OrderStatus.ENTERED and self._state.shipment is not None

    async def _as_signal(self, handling: Awaitable[object]) -> None:
        """Run a message as a signal: a refusal is a business outcome, logged in one line."""
        try:
            await handling
        except ACTIVITY_FAILURES as error:
            failure = StepFailure.of(error)
            workflow.logger.info(
                "signal refused for order %s: %s: %s",
                self._state.order_id,
                failure.code,
                failure.message,
            )

    async def _after_the_original(self, kind: Applying, event_id: str) -> None:
        """A copy of the event being applied waits for the original to finish."""
        await workflow.wait_condition(lambda: self._in_flight.applying.get(kind) != event_id)


def _quantities(lines: list[SkuQuantity]) -> str:
    return ", ".join(f"{q.quantity} {q.sku}" for q in lines)
