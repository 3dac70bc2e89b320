"""What Logistics must do for the orchestrator.

Every method that changes something takes an idempotency key and has a `find_*`
twin to look it up after an unknown outcome; failures are `adapters.errors`.
"""

from __future__ import annotations

from typing import Protocol

from adapters.keys import IdempotencyKey
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


class LogisticsAdapter(Protocol):
    async def reserve_stock(self, request: ReserveStock) -> Reservation:
        """Check the items and reserve them; BusinessError `item_unknown`, `out_of_stock`."""
        ...

    async def request_shipment(self, request: ShipmentRequest) -> Shipment:
        """Ask the warehouse to ship; the same key returns the first request."""
        ...

    async def confirm_shipment(self, request: ShipmentConfirmation) -> Shipment:
        """Record that the goods left with a carrier and tracking number."""
        ...

    async def find_reservation(self, idempotency_key: IdempotencyKey) -> Reservation | None: ...

    async def find_shipment(self, idempotency_key: IdempotencyKey) -> Shipment | None:
        """The shipment requested with this key, if any."""
        ...

    async def amend_reservation(self, request: AmendReservation) -> Reservation:
        """Change reserved quantities (and the shipment request) before shipping."""
        ...

    async def receive_return(self, receipt: ReturnReceipt) -> Shipment:
        """Take returned goods back into stock once per key.

        BusinessError `over_return` if more comes back than has shipped.
        """
        ...

    async def release_reservation(self, request: ReleaseReservation) -> Reservation:
        """Return reserved stock once, however often asked."""
        ...

    async def cancel_shipment(self, request: CancelShipment) -> Shipment:
        """Withdraw a shipment request; BusinessError `shipment_already_confirmed` if it left."""
        ...

    async def list_reservations(self, order_id: str) -> list[Reservation]:
        """The reservations made for an order, oldest first, released ones included."""
        ...

    async def list_shipments(self, order_id: str) -> list[Shipment]:
        """The shipments requested for an order, oldest first, cancelled ones included."""
        ...
