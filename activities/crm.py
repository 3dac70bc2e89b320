"""The CRM's activities: who the customer is, and putting a customer on hold.

One module per system, as the adapters are packaged (`adapters/crm/`): what
the order asks of CRM reads in one place. `OrderActivities` composes this
class with the other systems' and supplies the adapter.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.calls import CustomerCheck, translated
from adapters.crm.models import Customer, CustomerHold, CustomerStatus
from adapters.crm.protocol import CrmAdapter


class CrmActivities:
    """The `crm.*` activities, over the CRM adapter of the composing class."""

    crm: CrmAdapter

    @activity.defn(name="crm.validate_customer")
    async def validate_customer(self, check: CustomerCheck) -> Customer:
        """The customer from CRM, refused if CRM does not know or has blocked them."""
        customer = await translated(self.crm.get_customer(check.customer_id))
        if customer.status is CustomerStatus.BLOCKED:
            raise ApplicationError(
                f"customer {customer.customer_id} is blocked in CRM",
                type="customer_blocked",
                non_retryable=True,
            )
        if customer.status is CustomerStatus.ON_HOLD:
            raise ApplicationError(
                f"customer {customer.customer_id} is on hold for overdue invoices",
                type="customer_on_hold",
                non_retryable=True,
            )
        return customer

    @activity.defn(name="crm.place_on_hold")
    async def place_customer_on_hold(self, request: CustomerHold) -> Customer:
        return await translated(self.crm.place_on_hold(request))
