"""What crosses the boundary to payments."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from adapters.keys import IdempotencyKey
from o2c_domain.money import Amount


class PaymentRecordRequest(BaseModel):
    idempotency_key: IdempotencyKey
    payment_id: str
    order_id: str
    amount: Amount
    currency: str
    reference: str | None = None


class AuthoriseCard(BaseModel):
    """Reserve funds on the customer's card (payment on order)."""

    idempotency_key: IdempotencyKey
    order_id: str
    card_token: str
    amount: Amount
    currency: str


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
