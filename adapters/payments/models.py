"""What crosses the boundary to payments."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, model_validator

from adapters.keys import IdempotencyKey
from o2c_domain.money import Amount


class PaymentRecordRequest(BaseModel):
    idempotency_key: IdempotencyKey
    payment_id: str
    order_id: str
    amount: Amount
    currency: str
    reference: str | None = None


class StoreCard(BaseModel):
    """Keep an order's card token in the gateway's vault, before the order starts."""

    idempotency_key: IdempotencyKey
    order_id: str
    card_token: str


class StoredCard(BaseModel):
    """What the order carries instead of the token: the vault's reference to it."""

    card_ref: str
    order_id: str


class AuthoriseCard(BaseModel):
    """Reserve funds on the customer's card (payment on order).

    The card is `card_ref`, a card stored for this order; `card_token` only for orders
    begun before the vault, which carry the token itself. Exactly one of the two.
    """

    idempotency_key: IdempotencyKey
    order_id: str
    card_ref: str | None = None
    card_token: str | None = None
    amount: Amount
    currency: str

    @model_validator(mode="after")
    def _one_card(self) -> AuthoriseCard:
        if (self.card_ref is None) == (self.card_token is None):
            raise ValueError("give exactly one of card_ref and card_token")
        return self


class AuthorisationStatus(StrEnum):
    AUTHORISED = "authorised"
    VOIDED = "voided"


class Authorisation(BaseModel):
    authorisation_id: str
    order_id: str
    amount: Amount
    """Still available to capture."""
    currency: str
    expires_at: datetime
    status: AuthorisationStatus


class CaptureCard(BaseModel):
    """Take (part of) an authorisation; the capture is recorded as a payment.

    BusinessError `authorisation_expired` past `expires_at`, `card_declined`,
    `amount_exceeds_authorisation`.
    """

    idempotency_key: IdempotencyKey
    authorisation_id: str
    payment_id: str
    amount: Amount


class VoidAuthorisation(BaseModel):
    idempotency_key: IdempotencyKey
    authorisation_id: str


class Payment(BaseModel):
    payment_id: str
    order_id: str
    amount: Amount
    currency: str
    reference: str | None = None
    received_at: datetime


class RefundPayment(BaseModel):
    """Give a received payment back (compensation); the same key refunds once."""

    idempotency_key: IdempotencyKey
    payment_id: str
    amount: Amount
    reason: str


class Refund(BaseModel):
    refund_id: str
    payment_id: str
    amount: Amount
    currency: str
