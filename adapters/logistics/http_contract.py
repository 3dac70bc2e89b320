"""Logistics' REST contract (docs/contracts/logistics.openapi.json is generated from it)."""

from __future__ import annotations

from adapters.http.contract import Contract, Operation, lookup
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

LOGISTICS_CONTRACT = Contract(
    system="logistics",
    title="Logistics",
    description="Stock reservations, shipments, confirmations from the carrier, returns.",
    operations=(
        Operation(
            "reserve_stock",
            "POST",
            "/reservations",
            Reservation,
            "Reserve an order's lines; `out_of_stock` when the shelf is short",
            body=ReserveStock,
        ),
        lookup("find_reservation", "reservations", Reservation, "reservation"),
        Operation(
            "request_shipment",
            "POST",
            "/shipments",
            Shipment,
            "Ask the warehouse to ship reserved lines",
            body=ShipmentRequest,
        ),
        lookup("find_shipment", "shipments", Shipment, "shipment"),
        Operation(
            "confirm_shipment",
            "POST",
            "/shipment-confirmations",
            Shipment,
            "Record the carrier's confirmation of what shipped",
            body=ShipmentConfirmation,
        ),
        Operation(
            "amend_reservation",
            "POST",
            "/reservation-amendments",
            Reservation,
            "Change a reservation's quantities",
            body=AmendReservation,
        ),
        Operation(
            "receive_return",
            "POST",
            "/returns",
            Shipment,
            "Take returned goods back into stock",
            body=ReturnReceipt,
        ),
        Operation(
            "release_reservation",
            "POST",
            "/reservation-releases",
            Reservation,
            "Give reserved stock back (compensation)",
            body=ReleaseReservation,
        ),
        Operation(
            "cancel_shipment",
            "POST",
            "/shipment-cancellations",
            Shipment,
            "Cancel a shipment not yet confirmed (compensation)",
            body=CancelShipment,
        ),
        Operation(
            "list_reservations",
            "GET",
            "/orders/{order_id}/reservations",
            list[Reservation],
            "The reservations made for an order, oldest first, released ones included",
        ),
        Operation(
            "list_shipments",
            "GET",
            "/orders/{order_id}/shipments",
            list[Shipment],
            "The shipments requested for an order, oldest first, cancelled ones included",
        ),
    ),
)
