"""Where the order stands and how it shows: status, timeline, search attributes and the
Temporal UI's current details. The timeline holds every status the order went
through; the search attributes are upserted once per wait on the outside world
(process version 2), or at every change (orders begun on earlier code).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, time
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

from o2c_domain.lines import SkuQuantity
from o2c_workflows import (
    presentation,
)
from o2c_workflows.messages import (
    EventAck,
)
from o2c_workflows.models import OrderStatus
from o2c_workflows.order.base import (
    FINISHED,
    OrderBase,
)
from o2c_workflows.search_attributes import (
    HOLD_REASON,
    ORDER_STATUS,
    PAYMENT_DUE,
)
from o2c_workflows.state import (
    TimelineEntry,
)

A = TypeVar("A")
T = TypeVar("T")


class Timeline(OrderBase):
    def _stock_lines(self) -> list[SkuQuantity]:
        return [SkuQuantity(sku=line.sku, quantity=line.ordered) for line in self._state.lines]

    def _rolled_up_status(self) -> OrderStatus:
        """The order's status from its lines and invoices."""
        state = self._state
        if state.booking is None:
            return OrderStatus.ENTERED
        if not state.fully_shipped:
            return OrderStatus.BOOKED
        if any(dispatch.invoice_id is None for dispatch in state.dispatches):
            return OrderStatus.SHIPPED
        return OrderStatus.INVOICED

    def _update_status(self, note: str, actor: str | None = None) -> None:
        """Record progress; move to the rolled-up status unless held or finishing. `actor`:
        who sent the event that made the progress (a key, a webhook), if anyone did."""
        if self._state.status in (OrderStatus.ON_HOLD, *FINISHED) or self._in_flight.stopping:
            self._note(note, actor)
            return
        status = self._rolled_up_status()
        if status is self._state.status:
            self._note(note, actor)
        else:
            self._transition(status, note, actor=actor)

    def _transition(
        self,
        status: OrderStatus,
        note: str,
        *,
        hold_reason: str | bool | None = False,
        actor: str | None = None,
    ) -> None:
        """Move to `status`; `hold_reason` sets (a code) or clears (None) HoldReason."""
        updates: list[SearchAttributeUpdate[Any]] = [ORDER_STATUS.value_set(status.value)]
        if hold_reason is None:
            updates.append(HOLD_REASON.value_unset())
        elif isinstance(hold_reason, str):
            updates.append(HOLD_REASON.value_set(hold_reason))
        self._set_attributes(updates)
        self._record(status, note, actor)
        # Not written while replaying: one line per move, as it happens.
        workflow.logger.info("order %s is %s: %s", self._state.order_id, status.value, note)

    def _set_attributes(self, updates: Sequence[SearchAttributeUpdate[Any]]) -> None:
        """Upsert now (process version 1), or publish when the order next waits (2)."""
        if self._state.process_version < 2:
            workflow.upsert_search_attributes(updates)
            return
        for update in updates:
            self._unpublished[update.key.name] = update

    async def _publish_when_waiting(self) -> None:
        """When the order waits: one upsert for everything that changed since it last
        waited (each upsert is a history event and a billable Action; a status is read
        while the order waits), and the due-date timers of paid invoices cancelled."""
        while True:
            # Once the lifecycle is done, `run` publishes how the order ended.
            await workflow.wait_condition(
                lambda: (
                    bool(self._unpublished or self._spare_timers)
                    and not self._in_flight.calls
                    and not (self._lifecycle is not None and self._lifecycle.done())
                )
            )
            # Whatever woke in the same pass (the lifecycle reaching Paid, say) runs first,
            # so its changes go out in this upsert too.
            await asyncio.sleep(0)
            if self._in_flight.calls or (self._lifecycle and self._lifecycle.done()):
                continue
            for timer in self._spare_timers:
                timer.cancel()
            self._spare_timers.clear()
            self._publish()

    def _publish(self) -> None:
        """Upsert what changed, leaving out what the order already shows."""
        shown = workflow.info().typed_search_attributes
        changed = [
            update for update in self._unpublished.values() if shown.get(update.key) != update.value
        ]
        self._unpublished.clear()
        if changed:
            workflow.upsert_search_attributes(changed)

    def _record(self, status: OrderStatus, note: str, actor: str | None = None) -> None:
        self._state.status = status
        self._state.timeline.append(
            TimelineEntry(status=status, at=workflow.now(), note=note, actor=actor)
        )
        self._show_details()

    def _note(self, note: str, actor: str | None = None) -> None:
        """A timeline entry that does not change the status."""
        self._record(self._state.status, note, actor)

    def _show_details(self) -> None:
        workflow.set_current_details(presentation.current_details(self._state))

    def _ack(self, message: str, *, duplicate: bool) -> EventAck:
        return EventAck(
            order_id=self._state.order_id,
            status=self._state.status,
            duplicate=duplicate,
            message=message,
        )

    def _show_payment_due(self) -> None:
        """PaymentDueDate: the next unpaid due date, so overdue orders are one search away."""
        due = [
            instalment.due_date
            for invoice in self._state.open_invoices()
            for instalment in invoice.unpaid_instalments()
        ]
        if due:
            first = datetime.combine(min(due), time.min, UTC)
            self._set_attributes([PAYMENT_DUE.value_set(first)])
        elif (
            workflow.info().typed_search_attributes.get(PAYMENT_DUE) is not None
            or PAYMENT_DUE.name in self._unpublished
        ):
            self._set_attributes([PAYMENT_DUE.value_unset()])
