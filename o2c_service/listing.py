"""Listing orders: Temporal's visibility query from the filters, and its pages."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from pydantic import BaseModel, Field

from o2c_service.outcomes import InvalidParameter
from o2c_workflows.models import OrderStatus


class OrderListItem(BaseModel):
    order_id: str
    status: OrderStatus | None
    customer_id: str | None
    hold_reason: str | None
    execution_status: str
    started_at: datetime | None
    closed_at: datetime | None
    rejected_webhooks: int = Field(
        default=0,
        description="Webhook events this order refused, awaiting support: "
        "GET /webhooks/rejected?order_id=...",
    )


class OrderPage(BaseModel):
    """One page of a listing; send `next_page_token` back as `page_token` for the next."""

    orders: list[OrderListItem]
    next_page_token: str | None = Field(description="None on the last page.")
    total: int = Field(description="Orders matching the filters, on every page together.")


def quotable(value: str) -> str:
    if "'" in value or "\\" in value:
        raise ValueError(f"{value!r} cannot be used in a search")
    return value


def decode_page_token(token: str | None) -> bytes | None:
    if token is None:
        return None
    try:
        return base64.urlsafe_b64decode(token.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError) as error:
        raise InvalidParameter("page_token", "page_token is not valid") from error
