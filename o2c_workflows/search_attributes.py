"""The search attributes this project registers, in one place.

The dev runner, the test environments and `docker-compose.temporal.yml` all
register exactly these; a test checks that the compose file agrees.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

ORDER_STATUS = SearchAttributeKey.for_keyword("OrderStatus")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")

ALL: tuple[SearchAttributeKey[str], ...] = (ORDER_STATUS, CUSTOMER_ID)
