"""Logistics: stock reservations and shipments, in the local database.

Stock only moves through `UPDATE items ... WHERE on_hand >= quantity`, so two
orders can never both take the last unit, and a reservation's lines commit
together with the row that claims its idempotency key, or not at all. Undoing
(release, cancel) is a one-way status change by a conditional UPDATE, so however
often and however concurrently it is asked, it happens once.
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
    CancelShipment,
    IdempotencyKey,
    ReleaseReservation,
    Reservation,
    ReservationStatus,
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


def _lines(session: Session, reservation_id: str) -> list[ReservationLineRow]:
    return list(
        session.exec(
            select(ReservationLineRow)
            .where(col(ReservationLineRow.reservation_id) == reservation_id)
            .order_by(col(ReservationLineRow.line_no))
        )
    )


def _reservation(session: Session, row: ReservationRow) -> Reservation:
    return Reservation(
        reservation_id=row.reservation_id,
        order_id=row.order_id,
        lines=[
            StockLine(sku=line.sku, quantity=line.quantity)
            for line in _lines(session, row.reservation_id)
        ],
        status=ReservationStatus(row.status),
    )


def _per_sku(lines: list[StockLine] | list[ReservationLineRow]) -> dict[str, int]:
    """Quantities summed per SKU: one UPDATE per item, however the lines repeat it."""
    wanted: dict[str, int] = {}
    for line in lines:
        wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
    return wanted


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


def _give_back_stock(session: Session, returned: dict[str, int]) -> None:
    """Increment every SKU, in the same lock order as `_take_stock`."""
    for sku in sorted(returned):
        on_hand = col(ItemRow.on_hand)
        session.exec(
            update(ItemRow)
            .where(col(ItemRow.sku) == sku)
            .values(on_hand=on_hand + returned[sku])
            .execution_options(synchronize_session=False)
        )


def _reservation_by_key(session: Session, key: IdempotencyKey) -> Reservation | None:
    row = session.exec(
        select(ReservationRow).where(col(ReservationRow.idempotency_key) == key)
    ).first()
    return None if row is None else _reservation(session, row)


def _shipment_by_key(session: Session, key: IdempotencyKey) -> Shipment | None:
    row = session.exec(select(ShipmentRow).where(col(ShipmentRow.idempotency_key) == key)).first()
    return None if row is None else _shipment(row)


def _existing_shipment(session: Session, shipment_id: str) -> ShipmentRow:
    row = session.get(ShipmentRow, shipment_id)
    if row is None:
        raise BusinessError("shipment_not_found", f"logistics has no shipment {shipment_id}")
    return row


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

    async def find_reservation(self, idempotency_key: IdempotencyKey) -> Reservation | None:
        """The reservation `reserve_stock` made with this key, if any."""
        return await asyncio.to_thread(self._find_reservation, idempotency_key)

    async def find_shipment(self, idempotency_key: IdempotencyKey) -> Shipment | None:
        return await asyncio.to_thread(self._find_shipment, idempotency_key)

    async def release_reservation(self, request: ReleaseReservation) -> Reservation:
        return await asyncio.to_thread(self._release_reservation, request)

    async def cancel_shipment(self, request: CancelShipment) -> Shipment:
        return await asyncio.to_thread(self._cancel_shipment, request)

    def _find_reservation(self, idempotency_key: IdempotencyKey) -> Reservation | None:
        with self._db.session() as session:
            return _reservation_by_key(session, idempotency_key)

    def _find_shipment(self, idempotency_key: IdempotencyKey) -> Shipment | None:
        with self._db.session() as session:
            return _shipment_by_key(session, idempotency_key)

    def _reserve_stock(self, request: ReserveStock) -> Reservation:
        def find(session: Session) -> Reservation | None:
            return _reservation_by_key(session, request.idempotency_key)

        def create(session: Session) -> Reservation:
            row = ReservationRow(
                reservation_id=new_id("RES"),
                idempotency_key=request.idempotency_key,
                order_id=request.order_id,
                status=ReservationStatus.RESERVED.value,
            )
            session.add(row)
            session.flush()  # claims the idempotency key before any stock moves
            _take_stock(session, _per_sku(request.lines))
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
                status=ReservationStatus.RESERVED,
            )

        return self._db.run_once(find, create)

    def _release_reservation(self, request: ReleaseReservation) -> Reservation:
        """Reserved -> released once, with the stock given back in the same transaction.

        The status change, not the key, is the guard: a replay, or another release with
        another key, finds the reservation released and restores nothing. The key that
        released it is recorded.
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
                _give_back_stock(session, _per_sku(_lines(session, row.reservation_id)))
            return _reservation(session, row)

    def _request_shipment(self, request: ShipmentRequest) -> Shipment:
        def find(session: Session) -> Shipment | None:
            return _shipment_by_key(session, request.idempotency_key)

        def create(session: Session) -> Shipment:
            # Shared lock: a release waits until this request has committed, and a
            # request after the release sees it; parallel part shipments do not wait.
            reservation = session.exec(
                select(ReservationRow)
                .where(col(ReservationRow.reservation_id) == request.reservation_id)
                .with_for_update(read=True)
            ).first()
            if reservation is None:
                raise BusinessError(
                    "reservation_not_found",
                    f"logistics has no reservation {request.reservation_id}",
                )
            if reservation.status == ReservationStatus.RELEASED.value:
                raise BusinessError(
                    "reservation_released",
                    f"reservation {reservation.reservation_id} was released; its stock is gone",
                )
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
        transit is refused with `shipment_already_confirmed`, and a cancelled shipment
        cannot leave (`shipment_cancelled`).
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
            row = _existing_shipment(session, request.shipment_id)
            if row.status == ShipmentStatus.CANCELLED.value:
                raise BusinessError(
                    "shipment_cancelled",
                    f"shipment {row.shipment_id} was cancelled ({row.cancel_reason})",
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

    def _cancel_shipment(self, request: CancelShipment) -> Shipment:
        """Requested -> cancelled once; cancelling a cancelled shipment returns it.

        Goods that left cannot be called back (`shipment_already_confirmed`): that is a
        return, not a cancellation. The reserved stock stays reserved until the
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
            row = _existing_shipment(session, request.shipment_id)
            if row.status == ShipmentStatus.CONFIRMED.value:
                raise BusinessError(
                    "shipment_already_confirmed",
                    f"shipment {row.shipment_id} already left with {row.carrier} "
                    f"{row.tracking_number}",
                )
            return _shipment(row)
