"""The forms of the order page, each turned into the outside event the JSON API would
send for it (`o2c_service.events`): the same message models, so the same checks.

Each form names its fields; quantities are one field per line (`ship_0`, `return_1`,
by the line's place on the order), so an error about `lines[1]` lands beside the
second line's field.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from o2c_service.console.forms import Checked, FormState, check, first_name, quantity, text
from o2c_service.events import (
    AMENDMENT,
    CANCEL,
    PAYMENT,
    RELEASE,
    RETRY,
    RETURN,
    SHIPMENT,
    OrderEvent,
)
from o2c_workflows.messages import (
    Amendment,
    CancelRequest,
    PaymentReceived,
    ReturnReceived,
    ShipmentConfirmed,
    SupportAction,
)
from o2c_workflows.models import OrderStatus
from o2c_workflows.state import HoldKind, OrderState

Build = Callable[[OrderState, dict[str, str], str], Checked[Any]]


@dataclass(frozen=True)
class Action:
    """One form of the order page: its event, and how its fields become the message."""

    name: str
    """The path after `/console/orders/{order_id}/`, and the form's id."""
    title: str
    event: OrderEvent[Any, Any]
    build: Build


def new_id(prefix: str) -> str:
    """A fresh id the form carries, so a form sent twice is the same event (a duplicate)."""
    return f"{prefix}-{secrets.token_hex(4).upper()}"


def _ship(state: OrderState, values: dict[str, str], actor: str) -> Checked[ShipmentConfirmed]:
    form = FormState(values=values)
    data: dict[str, Any] = {
        "carrier": text(values, "carrier"),
        "tracking_number": text(values, "tracking_number"),
        "actor": actor,
    }
    fields: list[str] = []
    if values.get("scope") == "chosen":
        lines = []
        for index, line in enumerate(state.lines):
            name = f"ship_{index}"
            if name not in values:
                continue
            number = quantity(values, name, form)
            if number > line.to_ship:
                form.add(name, f"Only {line.to_ship} left to ship")
            if number > 0:
                lines.append({"sku": line.sku, "quantity": number})
                fields.append(name)
        if not lines and not form.errors:
            form.add("scope", "Enter a quantity for at least one line, or ship everything")
        data["lines"] = lines

    def locate(location: tuple[int | str, ...]) -> str:
        if location[:1] == ("lines",) and len(location) > 1 and isinstance(location[1], int):
            return fields[location[1]] if location[1] < len(fields) else "scope"
        return "scope" if location[:1] == ("lines",) else first_name(location)

    return check(ShipmentConfirmed, data, form, locate)


def _pay(_: OrderState, values: dict[str, str], actor: str) -> Checked[PaymentReceived]:
    form = FormState(values=values)
    data = {
        name: text(values, name)
        for name in ("payment_id", "currency", "amount", "reference", "invoice_id")
    }
    return check(PaymentReceived, {**data, "actor": actor}, form)


def _amend(state: OrderState, values: dict[str, str], actor: str) -> Checked[Amendment]:
    form = FormState(values=values)
    raw_quantity = text(values, "quantity")
    change = {
        "sku": text(values, "sku"),
        "quantity": raw_quantity,
        "unit_price": text(values, "unit_price"),
    }
    sku = change["sku"]
    if sku is not None and state.line(sku) is None and change["unit_price"] is None:
        form.add("unit_price", f"{sku} is a new line: give its unit price")

    def locate(location: tuple[int | str, ...]) -> str:
        return str(location[-1]) if location[:1] == ("changes",) and len(location) > 2 else "sku"

    data = {"changes": [change], "event_id": text(values, "event_id"), "actor": actor}
    return check(Amendment, data, form, locate)


def _return(state: OrderState, values: dict[str, str], actor: str) -> Checked[ReturnReceived]:
    form = FormState(values=values)
    lines, fields = [], []
    for index, line in enumerate(state.lines):
        name = f"return_{index}"
        if name not in values:
            continue
        number = quantity(values, name, form)
        if number > line.shipped - line.returned:
            form.add(name, f"Only {line.shipped - line.returned} shipped and not returned")
        if number > 0:
            lines.append({"sku": line.sku, "quantity": number})
            fields.append(name)
    if not lines and not form.errors:
        form.add("lines", "Enter the quantity returned of at least one line")

    def locate(location: tuple[int | str, ...]) -> str:
        if location[:1] == ("lines",) and len(location) > 1 and isinstance(location[1], int):
            return fields[location[1]] if location[1] < len(fields) else "lines"
        return first_name(location)

    data = {
        "return_id": text(values, "return_id"),
        "lines": lines,
        "resolution": text(values, "resolution") or "refund",
        "reason": text(values, "reason"),
        "actor": actor,
    }
    return check(ReturnReceived, data, form, locate)


def _support(_: OrderState, values: dict[str, str], actor: str) -> Checked[SupportAction]:
    return check(
        SupportAction, {"note": text(values, "note"), "actor": actor}, FormState(values=values)
    )


def _cancel(_: OrderState, values: dict[str, str], actor: str) -> Checked[CancelRequest]:
    form = FormState(values=values)
    return check(CancelRequest, {"reason": text(values, "reason"), "actor": actor}, form)


ACTIONS: dict[str, Action] = {
    action.name: action
    for action in (
        Action("ship", "Record a shipment", SHIPMENT, _ship),
        Action("pay", "Record a payment", PAYMENT, _pay),
        Action("amend", "Amend a line", AMENDMENT, _amend),
        Action("return", "Record a return", RETURN, _return),
        Action("retry", "Retry the held step", RETRY, _support),
        Action("release", "Release the credit hold", RELEASE, _support),
        Action("cancel", "Cancel the order", CANCEL, _cancel),
    )
}

FINISHED = {OrderStatus.CLOSED, OrderStatus.CANCELLED}


def offered(state: OrderState) -> list[str]:
    """The forms that make sense for the order now (the order still has the last word:
    an event it will not take is refused, and the page says why)."""
    names: list[str] = []
    if state.status in FINISHED:
        return ["return"] if state.status is OrderStatus.CLOSED else []
    if state.hold is not None:
        names.append("retry" if state.hold.kind is HoldKind.FALLOUT else "release")
    booked = state.booking is not None and state.status is not OrderStatus.ON_HOLD
    if booked and any(line.to_ship for line in state.lines):
        names.append("ship")
    names.append("pay")
    if any(line.shipped == 0 for line in state.lines):
        names.append("amend")
    if any(line.shipped > line.returned for line in state.lines):
        names.append("return")
    if not state.shipped:
        names.append("cancel")
    return names
