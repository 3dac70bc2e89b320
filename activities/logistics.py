"""The logistics system's activities: stock reservations, shipments and returns.

One module per system, as the adapters are packaged (`adapters/logistics/`):
what the order asks of logistics reads in one place. `OrderActivities`
composes this class with the other systems' and supplies the adapter.
"""

from __future__ import annotations

from temporalio import activity

from activities.calls import Undo, UndoResult, once, translated
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
from adapters.logistics.protocol import LogisticsAdapter


class LogisticsActivities:
    """The `logistics.*` activities, over the logistics adapter of the composing class."""

    logistics: LogisticsAdapter

    # -- forward steps ---------------------------------------------------------

    @activity.defn(name="logistics.reserve_stock")
    async def reserve_stock(self, request: ReserveStock) -> Reservation:
        return await once(
            self.logistics.find_reservation,
            request.idempotency_key,
            lambda: self.logistics.reserve_stock(request),
        )

    @activity.defn(name="logistics.request_shipment")
    async def request_shipment(self, request: ShipmentRequest) -> Shipment:
        return await once(
            self.logistics.find_shipment,
            request.idempotency_key,
            lambda: self.logistics.request_shipment(request),
        )

    @activity.defn(name="logistics.confirm_shipment")
    async def confirm_shipment(self, request: ShipmentConfirmation) -> Shipment:
        return await translated(self.logistics.confirm_shipment(request))

    @activity.defn(name="logistics.amend_reservation")
    async def amend_reservation(self, request: AmendReservation) -> Reservation:
        return await translated(self.logistics.amend_reservation(request))

    @activity.defn(name="logistics.receive_return")
    async def receive_return(self, receipt: ReturnReceipt) -> Shipment:
        return await translated(self.logistics.receive_return(receipt))

    # -- compensation: each finds what its forward step did by that step's key --

    @activity.defn(name="logistics.release_reservation")
    async def release_reservation(self, undo: Undo) -> UndoResult:
        reservation = await translated(self.logistics.find_reservation(undo.forward_key))
        if reservation is None:
            return UndoResult(done=False, note="nothing was reserved")
        await translated(
            self.logistics.release_reservation(
                ReleaseReservation(
                    idempotency_key=undo.undo_key, reservation_id=reservation.reservation_id
                )
            )
        )
        return UndoResult(done=True, note=f"reservation {reservation.reservation_id} released")

    @activity.defn(name="logistics.cancel_shipment")
    async def cancel_shipment(self, undo: Undo) -> UndoResult:
        shipment = await translated(self.logistics.find_shipment(undo.forward_key))
        if shipment is None:
            return UndoResult(done=False, note="no shipment was requested")
        await translated(
            self.logistics.cancel_shipment(
                CancelShipment(
                    idempotency_key=undo.undo_key,
                    shipment_id=shipment.shipment_id,
                    reason=undo.reason,
                )
            )
        )
        return UndoResult(done=True, note=f"shipment request {shipment.shipment_id} cancelled")
