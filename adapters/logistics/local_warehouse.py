"""Reservations and shipments read back from the local database, and their row locks.

A shipment's `shipped` is the sum of its dispatches, never a stored copy, so it
cannot drift from them; `upto` reads a shipment as it stood right after one
dispatch, to answer a replay the way the first call was answered. Locks are
taken in one order: reservation, its shipments (by id), items.
"""

from __future__ import annotations

from sqlmodel import Session, col, func, select

from adapters.errors import BusinessError
from adapters.keys import IdempotencyKey
from adapters.local.tables import (
    ReservationAmendmentLineRow,
    ReservationAmendmentRow,
    ReservationLineRow,
    ReservationRow,
    ShipmentDispatchLineRow,
    ShipmentDispatchRow,
    ShipmentLineRow,
    ShipmentReturnLineRow,
    ShipmentReturnRow,
    ShipmentRow,
)
from adapters.logistics.local_stock import Lines, per_sku, stock_lines
from adapters.logistics.models import Reservation, ReservationStatus, Shipment, ShipmentStatus
from o2c_domain.lines import SkuQuantity


def reservation_lines(session: Session, reservation_id: str) -> list[ReservationLineRow]:
    return list(
        session.exec(
            select(ReservationLineRow)
            .where(col(ReservationLineRow.reservation_id) == reservation_id)
            .order_by(col(ReservationLineRow.line_no))
        )
    )


def requested_lines(session: Session, shipment_id: str) -> list[ShipmentLineRow]:
    return list(
        session.exec(
            select(ShipmentLineRow)
            .where(col(ShipmentLineRow.shipment_id) == shipment_id)
            .order_by(col(ShipmentLineRow.line_no))
        )
    )


def shipped_per_sku(session: Session, shipment_id: str, upto: int | None = None) -> dict[str, int]:
    """Quantities per SKU that left in the shipment's dispatches (up to number `upto`)."""
    dispatch, line = ShipmentDispatchRow, ShipmentDispatchLineRow
    query = (
        select(col(line.sku), func.sum(col(line.quantity)))
        .join(dispatch, col(dispatch.dispatch_id) == col(line.dispatch_id))
        .where(col(dispatch.shipment_id) == shipment_id)
        .group_by(col(line.sku))
    )
    if upto is not None:
        query = query.where(col(dispatch.sequence) <= upto)
    return {sku: int(quantity) for sku, quantity in session.exec(query)}


def shipped_from_reservation(session: Session, reservation_id: str) -> dict[str, int]:
    """Quantities per SKU that left in any shipment of the reservation."""
    dispatch, line = ShipmentDispatchRow, ShipmentDispatchLineRow
    query = (
        select(col(line.sku), func.sum(col(line.quantity)))
        .join(dispatch, col(dispatch.dispatch_id) == col(line.dispatch_id))
        .join(ShipmentRow, col(ShipmentRow.shipment_id) == col(dispatch.shipment_id))
        .where(col(ShipmentRow.reservation_id) == reservation_id)
        .group_by(col(line.sku))
    )
    return {sku: int(quantity) for sku, quantity in session.exec(query)}


def returned_per_sku(session: Session, shipment_id: str) -> dict[str, int]:
    back, line = ShipmentReturnRow, ShipmentReturnLineRow
    query = (
        select(col(line.sku), func.sum(col(line.quantity)))
        .join(back, col(back.return_id) == col(line.return_id))
        .where(col(back.shipment_id) == shipment_id)
        .group_by(col(line.sku))
    )
    return {sku: int(quantity) for sku, quantity in session.exec(query)}


def dispatch_row(session: Session, shipment_id: str, sequence: int) -> ShipmentDispatchRow | None:
    return session.exec(
        select(ShipmentDispatchRow).where(
            col(ShipmentDispatchRow.shipment_id) == shipment_id,
            col(ShipmentDispatchRow.sequence) == sequence,
        )
    ).first()


def dispatch_count(session: Session, shipment_id: str) -> int:
    return session.exec(
        select(func.count()).where(col(ShipmentDispatchRow.shipment_id) == shipment_id)
    ).one()


def shipment_status(requested: dict[str, int], shipped: dict[str, int]) -> ShipmentStatus:
    if not any(shipped.values()):
        return ShipmentStatus.REQUESTED
    if all(shipped.get(sku, 0) >= quantity for sku, quantity in requested.items()):
        return ShipmentStatus.CONFIRMED
    return ShipmentStatus.PARTIALLY_SHIPPED


def to_shipment(session: Session, row: ShipmentRow, upto: int | None = None) -> Shipment:
    """The shipment as it stands, or (`upto`) as it stood right after that dispatch."""
    requested = requested_lines(session, row.shipment_id)
    shipped = shipped_per_sku(session, row.shipment_id, upto)
    order = list(dict.fromkeys([line.sku for line in requested] + sorted(shipped)))
    status, carrier, tracking = ShipmentStatus(row.status), row.carrier, row.tracking_number
    if upto is not None:
        latest = dispatch_row(session, row.shipment_id, upto)
        if latest is not None:
            carrier, tracking = latest.carrier, latest.tracking_number
        status = shipment_status(per_sku(requested), shipped)
    return Shipment(
        shipment_id=row.shipment_id,
        order_id=row.order_id,
        status=status,
        carrier=carrier,
        tracking_number=tracking,
        lines=stock_lines(requested),
        shipped=[SkuQuantity(sku=sku, quantity=shipped[sku]) for sku in order if shipped.get(sku)],
    )


def as_reservation(
    row: ReservationRow, lines: Lines, status: ReservationStatus | None = None
) -> Reservation:
    """The reservation `row` with `lines` (by default in the row's own status)."""
    return Reservation(
        reservation_id=row.reservation_id,
        order_id=row.order_id,
        lines=stock_lines(lines),
        status=status or ReservationStatus(row.status),
    )


def to_reservation(session: Session, row: ReservationRow) -> Reservation:
    return as_reservation(row, reservation_lines(session, row.reservation_id))


def reservation_by_key(session: Session, key: IdempotencyKey) -> Reservation | None:
    row = session.exec(
        select(ReservationRow).where(col(ReservationRow.idempotency_key) == key)
    ).first()
    return None if row is None else to_reservation(session, row)


def shipment_by_key(session: Session, key: IdempotencyKey) -> Shipment | None:
    row = session.exec(select(ShipmentRow).where(col(ShipmentRow.idempotency_key) == key)).first()
    return None if row is None else to_shipment(session, row)


def dispatched_by_key(session: Session, key: IdempotencyKey) -> Shipment | None:
    dispatch = session.exec(
        select(ShipmentDispatchRow).where(col(ShipmentDispatchRow.idempotency_key) == key)
    ).first()
    if dispatch is None:
        return None
    return to_shipment(session, existing_shipment(session, dispatch.shipment_id), dispatch.sequence)


def amended_by_key(session: Session, key: IdempotencyKey) -> Reservation | None:
    amendment = session.exec(
        select(ReservationAmendmentRow).where(col(ReservationAmendmentRow.idempotency_key) == key)
    ).first()
    if amendment is None:
        return None
    reservation = session.get(ReservationRow, amendment.reservation_id)
    assert reservation is not None  # a foreign key
    line = ReservationAmendmentLineRow
    lines = session.exec(
        select(line)
        .where(col(line.amendment_id) == amendment.amendment_id)
        .order_by(col(line.line_no))
    )
    return as_reservation(reservation, lines, ReservationStatus.RESERVED)


def returned_by_key(session: Session, key: IdempotencyKey) -> Shipment | None:
    back = session.exec(
        select(ShipmentReturnRow).where(col(ShipmentReturnRow.idempotency_key) == key)
    ).first()
    if back is None:
        return None
    return to_shipment(
        session, existing_shipment(session, back.shipment_id), back.dispatch_sequence
    )


def existing_shipment(session: Session, shipment_id: str) -> ShipmentRow:
    row = session.get(ShipmentRow, shipment_id)
    if row is None:
        raise BusinessError("shipment_not_found", f"logistics has no shipment {shipment_id}")
    return row


def locked_reservation(session: Session, reservation_id: str, *, shared: bool) -> ReservationRow:
    row = session.exec(
        select(ReservationRow)
        .where(col(ReservationRow.reservation_id) == reservation_id)
        .with_for_update(read=shared)
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        raise BusinessError(
            "reservation_not_found", f"logistics has no reservation {reservation_id}"
        )
    return row


def locked_shipments(session: Session, reservation_id: str) -> list[ShipmentRow]:
    return list(
        session.exec(
            select(ShipmentRow)
            .where(col(ShipmentRow.reservation_id) == reservation_id)
            .order_by(col(ShipmentRow.shipment_id))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


def locked_shipment(session: Session, shipment_id: str) -> ShipmentRow:
    row = session.exec(
        select(ShipmentRow)
        .where(col(ShipmentRow.shipment_id) == shipment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        raise BusinessError("shipment_not_found", f"logistics has no shipment {shipment_id}")
    return row


def released_error(reservation: ReservationRow) -> BusinessError:
    return BusinessError(
        "reservation_released",
        f"reservation {reservation.reservation_id} was released; its stock is gone",
    )


def cancelled_error(shipment: ShipmentRow) -> BusinessError:
    return BusinessError(
        "shipment_cancelled",
        f"shipment {shipment.shipment_id} was cancelled ({shipment.cancel_reason})",
    )
