"""The payment system's activities: recorded payments, card authorisations, refunds.

One module per system, as the adapters are packaged (`adapters/payments/`):
what the order asks of payments reads in one place. `OrderActivities`
composes this class with the other systems' and supplies the adapter.
"""

from __future__ import annotations

from temporalio import activity

from activities.calls import Undo, UndoResult, once, translated
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


class PaymentsActivities:
    """The `payments.*` activities, over the payments adapter of the composing class."""

    payments: PaymentsAdapter

    # -- forward steps ---------------------------------------------------------

    @activity.defn(name="payments.record_payment")
    async def record_payment(self, request: PaymentRecordRequest) -> Payment:
        return await once(
            self.payments.find_payment,
            request.idempotency_key,
            lambda: self.payments.record_payment(request),
        )

    @activity.defn(name="payments.authorise_card")
    async def authorise_card(self, request: AuthoriseCard) -> Authorisation:
        return await once(
            self.payments.find_authorisation,
            request.idempotency_key,
            lambda: self.payments.authorise_card(request),
        )

    @activity.defn(name="payments.capture_card")
    async def capture_card(self, request: CaptureCard) -> Payment:
        return await once(
            self.payments.find_payment,
            request.idempotency_key,
            lambda: self.payments.capture_card(request),
        )

    @activity.defn(name="payments.refund")
    async def refund(self, request: RefundPayment) -> Refund:
        """Pay back (part of) a payment, e.g. for returned goods."""
        return await translated(self.payments.refund_payment(request))

    # -- compensation: each finds what its forward step did by that step's key --

    @activity.defn(name="payments.refund_payment")
    async def refund_payment(self, undo: Undo) -> UndoResult:
        payment = await translated(self.payments.find_payment(undo.forward_key))
        if payment is None:
            return UndoResult(done=False, note="no payment was recorded")
        refund = await translated(
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
        authorisation = await translated(self.payments.find_authorisation(undo.forward_key))
        if authorisation is None:
            return UndoResult(done=False, note="no card was authorised")
        await translated(
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
