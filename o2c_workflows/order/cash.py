"""Money coming in: card authorisation and capture for orders paid on order, and cash
application of received payments (named invoice, then oldest due first; what no
invoice of the order can ever take becomes customer credit).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TypeVar

from temporalio import workflow

from activities import options
from activities.order_activities import OrderActivities
from adapters.billing.models import ApplyPayment, CustomerCreditEntry
from adapters.payments.models import AuthoriseCard, CaptureCard
from o2c_workflows import (
    cash_application,
)
from o2c_workflows.failure_policy import ACTIVITY_FAILURES, StepFailure
from o2c_workflows.models import OrderStatus
from o2c_workflows.order.dunning_timers import DunningTimers
from o2c_workflows.state import (
    HoldKind,
    InvoiceState,
    PaymentState,
    UndoKind,
)

A = TypeVar("A")
T = TypeVar("T")


class CashCollection(DunningTimers):
    async def _authorise_card(self, amount: Decimal) -> str:
        """Reserve `amount` on the order's card; a decline parks the order for support."""
        method = self._state.order.payment_method
        assert method is not None
        request = AuthoriseCard(
            idempotency_key=self._keys.authorise(len(self._state.card_authorisations)),
            order_id=self._state.order_id,
            card_ref=method.card_ref,
            card_token=method.card_token,  # orders begun before the vault: the token
            amount=amount,
            currency=self._state.order.currency,
        )
        self._will_undo("authorise_card", UndoKind.VOID_AUTHORISATION, request.idempotency_key)
        authorisation = await self._step(
            "authorise_card", OrderActivities.authorise_card, request, options.PAYMENTS
        )
        self._state.card_authorisations.append(request.idempotency_key)
        self._note(f"card authorised for {amount} as {authorisation.authorisation_id}")
        return authorisation.authorisation_id

    async def _capture(self, invoice: InvoiceState) -> None:
        """Take the invoice's amount from the card, renewing an expired or short authorisation."""
        booking = self._state.booking
        assert booking is not None and booking.authorisation_id is not None
        attempt = 0
        while True:
            request = CaptureCard(
                idempotency_key=self._keys.capture(invoice.invoice_id, attempt),
                authorisation_id=booking.authorisation_id,
                payment_id=f"{invoice.invoice_id}-card-{attempt}",
                amount=invoice.amount,
            )
            self._will_undo(
                f"capture {invoice.invoice_id}", UndoKind.REFUND_PAYMENT, request.idempotency_key
            )
            try:
                payment = await self._call(OrderActivities.capture_card, request, options.PAYMENTS)
            except ACTIVITY_FAILURES as error:
                failure = StepFailure.of(error)
                attempt += 1
                if failure.code in ("authorisation_expired", "amount_exceeds_authorisation"):
                    self._note(f"card could not be charged ({failure.code}): authorising again")
                    booking.authorisation_id = await self._authorise_card(
                        cash_application.outstanding(self._state)
                    )
                else:
                    await self._park(HoldKind.FALLOUT, "capture_card", failure.code,
                                     failure.message)  # fmt: skip
                continue
            self._state.payments.append(
                PaymentState(
                    payment_id=payment.payment_id,
                    amount=payment.amount,
                    currency=payment.currency,
                    reference=f"card, authorisation {booking.authorisation_id}",
                    received_at=workflow.now(),
                    invoice_id=invoice.invoice_id,
                )
            )
            return

    async def _apply_cash_as_it_comes(self) -> None:
        """Apply every payment's unapplied money to open invoices, one payment at a time."""
        while True:
            await workflow.wait_condition(lambda: self._unapplied_cash() is not None)
            payment = self._unapplied_cash()
            assert payment is not None
            self._in_flight.loop_calls += 1
            try:
                await self._apply(payment)
            finally:
                self._in_flight.loop_calls -= 1

    def _unapplied_cash(self) -> PaymentState | None:
        """The oldest payment with money an invoice can take, or that must go to credit."""
        return next((p for p in self._state.payments if self._cash_to_apply(p)), None)

    def _cash_to_apply(self, payment: PaymentState) -> bool:
        applications, to_credit = cash_application.allocate(self._state, payment)
        return bool(applications) or to_credit > 0

    async def _apply(self, payment: PaymentState) -> None:
        applications, to_credit = cash_application.allocate(self._state, payment)
        for application in applications:
            result = await self._step(
                "apply_payment",
                OrderActivities.apply_payment,
                ApplyPayment(
                    idempotency_key=self._keys.apply(payment.payment_id, application.invoice_id),
                    invoice_id=application.invoice_id,
                    payment_id=payment.payment_id,
                    amount=application.amount,
                ),
                options.BILLING,
            )
            self._state.record_application(payment, application, result.invoice_balance)
        if to_credit:
            await self._credit_customer(payment, to_credit)
        self._show_payment_due()
        self._update_status(f"payment {payment.payment_id} applied", payment.actor)

    async def _credit_customer(self, payment: PaymentState, amount: Decimal) -> None:
        booking = self._state.booking
        assert booking is not None
        await self._step(
            "post_customer_credit",
            OrderActivities.post_customer_credit,
            CustomerCreditEntry(
                idempotency_key=self._keys.credit(payment.payment_id),
                account_id=booking.billing_account_id,
                currency=payment.currency,
                amount=amount,
                reason=f"overpayment {payment.payment_id} on order {self._state.order_id}",
                payment_id=payment.payment_id,
            ),
            options.BILLING,
        )
        payment.to_customer_credit += amount
        self._note(f"{amount} {payment.currency} of {payment.payment_id} kept as customer credit",
                   payment.actor)  # fmt: skip

    async def _applied_as_far_as_it_can_be(self, payment: PaymentState) -> None:
        await workflow.wait_condition(
            lambda: (
                not self._cash_to_apply(payment)
                or self._state.status is OrderStatus.ON_HOLD
                or self._in_flight.stopping
            )
        )

    def _payment_outcome(self, payment: PaymentState) -> str:
        parts = [f"{a.amount} to {a.invoice_id}" for a in payment.applications]
        if payment.to_customer_credit:
            parts.append(f"{payment.to_customer_credit} kept as customer credit")
        if payment.unapplied:
            parts.append(f"{payment.unapplied} held until invoiced")
        if self._cash_to_apply(payment):
            parts.append("applying it is on hold")
        balance = sum((invoice.balance for invoice in self._state.invoices), Decimal(0))
        return f"payment {payment.payment_id}: {'; '.join(parts)}; open balance {balance}"
