"""Logistics: stock reservations, shipments, dispatches and returns, in the local database.

Reservations (reserve, release, amend) are in `adapters.logistics.local_reservations`,
shipments (request, dispatch, return, cancel) in `adapters.logistics.local_shipments`.
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

from adapters.keys import IdempotencyKey
from adapters.local.database import LocalDatabase
from adapters.logistics.local_reservations import LocalReservations
from adapters.logistics.local_shipments import LocalShipments
from adapters.logistics.models import (
    AmendReservation,
    CancelShipment,
    ReleaseReservation,
    Reservation,
    ReserveStock,
    ReturnReceipt,
    Shipment,
    ShipmentConfirmation,
    ShipmentRequest,
)


class LocalLogistics:
    """A warehouse: stock on hand per SKU, reservations, shipments, dispatches and returns."""

    def __init__(self, database: LocalDatabase) -> None:
        self._reservations = LocalReservations(database)
        self._shipments = LocalShipments(database)

    async def reserve_stock(self, request: ReserveStock) -> Reservation:
        return await asyncio.to_thread(self._reservations.reserve_stock, request)

    async def request_shipment(self, request: ShipmentRequest) -> Shipment:
        return await asyncio.to_thread(self._shipments.request_shipment, request)

    async def confirm_shipment(self, request: ShipmentConfirmation) -> Shipment:
        return await asyncio.to_thread(self._shipments.confirm_shipment, request)

    async def find_reservation(self, idempotency_key: IdempotencyKey) -> Reservation | None:
        """The reservation `reserve_stock` made with this key, if any."""
        return await asyncio.to_thread(self._reservations.find_reservation, idempotency_key)

    async def find_shipment(self, idempotency_key: IdempotencyKey) -> Shipment | None:
        return await asyncio.to_thread(self._shipments.find_shipment, idempotency_key)

    async def amend_reservation(self, request: AmendReservation) -> Reservation:
        return await asyncio.to_thread(self._reservations.amend_reservation, request)

    async def receive_return(self, receipt: ReturnReceipt) -> Shipment:
        return await asyncio.to_thread(self._shipments.receive_return, receipt)

    async def release_reservation(self, request: ReleaseReservation) -> Reservation:
        return await asyncio.to_thread(self._reservations.release_reservation, request)

    async def cancel_shipment(self, request: CancelShipment) -> Shipment:
        return await asyncio.to_thread(self._shipments.cancel_shipment, request)

    async def list_reservations(self, order_id: str) -> list[Reservation]:
        return await asyncio.to_thread(self._reservations.list_reservations, order_id)

    async def list_shipments(self, order_id: str) -> list[Shipment]:
        return await asyncio.to_thread(self._shipments.list_shipments, order_id)
