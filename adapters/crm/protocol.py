"""What CRM must do for the orchestrator.

Every method that changes something takes an idempotency key and has a `find_*`
twin to look it up after an unknown outcome; failures are `adapters.errors`.
"""

from __future__ import annotations

from typing import Protocol

from adapters.crm.models import Customer, CustomerHold


class CrmAdapter(Protocol):
    async def get_customer(self, customer_id: str) -> Customer:
        """The customer; BusinessError `customer_not_found` if CRM has none."""
        ...

    async def place_on_hold(self, request: CustomerHold) -> Customer:
        """No new orders for this customer (dunning escalation); once per key."""
        ...
