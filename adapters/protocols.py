"""One protocol per external system.

The embedded local adapters and, later, HTTP adapters to real products
implement these, and the same contract tests run against each. Methods are
async so that network adapters need no thread per call.

Every method that changes something takes an idempotency key and has a
`find_*` twin that looks the operation up by that key: after an
`UnknownOutcome` the activity asks before it tries again. Undo operations
(release, cancel, void, refund) exist for compensation and are idempotent too.
Failures are `adapters.errors`: `BusinessError` with a code, or a
`SystemFailure` subclass.
"""

from __future__ import annotations

from typing import Protocol

from adapters.models import (
    ApplyPayment,
    BillingAccount,
    CancelShipment,
    Customer,
    IdempotencyKey,
    Invoice,
    InvoiceRequest,
    OpenBalance,
    Payment,
    PaymentApplication,
    PaymentRecordRequest,
    Refund,
    RefundPayment,
    ReleaseReservation,
    Reservation,
    ReserveStock,
    Shipment,
    ShipmentConfirmation,
    ShipmentRequest,
    VoidInvoice,
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

    async def find_invoice(self, idempotency_key: IdempotencyKey) -> Invoice | None:
        """The invoice created with this key, if any."""
        ...

    async def find_application(self, idempotency_key: IdempotencyKey) -> PaymentApplication | None:
        """The payment application made with this key, if any."""
        ...

    async def void_invoice(self, request: VoidInvoice) -> Invoice:
        """Void an open invoice; BusinessError `invoice_has_payments` once cash is applied."""
        ...

    async def open_balance(self, customer_id: str) -> OpenBalance:
        """What the customer owes on open invoices (zero, in no currency, if no account)."""
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

    async def find_reservation(self, idempotency_key: IdempotencyKey) -> Reservation | None: ...

    async def find_shipment(self, idempotency_key: IdempotencyKey) -> Shipment | None:
        """The shipment requested with this key, if any."""
        ...

    async def release_reservation(self, request: ReleaseReservation) -> Reservation:
        """Return reserved stock once, however often asked."""
        ...

    async def cancel_shipment(self, request: CancelShipment) -> Shipment:
        """Withdraw a shipment request; BusinessError `shipment_already_confirmed` if it left."""
        ...


class PaymentsAdapter(Protocol):
    async def record_payment(self, request: PaymentRecordRequest) -> Payment:
        """Record a received payment; the same payment id is recorded once."""
        ...

    async def find_payment(self, idempotency_key: IdempotencyKey) -> Payment | None: ...

    async def refund_payment(self, request: RefundPayment) -> Refund:
        """Pay money back; the same key refunds once, never more than was received."""
        ...
