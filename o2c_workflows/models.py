"""The order as a caller sends it: lines, money, terms, and the status values.

These models travel through Temporal (workflow input) and the HTTP API, so one
definition validates both. What moves an order is in `messages`, what it knows
in `state`.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.config import JsonDict

from o2c_domain.lines import Sku
from o2c_domain.money import (
    MAX_AMOUNT_DIGITS,
    MAX_UNIT_PRICE,
    Amount,
    CurrencyCode,
    UnitPrice,
    exponent,
    fits_currency,
    normalise,
    quantum,
)

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
    INSTALMENTS = "instalments"


class Instalment(BaseModel):
    due_date: date
    amount: Amount


class PaymentTerms(Strict):
    """When an invoice falls due: on receipt, NET n days after it, or in instalments.

    Instalments split each invoice into `instalments` equal parts (the last one
    takes the rounding), due every `net_days` days after the invoice date.
    """

    kind: PaymentTermsKind = PaymentTermsKind.NET
    net_days: int = Field(default=30, ge=0, le=365)
    instalments: int = Field(default=1, ge=1, le=24)

    @model_validator(mode="after")
    def _days_match_kind(self) -> Self:
        if self.kind is PaymentTermsKind.DUE_ON_RECEIPT and self.net_days != 0:
            raise ValueError("net_days must be 0 when kind is due_on_receipt")
        if self.kind is not PaymentTermsKind.DUE_ON_RECEIPT and self.net_days == 0:
            raise ValueError(f"net_days must be at least 1 when kind is {self.kind.value}")
        if (self.kind is PaymentTermsKind.INSTALMENTS) != (self.instalments > 1):
            raise ValueError("instalments must be 2 or more exactly when kind is instalments")
        return self

    @classmethod
    def due_on_receipt(cls) -> PaymentTerms:
        return cls(kind=PaymentTermsKind.DUE_ON_RECEIPT, net_days=0)

    def due_date(self, invoice_date: date) -> date:
        """When the (first part of the) invoice falls due."""
        return invoice_date + timedelta(days=self.net_days)

    def schedule(self, invoice_date: date, amount: Decimal, currency: str) -> list[Instalment]:
        """The invoice's due dates and amounts; the parts add up to `amount` exactly."""
        part = (amount / self.instalments).quantize(quantum(currency), rounding=ROUND_DOWN)
        parts = [part] * (self.instalments - 1) + [amount - part * (self.instalments - 1)]
        return [
            Instalment(due_date=invoice_date + timedelta(days=self.net_days * (n + 1)), amount=a)
            for n, a in enumerate(parts)
        ]


class CardPayment(Strict):
    """Payment on order: the card is authorised at booking and captured per invoice.

    Callers send `card_token`; o2c stores it in the payments system's vault and the
    order carries the vault's `card_ref` instead, so no token is in its history. Orders
    begun before the vault carry the token. Exactly one of the two.
    """

    card_token: ShortText | None = Field(
        default=None,
        examples=["tok_visa_4242"],
        description="The payment gateway's token for the card: what callers send.",
    )
    card_ref: ShortText | None = Field(
        default=None,
        description="Set by o2c, not by callers: the payments system's reference to the "
        "card it stored for this order.",
    )

    @model_validator(mode="after")
    def _one_card(self) -> Self:
        if (self.card_token is None) == (self.card_ref is None):
            raise ValueError("give card_token (the gateway's token for the card)")
        return self


class OrderLine(Strict):
    sku: Sku
    quantity: int = Field(gt=0, le=1_000_000)
    unit_price: UnitPrice = Field(le=MAX_UNIT_PRICE)

    def amount(self) -> Decimal:
        """Quantity times price: exact, because the price is already at currency scale."""
        return self.quantity * self.unit_price


ORDER_REQUEST_EXAMPLE: JsonDict = {
    "source_system": "webshop",
    "source_order_id": "SO-DOCS-1",
    "customer_id": "CUST-ACME",
    "currency": "EUR",
    "lines": [
        {"sku": "SKU-WIDGET", "quantity": 2, "unit_price": "12.50"},
        {"sku": "SKU-GADGET", "quantity": 1, "unit_price": "99.99"},
    ],
    "payment_terms": {"kind": "net", "net_days": 30},
}
"""What the API docs pre-fill: the seeded demo customer and items, and an order id no
README walkthrough uses, so that sending it as is books an order on a fresh `o2c dev`."""


class OrderRequest(Strict):
    """What an external system sends to create an order."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [ORDER_REQUEST_EXAMPLE]}
    )

    source_system: Identifier = Field(examples=["webshop"])
    source_order_id: Identifier = Field(examples=["SO-DOCS-1"])
    customer_id: Identifier = Field(examples=["CUST-ACME"])
    currency: CurrencyCode
    lines: list[OrderLine] = Field(min_length=1, max_length=500)
    payment_terms: PaymentTerms = Field(default_factory=PaymentTerms)
    payment_method: CardPayment | None = Field(
        default=None, description="A card to charge (payment on order); none: pay on invoice."
    )

    @field_validator("lines")
    @classmethod
    def _prices_fit_currency(cls, lines: list[OrderLine], info: ValidationInfo) -> list[OrderLine]:
        skus = [line.sku for line in lines]
        if len(set(skus)) != len(skus):
            repeated = sorted({sku for sku in skus if skus.count(sku) > 1})
            raise ValueError(f"each SKU may appear on one line only; repeated: {repeated}")
        currency = info.data.get("currency")
        if currency is None:  # the currency itself failed validation and is reported there
            return lines
        for index, line in enumerate(lines):
            if not fits_currency(line.unit_price, currency):
                raise ValueError(
                    f"lines[{index}].unit_price {line.unit_price} has more decimal places "
                    f"than {currency} allows"
                )
        total = sum((line.quantity * line.unit_price for line in lines), Decimal(0))
        if total >= Decimal(10) ** (MAX_AMOUNT_DIGITS - exponent(currency)):
            raise ValueError(
                f"the order total {total} {currency} has more than {MAX_AMOUNT_DIGITS} digits"
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
