"""CRM's REST contract (docs/contracts/crm.openapi.json is generated from it)."""

from __future__ import annotations

from adapters.crm.models import Customer, CustomerHold
from adapters.http.contract import Contract, Operation

CRM_CONTRACT = Contract(
    system="crm",
    title="CRM",
    description="Customers: who they are, their credit limit, and holds on new orders.",
    operations=(
        Operation(
            "get_customer",
            "GET",
            "/customers/{customer_id}",
            Customer,
            "The customer; 404 `customer_not_found` if CRM has none",
        ),
        Operation(
            "place_on_hold",
            "POST",
            "/holds",
            Customer,
            "No new orders for this customer (dunning escalation); once per key",
            body=CustomerHold,
        ),
    ),
)
