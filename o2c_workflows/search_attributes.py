"""The search attributes this project registers, in one place.

The dev runner, the test environments and `docker-compose.temporal.yml` all
register exactly these; a test checks that the compose file agrees.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

ORDER_STATUS = SearchAttributeKey.for_keyword("OrderStatus")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
HOLD_REASON = SearchAttributeKey.for_keyword("HoldReason")
"""Set while an order is OnHold: the error code, e.g. `out_of_stock`, `credit_limit_exceeded`."""

ALL: tuple[SearchAttributeKey[str], ...] = (ORDER_STATUS, CUSTOMER_ID, HOLD_REASON)
