"""Stand-ins for the order activities, registered under the same names.

They answer from memory and remember every call, so workflow tests can check
what the workflow asked for (and with which idempotency key) without a database.
Each stub names the real activity it stands in for: it is registered under that
activity's name, and mypy holds it to that activity's argument and result types.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.order_activities import (
    CustomerCheck,
    OrderActivities,
    Undo,
    UndoResult,
    activities_of,
    activity_name,
)
from adapters.billing.models import (
    ApplyPayment,
    BillingAccount,
    CreditBalance,
    CreditNote,
    CreditNoteRequest,
    CustomerCreditEntry,
    DunningNotice,
    DunningRecord,
    Invoice,
    InvoiceRequest,
    InvoiceStatus,
    OpenBalance,
    PaymentApplication,
    RefundTarget,
)
from adapters.crm.models import Customer, CustomerHold
from adapters.logistics.models import (
    AmendReservation,
    Reservation,
    ReserveStock,
    ReturnReceipt,
    Shipment,
    ShipmentConfirmation,
    ShipmentRequest,
    ShipmentStatus,
)
from adapters.payments.models import (
    Authorisation,
    AuthorisationStatus,
    AuthoriseCard,
    CaptureCard,
    Payment,
    PaymentRecordRequest,
    Refund,
    RefundPayment,
)

S = TypeVar("S")
A = TypeVar("A")
R = TypeVar("R")

DECLINED = ("tok_declined", "card_declined")
"""Cards the stub gateway declines: tokens (orders begun before the vault) and references."""


def stands_in_for(
    real: Callable[[Any, A], Awaitable[R]],
) -> Callable[[Callable[[S, A], Awaitable[R]]], Callable[[S, A], Awaitable[R]]]:
    """Register the decorated stub under `real`'s activity name; mypy holds it to `real`'s
    argument and result types."""
    return activity.defn(name=activity_name(real))


def business_error(code: str) -> ApplicationError:
    return ApplicationError(f"stub says {code}", type=code, non_retryable=True)


def system_error() -> ApplicationError:
    return ApplicationError("stub system is down", type="system_unavailable")


class Gate:
    """Holds one activity call until the test opens it, and tells the test it got there:
    a race made deterministic, with no sleep."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.opened = asyncio.Event()

    async def pass_through(self) -> None:
        self.reached.set()
        await self.opened.wait()


class StubActivities:
    def __init__(self, *, unknown_customers: frozenset[str] = frozenset()) -> None:
        self.unknown_customers = unknown_customers
        self.calls: Counter[str] = Counter()
        self.keys: list[str] = []
        self.undone: list[str] = []
        self.balances: dict[str, Decimal] = {}
        self.credit_limit = Decimal("100000.00")
        self.dunning: list[tuple[str, str, int]] = []
        self.customers_on_hold: list[str] = []
        self.customer_credit = Decimal(0)
        self.refunds: list[tuple[str, Decimal]] = []
        self.authorisations: dict[str, Decimal] = {}
        self.amended: list[list[tuple[str, int]]] = []
        self.open_balance_amount = Decimal(0)
        # Payments that did not pay into the account a credit refund names.
        self.foreign_payments: set[str] = set()
        # Activity name -> the error every call raises until `heal(name)`.
        self.failing: dict[str, ApplicationError] = {}
        # Cleared to hold an order in Entered (or Shipped) until a test sets it.
        self.booking_may_finish = asyncio.Event()
        self.booking_may_finish.set()
        self.invoicing_may_finish = asyncio.Event()
        self.invoicing_may_finish.set()
        self.gates: dict[str, Gate] = {}
        """`<activity>:<event id>` -> the gate that call waits at."""

    def gate(self, call: str) -> Gate:
        """Hold the call named `<activity>:<event id>` (e.g. `record_payment:PAY-2`)."""
        self.gates[call] = Gate()
        return self.gates[call]

    async def _at_gate(self, call: str) -> None:
        if call in self.gates:
            await self.gates[call].pass_through()

    def fail(self, name: str, error: ApplicationError) -> None:
        self.failing[name] = error

    def heal(self, name: str) -> None:
        del self.failing[name]

    def _called(self, name: str, key: str | None = None) -> None:
        self.calls[name] += 1
        if name in self.failing:
            raise self.failing[name]
        if key is not None:
            self.keys.append(key)

    def _undo(self, name: str, undo: Undo) -> UndoResult:
        self._called(name)
        if undo.forward_key not in self.keys:
            return UndoResult(done=False, note=f"nothing to undo for {undo.forward_key}")
        self.undone.append(undo.forward_key)
        return UndoResult(done=True, note=f"{name} {undo.forward_key}")

    @stands_in_for(OrderActivities.validate_customer)
    async def validate_customer(self, check: CustomerCheck) -> Customer:
        self._called("validate_customer")
        if check.customer_id == "CUST-BLOCKED":
            raise business_error("customer_blocked")
        if check.customer_id in self.unknown_customers:
            raise ApplicationError(
                f"customer {check.customer_id} not found",
                type="customer_not_found",
                non_retryable=True,
            )
        return Customer(
            customer_id=check.customer_id,
            name=f"Customer {check.customer_id}",
            email="ap@example.com",
            currency="EUR",
            credit_limit=self.credit_limit,
        )

    @stands_in_for(OrderActivities.ensure_billing_account)
    async def ensure_billing_account(self, customer: Customer) -> BillingAccount:
        self._called("ensure_billing_account")
        return BillingAccount(
            account_id=f"BA-{customer.customer_id}",
            customer_id=customer.customer_id,
            name=customer.name,
            currency=customer.currency,
        )

    @stands_in_for(OrderActivities.open_balance)
    async def open_balance(self, check: CustomerCheck) -> OpenBalance:
        self._called("open_balance")
        return OpenBalance(
            customer_id=check.customer_id, currency="EUR", amount=self.open_balance_amount
        )

    @stands_in_for(OrderActivities.release_reservation)
    async def release_reservation(self, undo: Undo) -> UndoResult:
        return self._undo("release_reservation", undo)

    @stands_in_for(OrderActivities.cancel_shipment)
    async def cancel_shipment(self, undo: Undo) -> UndoResult:
        return self._undo("cancel_shipment", undo)

    @stands_in_for(OrderActivities.void_invoice)
    async def void_invoice(self, undo: Undo) -> UndoResult:
        return self._undo("void_invoice", undo)

    @stands_in_for(OrderActivities.refund_payment)
    async def refund_payment(self, undo: Undo) -> UndoResult:
        return self._undo("refund_payment", undo)

    @stands_in_for(OrderActivities.place_customer_on_hold)
    async def place_customer_on_hold(self, request: CustomerHold) -> Customer:
        self._called("place_on_hold", request.idempotency_key)
        self.customers_on_hold.append(request.customer_id)
        return Customer(customer_id=request.customer_id, name="x", email="x@example.com",
                        currency="EUR", credit_limit=self.credit_limit)  # fmt: skip

    @stands_in_for(OrderActivities.send_dunning_notice)
    async def send_dunning_notice(self, notice: DunningNotice) -> DunningRecord:
        self._called("send_dunning_notice", notice.idempotency_key)
        self.dunning.append((notice.invoice_id, notice.level, notice.days_past_due))
        return DunningRecord(notice_id=f"DUN-{len(self.dunning)}", invoice_id=notice.invoice_id,
                             level=notice.level, days_past_due=notice.days_past_due,
                             sent_at=datetime.now(UTC))  # fmt: skip

    @stands_in_for(OrderActivities.amend_reservation)
    async def amend_reservation(self, request: AmendReservation) -> Reservation:
        self._called("amend_reservation", request.idempotency_key)
        self.amended.append([(line.sku, line.quantity) for line in request.lines])
        return Reservation(reservation_id=request.reservation_id, order_id="", lines=request.lines)

    @stands_in_for(OrderActivities.receive_return)
    async def receive_return(self, receipt: ReturnReceipt) -> Shipment:
        self._called("receive_return", receipt.idempotency_key)
        return Shipment(shipment_id=receipt.shipment_id, order_id=receipt.order_id,
                        status=ShipmentStatus.CONFIRMED)  # fmt: skip

    @stands_in_for(OrderActivities.create_credit_note)
    async def create_credit_note(self, request: CreditNoteRequest) -> CreditNote:
        self._called("create_credit_note", request.idempotency_key)
        amount = sum((line.amount for line in request.lines), Decimal(0))
        to_invoice = min(amount, self.balances[request.invoice_id])
        self.balances[request.invoice_id] -= to_invoice
        self.customer_credit += amount - to_invoice
        return CreditNote(credit_note_id=f"CN-{len(self.keys)}", invoice_id=request.invoice_id,
                          amount=amount, applied_to_invoice=to_invoice,
                          to_customer_credit=amount - to_invoice)  # fmt: skip

    @stands_in_for(OrderActivities.post_customer_credit)
    async def post_customer_credit(self, entry: CustomerCreditEntry) -> CreditBalance:
        self._called("post_customer_credit", entry.idempotency_key)
        if self.customer_credit + entry.amount < 0:
            raise business_error("insufficient_credit")
        self.customer_credit += entry.amount
        return CreditBalance(account_id=entry.account_id, currency=entry.currency,
                             balance=self.customer_credit)  # fmt: skip

    @stands_in_for(OrderActivities.check_refund_target)
    async def check_refund_target(self, target: RefundTarget) -> None:
        self._called("check_refund_target")
        if target.payment_id in self.foreign_payments:
            raise business_error("payment_not_on_account")

    @stands_in_for(OrderActivities.refund)
    async def refund(self, request: RefundPayment) -> Refund:
        self._called("refund", request.idempotency_key)
        self.refunds.append((request.payment_id, request.amount))
        return Refund(refund_id=f"RFD-{len(self.refunds)}", payment_id=request.payment_id,
                      amount=request.amount, currency="EUR")  # fmt: skip

    @stands_in_for(OrderActivities.authorise_card)
    async def authorise_card(self, request: AuthoriseCard) -> Authorisation:
        self._called("authorise_card", request.idempotency_key)
        if (request.card_ref or request.card_token or "").startswith(DECLINED):
            raise business_error("card_declined")
        authorisation_id = f"AUT-{len(self.authorisations) + 1}"
        self.authorisations[authorisation_id] = request.amount
        return Authorisation(authorisation_id=authorisation_id, order_id=request.order_id,
                             amount=request.amount, currency=request.currency,
                             expires_at=datetime.now(UTC),
                             status=AuthorisationStatus.AUTHORISED)  # fmt: skip

    @stands_in_for(OrderActivities.capture_card)
    async def capture_card(self, request: CaptureCard) -> Payment:
        self._called("capture_card", request.idempotency_key)
        if self.authorisations[request.authorisation_id] < request.amount:
            raise business_error("amount_exceeds_authorisation")
        self.authorisations[request.authorisation_id] -= request.amount
        return Payment(payment_id=request.payment_id, order_id="", amount=request.amount,
                       currency="EUR", received_at=datetime.now(UTC))  # fmt: skip

    @stands_in_for(OrderActivities.void_authorisation)
    async def void_authorisation(self, undo: Undo) -> UndoResult:
        return self._undo("void_authorisation", undo)

    @stands_in_for(OrderActivities.reserve_stock)
    async def reserve_stock(self, request: ReserveStock) -> Reservation:
        await self.booking_may_finish.wait()
        self._called("reserve_stock", request.idempotency_key)
        return Reservation(
            reservation_id=f"RES-{request.order_id}", order_id=request.order_id, lines=request.lines
        )

    @stands_in_for(OrderActivities.request_shipment)
    async def request_shipment(self, request: ShipmentRequest) -> Shipment:
        self._called("request_shipment", request.idempotency_key)
        return Shipment(
            shipment_id=f"SHP-{request.order_id}",
            order_id=request.order_id,
            status=ShipmentStatus.REQUESTED,
        )

    @stands_in_for(OrderActivities.confirm_shipment)
    async def confirm_shipment(self, request: ShipmentConfirmation) -> Shipment:
        await self._at_gate(f"confirm_shipment:{request.tracking_number}")
        self._called("confirm_shipment", request.idempotency_key)
        return Shipment(
            shipment_id=request.shipment_id,
            order_id=request.shipment_id.removeprefix("SHP-"),
            status=ShipmentStatus.CONFIRMED,
            carrier=request.carrier,
            tracking_number=request.tracking_number,
        )

    @stands_in_for(OrderActivities.create_invoice)
    async def create_invoice(self, request: InvoiceRequest) -> Invoice:
        await self.invoicing_may_finish.wait()
        self._called("create_invoice", request.idempotency_key)
        amount = sum((line.amount for line in request.lines), Decimal(0))
        invoice_id = f"INV-{request.idempotency_key.rsplit(':', 1)[-1]}-{request.order_id}"
        self.balances[invoice_id] = amount
        return Invoice(
            invoice_id=invoice_id,
            order_id=request.order_id,
            account_id=request.account_id,
            currency=request.currency,
            amount=amount,
            balance=amount,
            invoice_date=request.invoice_date,
            due_date=request.due_date,
            status=InvoiceStatus.OPEN,
        )

    @stands_in_for(OrderActivities.record_payment)
    async def record_payment(self, request: PaymentRecordRequest) -> Payment:
        await self._at_gate(f"record_payment:{request.payment_id}")
        self._called("record_payment", request.idempotency_key)
        return Payment(
            payment_id=request.payment_id,
            order_id=request.order_id,
            amount=request.amount,
            currency=request.currency,
            reference=request.reference,
            received_at=datetime.now(UTC),
        )

    @stands_in_for(OrderActivities.apply_payment)
    async def apply_payment(self, request: ApplyPayment) -> PaymentApplication:
        self._called("apply_payment", request.idempotency_key)
        self.balances[request.invoice_id] -= request.amount
        return PaymentApplication(
            application_id=f"APP-{request.payment_id}",
            invoice_id=request.invoice_id,
            payment_id=request.payment_id,
            amount=request.amount,
            invoice_balance=self.balances[request.invoice_id],
        )

    def all(self) -> list[Callable[..., Any]]:
        """Every activity of the class (each method with `@activity.defn`), bound to `self`."""
        return activities_of(self)
