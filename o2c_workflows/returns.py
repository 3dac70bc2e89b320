"""Returns: which invoices a return is credited against.

Each returned unit is credited on an invoice that charged for it, newest
invoice first, never crediting a unit twice: a pure plan the workflow turns
into one credit note per invoice.
"""

from __future__ import annotations

from o2c_domain.lines import SkuQuantity
from o2c_workflows import rejections
from o2c_workflows.messages import ReturnReceived
from o2c_workflows.state import OrderState


def credit_plan(state: OrderState, returned: ReturnReceived) -> dict[str, list[SkuQuantity]]:
    """Invoice id -> the returned quantities to credit on it."""
    plan: dict[str, list[SkuQuantity]] = {}
    for item in returned.lines:
        line = state.line(item.sku)
        if line is None:
            rejections.invalid(f"order {state.order_id} has no line for {item.sku}")
        returnable = line.invoiced - line.returned
        if item.quantity > returnable:
            rejections.not_allowed(
                f"{item.sku}: {item.quantity} returned, but only {returnable} invoiced and "
                "not yet returned"
            )
        left = item.quantity
        for invoice in sorted(state.invoices, key=lambda i: i.dispatch, reverse=True):
            charged = sum(q.quantity for q in invoice.lines if q.sku == item.sku)
            credited = sum(
                q.quantity
                for note in state.credit_notes
                if note.invoice_id == invoice.invoice_id
                for q in note.lines
                if q.sku == item.sku
            )
            take = min(left, charged - credited)
            if take > 0:
                plan.setdefault(invoice.invoice_id, []).append(
                    SkuQuantity(sku=item.sku, quantity=take)
                )
                left -= take
            if left == 0:
                break
    return plan
