"""Logistics: stock reservations and shipments, in the local database.

Stock only moves through `UPDATE items ... WHERE on_hand >= quantity`, so two
orders can never both take the last unit, and a reservation's lines commit
together with the row that claims its idempotency key, or not at all.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import update
from sqlmodel import Session, col, select

from adapters.errors import BusinessError
from adapters.local.database import LocalDatabase
from adapters.local.tables import (
    ItemRow,
    ReservationLineRow,
    ReservationRow,
    ShipmentLineRow,
    ShipmentRow,
    new_id,
    utc_now,
)
from adapters.models import (
    Reservation,
    ReserveStock,
    Shipment,
    ShipmentConfirmation,
    ShipmentRequest,
    ShipmentStatus,
    StockLine,
)


def _shipment(row: ShipmentRow) -> Shipment:
    return Shipment(
        shipment_id=row.shipment_id,
        order_id=row.order_id,
        status=ShipmentStatus(row.status),
        carrier=row.carrier,
        tracking_number=row.tracking_number,
    )


def _reservation(session: Session, row: ReservationRow) -> Reservation:
    lines = session.exec(
        select(ReservationLineRow)
        .where(col(ReservationLineRow.reservation_id) == row.reservation_id)
        .order_by(col(ReservationLineRow.line_no))
    )
    return Reservation(
        reservation_id=row.reservation_id,
        order_id=row.order_id,
        lines=[StockLine(sku=line.sku, quantity=line.quantity) for line in lines],
    )


def _take_stock(session: Session, wanted: dict[str, int]) -> None:
    """Decrement every SKU or raise; the caller's rollback undoes the earlier ones."""
    known = set(session.exec(select(ItemRow.sku).where(col(ItemRow.sku).in_(wanted))))
    unknown = sorted(set(wanted) - known)
    if unknown:
        raise BusinessError("item_unknown", f"unknown item(s): {', '.join(unknown)}")
    for sku in sorted(wanted):  # one lock order for every transaction: no deadlocks
        quantity = wanted[sku]
        on_hand = col(ItemRow.on_hand)
        taken = session.exec(
            update(ItemRow)
            .where(col(ItemRow.sku) == sku, on_hand >= quantity)
            .values(on_hand=on_hand - quantity)
            .execution_options(synchronize_session=False)
        ).rowcount
        if taken == 0:
            available = session.exec(select(on_hand).where(col(ItemRow.sku) == sku)).one()
            raise BusinessError(
                "out_of_stock", f"{sku}: {quantity} wanted, only {available} available"
            )


class LocalLogistics:
    """A warehouse: stock on hand per SKU, reservations, shipments and their confirmation."""

    def __init__(self, database: LocalDatabase) -> None:
        self._db = database

    async def reserve_stock(self, request: ReserveStock) -> Reservation:
        return await asyncio.to_thread(self._reserve_stock, request)

    async def request_shipment(self, request: ShipmentRequest) -> Shipment:
        return await asyncio.to_thread(self._request_shipment, request)

    async def confirm_shipment(self, request: ShipmentConfirmation) -> Shipment:
        return await asyncio.to_thread(self._confirm_shipment, request)

    def _reserve_stock(self, request: ReserveStock) -> Reservation:
        def find(session: Session) -> Reservation | None:
            query = select(ReservationRow).where(
                col(ReservationRow.idempotency_key) == request.idempotency_key
            )
            row = session.exec(query).first()
            return None if row is None else _reservation(session, row)

        def create(session: Session) -> Reservation:
            row = ReservationRow(
                reservation_id=new_id("RES"),
                idempotency_key=request.idempotency_key,
                order_id=request.order_id,
            )
            session.add(row)
            session.flush()  # claims the idempotency key before any stock moves
            wanted: dict[str, int] = {}
            for line in request.lines:
                wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
            _take_stock(session, wanted)
            session.add_all(
                ReservationLineRow(
                    reservation_id=row.reservation_id,
                    line_no=number,
                    sku=line.sku,
                    quantity=line.quantity,
                )
                for number, line in enumerate(request.lines, start=1)
            )
            return Reservation(
                reservation_id=row.reservation_id,
                order_id=row.order_id,
                lines=[StockLine(sku=line.sku, quantity=line.quantity) for line in request.lines],
            )

        return self._db.run_once(find, create)

    def _request_shipment(self, request: ShipmentRequest) -> Shipment:
        def find(session: Session) -> Shipment | None:
            query = select(ShipmentRow).where(
                col(ShipmentRow.idempotency_key) == request.idempotency_key
            )
            row = session.exec(query).first()
            return None if row is None else _shipment(row)

        def create(session: Session) -> Shipment:
            row = ShipmentRow(
                shipment_id=new_id("SHP"),
                idempotency_key=request.idempotency_key,
                order_id=request.order_id,
                reservation_id=request.reservation_id,
                ship_to=request.ship_to,
                status=ShipmentStatus.REQUESTED,
            )
            session.add(row)
            session.flush()  # claims the idempotency key before the lines are written
            session.add_all(
                ShipmentLineRow(
                    shipment_id=row.shipment_id,
                    line_no=number,
                    sku=line.sku,
                    quantity=line.quantity,
                )
                for number, line in enumerate(request.lines, start=1)
            )
            return _shipment(row)

        return self._db.run_once(find, create)

    def _confirm_shipment(self, request: ShipmentConfirmation) -> Shipment:
        """Requested -> confirmed exactly once; a replay gets the confirmed shipment back.

        A later confirmation with another key but the same carrier and tracking number
        is a duplicate event and answered the same way; one naming other goods in
        transit is refused with `shipment_already_confirmed`.
        """
        with self._db.session() as session:
            moved = session.exec(
                update(ShipmentRow)
                .where(
                    col(ShipmentRow.shipment_id) == request.shipment_id,
                    col(ShipmentRow.status) == ShipmentStatus.REQUESTED.value,
                )
                .values(
                    status=ShipmentStatus.CONFIRMED.value,
                    carrier=request.carrier,
                    tracking_number=request.tracking_number,
                    confirmation_key=request.idempotency_key,
                    confirmed_at=utc_now(),
                )
                .execution_options(synchronize_session=False)
            ).rowcount
            row = session.get(ShipmentRow, request.shipment_id)
            if row is None:
                raise BusinessError(
                    "shipment_not_found", f"logistics has no shipment {request.shipment_id}"
                )
            same = row.confirmation_key == request.idempotency_key or (
                row.carrier == request.carrier and row.tracking_number == request.tracking_number
            )
            if moved == 0 and not same:
                raise BusinessError(
                    "shipment_already_confirmed",
                    f"shipment {row.shipment_id} was already confirmed with {row.carrier} "
                    f"{row.tracking_number}",
                )
            return _shipment(row)
