"""The order, the events that move it, and the state the workflow exposes.

These models travel through Temporal (workflow input, updates, signals, query
results) and through the HTTP API, so one definition validates both.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from o2c_workflows.money import Amount, CurrencyCode, fits_currency, normalise

ORDER_ID_SEPARATOR = ":"

Identifier = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        description="1-64 letters, digits, '_', '.', '-'; starts with a letter or digit.",
    ),
]
"""An id from a caller's system. No ':' so that an order id can be split again."""

Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
ShortText = Annotated[str, Field(min_length=1, max_length=128)]


class Strict(BaseModel):
    """Base for inputs: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class OrderStatus(StrEnum):
    """Where an order stands. The values are what the Temporal UI filters on."""

    ENTERED = "Entered"
    BOOKED = "Booked"
    SHIPPED = "Shipped"
    INVOICED = "Invoiced"
    PAID = "Paid"
    CLOSED = "Closed"
    CANCELLED = "Cancelled"
    ON_HOLD = "OnHold"


class PaymentTermsKind(StrEnum):
    DUE_ON_RECEIPT = "due_on_receipt"
    NET = "net"


class PaymentTerms(Strict):
    """When an invoice falls due: on receipt, or NET n days after the invoice date."""

    kind: PaymentTermsKind = PaymentTermsKind.NET
    net_days: int = Field(default=30, ge=0, le=365)

    @model_validator(mode="after")
    def _days_match_kind(self) -> Self:
        if self.kind is PaymentTermsKind.DUE_ON_RECEIPT and self.net_days != 0:
            raise ValueError("net_days must be 0 when kind is due_on_receipt")
        if self.kind is PaymentTermsKind.NET and self.net_days == 0:
            raise ValueError("net_days must be at least 1 when kind is net")
        return self

    @classmethod
    def due_on_receipt(cls) -> PaymentTerms:
        return cls(kind=PaymentTermsKind.DUE_ON_RECEIPT, net_days=0)

    def due_date(self, invoice_date: date) -> date:
        return invoice_date + timedelta(days=self.net_days)


class OrderLine(Strict):
    sku: Sku
    quantity: int = Field(gt=0, le=1_000_000)
    unit_price: Amount = Field(ge=0, le=Decimal("1000000000"))

    def amount(self) -> Decimal:
        """Quantity times price: exact, because the price is already at currency scale."""
        return self.quantity * self.unit_price


class OrderRequest(Strict):
    """What an external system sends to create an order."""

    source_system: Identifier = Field(examples=["webshop"])
    source_order_id: Identifier = Field(examples=["SO-1001"])
    customer_id: Identifier = Field(examples=["CUST-ACME"])
    currency: CurrencyCode
    lines: list[OrderLine] = Field(min_length=1, max_length=500)
    payment_terms: PaymentTerms = Field(default_factory=PaymentTerms)

    @field_validator("lines")
    @classmethod
    def _prices_fit_currency(cls, lines: list[OrderLine], info: ValidationInfo) -> list[OrderLine]:
        currency = info.data.get("currency")
        if currency is None:  # the currency itself failed validation and is reported there
            return lines
        for index, line in enumerate(lines):
            if not fits_currency(line.unit_price, currency):
                raise ValueError(
                    f"lines[{index}].unit_price {line.unit_price} has more decimal places "
                    f"than {currency} allows"
                )
        return [
            line.model_copy(update={"unit_price": normalise(line.unit_price, currency)})
            for line in lines
        ]

    @property
    def order_id(self) -> str:
        return order_id_for(self.source_system, self.source_order_id)

    def total(self) -> Decimal:
        return normalise(sum((line.amount() for line in self.lines), Decimal(0)), self.currency)


def order_id_for(source_system: str, source_order_id: str) -> str:
    """The order id, also the workflow id: the same caller order always maps to one order."""
    return f"{source_system}{ORDER_ID_SEPARATOR}{source_order_id}"


class ShipmentConfirmed(Strict):
    """The 3PL (or a support person) confirms that the goods left."""

    carrier: ShortText = Field(examples=["DHL"])
    tracking_number: ShortText = Field(examples=["JD0146000012345"])
    event_id: ShortText | None = Field(
        default=None, description="De-duplication key; defaults to the tracking number."
    )

    @property
    def dedup_key(self) -> str:
        return self.event_id or self.tracking_number


class PaymentReceived(Strict):
    """Money arrived for the order (gateway event, remittance, support entry)."""

    payment_id: Identifier = Field(examples=["PAY-778"])
    amount: Amount = Field(gt=0)
    currency: CurrencyCode
    reference: ShortText | None = None


class EventAck(BaseModel):
    """The answer to a shipment or payment event that was accepted."""

    order_id: str
    status: OrderStatus
    duplicate: bool = Field(description="True when this event had already been applied.")
    message: str


class TimelineEntry(BaseModel):
    status: OrderStatus
    at: datetime
    note: str = ""


class BookingState(BaseModel):
    customer_name: str
    billing_account_id: str
    reservation_id: str


class ShipmentState(BaseModel):
    shipment_id: str
    requested_at: datetime
    carrier: str | None = None
    tracking_number: str | None = None
    confirmed_at: datetime | None = None
    event_id: str | None = None


class InvoiceState(BaseModel):
    invoice_id: str
    amount: Amount
    balance: Amount
    issued_at: datetime
    due_date: date


class PaymentState(BaseModel):
    payment_id: str
    amount: Amount
    currency: str
    reference: str | None = None
    received_at: datetime
    applied_to: str | None = Field(
        default=None, description="The invoice it was applied to; none yet if paid before invoice."
    )


class HoldKind(StrEnum):
    CREDIT = "credit"
    """Over the credit limit: support releases it (or cancels the order)."""
    FALLOUT = "fallout"
    """A step failed in a way a person must fix: support retries it (or cancels)."""


class HoldState(BaseModel):
    """Why the order is parked, where, and where it resumes."""

    kind: HoldKind
    step: str
    code: str = Field(description="The error code, e.g. out_of_stock, credit_limit_exceeded.")
    message: str
    since: datetime
    resume_status: OrderStatus


class CompensationStatus(StrEnum):
    DONE = "done"
    NOTHING_TO_UNDO = "nothing_to_undo"
    FAILED = "failed"


class CompensationRecord(BaseModel):
    step: str
    status: CompensationStatus
    note: str
    at: datetime


class SupportAction(Strict):
    """A support person's retry or release; the note lands in the order's timeline."""

    note: ShortText | None = None


class CancelRequest(Strict):
    reason: ShortText = Field(examples=["customer changed their mind"])


class SupportAck(BaseModel):
    order_id: str
    status: OrderStatus
    message: str


class OrderState(BaseModel):
    """Everything the order knows now: what the query returns and the API shows."""

    order_id: str
    status: OrderStatus
    order: OrderRequest
    total: Amount
    booking: BookingState | None = None
    shipment: ShipmentState | None = None
    invoice: InvoiceState | None = None
    payments: list[PaymentState] = Field(default_factory=list)
    hold: HoldState | None = None
    cancellation_reason: str | None = None
    compensations: list[CompensationRecord] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)

    @property
    def paid(self) -> Decimal:
        return sum((payment.amount for payment in self.payments), Decimal(0))

    @property
    def shipped(self) -> bool:
        """Past the point of no return: the goods left, cancelling is now a return."""
        return self.shipment is not None and self.shipment.confirmed_at is not None


class OrderSummary(BaseModel):
    """What a finished order workflow returns."""

    order_id: str
    status: OrderStatus
    customer_id: str
    currency: str
    total: Amount
    invoiced: Amount
    paid: Amount
    invoice_id: str | None
    tracking_number: str | None
    cancellation_reason: str | None = None
    compensations: list[CompensationRecord] = Field(default_factory=list)
    closed_at: datetime
