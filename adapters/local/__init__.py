"""The embedded adapters: CRM, billing, logistics and payments in one local database.

They let the whole order-to-cash flow run on one machine (a SQLite file) or on
a shared PostgreSQL, with the same idempotency and business errors the real
systems' adapters must honour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from adapters.billing.local import LocalBilling
from adapters.crm.local import LocalCrm
from adapters.local.database import LocalDatabase
from adapters.local.seed import seed_demo_data
from adapters.logistics.local import LocalLogistics
from adapters.payments.local import LocalPayments

if TYPE_CHECKING:
    from adapters.billing.protocol import BillingAdapter
    from adapters.crm.protocol import CrmAdapter
    from adapters.logistics.protocol import LogisticsAdapter
    from adapters.payments.protocol import PaymentsAdapter

    # mypy proves here that each local adapter satisfies its protocol.
    _CONFORMS: tuple[
        type[CrmAdapter], type[BillingAdapter], type[LogisticsAdapter], type[PaymentsAdapter]
    ] = (LocalCrm, LocalBilling, LocalLogistics, LocalPayments)

__all__ = [
    "LocalAdapters",
    "LocalBilling",
    "LocalCrm",
    "LocalDatabase",
    "LocalLogistics",
    "LocalPayments",
    "open_local_adapters",
    "seed_demo_data",
]


@dataclass(frozen=True)
class LocalAdapters:
    """The four local adapters over one database, as a worker wires them."""

    database: LocalDatabase
    crm: LocalCrm
    billing: LocalBilling
    logistics: LocalLogistics
    payments: LocalPayments


def open_local_adapters(
    database_url: str, *, schema: str | None = None, seed: bool = True
) -> LocalAdapters:
    """Connect, create missing tables and (unless `seed=False`) the demo data."""
    database = LocalDatabase.from_url(database_url, schema=schema)
    database.create_schema()
    if seed:
        seed_demo_data(database)
    return LocalAdapters(
        database=database,
        crm=LocalCrm(database),
        billing=LocalBilling(database),
        logistics=LocalLogistics(database),
        payments=LocalPayments(database),
    )
