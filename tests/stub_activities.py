"""Stand-ins for the order activities, registered under the same names.

They answer from memory and remember every call, so workflow tests can check
what the workflow asked for (and with which idempotency key) without a database.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.order_activities import CustomerCheck, Undo, UndoResult
from adapters.models import (
    ApplyPayment,
    BillingAccount,
    Customer,
    Invoice,
    InvoiceRequest,
    InvoiceStatus,
    OpenBalance,
    Payment,
    PaymentApplication,
    PaymentRecordRequest,
    Reservation,
    ReserveStock,
    Shipment,
    ShipmentConfirmation,
    ShipmentRequest,
    ShipmentStatus,
)


def business_error(code: str) -> ApplicationError:
    return ApplicationError(f"stub says {code}", type=code, non_retryable=True)


def system_error() -> ApplicationError:
    return ApplicationError("stub system is down", type="system_unavailable")


class StubActivities:
    def __init__(self, *, unknown_customers: frozenset[str] = frozenset()) -> None:
        self.unknown_customers = unknown_customers
        self.calls: Counter[str] = Counter()
        self.keys: list[str] = []
        self.undone: list[str] = []
        self.balances: dict[str, Decimal] = {}
        self.credit_limit = Decimal("100000.00")
        self.open_balance_amount = Decimal(0)
        # Activity name -> the error every call raises until `heal(name)`.
        self.failing: dict[str, ApplicationError] = {}
        # Cleared to hold an order in Entered (or Shipped) until a test sets it.
        self.booking_may_finish = asyncio.Event()
        self.booking_may_finish.set()
        self.invoicing_may_finish = asyncio.Event()
        self.invoicing_may_finish.set()

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

    @activity.defn(name="crm.validate_customer")
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

    @activity.defn(name="billing.ensure_account")
    async def ensure_billing_account(self, customer: Customer) -> BillingAccount:
        self._called("ensure_billing_account")
        return BillingAccount(
            account_id=f"BA-{customer.customer_id}",
            customer_id=customer.customer_id,
            name=customer.name,
            currency=customer.currency,
        )

    @activity.defn(name="billing.open_balance")
    async def open_balance(self, check: CustomerCheck) -> OpenBalance:
        self._called("open_balance")
        return OpenBalance(
            customer_id=check.customer_id, currency="EUR", amount=self.open_balance_amount
        )

    @activity.defn(name="logistics.release_reservation")
    async def release_reservation(self, undo: Undo) -> UndoResult:
        return self._undo("release_reservation", undo)

    @activity.defn(name="logistics.cancel_shipment")
    async def cancel_shipment(self, undo: Undo) -> UndoResult:
        return self._undo("cancel_shipment", undo)

    @activity.defn(name="billing.void_invoice")
    async def void_invoice(self, undo: Undo) -> UndoResult:
        return self._undo("void_invoice", undo)

    @activity.defn(name="payments.refund_payment")
    async def refund_payment(self, undo: Undo) -> UndoResult:
        return self._undo("refund_payment", undo)

    @activity.defn(name="logistics.reserve_stock")
    async def reserve_stock(self, request: ReserveStock) -> Reservation:
        await self.booking_may_finish.wait()
        self._called("reserve_stock", request.idempotency_key)
        return Reservation(
            reservation_id=f"RES-{request.order_id}", order_id=request.order_id, lines=request.lines
        )

    @activity.defn(name="logistics.request_shipment")
    async def request_shipment(self, request: ShipmentRequest) -> Shipment:
        self._called("request_shipment", request.idempotency_key)
        return Shipment(
            shipment_id=f"SHP-{request.order_id}",
            order_id=request.order_id,
            status=ShipmentStatus.REQUESTED,
        )

    @activity.defn(name="logistics.confirm_shipment")
    async def confirm_shipment(self, request: ShipmentConfirmation) -> Shipment:
        self._called("confirm_shipment", request.idempotency_key)
        return Shipment(
            shipment_id=request.shipment_id,
            order_id=request.shipment_id.removeprefix("SHP-"),
            status=ShipmentStatus.CONFIRMED,
            carrier=request.carrier,
            tracking_number=request.tracking_number,
        )

    @activity.defn(name="billing.create_invoice")
    async def create_invoice(self, request: InvoiceRequest) -> Invoice:
        await self.invoicing_may_finish.wait()
        self._called("create_invoice", request.idempotency_key)
        amount = sum((line.amount for line in request.lines), Decimal(0))
        invoice_id = f"INV-{request.order_id}"
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

    @activity.defn(name="payments.record_payment")
    async def record_payment(self, request: PaymentRecordRequest) -> Payment:
        self._called("record_payment", request.idempotency_key)
        return Payment(
            payment_id=request.payment_id,
            order_id=request.order_id,
            amount=request.amount,
            currency=request.currency,
            reference=request.reference,
            received_at=datetime.now(UTC),
        )

    @activity.defn(name="billing.apply_payment")
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
        return [
            self.validate_customer,
            self.ensure_billing_account,
            self.open_balance,
            self.release_reservation,
            self.cancel_shipment,
            self.void_invoice,
            self.refund_payment,
            self.reserve_stock,
            self.request_shipment,
            self.confirm_shipment,
            self.create_invoice,
            self.record_payment,
            self.apply_payment,
        ]
