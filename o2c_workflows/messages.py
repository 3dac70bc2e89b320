"""What the outside world and support staff send to an order, and the answers.

Each is an Update (answered at once) and a Signal (fire-and-forget) on the
workflow, and a body of the HTTP API.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from o2c_domain.lines import Sku, SkuQuantity
from o2c_domain.money import (
    MAX_UNIT_PRICE,
    CurrencyCode,
    PositiveAmount,
    UnitPrice,
    at_currency_scale,
)
from o2c_workflows.models import Identifier, OrderStatus, ShortText, Strict

Actor = SkipJsonSchema[str | None]
"""Who sent an event: the API key's `name (key_id)`, or `webhook:<source>`. Set by the
API (whatever a client sent is overwritten) and kept on the records and timeline
entries the event makes; None for events sent otherwise (a Temporal signal from the
UI, orders begun before keys). Not part of the documented request bodies."""
ACTOR_DESCRIPTION = "Set by the API from the caller; never sent."


def _one_line_per_sku(lines: list[SkuQuantity] | None) -> list[SkuQuantity] | None:
    skus = [line.sku for line in lines or []]
    if len(set(skus)) != len(skus):
        raise ValueError(
            f"each SKU may appear once; repeated: {sorted({s for s in skus if skus.count(s) > 1})}"
        )
    return lines


class ShipmentConfirmed(Strict):
    """The 3PL (or a support person) confirms that goods left: all that was left, or some lines."""

    carrier: ShortText = Field(examples=["DHL"])
    tracking_number: ShortText = Field(examples=["JD0146000012345"])
    event_id: ShortText | None = Field(
        default=None, description="De-duplication key; defaults to the tracking number."
    )
    lines: list[SkuQuantity] | None = Field(
        default=None,
        description="What left in this shipment; leave out for everything not yet shipped.",
    )
    actor: Actor = Field(default=None, description=ACTOR_DESCRIPTION)

    _unique = field_validator("lines")(_one_line_per_sku)

    @property
    def dedup_key(self) -> str:
        return self.event_id or self.tracking_number


class PaymentReceived(Strict):
    """Money arrived for the order (gateway event, remittance, support entry)."""

    payment_id: Identifier = Field(examples=["PAY-778"])
    currency: CurrencyCode  # before `amount`, which is validated at its scale
    amount: PositiveAmount = Field(gt=0)
    reference: ShortText | None = None
    invoice_id: ShortText | None = Field(
        default=None,
        description="The invoice it pays; leave out to pay the oldest due invoices first.",
    )
    actor: Actor = Field(default=None, description=ACTOR_DESCRIPTION)

    _at_currency_scale = field_validator("amount")(at_currency_scale)


class LineChange(Strict):
    """A line's new quantity (0 removes it); a new SKU needs its unit price."""

    sku: Sku
    quantity: int = Field(ge=0, le=1_000_000)
    unit_price: UnitPrice | None = Field(default=None, le=MAX_UNIT_PRICE)


class Amendment(Strict):
    """Change an order before its lines ship."""

    changes: list[LineChange] = Field(min_length=1, max_length=500)
    event_id: ShortText | None = Field(default=None, description="De-duplication key.")
    actor: Actor = Field(default=None, description=ACTOR_DESCRIPTION)


class ReturnResolution(StrEnum):
    REFUND = "refund"
    CREDIT = "credit"
    """Keep what was already paid for the returned goods as customer credit."""


class ReturnReceived(Strict):
    """Goods came back after shipment."""

    return_id: Identifier = Field(examples=["RMA-12"])
    lines: list[SkuQuantity] = Field(min_length=1)
    resolution: ReturnResolution = ReturnResolution.REFUND

    _unique = field_validator("lines")(_one_line_per_sku)
    reason: ShortText | None = None
    actor: Actor = Field(default=None, description=ACTOR_DESCRIPTION)


class SupportAction(Strict):
    """A support person's retry or release; the note lands in the order's timeline."""

    note: ShortText | None = None
    actor: Actor = Field(default=None, description=ACTOR_DESCRIPTION)


class CancelRequest(Strict):
    reason: ShortText = Field(examples=["customer changed their mind"])
    actor: Actor = Field(default=None, description=ACTOR_DESCRIPTION)


class OutsideEventNote(Strict):
    """An outside system's event the order keeps a note of but does not act on: a
    delivery, a shipment exception, a failed or refunded payment, or an event the order
    refused (`rejected`), as a signed webhook brought it (docs/webhooks.md)."""

    source: Identifier = Field(examples=["logistics"])
    type: ShortText = Field(examples=["shipment.delivered"])
    event_id: ShortText = Field(description="The sender's id for it (`webhook-id`): noted once.")
    rejected: bool = Field(
        default=False, description="True: the order refused the event; `detail` says why."
    )
    detail: ShortText | None = None


class EventAck(BaseModel):
    """The answer to an event that was accepted."""

    order_id: str
    status: OrderStatus
    duplicate: bool = Field(description="True when this event had already been applied.")
    message: str


class AmendmentAck(EventAck):
    changes: list[str] = Field(description="What the amendment did, one line per effect.")
    total_before: Decimal
    total_after: Decimal


class SupportAck(BaseModel):
    order_id: str
    status: OrderStatus
    message: str


class BookingOutcome(BaseModel):
    """How booking ended, as the `booking` Update (a read) answers once it has: Booked (or
    later) with the shipment requested, OnHold with the reason, or Cancelled with the
    reason."""

    order_id: str
    status: OrderStatus
    hold_reason: str | None = Field(
        default=None, description="OnHold: the reason's code, e.g. credit_limit_exceeded."
    )
    hold_message: str | None = Field(default=None, description="OnHold: the reason, for people.")
    cancellation_reason: str | None = Field(default=None, description="Cancelled: why.")
