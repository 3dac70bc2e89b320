"""What reconciliation reads of an order and what it reports."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from adapters.billing.models import CreditNote, Invoice, PaymentApplication
from adapters.logistics.models import Reservation, Shipment
from adapters.payments.models import Authorisation, Payment, Refund
from o2c_workflows.state import OrderState


class InvoiceReading(BaseModel):
    """An invoice as billing holds it, with what lowered its balance."""

    invoice: Invoice
    applications: list[PaymentApplication] = Field(default_factory=list)
    credit_notes: list[CreditNote] = Field(default_factory=list)


class OrderReadings(BaseModel):
    """One order: its own state and what each system holds for it."""

    state: OrderState
    reservations: list[Reservation] = Field(default_factory=list)
    shipments: list[Shipment] = Field(default_factory=list)
    invoices: list[InvoiceReading] = Field(default_factory=list)
    payments: list[Payment] = Field(default_factory=list)
    authorisations: list[Authorisation] = Field(default_factory=list)
    refunds: list[Refund] = Field(default_factory=list)


class Mismatch(BaseModel):
    """One disagreement between a system and the order (or within a system)."""

    order_id: str
    system: str = Field(description="logistics, billing or payments: where it was found.")
    kind: str = Field(description="Which check, e.g. `reserved`, `invoice_amount`.")
    subject: str = Field(description="What was checked: an SKU, an invoice, a payment.")
    expected: str
    found: str

    def line(self) -> str:
        return (
            f"{self.order_id}  {self.system}  {self.kind} {self.subject}: "
            f"expected {self.expected}, found {self.found}"
        )


class ReconciliationReport(BaseModel):
    """What one reconciliation run read and found."""

    generated_at: datetime
    orders_checked: int
    mismatches: list[Mismatch]
    unreadable: list[str] = Field(
        default_factory=list, description="Order ids whose state could not be read."
    )
