"""What an engineer reads about an order in the Temporal UI."""

from __future__ import annotations

from datetime import UTC, datetime

from o2c_workflows import presentation
from o2c_workflows.models import OrderStatus
from o2c_workflows.state import (
    CompensationRecord,
    CompensationStatus,
    HoldKind,
    HoldState,
    LineState,
    OrderState,
)
from tests.support.order_harness import make_order

NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)


def state(**fields: object) -> OrderState:
    order = make_order()
    lines = [LineState(sku=line.sku, unit_price=line.unit_price, ordered=line.quantity)
             for line in order.lines]  # fmt: skip
    base = {"order_id": order.order_id, "status": OrderStatus.ON_HOLD, "order": order,
            "lines": lines, "total": order.total()}  # fmt: skip
    return OrderState.model_validate(base | fields)


def test_summary_names_order_customer_and_total() -> None:
    order = make_order()
    assert presentation.static_summary(order) == (
        f"Order {order.order_id} for CUST-ACME: EUR 159.97"
    )
    details = presentation.static_details(order)
    assert "| SKU-WIDGET | 3 | 19.99 | 59.97 |" in details
    assert "terms net 30d" in details


def test_a_held_order_says_where_why_and_what_to_do() -> None:
    held = state(
        hold=HoldState(kind=HoldKind.FALLOUT, step="reserve_stock", code="out_of_stock",
                       message="SKU-WIDGET: 1 available", since=NOW,
                       resume_status=OrderStatus.ENTERED),
    )  # fmt: skip
    details = presentation.current_details(held)
    assert "**OnHold**, total EUR 159.97" in details
    assert (
        "**Held** at `reserve_stock` since 2026-11-22 09:30 UTC: `out_of_stock`, "
        "SKU-WIDGET: 1 available (fix, then retry)"
    ) in details


def test_a_cancelled_order_lists_what_was_undone() -> None:
    cancelled = state(
        status=OrderStatus.CANCELLED,
        cancellation_reason="customer withdrew",
        compensations=[
            CompensationRecord(step="reserve_stock", status=CompensationStatus.DONE,
                               note="reservation RES-1 released", at=NOW),
        ],
    )  # fmt: skip
    details = presentation.current_details(cancelled)
    assert "- Cancelled: customer withdrew" in details
    assert "- Undo reserve_stock: done, reservation RES-1 released" in details
