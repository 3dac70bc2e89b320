"""The order's side effects, one activity per adapter call.

Activities stay thin: they call one adapter and translate its errors into
Temporal's terms: a business error becomes a non-retryable `ApplicationError`
whose type is the error code; a system failure a retryable one whose type is
its kind (a rate limit carries the delay the system asked for). A retry after
an unknown outcome first looks the operation up by its idempotency key, so a
request that did take effect is never made twice. Undo activities (for
compensation) find what the forward step did by the same key. The worker
injects the adapters, so the same activities drive local and real systems.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

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
    OpenBalance,
    PaymentApplication,
    RefundTarget,
    VoidInvoice,
)
from adapters.billing.protocol import BillingAdapter
from adapters.crm.models import Customer, CustomerHold, CustomerStatus
from adapters.crm.protocol import CrmAdapter
from adapters.errors import BusinessError, RateLimited, SystemFailure
from adapters.logistics.models import (
    AmendReservation,
    CancelShipment,
    ReleaseReservation,
    Reservation,
    ReserveStock,
    ReturnReceipt,
    Shipment,
    ShipmentConfirmation,
    ShipmentRequest,
)
from adapters.logistics.protocol import LogisticsAdapter
from adapters.payments.models import (
    Authorisation,
    AuthoriseCard,
    CaptureCard,
    Payment,
    PaymentRecordRequest,
    Refund,
    RefundPayment,
    VoidAuthorisation,
)
from adapters.payments.protocol import PaymentsAdapter

T = TypeVar("T")


class CustomerCheck(BaseModel):
    order_id: str
    customer_id: str


class Undo(BaseModel):
    """Undo what the forward step with `forward_key` did, if it did anything."""

    forward_key: str
    undo_key: str
    reason: str


class UndoResult(BaseModel):
    done: bool
    """False when the forward step had left nothing to undo."""
    note: str


async def _translated(call: Awaitable[T]) -> T:
    """Await an adapter call, raising its failures as Temporal understands them."""
    try:
        return await call
    except BusinessError as error:
        raise _business_outcome(error) from error
    except RateLimited as error:
        raise ApplicationError(
            str(error), type=error.kind, next_retry_delay=error.retry_after
        ) from error
    except SystemFailure as error:
        raise ApplicationError(str(error), type=error.kind) from error


def _business_outcome(error: BusinessError) -> ApplicationError:
    """A business refusal is an outcome, not a fault: one line at INFO, and marked benign
    so the SDK logs no traceback and counts no failure metric for it."""
    activity.logger.info("business outcome %s: %s", error.code, error.message)
    return ApplicationError(
        error.message,
        type=error.code,
        non_retryable=True,
        category=ApplicationErrorCategory.BENIGN,
    )


async def _once(
    find: Callable[[str], Awaitable[T | None]], key: str, do: Callable[[], Awaitable[T]]
) -> T:
    """Do a keyed operation; on a retry, first ask whether an earlier attempt did it.

    An earlier attempt may have timed out after the system acted (unknown
    outcome); the lookup makes the retry safe even for a system that does not
    honour idempotency keys itself.
    """
    if activity.info().attempt > 1:
        found = await _translated(find(key))
        if found is not None:
            activity.logger.info("%s was already done by an earlier attempt", key)
            return found
    return await _translated(do())


@dataclass(frozen=True)
class OrderActivities:
    """Activities bound to the adapters a worker was started with."""

    crm: CrmAdapter
    billing: BillingAdapter
    logistics: LogisticsAdapter
    payments: PaymentsAdapter

    # -- forward steps ---------------------------------------------------------

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
        if customer.status is CustomerStatus.ON_HOLD:
            raise ApplicationError(
                f"customer {customer.customer_id} is on hold for overdue invoices",
                type="customer_on_hold",
                non_retryable=True,
            )
        return customer

    @activity.defn(name="crm.place_on_hold")
    async def place_customer_on_hold(self, request: CustomerHold) -> Customer:
        return await _translated(self.crm.place_on_hold(request))

    @activity.defn(name="billing.ensure_account")
    async def ensure_billing_account(self, customer: Customer) -> BillingAccount:
        return await _translated(self.billing.ensure_account(customer))

    @activity.defn(name="billing.open_balance")
    async def open_balance(self, check: CustomerCheck) -> OpenBalance:
        return await _translated(self.billing.open_balance(check.customer_id))

    @activity.defn(name="logistics.reserve_stock")
    async def reserve_stock(self, request: ReserveStock) -> Reservation:
        return await _once(
            self.logistics.find_reservation,
            request.idempotency_key,
            lambda: self.logistics.reserve_stock(request),
        )

    @activity.defn(name="logistics.request_shipment")
    async def request_shipment(self, request: ShipmentRequest) -> Shipment:
        return await _once(
            self.logistics.find_shipment,
            request.idempotency_key,
            lambda: self.logistics.request_shipment(request),
        )

    @activity.defn(name="logistics.confirm_shipment")
    async def confirm_shipment(self, request: ShipmentConfirmation) -> Shipment:
        return await _translated(self.logistics.confirm_shipment(request))

    @activity.defn(name="billing.create_invoice")
    async def create_invoice(self, request: InvoiceRequest) -> Invoice:
        return await _once(
            self.billing.find_invoice,
            request.idempotency_key,
            lambda: self.billing.create_invoice(request),
        )

    @activity.defn(name="payments.record_payment")
    async def record_payment(self, request: PaymentRecordRequest) -> Payment:
        return await _once(
            self.payments.find_payment,
            request.idempotency_key,
            lambda: self.payments.record_payment(request),
        )

    @activity.defn(name="billing.apply_payment")
    async def apply_payment(self, request: ApplyPayment) -> PaymentApplication:
        return await _once(
            self.billing.find_application,
            request.idempotency_key,
            lambda: self.billing.apply_payment(request),
        )

    @activity.defn(name="logistics.amend_reservation")
    async def amend_reservation(self, request: AmendReservation) -> Reservation:
        return await _translated(self.logistics.amend_reservation(request))

    @activity.defn(name="logistics.receive_return")
    async def receive_return(self, receipt: ReturnReceipt) -> Shipment:
        return await _translated(self.logistics.receive_return(receipt))

    @activity.defn(name="billing.create_credit_note")
    async def create_credit_note(self, request: CreditNoteRequest) -> CreditNote:
        return await _once(
            self.billing.find_credit_note,
            request.idempotency_key,
            lambda: self.billing.create_credit_note(request),
        )

    @activity.defn(name="billing.post_customer_credit")
    async def post_customer_credit(self, entry: CustomerCreditEntry) -> CreditBalance:
        return await _translated(self.billing.post_customer_credit(entry))

    @activity.defn(name="billing.check_refund_target")
    async def check_refund_target(self, target: RefundTarget) -> None:
        """Credit goes back only to a payment that paid into the same account."""
        if not await _translated(self.billing.paid_into(target.account_id, target.payment_id)):
            raise _business_outcome(
                BusinessError(
                    "payment_not_on_account",
                    f"payment {target.payment_id} did not pay into account {target.account_id}; "
                    "credit is refunded only to a payment made to that account",
                )
            )

    @activity.defn(name="billing.send_dunning_notice")
    async def send_dunning_notice(self, notice: DunningNotice) -> DunningRecord:
        return await _translated(self.billing.send_dunning_notice(notice))

    @activity.defn(name="payments.authorise_card")
    async def authorise_card(self, request: AuthoriseCard) -> Authorisation:
        return await _once(
            self.payments.find_authorisation,
            request.idempotency_key,
            lambda: self.payments.authorise_card(request),
        )

    @activity.defn(name="payments.capture_card")
    async def capture_card(self, request: CaptureCard) -> Payment:
        return await _once(
            self.payments.find_payment,
            request.idempotency_key,
            lambda: self.payments.capture_card(request),
        )

    @activity.defn(name="payments.refund")
    async def refund(self, request: RefundPayment) -> Refund:
        """Pay back (part of) a payment, e.g. for returned goods."""
        return await _translated(self.payments.refund_payment(request))

    # -- compensation: each finds what its forward step did by that step's key --

    @activity.defn(name="logistics.release_reservation")
    async def release_reservation(self, undo: Undo) -> UndoResult:
        reservation = await _translated(self.logistics.find_reservation(undo.forward_key))
        if reservation is None:
            return UndoResult(done=False, note="nothing was reserved")
        await _translated(
            self.logistics.release_reservation(
                ReleaseReservation(
                    idempotency_key=undo.undo_key, reservation_id=reservation.reservation_id
                )
            )
        )
        return UndoResult(done=True, note=f"reservation {reservation.reservation_id} released")

    @activity.defn(name="logistics.cancel_shipment")
    async def cancel_shipment(self, undo: Undo) -> UndoResult:
        shipment = await _translated(self.logistics.find_shipment(undo.forward_key))
        if shipment is None:
            return UndoResult(done=False, note="no shipment was requested")
        await _translated(
            self.logistics.cancel_shipment(
                CancelShipment(
                    idempotency_key=undo.undo_key,
                    shipment_id=shipment.shipment_id,
                    reason=undo.reason,
                )
            )
        )
        return UndoResult(done=True, note=f"shipment request {shipment.shipment_id} cancelled")

    @activity.defn(name="billing.void_invoice")
    async def void_invoice(self, undo: Undo) -> UndoResult:
        invoice = await _translated(self.billing.find_invoice(undo.forward_key))
        if invoice is None:
            return UndoResult(done=False, note="no invoice was raised")
        await _translated(
            self.billing.void_invoice(
                VoidInvoice(
                    idempotency_key=undo.undo_key, invoice_id=invoice.invoice_id, reason=undo.reason
                )
            )
        )
        return UndoResult(done=True, note=f"invoice {invoice.invoice_id} voided")

    @activity.defn(name="payments.refund_payment")
    async def refund_payment(self, undo: Undo) -> UndoResult:
        payment = await _translated(self.payments.find_payment(undo.forward_key))
        if payment is None:
            return UndoResult(done=False, note="no payment was recorded")
        refund = await _translated(
            self.payments.refund_payment(
                RefundPayment(
                    idempotency_key=undo.undo_key,
                    payment_id=payment.payment_id,
                    amount=payment.amount,
                    reason=undo.reason,
                )
            )
        )
        return UndoResult(
            done=True,
            note=f"payment {payment.payment_id} refunded ({refund.amount} {refund.currency})",
        )

    @activity.defn(name="payments.void_authorisation")
    async def void_authorisation(self, undo: Undo) -> UndoResult:
        authorisation = await _translated(self.payments.find_authorisation(undo.forward_key))
        if authorisation is None:
            return UndoResult(done=False, note="no card was authorised")
        await _translated(
            self.payments.void_authorisation(
                VoidAuthorisation(
                    idempotency_key=undo.undo_key,
                    authorisation_id=authorisation.authorisation_id,
                )
            )
        )
        return UndoResult(
            done=True, note=f"card authorisation {authorisation.authorisation_id} voided"
        )

    def all(self) -> list[Callable[..., Any]]:
        """Every activity of the class (each method with `@activity.defn`), bound to `self`."""
        return [
            getattr(self, name)
            for name, member in vars(type(self)).items()
            if hasattr(member, "__temporal_activity_definition")
        ]
