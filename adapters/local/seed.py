"""Demo customers and items, so a fresh install can take orders at once.

Seeding only inserts what is missing: running it at every start is safe and
never resets stock that orders have already taken.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.exc import IntegrityError

from adapters.crm.models import CustomerStatus
from adapters.local.database import LocalDatabase
from adapters.local.tables import CustomerRow, ItemRow, LocalTable, to_minor

PLENTY = 1_000_000


def _customer(
    customer_id: str, name: str, email: str, status: CustomerStatus, currency: str, limit: str
) -> CustomerRow:
    return CustomerRow(
        customer_id=customer_id,
        name=name,
        email=email,
        status=status.value,
        currency=currency,
        credit_limit_minor=to_minor(Decimal(limit), currency),
    )


def _demo_rows() -> list[tuple[str, LocalTable]]:
    """Each demo row with its primary key."""
    on, off = CustomerStatus.ACTIVE, CustomerStatus.BLOCKED
    customers = [
        _customer("CUST-ACME", "Acme Corporation", "billing@acme.example", on, "EUR", "50000.00"),
        _customer("CUST-GLOBEX", "Globex Inc", "accounts@globex.example", on, "USD", "25000.00"),
        _customer("CUST-INITECH", "Initech", "ap@initech.example", off, "EUR", "10000.00"),
    ]
    items = [
        ItemRow(sku="SKU-WIDGET", name="Widget", on_hand=PLENTY),
        ItemRow(sku="SKU-GADGET", name="Gadget", on_hand=PLENTY),
        ItemRow(sku="SKU-GIZMO", name="Gizmo", on_hand=PLENTY),
        ItemRow(sku="SKU-RARE", name="Rare part", on_hand=5),
    ]
    return [(c.customer_id, c) for c in customers] + [(i.sku, i) for i in items]


def seed_demo_data(db: LocalDatabase) -> None:
    """Insert each demo customer and item unless a row with its id already exists."""
    for key, row in _demo_rows():
        try:
            with db.session() as session:
                if session.get(type(row), key) is None:
                    session.add(row)
        except IntegrityError:
            pass  # another process seeded the same row a moment ago
