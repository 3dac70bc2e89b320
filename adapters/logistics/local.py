"""Logistics: stock reservations, shipments, dispatches and returns, in the local database.

Stock moves only through `adapters.logistics.local_stock`; rows are read back and locked
through `adapters.logistics.local_warehouse`. Every keyed change (reservation, dispatch,
amendment, return) inserts the row that claims its idempotency key before it
checks anything another request could have changed, so a replay that waited for
the first finds it instead of being refused; a refused request rolls back, key
and all. Undoing (release, cancel) is a one-way status change by a conditional
UPDATE, so however often and however concurrently it is asked, it happens once.

Locks, always in this order: reservation, its shipments (by id), items. A
dispatch holds a shared lock on the reservation, so an amendment or a release
waits for dispatches in flight and the next dispatch sees what they did.

Replays return what the first call returned: a reservation or shipment request
as it stands now, a dispatch or return as the shipment stood right after it, an
amendment as the lines it set.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import update
from sqlmodel import Session, col

from adapters.errors import BusinessError
from adapters.keys import IdempotencyKey
from adapters.local.database import LocalDatabase
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
    new_id,
    utc_now,
)
from adapters.logistics.local_stock import move_stock, per_sku
from adapters.logistics.local_warehouse import (
    amended_by_key,
    as_reservation,
    cancelled_error,
    dispatch_count,
    dispatched_by_key,
    existing_shipment,
    locked_reservation,
    locked_shipment,
    locked_shipments,
    released_error,
    requested_lines,
    reservation_by_key,
    reservation_lines,
    returned_by_key,
    returned_per_sku,
    shipment_by_key,
    shipment_status,
    shipped_from_reservation,
    shipped_per_sku,
    to_reservation,
    to_shipment,
)
from adapters.logistics.models import (
    AmendReservation,
    CancelShipment,
    ReleaseReservation,
    Reservation,
    ReservationStatus,
    ReserveStock,
    ReturnReceipt,
    Shipment,
    ShipmentConfirmation,
    ShipmentRequest,
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


class LocalLogistics:
    """A warehouse: stock on hand per SKU, reservations, shipments, dispatches and returns."""

    def __init__(self, database: LocalDatabase) -> None:
        self._db = database

    async def reserve_stock(self, request: ReserveStock) -> Reservation:
        return await asyncio.to_thread(self._reserve_stock, request)

    async def request_shipment(self, request: ShipmentRequest) -> Shipment:
        return await asyncio.to_thread(self._request_shipment, request)

    async def confirm_shipment(self, request: ShipmentConfirmation) -> Shipment:
        return await asyncio.to_thread(self._confirm_shipment, request)

    async def find_reservation(self, idempotency_key: IdempotencyKey) -> Reservation | None:
        """The reservation `reserve_stock` made with this key, if any."""
        return await asyncio.to_thread(self._find_reservation, idempotency_key)

    async def find_shipment(self, idempotency_key: IdempotencyKey) -> Shipment | None:
        return await asyncio.to_thread(self._find_shipment, idempotency_key)

    async def amend_reservation(self, request: AmendReservation) -> Reservation:
        return await asyncio.to_thread(self._amend_reservation, request)

    async def receive_return(self, receipt: ReturnReceipt) -> Shipment:
        return await asyncio.to_thread(self._receive_return, receipt)

    async def release_reservation(self, request: ReleaseReservation) -> Reservation:
        return await asyncio.to_thread(self._release_reservation, request)

    async def cancel_shipment(self, request: CancelShipment) -> Shipment:
        return await asyncio.to_thread(self._cancel_shipment, request)

    def _find_reservation(self, idempotency_key: IdempotencyKey) -> Reservation | None:
        with self._db.session() as session:
            return reservation_by_key(session, idempotency_key)

    def _find_shipment(self, idempotency_key: IdempotencyKey) -> Shipment | None:
        with self._db.session() as session:
            return shipment_by_key(session, idempotency_key)

    def _reserve_stock(self, request: ReserveStock) -> Reservation:
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

    def _release_reservation(self, request: ReleaseReservation) -> Reservation:
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

    def _request_shipment(self, request: ShipmentRequest) -> Shipment:
        def find(session: Session) -> Shipment | None:
            return shipment_by_key(session, request.idempotency_key)

        def create(session: Session) -> Shipment:
            # Shared lock: a release waits until this request has committed, and a
            # request after the release sees it; parallel part shipments do not wait.
            reservation = locked_reservation(session, request.reservation_id, shared=True)
            if reservation.status == ReservationStatus.RELEASED.value:
                raise released_error(reservation)
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
            session.flush()
            return to_shipment(session, row)

        return self._db.run_once(find, create)

    def _confirm_shipment(self, request: ShipmentConfirmation) -> Shipment:
        """Record one dispatch once per key; the shipment is confirmed when all has left.

        Each SKU may leave up to what was requested of it minus what earlier
        dispatches took (`over_shipment` otherwise; a SKU the request does not name
        has nothing left, so it is `over_shipment` too). A cancelled shipment cannot
        leave (`shipment_cancelled`), nor one whose reservation was released
        (`reservation_released`). A replay returns the shipment as this dispatch
        left it: carrier and tracking of this dispatch, shipped up to it.
        """

        def find(session: Session) -> Shipment | None:
            return dispatched_by_key(session, request.idempotency_key)

        def create(session: Session) -> Shipment:
            reservation_id = existing_shipment(session, request.shipment_id).reservation_id
            reservation = locked_reservation(session, reservation_id, shared=True)
            shipment = locked_shipment(session, request.shipment_id)
            sequence = dispatch_count(session, shipment.shipment_id) + 1
            dispatch = ShipmentDispatchRow(
                dispatch_id=new_id("DSP"),
                idempotency_key=request.idempotency_key,
                shipment_id=shipment.shipment_id,
                sequence=sequence,
                carrier=request.carrier,
                tracking_number=request.tracking_number,
            )
            session.add(dispatch)
            session.flush()  # claims the idempotency key before anything is checked
            if shipment.status == ShipmentStatus.CANCELLED.value:
                raise cancelled_error(shipment)
            if reservation.status == ReservationStatus.RELEASED.value:
                raise released_error(reservation)
            requested = per_sku(requested_lines(session, shipment.shipment_id))
            shipped = shipped_per_sku(session, shipment.shipment_id)
            leaving = per_sku(request.lines)
            for sku in sorted(leaving):
                left = requested.get(sku, 0) - shipped.get(sku, 0)
                if leaving[sku] > left:
                    raise BusinessError(
                        "over_shipment",
                        f"shipment {shipment.shipment_id}: {leaving[sku]} {sku} cannot leave, "
                        f"only {left} of {requested.get(sku, 0)} requested is left to ship",
                    )
            session.add_all(
                ShipmentDispatchLineRow(
                    dispatch_id=dispatch.dispatch_id,
                    line_no=number,
                    sku=line.sku,
                    quantity=line.quantity,
                )
                for number, line in enumerate(request.lines, start=1)
            )
            for sku, quantity in leaving.items():
                shipped[sku] = shipped.get(sku, 0) + quantity
            status = shipment_status(requested, shipped)
            shipment.status = status.value
            shipment.carrier = request.carrier
            shipment.tracking_number = request.tracking_number
            shipment.confirmation_key = request.idempotency_key
            if status is ShipmentStatus.CONFIRMED:
                shipment.confirmed_at = utc_now()
            session.flush()
            return to_shipment(session, shipment, sequence)

        return self._db.run_once(find, create)

    def _amend_reservation(self, request: AmendReservation) -> Reservation:
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

    def _receive_return(self, receipt: ReturnReceipt) -> Shipment:
        """Put returned goods back in stock once per key.

        Each SKU may come back up to what left in the shipment's dispatches minus
        what earlier returns brought back (`over_return` otherwise, also for a SKU
        that never shipped). `shipment_not_found` when the order has no such
        shipment. Returns the shipment, which a return does not change.
        """

        def find(session: Session) -> Shipment | None:
            return returned_by_key(session, receipt.idempotency_key)

        def create(session: Session) -> Shipment:
            shipment = locked_shipment(session, receipt.shipment_id)
            if shipment.order_id != receipt.order_id:
                raise BusinessError(
                    "shipment_not_found",
                    f"order {receipt.order_id} has no shipment {receipt.shipment_id}",
                )
            row = ShipmentReturnRow(
                return_id=new_id("RET"),
                idempotency_key=receipt.idempotency_key,
                shipment_id=shipment.shipment_id,
                order_id=shipment.order_id,
                dispatch_sequence=dispatch_count(session, shipment.shipment_id),
            )
            session.add(row)
            session.flush()  # claims the idempotency key before anything is checked
            shipped = shipped_per_sku(session, shipment.shipment_id)
            returned = returned_per_sku(session, shipment.shipment_id)
            back = per_sku(receipt.lines)
            for sku in sorted(back):
                left = shipped.get(sku, 0) - returned.get(sku, 0)
                if back[sku] > left:
                    raise BusinessError(
                        "over_return",
                        f"shipment {shipment.shipment_id}: {back[sku]} {sku} cannot come back, "
                        f"{shipped.get(sku, 0)} shipped and {returned.get(sku, 0)} returned",
                    )
            session.add_all(
                ShipmentReturnLineRow(
                    return_id=row.return_id, line_no=number, sku=line.sku, quantity=line.quantity
                )
                for number, line in enumerate(receipt.lines, start=1)
            )
            move_stock(session, {sku: -quantity for sku, quantity in back.items()})
            session.flush()
            return to_shipment(session, shipment, row.dispatch_sequence)

        return self._db.run_once(find, create)

    def _cancel_shipment(self, request: CancelShipment) -> Shipment:
        """Requested -> cancelled once; cancelling a cancelled shipment returns it.

        Goods that left, all or some, cannot be called back (`shipment_already_confirmed`):
        that is a return, not a cancellation. The reserved stock stays reserved until the
        reservation itself is released.
        """
        with self._db.session() as session:
            session.exec(
                update(ShipmentRow)
                .where(
                    col(ShipmentRow.shipment_id) == request.shipment_id,
                    col(ShipmentRow.status) == ShipmentStatus.REQUESTED.value,
                )
                .values(
                    status=ShipmentStatus.CANCELLED.value,
                    cancellation_key=request.idempotency_key,
                    cancel_reason=request.reason,
                    cancelled_at=utc_now(),
                )
                .execution_options(synchronize_session=False)
            )
            row = existing_shipment(session, request.shipment_id)
            if row.status in (ShipmentStatus.CONFIRMED, ShipmentStatus.PARTIALLY_SHIPPED):
                raise BusinessError(
                    "shipment_already_confirmed",
                    f"shipment {row.shipment_id} already left (in part or in full) with "
                    f"{row.carrier} {row.tracking_number}",
                )
            return to_shipment(session, row)
