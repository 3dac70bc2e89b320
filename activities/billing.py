"""The billing system's activities: accounts, invoices, cash, credit and dunning.

One module per system, as the adapters are packaged (`adapters/billing/`):
what the order asks of billing reads in one place. `OrderActivities` composes
this class with the other systems' and supplies the adapter.
"""

from __future__ import annotations

from temporalio import activity

from activities.calls import CustomerCheck, Undo, UndoResult, business_outcome, once, translated
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
from adapters.crm.models import Customer
from adapters.errors import BusinessError

DUNNING_NOTICES_SENT = "o2c_dunning_notices_sent"


class BillingActivities:
    """The `billing.*` activities, over the billing adapter of the composing class."""

    billing: BillingAdapter

    # -- forward steps ---------------------------------------------------------

    @activity.defn(name="billing.ensure_account")
    async def ensure_billing_account(self, customer: Customer) -> BillingAccount:
        return await translated(self.billing.ensure_account(customer))

    @activity.defn(name="billing.open_balance")
    async def open_balance(self, check: CustomerCheck) -> OpenBalance:
        return await translated(self.billing.open_balance(check.customer_id))

    @activity.defn(name="billing.create_invoice")
    async def create_invoice(self, request: InvoiceRequest) -> Invoice:
        return await once(
            self.billing.find_invoice,
            request.idempotency_key,
            lambda: self.billing.create_invoice(request),
        )

    @activity.defn(name="billing.apply_payment")
    async def apply_payment(self, request: ApplyPayment) -> PaymentApplication:
        return await once(
            self.billing.find_application,
            request.idempotency_key,
            lambda: self.billing.apply_payment(request),
        )

    @activity.defn(name="billing.create_credit_note")
    async def create_credit_note(self, request: CreditNoteRequest) -> CreditNote:
        return await once(
            self.billing.find_credit_note,
            request.idempotency_key,
            lambda: self.billing.create_credit_note(request),
        )

    @activity.defn(name="billing.post_customer_credit")
    async def post_customer_credit(self, entry: CustomerCreditEntry) -> CreditBalance:
        return await translated(self.billing.post_customer_credit(entry))

    @activity.defn(name="billing.check_refund_target")
    async def check_refund_target(self, target: RefundTarget) -> None:
        """Credit goes back only to a payment that paid into the same account."""
        if not await translated(self.billing.paid_into(target.account_id, target.payment_id)):
            raise business_outcome(
                BusinessError(
                    "payment_not_on_account",
                    f"payment {target.payment_id} did not pay into account {target.account_id}; "
                    "credit is refunded only to a payment made to that account",
                )
            )

    @activity.defn(name="billing.send_dunning_notice")
    async def send_dunning_notice(self, notice: DunningNotice) -> DunningRecord:
        record = await translated(self.billing.send_dunning_notice(notice))
        # On the worker's metrics endpoint, beside the SDK's own (docs/operations.md).
        activity.metric_meter().create_counter(
            DUNNING_NOTICES_SENT, "Dunning notices billing sent, by level."
        ).add(1, {"level": notice.level})
        return record

    # -- compensation: finds what its forward step did by that step's key ------

    @activity.defn(name="billing.void_invoice")
    async def void_invoice(self, undo: Undo) -> UndoResult:
        invoice = await translated(self.billing.find_invoice(undo.forward_key))
        if invoice is None:
            return UndoResult(done=False, note="no invoice was raised")
        await translated(
            self.billing.void_invoice(
                VoidInvoice(
                    idempotency_key=undo.undo_key, invoice_id=invoice.invoice_id, reason=undo.reason
                )
            )
        )
        return UndoResult(done=True, note=f"invoice {invoice.invoice_id} voided")
