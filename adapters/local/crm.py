"""CRM: who the customers are, read from the local `customers` table."""

from __future__ import annotations

import asyncio

from adapters.errors import BusinessError
from adapters.local.database import LocalDatabase
from adapters.local.tables import CustomerRow, from_minor
from adapters.models import Customer, CustomerStatus


class LocalCrm:
    """A read-only CRM; customers come from `seed_demo_data` or the operator."""

    def __init__(self, database: LocalDatabase) -> None:
        self._db = database

    async def get_customer(self, customer_id: str) -> Customer:
        return await asyncio.to_thread(self._get_customer, customer_id)

    def _get_customer(self, customer_id: str) -> Customer:
        with self._db.session() as session:
            row = session.get(CustomerRow, customer_id)
        if row is None:
            raise BusinessError("customer_not_found", f"CRM has no customer {customer_id}")
        return Customer(
            customer_id=row.customer_id,
            name=row.name,
            email=row.email,
            status=CustomerStatus(row.status),
            currency=row.currency,
            credit_limit=from_minor(row.credit_limit_minor, row.currency),
        )
