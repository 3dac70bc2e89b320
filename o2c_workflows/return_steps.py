"""The steps of a return, shared by the open order (`record_return`) and a return after
the order closed (`ClosedOrderReturn`): receive the goods in logistics, one credit note
per invoice the plan (`returns.credit_plan`) names, and what the customer had paid for
them refunded or kept as customer credit.

The steps act on an `OrderState` (the open order's own, or a copy of the closed
order's final state) and call systems through the workflow's own `call`, so both
workflows make the same calls in the same order with the same idempotency keys.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, TypeVar

from temporalio import workflow
from temporalio.types import MethodAsyncSingleParam

with workflow.unsafe.imports_passed_through():
    from activities import options
    from activities.order_activities import OrderActivities
    from adapters.billing.models import CreditNoteRequest, CustomerCreditEntry, InvoiceLine
    from adapters.logistics.models import ReturnReceipt
    from adapters.payments.models import RefundPayment
    from o2c_domain.lines import SkuQuantity
    from o2c_workflows import keys
    from o2c_workflows.messages import ReturnReceived, ReturnResolution
    from o2c_workflows.state import CreditNoteState, InvoiceState, OrderState, ReturnState

A = TypeVar("A")
T = TypeVar("T")


class Call(Protocol):
    """How the workflow calls an activity (normal or local, on its queue)."""

    def __call__(
        self,
        activity: MethodAsyncSingleParam[OrderActivities, A, T],
        argument: A,
        config: workflow.ActivityConfig,
    ) -> Awaitable[T]: ...


def invoice_line(state: OrderState, quantity: SkuQuantity) -> InvoiceLine:
    """`quantity` of an order line, priced as the order prices it."""
    line = state.line(quantity.sku)
    assert line is not None
    return InvoiceLine(
        sku=line.sku,
        quantity=quantity.quantity,
        unit_price=line.unit_price,
        amount=line.amount(quantity.quantity),
    )


def record(
    state: OrderState, returned: ReturnReceived, notes: list[CreditNoteState], at: datetime
) -> ReturnState:
    """The return in `state`: its lines count as returned, it is listed with its notes."""
    for item in returned.lines:
        line = state.line(item.sku)
        assert line is not None
        line.returned += item.quantity
    entry = ReturnState(
        return_id=returned.return_id,
        lines=returned.lines,
        resolution=returned.resolution.value,
        received_at=at,
        credit_notes=[note.credit_note_id for note in notes],
        actor=returned.actor,
    )
    state.returns.append(entry)
    return entry


def outcome(state: OrderState, return_id: str) -> str:
    """What the return did, in words: credited and refunded amounts."""
    notes = [note for note in state.credit_notes if note.return_id == return_id]
    credited = sum((note.amount for note in notes), Decimal(0))
    refunded = sum((note.refunded for note in notes), Decimal(0))
    return f"credited {credited}, refunded {refunded}"


@dataclass
class ReturnSteps:
    """The side effects of one return on `state`, each keyed by `key` (the return's key)."""

    state: OrderState
    call: Call
    key: str

    async def receive(self, returned: ReturnReceived) -> None:
        """Logistics takes the goods back into stock."""
        shipment = self.state.shipment
        assert shipment is not None
        await self.call(
            OrderActivities.receive_return,
            ReturnReceipt(
                idempotency_key=self.key,
                order_id=self.state.order_id,
                shipment_id=shipment.shipment_id,
                lines=returned.lines,
            ),
            options.LOGISTICS,
        )

    async def credit(
        self, returned: ReturnReceived, invoice_id: str, lines: list[SkuQuantity]
    ) -> CreditNoteState:
        """One credit note on one invoice; what the customer had paid is refunded or kept."""
        state, booking = self.state, self.state.booking
        assert booking is not None
        invoice = state.invoice(invoice_id)
        assert invoice is not None
        note = await self.call(
            OrderActivities.create_credit_note,
            CreditNoteRequest(
                idempotency_key=keys.credit_note(self.key, invoice_id),
                order_id=state.order_id,
                account_id=booking.billing_account_id,
                invoice_id=invoice_id,
                currency=state.order.currency,
                lines=[invoice_line(state, q) for q in lines],
                reason=returned.reason or f"return {returned.return_id}",
            ),
            options.BILLING,
        )
        invoice.balance -= note.applied_to_invoice
        entry = CreditNoteState(
            credit_note_id=note.credit_note_id,
            return_id=returned.return_id,
            invoice_id=invoice_id,
            lines=lines,
            amount=note.amount,
            applied_to_invoice=note.applied_to_invoice,
            to_customer_credit=note.to_customer_credit,
        )
        state.credit_notes.append(entry)
        if returned.resolution is ReturnResolution.REFUND and note.to_customer_credit > 0:
            entry.refunded = await self._refund(
                invoice, note.to_customer_credit, keys.credit_note(self.key, invoice_id)
            )
        return entry

    async def _refund(self, invoice: InvoiceState, amount: Decimal, key: str) -> Decimal:
        """Pay `amount` back from the payments applied to `invoice`, newest first."""
        booking = self.state.booking
        assert booking is not None
        left = amount
        paid_in = [
            (payment, application)
            for payment in reversed(self.state.payments)
            for application in payment.applications
            if application.invoice_id == invoice.invoice_id
        ]
        for payment, application in paid_in:
            take = min(left, application.amount)
            if take <= 0:
                break
            await self.call(
                OrderActivities.refund,
                RefundPayment(
                    idempotency_key=keys.refund(key, payment.payment_id),
                    payment_id=payment.payment_id,
                    amount=take,
                    reason=f"return on invoice {invoice.invoice_id}",
                ),
                options.PAYMENTS,
            )
            await self.call(
                OrderActivities.post_customer_credit,
                CustomerCreditEntry(
                    idempotency_key=keys.refund_credit(keys.refund(key, payment.payment_id)),
                    account_id=booking.billing_account_id,
                    currency=payment.currency,
                    amount=-take,
                    reason=f"refunded to {payment.payment_id}",
                    payment_id=payment.payment_id,
                ),
                options.BILLING,
            )
            left -= take
        return amount - left
