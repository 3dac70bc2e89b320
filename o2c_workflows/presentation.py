"""How an order reads in the Temporal UI: summary at start, details as it moves.

Pure functions of the order and its state, so they are deterministic and can be
used by the workflow and by whoever starts it.
"""

from __future__ import annotations

from decimal import Decimal

from o2c_workflows.models import OrderRequest
from o2c_workflows.state import HoldKind, OrderState


def money(amount: Decimal, currency: str) -> str:
    return f"{currency} {amount:,}"


def static_summary(order: OrderRequest) -> str:
    """One line for the order's page in the Temporal UI (User Metadata: summary).

    Temporal UI 2.x shows it there only, not in the workflow list.
    """
    return f"Order {order.order_id} for {order.customer_id}: {money(order.total(), order.currency)}"


def static_details(order: OrderRequest) -> str:
    """The order as entered, in Markdown."""
    rows = "\n".join(
        f"| {line.sku} | {line.quantity} | {line.unit_price} | {line.amount()} |"
        for line in order.lines
    )
    return (
        f"**Order {order.order_id}** from `{order.source_system}` for customer "
        f"`{order.customer_id}`, terms {order.payment_terms.kind.value}"
        f" {order.payment_terms.net_days}d\n\n"
        f"| SKU | Qty | Unit price | Amount |\n|---|---:|---:|---:|\n{rows}\n\n"
        f"**Total {money(order.total(), order.currency)}**"
    )


def current_details(state: OrderState) -> str:
    """Where the order stands now, in Markdown: lines, shipments, invoices, cash."""
    currency = state.order.currency
    # The blank line lets the UI's Markdown start the list below the status line.
    lines = [f"**{state.status.value}**, total {money(state.total, currency)}", ""]
    if state.hold:
        action = "release or cancel" if state.hold.kind is HoldKind.CREDIT else "fix, then retry"
        lines.append(
            f"- **Held** at `{state.hold.step}` since {state.hold.since:%Y-%m-%d %H:%M} UTC: "
            f"`{state.hold.code}`, {state.hold.message} ({action})"
        )
    if state.cancellation_reason:
        lines.append(f"- Cancelled: {state.cancellation_reason}")
    for compensation in state.compensations:
        lines.append(
            f"- Undo {compensation.step}: {compensation.status.value}, {compensation.note}"
        )
    if state.booking:
        lines.append(
            f"- Customer: {state.booking.customer_name}, billing account "
            f"{state.booking.billing_account_id}, reservation {state.booking.reservation_id}"
        )
    if state.booking and state.lines:
        shipped = sum(1 for line in state.lines if line.to_ship == 0)
        lines.append(f"- Lines shipped: {shipped} of {len(state.lines)}")
        lines += [
            f"- {line.sku}: ordered {line.ordered}, shipped {line.shipped}, "
            f"invoiced {line.invoiced}" + (f", returned {line.returned}" if line.returned else "")
            for line in state.lines
        ]
    for dispatch in state.dispatches:
        lines.append(
            f"- Shipment {dispatch.number}: {dispatch.carrier} {dispatch.tracking_number}"
            + (f", invoiced as {dispatch.invoice_id}" if dispatch.invoice_id else "")
        )
    if state.shipment and not state.dispatches:
        lines.append(f"- Shipment request {state.shipment.shipment_id}: awaiting confirmation")
    for invoice in state.invoices:
        late = f", {invoice.days_past_due} days past due" if invoice.days_past_due else ""
        dunning = f", {invoice.dunning_level} sent" if invoice.dunning_level else ""
        lines.append(
            f"- Invoice {invoice.invoice_id}: {money(invoice.amount, currency)}, balance "
            f"{money(invoice.balance, currency)}, due {invoice.due_date}{late}{dunning}"
        )
    if state.payments:
        on_account = sum((payment.unapplied for payment in state.payments), Decimal(0))
        waiting = f", {money(on_account, currency)} held until invoiced" if on_account else ""
        lines.append(f"- Payments: {len(state.payments)}, {money(state.paid, currency)}{waiting}")
    credit = sum((payment.to_customer_credit for payment in state.payments), Decimal(0))
    if credit:
        lines.append(f"- Customer credit from overpayment: {money(credit, currency)}")
    for note in state.credit_notes:
        lines.append(
            f"- Credit note {note.credit_note_id} on {note.invoice_id}: "
            f"{money(note.amount, currency)}, refunded {money(note.refunded, currency)}"
        )
    return "\n".join(lines)
