"""The order's side effects, one activity per adapter call.

Activities stay thin: they call one adapter and translate its errors into
Temporal's terms (business error -> non-retryable `ApplicationError` whose type
is the error code; system failure -> retryable). The worker injects the
adapters, so the same activities drive local and real systems.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from adapters.errors import BusinessError, SystemFailure
from adapters.models import (
    ApplyPayment,
    BillingAccount,
    Customer,
    CustomerStatus,
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
from adapters.protocols import BillingAdapter, CrmAdapter, LogisticsAdapter, PaymentsAdapter

T = TypeVar("T")

SYSTEM_FAILURE = "system_failure"


class CustomerCheck(BaseModel):
    order_id: str
    customer_id: str


async def _translated(call: Awaitable[T]) -> T:
    """Await an adapter call, raising its failures as Temporal understands them."""
    try:
        return await call
    except BusinessError as error:
        raise ApplicationError(error.message, type=error.code, non_retryable=True) from error
    except SystemFailure as error:
        raise ApplicationError(str(error), type=SYSTEM_FAILURE) from error


@dataclass(frozen=True)
class OrderActivities:
    """Activities bound to the adapters a worker was started with."""

    crm: CrmAdapter
    billing: BillingAdapter
    logistics: LogisticsAdapter
    payments: PaymentsAdapter

    @activity.defn(name="crm.validate_customer")
    async def validate_customer(self, check: CustomerCheck) -> Customer:
        """The customer from CRM, refused if CRM does not know or has blocked them."""
        customer = await _translated(self.crm.get_customer(check.customer_id))
        if customer.status is CustomerStatus.BLOCKED:
            raise ApplicationError(
                f"customer {customer.customer_id} is blocked in CRM",
                type="customer_blocked",
                non_retryable=True,
            )
        return customer

    @activity.defn(name="billing.ensure_account")
    async def ensure_billing_account(self, customer: Customer) -> BillingAccount:
        return await _translated(self.billing.ensure_account(customer))

    @activity.defn(name="logistics.reserve_stock")
    async def reserve_stock(self, request: ReserveStock) -> Reservation:
        return await _translated(self.logistics.reserve_stock(request))

    @activity.defn(name="logistics.request_shipment")
    async def request_shipment(self, request: ShipmentRequest) -> Shipment:
        return await _translated(self.logistics.request_shipment(request))

    @activity.defn(name="logistics.confirm_shipment")
    async def confirm_shipment(self, request: ShipmentConfirmation) -> Shipment:
        return await _translated(self.logistics.confirm_shipment(request))

    @activity.defn(name="billing.create_invoice")
    async def create_invoice(self, request: InvoiceRequest) -> Invoice:
        return await _translated(self.billing.create_invoice(request))

    @activity.defn(name="payments.record_payment")
    async def record_payment(self, request: PaymentRecordRequest) -> Payment:
        return await _translated(self.payments.record_payment(request))

    @activity.defn(name="billing.apply_payment")
    async def apply_payment(self, request: ApplyPayment) -> PaymentApplication:
        return await _translated(self.billing.apply_payment(request))

    def all(self) -> list[Callable[..., Any]]:
        """Every activity, for `Worker(activities=...)`."""
        return [
            self.validate_customer,
            self.ensure_billing_account,
            self.reserve_stock,
            self.request_shipment,
            self.confirm_shipment,
            self.create_invoice,
            self.record_payment,
            self.apply_payment,
        ]
