"""The bodies the 3PL and the payment gateway send (docs/webhooks.md): `type`, the
event's `timestamp`, and its `data`, told apart by `type`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from o2c_domain.lines import SkuQuantity
from o2c_domain.money import CurrencyCode, PlainAmount
from o2c_service.webhooks.records import Outcome
from o2c_workflows.models import Identifier, ShortText, Strict

OrderId = Annotated[
    str,
    Field(min_length=1, max_length=160, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$",
          examples=["webshop:SO-1001"], description="The order's id, as o2c gave it."),
]  # fmt: skip
EventTime = Annotated[datetime, Field(description="When it happened, at the sender (ISO 8601).")]


class ShipmentConfirmedData(Strict):
    order_id: OrderId
    carrier: ShortText = Field(examples=["DHL"])
    tracking_number: ShortText = Field(examples=["JD0146000012345"])
    lines: list[SkuQuantity] | None = Field(
        default=None, description="What left; leave out for everything not yet shipped."
    )


class ShipmentNoteData(Strict):
    order_id: OrderId
    tracking_number: ShortText | None = None
    carrier: ShortText | None = None
    reason: ShortText | None = Field(default=None, examples=["address not found"])


class ShipmentConfirmedEvent(Strict):
    """Goods left: the order ships them (and invoices what shipped)."""

    type: Literal["shipment.confirmed"]
    timestamp: EventTime
    data: ShipmentConfirmedData


class ShipmentNoteEvent(Strict):
    """A delivery or a shipment exception: noted on the order, not acted on."""

    type: Literal["shipment.delivered", "shipment.exception"]
    timestamp: EventTime
    data: ShipmentNoteData


LogisticsEvent = Annotated[ShipmentConfirmedEvent | ShipmentNoteEvent, Field(discriminator="type")]


class PaymentSucceededData(Strict):
    order_id: OrderId
    payment_id: Identifier = Field(examples=["pay_29QQoUBi66xm2f"])
    currency: CurrencyCode
    amount: PlainAmount = Field(gt=0)
    invoice_id: ShortText | None = Field(
        default=None, description="The invoice it pays; leave out to pay the oldest first."
    )


class PaymentNoteData(Strict):
    order_id: OrderId
    payment_id: Identifier
    currency: CurrencyCode | None = None
    amount: PlainAmount | None = None
    reason: ShortText | None = Field(default=None, examples=["card declined"])


class PaymentSucceededEvent(Strict):
    """Money arrived: the order records it and applies it to its invoices."""

    type: Literal["payment.succeeded"]
    timestamp: EventTime
    data: PaymentSucceededData


class PaymentNoteEvent(Strict):
    """A failed or refunded payment: noted on the order, not acted on."""

    type: Literal["payment.failed", "payment.refunded"]
    timestamp: EventTime
    data: PaymentNoteData


PaymentsEvent = Annotated[PaymentSucceededEvent | PaymentNoteEvent, Field(discriminator="type")]


class WebhookAnswer(BaseModel):
    """What became of a delivery; a copy of it (the same `webhook-id`) gets the same
    answer with `replayed: true`, and nothing is done again."""

    webhook_id: str
    source: str
    type: str
    order_id: str
    outcome: Outcome = Field(
        description="applied: the order applied it; accepted: taken durably, still "
        "applying; noted: kept on the order; rejected: refused by the order (or no such "
        "order), recorded for support (GET /webhooks/rejected)."
    )
    message: str
    replayed: bool = False


class RejectedWebhook(BaseModel):
    source: str
    webhook_id: str
    type: str | None
    order_id: str | None
    reason: str | None
    received_at: datetime


class RejectedWebhooks(BaseModel):
    """Rejected webhook events, newest first; `total` counts every match."""

    events: list[RejectedWebhook]
    total: int
