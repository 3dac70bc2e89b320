"""A return for an order that has closed: one small workflow per return.

A closed order's workflow has completed, so it takes no more Updates; goods can
still come back. `ClosedOrderReturn` does for such a return what `record_return`
does on an open order, with the same rules and the same steps (`returns`,
`return_steps`): validate it against what the order invoiced and already had
returned, receive the goods in logistics, raise a credit note per invoice, and
refund what was paid or keep it as customer credit.

It starts from the closed order's final state (as its `state` query answers)
with the returns made after close before this one folded in (`fold`), so the
same goods cannot be credited twice. The workflow id is
`closed-return/<order id>/<n>` for the order's n-th return after close (a '/'
no order id can hold): the number is what serialises them, as the open order
applies one return at a time; the return id is in the memo (`RETURN_ID_MEMO`).
Its idempotency keys are those the open order would have used for the same
return id, so a resent return, whether the API finds the workflow or a worker
runs a step again, credits and refunds once.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from o2c_domain.lines import SkuQuantity
    from o2c_domain.money import Amount
    from o2c_domain.systems import LocalCalls
    from o2c_workflows import calls, return_steps, returns
    from o2c_workflows.keys import OrderKeys
    from o2c_workflows.messages import ReturnReceived
    from o2c_workflows.state import CreditNoteState, OrderState, ReturnState, TimelineEntry

WORKFLOW_NAME = "ClosedOrderReturn"
WORKFLOW_ID_PREFIX = "closed-return/"


RETURN_ID_MEMO = "return_id"
"""Memo key holding the return id of a `ClosedOrderReturn`, for finding a resent return."""


def workflow_id(order_id: str, number: int) -> str:
    """The id of the `number`-th (from 1) return after close of `order_id`."""
    return f"{order_ids_prefix(order_id)}{number}"


def order_ids_prefix(order_id: str) -> str:
    """What the id of every return after close of `order_id` starts with."""
    return f"{WORKFLOW_ID_PREFIX}{order_id}/"


class ClosedOrderReturnInput(BaseModel):
    closed_order: OrderState = Field(
        description="The closed order's final state, with its returns after close folded in."
    )
    returned: ReturnReceived
    local_activities: LocalCalls = False
    system_queues: bool = Field(
        default=False,
        description="Send each normal activity to its system's task queue "
        "(`<task queue>.<system>`), as `CreditRefund` does.",
    )


class ClosedOrderReturnResult(BaseModel):
    """What the return did: its record and credit notes, as the open order keeps them."""

    order_id: str
    returned: ReturnState
    credit_notes: list[CreditNoteState]
    credited: Amount
    refunded: Amount

    @property
    def outcome(self) -> str:
        return f"credited {self.credited}, refunded {self.refunded}"


def check(order: OrderState, returned: ReturnReceived) -> dict[str, list[SkuQuantity]]:
    """The credit plan, or the open order's rejection with its reason (`returns`)."""
    return returns.credit_plan(order, returned)


def fold(order: OrderState, result: ClosedOrderReturnResult) -> None:
    """Count an earlier return after close into `order`, as the open order would have."""
    for note in result.credit_notes:
        invoice = order.invoice(note.invoice_id)
        if invoice is not None:
            invoice.balance -= note.applied_to_invoice
        order.credit_notes.append(note)
    for item in result.returned.lines:
        line = order.line(item.sku)
        if line is not None:
            line.returned += item.quantity
    order.returns.append(result.returned)
    order.timeline.append(
        TimelineEntry(
            status=order.status,
            at=result.returned.received_at,
            note=f"return {result.returned.return_id} after close: {result.outcome}",
            actor=result.returned.actor,
        )
    )


def summary(order_id: str, returned: ReturnReceived) -> str:
    """One line for the return's page in the Temporal UI (User Metadata: summary)."""
    items = ", ".join(f"{q.quantity} {q.sku}" for q in returned.lines)
    return f"return {returned.return_id} of {items} on closed order {order_id}"


@workflow.defn(name=WORKFLOW_NAME)
class ClosedOrderReturnWorkflow:
    """Validate the return against the closed order, then receive, credit, refund or keep."""

    @workflow.init
    def __init__(self, start: ClosedOrderReturnInput) -> None:
        self._call = calls.Caller(start.local_activities, start.system_queues)

    @workflow.run
    async def run(self, start: ClosedOrderReturnInput) -> ClosedOrderReturnResult:
        order, returned = start.closed_order, start.returned
        # Checked again here (the API checked before starting): a refusal fails the
        # workflow with the open order's reason, before any side effect.
        plan = check(order, returned)
        key = OrderKeys(order.key_scope or order.order_id).return_(returned.return_id)
        steps = return_steps.ReturnSteps(order, self._call, key)
        await steps.receive(returned)
        notes = [await steps.credit(returned, invoice, lines) for invoice, lines in plan.items()]
        entry = return_steps.record(order, returned, notes, workflow.now())
        return ClosedOrderReturnResult(
            order_id=order.order_id,
            returned=entry,
            credit_notes=notes,
            credited=sum((note.amount for note in notes), Decimal(0)),
            refunded=sum((note.refunded for note in notes), Decimal(0)),
        )
