"""Amending an order before it ships: what may change, and what the change does.

A pure plan from the order's state and the requested changes; the workflow
validates with it (so a rejected amendment changes nothing) and applies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from o2c_domain.money import MAX_AMOUNT_DIGITS, exponent, fits_currency, normalise
from o2c_workflows import rejections
from o2c_workflows.messages import Amendment
from o2c_workflows.state import LineState, OrderState


@dataclass(frozen=True)
class AmendmentPlan:
    lines: list[LineState]
    changes: list[str]
    total_before: Decimal
    total_after: Decimal


def plan(state: OrderState, amendment: Amendment) -> AmendmentPlan:
    """The order's lines after the amendment, and each effect in words.

    Rejects (nothing changes) a change to a line that has started shipping, a
    new SKU without a price or with a price the currency cannot hold, removing
    a SKU the order does not have, and an amendment that leaves no line.
    """
    currency = state.order.currency
    lines = {line.sku: line.model_copy() for line in state.lines}
    changes: list[str] = []
    for change in amendment.changes:
        line = lines.get(change.sku)
        if line is None:
            if change.quantity == 0:
                rejections.invalid(f"order {state.order_id} has no line for {change.sku}")
            if change.unit_price is None:
                rejections.invalid(f"new line {change.sku} needs a unit_price")
            if not fits_currency(change.unit_price, currency):
                rejections.invalid(
                    f"{change.sku} unit_price {change.unit_price} has more decimal places than "
                    f"{currency} allows"
                )
            price = normalise(change.unit_price, currency)
            lines[change.sku] = LineState(
                sku=change.sku, unit_price=price, ordered=change.quantity, reserved=change.quantity,
            )  # fmt: skip
            changes.append(
                f"{change.sku} added: {change.quantity} at {price} {currency}, "
                f"{change.quantity} reserved"
            )
            continue
        if line.shipped > 0:
            rejections.not_allowed(
                f"{change.sku} has shipped {line.shipped} of {line.ordered}; only lines that "
                "have not started shipping can change"
            )
        if change.unit_price is not None and change.unit_price != line.unit_price:
            rejections.invalid(f"{change.sku}: prices of existing lines cannot be amended")
        if change.quantity == line.ordered:
            continue
        delta = change.quantity - line.ordered
        if change.quantity == 0:
            del lines[change.sku]
            changes.append(f"{change.sku} removed, reservation of {line.ordered} released")
            continue
        effect = f"{delta} more reserved" if delta > 0 else f"{-delta} released"
        changes.append(f"{change.sku} quantity {line.ordered} -> {change.quantity}, {effect}")
        line.ordered = line.reserved = change.quantity
    if not lines:
        rejections.invalid("an amendment may not remove every line; cancel the order instead")
    if not changes:
        rejections.invalid("the amendment changes nothing")
    new_lines = list(lines.values())
    total_before = normalise(
        sum((line.amount(line.ordered) for line in state.lines), Decimal(0)), currency
    )
    total_after = normalise(
        sum((line.amount(line.ordered) for line in new_lines), Decimal(0)), currency
    )
    if total_after >= Decimal(10) ** (MAX_AMOUNT_DIGITS - exponent(currency)):
        rejections.invalid(
            f"the amended total {total_after} {currency} has more than {MAX_AMOUNT_DIGITS} digits"
        )
    if total_after != total_before:
        changes.append(f"total {total_before} -> {total_after} {currency}")
    return AmendmentPlan(new_lines, changes, total_before, total_after)
