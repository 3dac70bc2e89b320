"""How an order reads in the Temporal UI: summary at start, details as it moves.

Pure functions of the order and its state, so they are deterministic and can be
used by the workflow and by whoever starts it.
"""

from __future__ import annotations

from decimal import Decimal

from o2c_workflows.models import HoldKind, OrderRequest, OrderState


def money(amount: Decimal, currency: str) -> str:
    return f"{currency} {amount:,}"


def static_summary(order: OrderRequest) -> str:
    """One line for the UI's workflow list."""
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
    """Where the order stands now, in Markdown."""
    currency = state.order.currency
    lines = [f"**{state.status.value}**, total {money(state.total, currency)}"]
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
    if state.shipment:
        if state.shipment.confirmed_at:
            lines.append(
                f"- Shipment {state.shipment.shipment_id}: shipped with "
                f"{state.shipment.carrier}, tracking {state.shipment.tracking_number}"
            )
        else:
            lines.append(f"- Shipment {state.shipment.shipment_id}: awaiting confirmation")
    if state.invoice:
        lines.append(
            f"- Invoice {state.invoice.invoice_id}: {money(state.invoice.amount, currency)}, "
            f"balance {money(state.invoice.balance, currency)}, due {state.invoice.due_date}"
        )
    if state.payments:
        unapplied = sum(1 for payment in state.payments if payment.applied_to is None)
        waiting = f", {unapplied} awaiting the invoice" if unapplied else ""
        lines.append(f"- Payments: {len(state.payments)}, {money(state.paid, currency)}{waiting}")
    return "\n".join(lines)
