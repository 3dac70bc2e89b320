"""Cancelling: the lifecycle stops, and every step that took effect is undone, newest
first. Undo steps are registered before their forward step runs; a second
cancellation cannot interrupt compensation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from temporalio import workflow

from activities import options
from activities.order_activities import OrderActivities, Undo
from o2c_workflows import keys
from o2c_workflows.failure_policy import ACTIVITY_FAILURES, StepFailure
from o2c_workflows.order.base import (
    COMPENSATION_FAILED,
    Applying,
    UndoStep,
)
from o2c_workflows.order.steps import Abandon, Steps
from o2c_workflows.search_attributes import (
    HOLD_REASON,
)
from o2c_workflows.state import (
    CompensationRecord,
    CompensationStatus,
)

A = TypeVar("A")
T = TypeVar("T")


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

    def _stop(self, reason: str) -> None:
        self._state.cancellation_reason = reason
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
            await asyncio.wait([self._lifecycle])
        # Likewise a payment being recorded: it must be found to be refunded.
        await workflow.wait_condition(lambda: not self._in_flight.pending_payments)
        reason = self._state.cancellation_reason or "order cancelled"
        while self._undo_steps:
            undo = self._undo_steps.pop()
            try:
                result = await self._call(
                    undo.activity,
                    Undo(forward_key=undo.forward_key, undo_key=keys.undo(undo.forward_key),
                         reason=reason),
                    options.COMPENSATION,
                )  # fmt: skip
            except ACTIVITY_FAILURES as error:
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

    def _undo_steps_from_state(self) -> list[UndoStep]:
        """After continue-as-new: what compensation would undo, rebuilt from the state."""
        steps: list[UndoStep] = []
        if self._state.booking is None:
            return steps
        steps += [
            UndoStep("authorise_card", OrderActivities.void_authorisation, key)
            for key in self._state.card_authorisations
        ]
        steps.append(
            UndoStep("reserve_stock", OrderActivities.release_reservation, self._keys.reserve())
        )
        if self._state.shipment is not None:
            steps.append(
                UndoStep("request_shipment", OrderActivities.cancel_shipment, self._keys.ship())
            )
        steps += [
            UndoStep(f"payment {p.payment_id}", OrderActivities.refund_payment,
                      keys.payment(p.payment_id))
            for p in self._state.payments
        ]  # fmt: skip
        return steps
