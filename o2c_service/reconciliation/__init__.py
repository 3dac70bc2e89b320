"""Reconciliation: what each system holds for an order against what the order
knows, as mismatches naming the order, the system, the expected and the found
values (docs/reports.md, "Reconciliation").

`checks` holds the rules as pure functions over what was read; `reading` reads
one order from each system through its adapter; `service` picks the orders and
puts the two together. Nothing here writes to any system.
"""

from o2c_service.reconciliation.checks import reconcile_order
from o2c_service.reconciliation.models import (
    InvoiceReading,
    Mismatch,
    OrderReadings,
    ReconciliationReport,
)

__all__ = [
    "InvoiceReading",
    "Mismatch",
    "OrderReadings",
    "ReconciliationReport",
    "reconcile_order",
]
