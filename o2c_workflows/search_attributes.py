"""The search attributes this project registers, in one place.

The dev runner, the test environments and `docker-compose.temporal.yml` all
register exactly these; a test checks that the compose file agrees.
"""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey

ORDER_STATUS = SearchAttributeKey.for_keyword("OrderStatus")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
HOLD_REASON = SearchAttributeKey.for_keyword("HoldReason")
"""Set while an order is OnHold: the error code, e.g. `out_of_stock`, `credit_limit_exceeded`."""

PAYMENT_DUE = SearchAttributeKey.for_datetime("PaymentDueDate")
"""The next unpaid due date: `PaymentDueDate < "2026-10-01T00:00:00Z"` finds late orders."""
DUNNING_LEVEL = SearchAttributeKey.for_keyword("DunningLevel")
"""The last reminder or escalation sent, e.g. `second_reminder`."""

ALL: tuple[SearchAttributeKey[Any], ...] = (
    ORDER_STATUS,
    CUSTOMER_ID,
    HOLD_REASON,
    PAYMENT_DUE,
    DUNNING_LEVEL,
)
