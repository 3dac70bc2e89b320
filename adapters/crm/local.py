"""CRM: who the customers are, read from the local `customers` table.

The one change CRM takes is a hold (dunning escalation): the hold row claims its
idempotency key in the transaction that moves the customer from active to on
hold, so a replayed or racing request records one hold. A blocked customer stays
blocked: a hold is the milder of the two.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import update
from sqlmodel import Session, col, select

from adapters.crm.models import Customer, CustomerHold, CustomerStatus
from adapters.errors import BusinessError
from adapters.local.database import LocalDatabase
from adapters.local.tables import CustomerHoldRow, CustomerRow, from_minor, new_id


def _customer(row: CustomerRow) -> Customer:
    return Customer(
        customer_id=row.customer_id,
        name=row.name,
        email=row.email,
        status=CustomerStatus(row.status),
        currency=row.currency,
        credit_limit=from_minor(row.credit_limit_minor, row.currency),
    )


def _existing_customer(session: Session, customer_id: str) -> CustomerRow:
    row = session.get(CustomerRow, customer_id)
    if row is None:
        raise BusinessError("customer_not_found", f"CRM has no customer {customer_id}")
    return row


class LocalCrm:
    """A CRM of customers from `seed_demo_data` or the operator, and their holds."""

    def __init__(self, database: LocalDatabase) -> None:
        self._db = database

    async def get_customer(self, customer_id: str) -> Customer:
        return await asyncio.to_thread(self._get_customer, customer_id)

    async def place_on_hold(self, request: CustomerHold) -> Customer:
        return await asyncio.to_thread(self._place_on_hold, request)

    def _get_customer(self, customer_id: str) -> Customer:
        with self._db.reading() as session:
            return _customer(_existing_customer(session, customer_id))

    def _place_on_hold(self, request: CustomerHold) -> Customer:
        """Active -> on hold once per key; a replay returns the customer as they stand."""

        def find(session: Session) -> Customer | None:
            hold = session.exec(
                select(CustomerHoldRow).where(
                    col(CustomerHoldRow.idempotency_key) == request.idempotency_key
                )
            ).first()
            return (
                None if hold is None else _customer(_existing_customer(session, hold.customer_id))
            )

        def create(session: Session) -> Customer:
            _existing_customer(session, request.customer_id)
            session.add(
                CustomerHoldRow(
                    hold_id=new_id("HLD"),
                    idempotency_key=request.idempotency_key,
                    customer_id=request.customer_id,
                    reason=request.reason,
                )
            )
            session.flush()  # claims the idempotency key before the status moves
            session.exec(
                update(CustomerRow)
                .where(
                    col(CustomerRow.customer_id) == request.customer_id,
                    col(CustomerRow.status) == CustomerStatus.ACTIVE.value,
                )
                .values(status=CustomerStatus.ON_HOLD.value)
                .execution_options(synchronize_session=False)
            )
            row = _existing_customer(session, request.customer_id)
            session.refresh(row)
            return _customer(row)

        return self._db.run_once(find, create)
