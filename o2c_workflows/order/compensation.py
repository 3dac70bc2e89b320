"""Cancelling: the lifecycle stops, and every step that took effect is undone, newest
first. Undo steps are registered before their forward step runs; a second
cancellation cannot interrupt compensation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.types import MethodAsyncSingleParam

from activities import options
from activities.order_activities import OrderActivities, Undo, UndoResult
from o2c_workflows import keys
from o2c_workflows.failure_policy import ACTIVITY_FAILURES, StepFailure
from o2c_workflows.order.base import (
    COMPENSATION_FAILED,
    Applying,
)
from o2c_workflows.order.steps import Abandon, Steps
from o2c_workflows.search_attributes import (
    HOLD_REASON,
)
from o2c_workflows.state import (
    CompensationRecord,
    CompensationStatus,
    UndoKind,
    UndoRecord,
)

A = TypeVar("A")
T = TypeVar("T")


UNDO_ACTIVITY: dict[UndoKind, MethodAsyncSingleParam[OrderActivities, Undo, UndoResult]] = {
    UndoKind.RELEASE_RESERVATION: OrderActivities.release_reservation,
    UndoKind.CANCEL_SHIPMENT: OrderActivities.cancel_shipment,
    UndoKind.VOID_INVOICE: OrderActivities.void_invoice,
    UndoKind.REFUND_PAYMENT: OrderActivities.refund_payment,
    UndoKind.VOID_AUTHORISATION: OrderActivities.void_authorisation,
}
"""The activity that undoes each kind of forward step."""


class Compensation(Steps):
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
                await workflow.wait_condition(
                    lambda: Applying.SHIPMENT not in self._in_flight.applying
                )
                if self._state.shipped:
                    self._note("cancellation requested in Temporal refused: the goods have shipped")
                    continue
                self._cancelled_in_temporal = True
                self._stop("cancelled in Temporal")
            except Abandon as abandoned:
                self._state.cancellation_reason = abandoned.reason
                self._in_flight.stopping = True
                return False

    def _stop(self, reason: str, actor: str | None = None) -> None:
        self._state.cancellation_reason = reason
        self._state.cancelled_by = actor
        self._in_flight.stopping = True
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
            await workflow.wait([self._lifecycle])  # deterministic, unlike asyncio.wait
        # Likewise a payment being recorded: it must be found to be refunded.
        await workflow.wait_condition(lambda: not self._in_flight.pending_payments)
        reason = self._state.cancellation_reason or "order cancelled"
        while self._state.undo:
            undo = self._state.undo.pop()
            try:
                result = await self._call(
                    UNDO_ACTIVITY[undo.undo],
                    Undo(forward_key=undo.forward_key, undo_key=keys.undo(undo.forward_key),
                         reason=reason),
                    options.COMPENSATION,
                )  # fmt: skip
            except ACTIVITY_FAILURES as error:
                # Cannot be undone (e.g. the goods left after all): keep going, and
                # leave the order findable as fallout for a person to sort out.
                failure = StepFailure.of(error)
                self._compensated(undo.step, CompensationStatus.FAILED, failure.message)
                self._set_attributes([HOLD_REASON.value_set(COMPENSATION_FAILED)])
                continue
            status = CompensationStatus.DONE if result.done else CompensationStatus.NOTHING_TO_UNDO
            self._compensated(undo.step, status, result.note)

    def _compensated(self, step: str, status: CompensationStatus, note: str) -> None:
        self._state.compensations.append(
            CompensationRecord(step=step, status=status, note=note, at=workflow.now())
        )
        self._show_details()

    def _undo_records_of_an_earlier_state(self) -> list[UndoRecord]:
        """A state carried over from code that kept its undo records in memory: rebuilt
        once, as that code rebuilt them (invoices and captures were not among them)."""
        records: list[UndoRecord] = []
        if self._state.booking is None:
            return records

        def record(step: str, undo: UndoKind, forward_key: str) -> None:
            records.append(UndoRecord(step=step, undo=undo, forward_key=forward_key))

        for key in self._state.card_authorisations:
            record("authorise_card", UndoKind.VOID_AUTHORISATION, key)
        record("reserve_stock", UndoKind.RELEASE_RESERVATION, self._keys.reserve())
        if self._state.shipment is not None:
            record("request_shipment", UndoKind.CANCEL_SHIPMENT, self._keys.ship())
        for payment in self._state.payments:
            record(
                f"payment {payment.payment_id}",
                UndoKind.REFUND_PAYMENT,
                keys.payment(payment.payment_id),
            )
        return records
