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

from datetime import date
from typing import Protocol

from adapters.models import (
    AmendReservation,
    ApplyPayment,
    Authorisation,
    AuthoriseCard,
    BillingAccount,
    CancelShipment,
    CaptureCard,
    CreditBalance,
    CreditNote,
    CreditNoteRequest,
    Customer,
    CustomerCreditEntry,
    CustomerHold,
    DunningNotice,
    DunningRecord,
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
    ReturnReceipt,
    Shipment,
    ShipmentConfirmation,
    ShipmentRequest,
    VoidAuthorisation,
    VoidInvoice,
)


class CrmAdapter(Protocol):
    async def get_customer(self, customer_id: str) -> Customer:
        """The customer; BusinessError `customer_not_found` if CRM has none."""
        ...

    async def place_on_hold(self, request: CustomerHold) -> Customer:
        """No new orders for this customer (dunning escalation); once per key."""
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

    async def create_credit_note(self, request: CreditNoteRequest) -> CreditNote:
        """Raise a credit note against an invoice; the same key returns the first."""
        ...

    async def find_credit_note(self, idempotency_key: IdempotencyKey) -> CreditNote | None: ...

    async def post_customer_credit(self, entry: CustomerCreditEntry) -> CreditBalance:
        """Add (or, negative, use) customer credit once per key.

        BusinessError `insufficient_credit` if the balance would go below zero.
        """
        ...

    async def customer_credit(self, account_id: str) -> CreditBalance: ...

    async def paid_into(self, account_id: str, payment_id: str) -> bool:
        """Whether the payment's money reached this account (applied to one of its
        invoices or kept on it as credit): credit is only ever paid back to such a payment."""
        ...

    async def send_dunning_notice(self, notice: DunningNotice) -> DunningRecord:
        """Send a reminder (or escalation notice) for an overdue invoice, once per key."""
        ...

    async def list_open_invoices(self) -> list[Invoice]:
        """Every invoice with a balance left, for receivables ageing."""
        ...

    async def list_invoices_dated(self, start: date, end: date) -> list[Invoice]:
        """Invoices dated from `start` to `end` inclusive (credit sales, for DSO)."""
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

    async def amend_reservation(self, request: AmendReservation) -> Reservation:
        """Change reserved quantities (and the shipment request) before shipping."""
        ...

    async def receive_return(self, receipt: ReturnReceipt) -> Shipment:
        """Take returned goods back into stock once per key.

        BusinessError `over_return` if more comes back than has shipped.
        """
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

    async def authorise_card(self, request: AuthoriseCard) -> Authorisation:
        """Reserve funds on a card; BusinessError `card_declined`. Once per key."""
        ...

    async def find_authorisation(self, idempotency_key: IdempotencyKey) -> Authorisation | None: ...

    async def capture_card(self, request: CaptureCard) -> Payment:
        """Take funds from an authorisation, recorded as a payment (find it with find_payment)."""
        ...

    async def void_authorisation(self, request: VoidAuthorisation) -> Authorisation:
        """Release what is left of an authorisation (compensation, or after the last capture)."""
        ...
