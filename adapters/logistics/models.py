"""What crosses the boundary to logistics."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from adapters.keys import IdempotencyKey
from o2c_domain.lines import SkuQuantity


class ReserveStock(BaseModel):
    idempotency_key: IdempotencyKey
    order_id: str
    lines: list[SkuQuantity] = Field(min_length=1)


class ReservationStatus(StrEnum):
    RESERVED = "reserved"
    RELEASED = "released"


class Reservation(BaseModel):
    reservation_id: str
    order_id: str
    lines: list[SkuQuantity]
    status: ReservationStatus = ReservationStatus.RESERVED


class ReleaseReservation(BaseModel):
    """Give reserved stock back (compensation); releasing twice restores it once."""

    idempotency_key: IdempotencyKey
    reservation_id: str


class ShipmentRequest(BaseModel):
    idempotency_key: IdempotencyKey
    order_id: str
    reservation_id: str
    ship_to: str
    lines: list[SkuQuantity] = Field(min_length=1)


class ShipmentStatus(StrEnum):
    REQUESTED = "requested"
    PARTIALLY_SHIPPED = "partially_shipped"
    CONFIRMED = "confirmed"
    """Every line has shipped in full."""
    CANCELLED = "cancelled"


class Shipment(BaseModel):
    shipment_id: str
    order_id: str
    status: ShipmentStatus
    carrier: str | None = None
    """Of the latest dispatch."""
    tracking_number: str | None = None
    lines: list[SkuQuantity] = Field(default_factory=list)
    """What was requested."""
    shipped: list[SkuQuantity] = Field(default_factory=list)
    """What has left so far, summed over dispatches."""


class ShipmentConfirmation(BaseModel):
    """One dispatch: these quantities left with this carrier (a part or all of the request).

    BusinessError `over_shipment` if a quantity exceeds what is left to ship.
    """

    idempotency_key: IdempotencyKey
    shipment_id: str
    carrier: str
    tracking_number: str
    lines: list[SkuQuantity] = Field(min_length=1)


class AmendReservation(BaseModel):
    """Set new quantities on an order's reservation and shipment request before it ships.

    `lines` is the whole new order (a line left out is removed). Stock moves by
    the difference only; BusinessError `out_of_stock` if an increase cannot be
    met, `line_already_shipped` if a shipped line would change.
    """

    idempotency_key: IdempotencyKey
    reservation_id: str
    shipment_id: str | None
    lines: list[SkuQuantity] = Field(min_length=1)


class ReturnReceipt(BaseModel):
    """Goods came back: they are put back in stock once per key."""

    idempotency_key: IdempotencyKey
    order_id: str
    shipment_id: str
    lines: list[SkuQuantity] = Field(min_length=1)


class CancelShipment(BaseModel):
    """Withdraw a shipment request that has not left (compensation)."""

    idempotency_key: IdempotencyKey
    shipment_id: str
    reason: str
