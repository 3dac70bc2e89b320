"""Stock on hand: the one place it moves.

Stock only moves through `UPDATE items ... WHERE on_hand >= quantity` (or a plain
increment when it comes back), one item at a time in SKU order, so two orders can
never both take the last unit and two transactions never wait on each other's
items in opposite orders.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from sqlalchemy import update
from sqlmodel import Session, col, select

from adapters.errors import BusinessError
from adapters.local.tables import ItemRow
from o2c_domain.lines import SkuQuantity


class Line(Protocol):
    """A requested, reserved, dispatched or returned line: so many of one SKU."""

    @property
    def sku(self) -> str: ...

    @property
    def quantity(self) -> int: ...


Lines = Iterable[Line]


def per_sku(lines: Lines) -> dict[str, int]:
    """Quantities summed per SKU: one UPDATE per item, however the lines repeat it."""
    wanted: dict[str, int] = {}
    for line in lines:
        wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
    return wanted


def stock_lines(lines: Lines) -> list[SkuQuantity]:
    return [SkuQuantity(sku=line.sku, quantity=line.quantity) for line in lines]


def move_stock(session: Session, change: dict[str, int]) -> None:
    """Take (positive) or give back (negative) each SKU, or raise; the caller rolls back.

    BusinessError `item_unknown` for an item to take that the warehouse does not
    carry, `out_of_stock` when not enough is on hand.
    """
    taking = [sku for sku, quantity in change.items() if quantity > 0]
    known = set(session.exec(select(ItemRow.sku).where(col(ItemRow.sku).in_(taking))))
    unknown = sorted(set(taking) - known)
    if unknown:
        raise BusinessError("item_unknown", f"unknown item(s): {', '.join(unknown)}")
    on_hand = col(ItemRow.on_hand)
    for sku in sorted(change):  # one lock order for every transaction: no deadlocks
        quantity = change[sku]
        if quantity == 0:
            continue
        statement = update(ItemRow).where(col(ItemRow.sku) == sku)
        if quantity > 0:
            statement = statement.where(on_hand >= quantity)
        moved = session.exec(
            statement.values(on_hand=on_hand - quantity).execution_options(
                synchronize_session=False
            )
        ).rowcount
        if moved == 0 and quantity > 0:
            available = session.exec(select(on_hand).where(col(ItemRow.sku) == sku)).one()
            raise BusinessError(
                "out_of_stock", f"{sku}: {quantity} wanted, only {available} available"
            )
