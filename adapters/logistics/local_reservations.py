"""Stock reservations in the local database: reserved, released and amended.

A reservation, or an amendment, inserts the row that claims its idempotency key
before it checks anything another request could have changed, so a replay that
waited for the first finds it instead of being refused; a refused request rolls
back, key and all. A release is a one-way status change by a conditional UPDATE,
so however often and however concurrently it is asked, it happens once. An
amendment locks the reservation (exclusively) and then its shipments, so it waits
for dispatches in flight.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, col, select

from adapters.errors import BusinessError
from adapters.keys import IdempotencyKey
from adapters.local.database import LocalDatabase
from adapters.local.tables import (
    ReservationAmendmentLineRow,
    ReservationAmendmentRow,
    ReservationLineRow,
    ReservationRow,
    ShipmentLineRow,
    ShipmentRow,
    new_id,
    utc_now,
)
from adapters.logistics.local_stock import move_stock, per_sku
from adapters.logistics.local_warehouse import (
    amended_by_key,
    as_reservation,
    cancelled_error,
    locked_reservation,
    locked_shipments,
    released_error,
    requested_lines,
    reservation_by_key,
    reservation_lines,
    shipment_status,
    shipped_from_reservation,
    shipped_per_sku,
    to_reservation,
)
from adapters.logistics.models import (
    AmendReservation,
    ReleaseReservation,
    Reservation,
    ReservationStatus,
    ReserveStock,
    ShipmentStatus,
)


def _amended_shipment(
    shipments: list[ShipmentRow], request: AmendReservation
) -> ShipmentRow | None:
    """The shipment an amendment names, among the (locked) shipments of its reservation."""
    if request.shipment_id is None:
        return None
    shipment = next((s for s in shipments if s.shipment_id == request.shipment_id), None)
    if shipment is None:
        raise BusinessError(
            "shipment_not_found",
            f"reservation {request.reservation_id} has no shipment {request.shipment_id}",
        )
    if shipment.status == ShipmentStatus.CANCELLED.value:
        raise cancelled_error(shipment)
    return shipment


def _differing(before: dict[str, int], after: dict[str, int]) -> set[str]:
    return {sku for sku in set(before) | set(after) if before.get(sku, 0) != after.get(sku, 0)}


def _refuse_shipped_changes(session: Session, reservation_id: str, changed: set[str]) -> None:
    """BusinessError `line_already_shipped` if any dispatch took a SKU that would change."""
    shipped = shipped_from_reservation(session, reservation_id)
    touched = sorted(sku for sku in changed if shipped.get(sku, 0) > 0)
    if touched:
        raise BusinessError(
            "line_already_shipped",
            f"reservation {reservation_id}: "
            + ", ".join(f"{shipped[sku]} {sku}" for sku in touched)
            + " already shipped; those lines cannot change",
        )


class LocalReservations:
    """Stock taken off the shelf for an order, given back, or changed by an amendment."""

    def __init__(self, database: LocalDatabase) -> None:
        self._db = database

    def find_reservation(self, idempotency_key: IdempotencyKey) -> Reservation | None:
        with self._db.reading() as session:
            return reservation_by_key(session, idempotency_key)

    def list_reservations(self, order_id: str) -> list[Reservation]:
        with self._db.reading() as session:
            rows = session.exec(
                select(ReservationRow)
                .where(col(ReservationRow.order_id) == order_id)
                .order_by(col(ReservationRow.created_at), col(ReservationRow.reservation_id))
            )
            return [to_reservation(session, row) for row in rows.all()]

    def reserve_stock(self, request: ReserveStock) -> Reservation:
        def find(session: Session) -> Reservation | None:
            return reservation_by_key(session, request.idempotency_key)

        def create(session: Session) -> Reservation:
            row = ReservationRow(
                reservation_id=new_id("RES"),
                idempotency_key=request.idempotency_key,
                order_id=request.order_id,
                status=ReservationStatus.RESERVED.value,
            )
            session.add(row)
            session.flush()  # claims the idempotency key before any stock moves
            move_stock(session, per_sku(request.lines))
            session.add_all(
                ReservationLineRow(
                    reservation_id=row.reservation_id,
                    line_no=number,
                    sku=line.sku,
                    quantity=line.quantity,
                )
                for number, line in enumerate(request.lines, start=1)
            )
            return as_reservation(row, request.lines, ReservationStatus.RESERVED)

        return self._db.run_once(find, create)

    def release_reservation(self, request: ReleaseReservation) -> Reservation:
        """Reserved -> released once, with the stock not yet shipped given back.

        The status change, not the key, is the guard: a replay, or another release with
        another key, finds the reservation released and restores nothing. The key that
        released it is recorded. What already left in a dispatch is not the
        warehouse's any more: only a return brings it back.
        """
        with self._db.session() as session:
            released = session.exec(
                update(ReservationRow)
                .where(
                    col(ReservationRow.reservation_id) == request.reservation_id,
                    col(ReservationRow.status) == ReservationStatus.RESERVED.value,
                )
                .values(
                    status=ReservationStatus.RELEASED.value,
                    release_key=request.idempotency_key,
                    released_at=utc_now(),
                )
                .execution_options(synchronize_session=False)
            ).rowcount
            row = session.get(ReservationRow, request.reservation_id)
            if row is None:
                raise BusinessError(
                    "reservation_not_found",
                    f"logistics has no reservation {request.reservation_id}",
                )
            if released:
                reserved = per_sku(reservation_lines(session, row.reservation_id))
                shipped = shipped_from_reservation(session, row.reservation_id)
                move_stock(
                    session,
                    {sku: -max(0, n - shipped.get(sku, 0)) for sku, n in reserved.items()},
                )
            return to_reservation(session, row)

    def amend_reservation(self, request: AmendReservation) -> Reservation:
        """Set the whole new order once per key, moving stock by the difference only.

        A SKU reserved more takes the extra (`out_of_stock`, `item_unknown`), one
        reserved less or left out gives back what it no longer needs. With a
        `shipment_id`, that shipment's request gets the same lines and its status
        follows (a line removed may leave everything else shipped: confirmed). A SKU
        any dispatch of the reservation has taken cannot change
        (`line_already_shipped`); `reservation_released`, `reservation_not_found`,
        `shipment_not_found` (also for a shipment of another reservation) and
        `shipment_cancelled` refuse the amendment. A replay returns the lines the
        amendment set.
        """

        def find(session: Session) -> Reservation | None:
            return amended_by_key(session, request.idempotency_key)

        def create(session: Session) -> Reservation:
            reservation = locked_reservation(session, request.reservation_id, shared=False)
            amendment = ReservationAmendmentRow(
                amendment_id=new_id("AMD"),
                idempotency_key=request.idempotency_key,
                reservation_id=reservation.reservation_id,
                shipment_id=request.shipment_id,
            )
            session.add(amendment)
            session.flush()  # claims the idempotency key before anything is checked
            if reservation.status == ReservationStatus.RELEASED.value:
                raise released_error(reservation)
            shipment = _amended_shipment(
                locked_shipments(session, reservation.reservation_id), request
            )
            old_lines = reservation_lines(session, reservation.reservation_id)
            old_requested = (
                [] if shipment is None else requested_lines(session, shipment.shipment_id)
            )
            old, new = per_sku(old_lines), per_sku(request.lines)
            changed = _differing(old, new)
            if shipment is not None:
                changed |= _differing(per_sku(old_requested), new)
            _refuse_shipped_changes(session, reservation.reservation_id, changed)
            move_stock(session, {sku: new.get(sku, 0) - old.get(sku, 0) for sku in changed})
            for old_line in [*old_lines, *old_requested]:
                session.delete(old_line)
            session.flush()  # the old lines' numbers are free for the new ones
            rid, aid = reservation.reservation_id, amendment.amendment_id
            for n, line in enumerate(request.lines, start=1):
                sku, quantity = line.sku, line.quantity
                session.add(
                    ReservationLineRow(reservation_id=rid, line_no=n, sku=sku, quantity=quantity)
                )
                session.add(
                    ReservationAmendmentLineRow(
                        amendment_id=aid, line_no=n, sku=sku, quantity=quantity
                    )
                )
                if shipment is not None:
                    sid = shipment.shipment_id
                    session.add(
                        ShipmentLineRow(shipment_id=sid, line_no=n, sku=sku, quantity=quantity)
                    )
            if shipment is not None:
                status = shipment_status(new, shipped_per_sku(session, shipment.shipment_id))
                shipment.status = status.value
                if status is ShipmentStatus.CONFIRMED and shipment.confirmed_at is None:
                    shipment.confirmed_at = utc_now()
            session.flush()
            return as_reservation(reservation, request.lines, ReservationStatus.RESERVED)

        return self._db.run_once(find, create)
