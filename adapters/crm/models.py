"""What crosses the boundary to CRM."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel

from adapters.keys import IdempotencyKey
from o2c_domain.money import Amount


class CustomerStatus(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"
    ON_HOLD = "on_hold"
    """Dunning escalated: no new orders until the customer's debt is sorted out."""


class CustomerHold(BaseModel):
    """Put a customer on hold for new orders (dunning escalation)."""

    idempotency_key: IdempotencyKey
    customer_id: str
    reason: str


class Customer(BaseModel):
    """A customer as CRM knows it."""

    customer_id: str
    name: str
    email: str
    status: CustomerStatus = CustomerStatus.ACTIVE
    currency: str
    credit_limit: Amount
