"""Whether an event fits the order now: pure functions of its state and what is in flight.

Update validators call them (a refusal there leaves nothing in history), and the
handlers call them again before acting, so both answer alike. Each raises a
`rejections` error with the reason, or returns what the event would do.
"""

from __future__ import annotations

from decimal import Decimal

from o2c_domain.lines import SkuQuantity
from o2c_domain.money import fits_amount_digits, fits_currency
from o2c_workflows import (
    amendments,
    rejections,
    returns,
)
from o2c_workflows.messages import (
    Amendment,
    PaymentReceived,
    ReturnReceived,
    ShipmentConfirmed,
)
from o2c_workflows.models import OrderStatus
from o2c_workflows.order.base import FINISHED, Applying, InFlight, Resolution
from o2c_workflows.state import HoldKind, OrderState


def is_duplicate_shipment(state: OrderState, busy: InFlight, event: ShipmentConfirmed) -> bool:
    """Applied already, or being applied (the copy then waits for the original)."""
    return (
        state.dispatch(event.dedup_key) is not None
        or busy.applying.get(Applying.SHIPMENT) == event.dedup_key
    )


def shipped_lines(state: OrderState, busy: InFlight, event: ShipmentConfirmed) -> list[SkuQuantity]:
    """What this shipment ships, checked against what is left to ship."""
    order_id = state.order_id
    if busy.stopping or state.status in FINISHED:
        rejections.not_allowed(f"order {order_id} is {state.status.value}; it ships nothing")
    if Applying.SHIPMENT in busy.applying:
        rejections.not_allowed(f"another shipment for order {order_id} is being applied")
    if state.booking is None:
        rejections.not_allowed(
            f"order {order_id} is {state.status.value}; "
            "a shipment can be confirmed once it is Booked"
        )
    if state.fully_shipped:
        rejections.not_allowed(f"every line of order {order_id} has already shipped")
    if event.lines is None:
        return [SkuQuantity(sku=line.sku, quantity=line.to_ship)
                for line in state.lines if line.to_ship > 0]  # fmt: skip
    seen: set[str] = set()
    for item in event.lines:
        line = state.line(item.sku)
        if line is None:
            rejections.invalid(f"order {order_id} has no line for {item.sku}")
        if item.sku in seen:
            rejections.invalid(f"{item.sku} appears twice in the shipment")
        seen.add(item.sku)
        if item.quantity > line.to_ship:
            rejections.not_allowed(
                f"{item.sku}: {item.quantity} shipped, but only {line.to_ship} of "
                f"{line.ordered} are left to ship"
            )
    return list(event.lines)


def is_duplicate_payment(state: OrderState, busy: InFlight, event: PaymentReceived) -> bool:
    known = {p.payment_id: p.amount for p in state.payments} | busy.pending_payments
    if event.payment_id not in known:
        return False
    if known[event.payment_id] != event.amount:
        rejections.invalid(
            f"payment {event.payment_id} was already received for "
            f"{known[event.payment_id]}, not {event.amount}"
        )
    return True


def check_payment(state: OrderState, busy: InFlight, event: PaymentReceived) -> None:
    order_id, status = state.order_id, state.status
    currency = state.order.currency
    if event.currency != currency:
        rejections.invalid(f"order {order_id} is in {currency}, the payment in {event.currency}")
    if not fits_currency(event.amount, currency):
        rejections.invalid(f"{event.amount} has more decimal places than {currency} allows")
    # Refused here, before anything is recorded: what the order has received must
    # stay an amount, or every later step that sums it would fail on every retry.
    received = state.paid + sum(busy.pending_payments.values(), Decimal(0))
    if not fits_amount_digits(received + event.amount, currency):
        rejections.invalid(
            f"order {order_id} has received {received} {currency}; {event.amount} more "
            "would exceed the largest amount it can hold"
        )
    if busy.stopping or status in FINISHED:
        rejections.not_allowed(f"order {order_id} is {status.value}; it takes no payments")
    if state.booking is None:
        rejections.not_allowed(
            f"order {order_id} is {status.value}; payments are accepted once it is Booked"
        )
    if event.invoice_id is not None:
        invoice = state.invoice(event.invoice_id)
        if invoice is None:
            rejections.invalid(f"order {order_id} has no invoice {event.invoice_id}")
        if invoice.balance == 0:
            rejections.not_allowed(f"invoice {event.invoice_id} is already paid")


def is_duplicate_amendment(state: OrderState, busy: InFlight, amendment: Amendment) -> bool:
    return amendment.event_id is not None and (
        amendment.event_id in state.amendments
        or busy.applying.get(Applying.AMENDMENT) == amendment.event_id
    )


def check_amendment(
    state: OrderState, busy: InFlight, amendment: Amendment
) -> amendments.AmendmentPlan:
    if busy.stopping or state.status in FINISHED or state.fully_shipped:
        rejections.not_allowed(
            f"order {state.order_id} is {state.status.value}; only an order with lines "
            "still to ship can be amended"
        )
    if (
        state.booking is None
        or Applying.SHIPMENT in busy.applying
        or (Applying.AMENDMENT in busy.applying)
    ):
        rejections.not_allowed(
            f"order {state.order_id} is {state.status.value}; it can be amended once Booked "
            "and while no shipment or other amendment is being applied"
        )
    return amendments.plan(state, amendment)


def is_duplicate_return(state: OrderState, busy: InFlight, returned: ReturnReceived) -> bool:
    return (
        state.returned(returned.return_id) is not None
        or busy.applying.get(Applying.RETURN) == returned.return_id
    )


def check_return(
    state: OrderState, busy: InFlight, returned: ReturnReceived
) -> dict[str, list[SkuQuantity]]:
    if busy.stopping or state.status in (OrderStatus.CLOSED, OrderStatus.CANCELLED):
        rejections.not_allowed(f"order {state.order_id} is {state.status.value}")
    if Applying.RETURN in busy.applying:
        rejections.not_allowed(f"another return for order {state.order_id} is being applied")
    return returns.credit_plan(state, returned)


def check_resolution(state: OrderState, busy: InFlight, resolution: Resolution) -> None:
    hold, order_id = state.hold, state.order_id
    if hold is None or busy.resolution is not None or busy.stopping:
        rejections.not_allowed(f"order {order_id} is {state.status.value}, not waiting on a hold")
    if resolution is Resolution.RELEASE and hold.kind is not HoldKind.CREDIT:
        rejections.not_allowed(
            f"order {order_id} is held at {hold.step} ({hold.code}), not for credit: "
            "fix the cause and retry, or cancel"
        )


def check_cancel(state: OrderState, busy: InFlight) -> None:
    if state.shipped:
        rejections.not_allowed(
            f"order {state.order_id} has shipped ({state.status.value}): past the point of "
            "no return, so it cannot be cancelled; return the goods instead"
        )
    if busy.stopping or state.status in FINISHED:
        rejections.not_allowed(f"order {state.order_id} is already {state.status.value}")
    if Applying.SHIPMENT in busy.applying or Applying.AMENDMENT in busy.applying:
        rejections.not_allowed(f"order {state.order_id} is applying a shipment or amendment")
