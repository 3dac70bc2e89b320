"""One protocol per external system.

The embedded local adapters and, later, HTTP adapters to real products
implement these, and the same contract tests run against each. Methods are
async so that network adapters need no thread per call.
"""

from __future__ import annotations

from typing import Protocol

from adapters.models import (
    ApplyPayment,
    BillingAccount,
    Customer,
    Invoice,
    InvoiceRequest,
    Payment,
    PaymentApplication,
    PaymentRecordRequest,
    Reservation,
    ReserveStock,
    Shipment,
    ShipmentConfirmation,
    ShipmentRequest,
)


class CrmAdapter(Protocol):
    async def get_customer(self, customer_id: str) -> Customer:
        """The customer; BusinessError `customer_not_found` if CRM has none."""
        ...


class BillingAdapter(Protocol):
    async def ensure_account(self, customer: Customer) -> BillingAccount:
        """The customer's billing account, created from CRM data if missing.

        Never two for one customer, even when two first orders arrive at once.
        """
        ...

    async def create_invoice(self, request: InvoiceRequest) -> Invoice:
        """Raise the invoice; the same idempotency key returns the first invoice."""
        ...

    async def apply_payment(self, request: ApplyPayment) -> PaymentApplication:
        """Apply a payment to an invoice, lowering its balance once per key.

        BusinessError `invoice_not_found`, `currency_mismatch` or
        `amount_exceeds_balance` when it cannot be applied.
        """
        ...

    async def list_invoices(self, order_id: str) -> list[Invoice]:
        """The invoices raised for an order, oldest first."""
        ...

    async def list_applications(self, invoice_id: str) -> list[PaymentApplication]:
        """The payments applied to an invoice, oldest first."""
        ...


class LogisticsAdapter(Protocol):
    async def reserve_stock(self, request: ReserveStock) -> Reservation:
        """Check the items and reserve them; BusinessError `item_unknown`, `out_of_stock`."""
        ...

    async def request_shipment(self, request: ShipmentRequest) -> Shipment:
        """Ask the warehouse to ship; the same key returns the first request."""
        ...

    async def confirm_shipment(self, request: ShipmentConfirmation) -> Shipment:
        """Record that the goods left with a carrier and tracking number."""
        ...


class PaymentsAdapter(Protocol):
    async def record_payment(self, request: PaymentRecordRequest) -> Payment:
        """Record a received payment; the same payment id is recorded once."""
        ...
