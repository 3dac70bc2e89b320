"""Shipments in the local database: requested, dispatched, returned and cancelled.

A dispatch or a return inserts the row that claims its idempotency key before it
checks anything another request could have changed, so a replay that waited for
the first finds it instead of being refused; a refused request rolls back, key and
all. A cancellation is a one-way status change by a conditional UPDATE, so however
often and however concurrently it is asked, it happens once. A shipment request
and a dispatch hold a shared lock on the reservation, so a release or an amendment
waits for them and the next dispatch sees what they did.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, col, select

from adapters.errors import BusinessError
from adapters.keys import IdempotencyKey
from adapters.local.database import LocalDatabase
from adapters.local.tables import (
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
    cancelled_error,
    dispatch_count,
    dispatched_by_key,
    existing_shipment,
    locked_reservation,
    locked_shipment,
    released_error,
    requested_lines,
    returned_by_key,
    returned_per_sku,
    shipment_by_key,
    shipment_status,
    shipped_per_sku,
    to_shipment,
)
from adapters.logistics.models import (
    CancelShipment,
    ReservationStatus,
    ReturnReceipt,
    Shipment,
    ShipmentConfirmation,
    ShipmentRequest,
    ShipmentStatus,
)


class LocalShipments:
    """Shipment requests against reservations, their dispatches, returns and cancellations."""

    def __init__(self, database: LocalDatabase) -> None:
        self._db = database

    def find_shipment(self, idempotency_key: IdempotencyKey) -> Shipment | None:
        with self._db.reading() as session:
            return shipment_by_key(session, idempotency_key)

    def list_shipments(self, order_id: str) -> list[Shipment]:
        with self._db.reading() as session:
            rows = session.exec(
                select(ShipmentRow)
                .where(col(ShipmentRow.order_id) == order_id)
                .order_by(col(ShipmentRow.created_at), col(ShipmentRow.shipment_id))
            )
            return [to_shipment(session, row) for row in rows.all()]

    def request_shipment(self, request: ShipmentRequest) -> Shipment:
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

    def confirm_shipment(self, request: ShipmentConfirmation) -> Shipment:
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

    def receive_return(self, receipt: ReturnReceipt) -> Shipment:
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

    def cancel_shipment(self, request: CancelShipment) -> Shipment:
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
