"""Paying a customer's credit back on request: one small workflow per refund.

An overpayment leaves customer credit in billing (`o2c_workflows/order/cash.py`),
and the order closes once settled, so a later refund cannot be an Update on the
order. `CreditRefund` does it on its own: first use the credit in billing, then
pay it back to a payment that paid into the same account (never another
customer's). If the money cannot be paid back, the credit is posted back. A
refusal is a business outcome: the workflow completes with it as its result.

The workflow id is `credit-refund/<refund_id>` (a '/' no order id can hold, so
the two kinds never share an id) and every side effect's idempotency key derives
from the refund id, so the same request sent twice refunds once.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field, field_validator
from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import options
    from activities.order_activities import OrderActivities
    from adapters.billing.models import CreditBalance, CustomerCreditEntry, RefundTarget
    from adapters.payments.models import RefundPayment
    from o2c_domain.money import Amount, CurrencyCode, PositiveAmount, at_currency_scale
    from o2c_domain.systems import LocalCalls
    from o2c_workflows import calls
    from o2c_workflows.failure_policy import ACTIVITY_FAILURES, StepFailure
    from o2c_workflows.keys import RefundKeys
    from o2c_workflows.models import Identifier, ShortText, Strict

WORKFLOW_NAME = "CreditRefund"
WORKFLOW_ID_PREFIX = "credit-refund/"

PATCH_TARGET_CHECKED = "refund-target-checked"
"""Refunds check the payment paid into the account before using any credit."""
PATCH_REFUSAL_IS_A_RESULT = "refund-refusal-is-a-result"
"""A refused refund completes with the refusal instead of failing the workflow."""

INVALID_REFUND = frozenset(
    {
        "account_not_found",
        "payment_not_found",
        "currency_mismatch",
        "invalid_amount",
        "payment_not_on_account",
    }
)
"""Failure codes that say the request contradicts billing or payments (HTTP 422);
any other failure (`insufficient_credit`, `refund_exceeds_payment`, ...) is a 409."""


def workflow_id(refund_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{refund_id}"


class CreditRefundRequest(Strict):
    """Pay (part of) a billing account's customer credit back to a payment."""

    refund_id: Identifier = Field(
        examples=["RF-1001"], description="The caller's id: the same id twice refunds once."
    )
    account_id: Identifier = Field(examples=["BA-3f9c2a1b7d4e"], description="Holds the credit.")
    payment_id: Identifier = Field(
        examples=["BANK-7781"], description="The payment to pay back to."
    )
    currency: CurrencyCode  # before `amount`, which is validated at its scale
    amount: PositiveAmount = Field(gt=0)
    reason: ShortText = "refund of customer credit on request"

    _at_currency_scale = field_validator("amount")(at_currency_scale)


class CreditRefundInput(BaseModel):
    request: CreditRefundRequest
    local_activities: LocalCalls = Field(
        default=False,
        description="Run the adapter calls as local activities (fewer events): all, none, "
        "or those of the systems listed.",
    )
    system_queues: bool = Field(
        default=False,
        description="Send each normal activity to its system's task queue "
        "(`<task queue>.<system>`); false (orders started before there were such queues): "
        "to the workflow's own.",
    )


class CreditRefundResult(BaseModel):
    refund_id: str
    account_id: str
    payment_id: str
    amount: Amount
    currency: str
    refunded: bool = Field(default=True, description="False when the refund was refused.")
    refusal_code: str | None = Field(
        default=None, description="Why not, e.g. insufficient_credit, payment_not_on_account."
    )
    refusal: str | None = Field(default=None, description="Why not, in words.")
    credit_balance: Amount | None = Field(
        default=None, description="The account's customer credit after the refund."
    )
    payment_refund_id: str | None = Field(default=None, description="The refund's id in payments.")


class RefundRefused(Exception):
    """Nothing was (or is any longer) refunded, for a business reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def summary(request: CreditRefundRequest) -> str:
    """One line for the refund's page in the Temporal UI (User Metadata: summary)."""
    return (
        f"refund {request.amount} {request.currency} of credit on {request.account_id} "
        f"to {request.payment_id}"
    )


@workflow.defn(name=WORKFLOW_NAME)
class CreditRefundWorkflow:
    """Use the credit, pay it back; if paying back fails for good, restore the credit."""

    @workflow.init
    def __init__(self, start: CreditRefundInput) -> None:
        self._call = calls.Caller(start.local_activities, start.system_queues)

    @workflow.run
    async def run(self, start: CreditRefundInput) -> CreditRefundResult:
        request = start.request
        try:
            return await self._refund(request)
        except RefundRefused as refused:
            if not workflow.patched(PATCH_REFUSAL_IS_A_RESULT):
                raise ApplicationError(
                    refused.message, type=refused.code, non_retryable=True
                ) from refused
            workflow.logger.info(
                "refund %s refused: %s: %s", request.refund_id, refused.code, refused.message
            )
            return CreditRefundResult(
                refund_id=request.refund_id,
                account_id=request.account_id,
                payment_id=request.payment_id,
                amount=request.amount,
                currency=request.currency,
                refunded=False,
                refusal_code=refused.code,
                refusal=refused.message,
            )

    async def _refund(self, request: CreditRefundRequest) -> CreditRefundResult:
        key = RefundKeys(request.refund_id)
        if workflow.patched(PATCH_TARGET_CHECKED):
            try:
                await self._call(
                    OrderActivities.check_refund_target,
                    RefundTarget(account_id=request.account_id, payment_id=request.payment_id),
                    options.BILLING,
                )
            except ACTIVITY_FAILURES as error:
                failure = StepFailure.of(error)
                raise RefundRefused(failure.code, failure.message) from error
        try:
            used = await self._call(
                OrderActivities.post_customer_credit,
                self._credit_entry(
                    request,
                    key.use(),
                    -request.amount,
                    f"refund {request.refund_id} to {request.payment_id}: {request.reason}",
                ),
                options.BILLING,
            )
        except ACTIVITY_FAILURES as error:
            failure = StepFailure.of(error)
            # Nothing was paid: the refund is refused as billing said (insufficient_credit, ...).
            raise RefundRefused(failure.code, failure.message) from error
        workflow.logger.info("credit used: %s %s", request.amount, request.currency)
        try:
            refund = await self._call(
                OrderActivities.refund,
                RefundPayment(
                    idempotency_key=key.refund(),
                    payment_id=request.payment_id,
                    amount=request.amount,
                    reason=f"refund {request.refund_id} of customer credit: {request.reason}",
                ),
                options.PAYMENTS,
            )
        except ACTIVITY_FAILURES as error:
            failure = StepFailure.of(error)
            await self._restore_credit(request, key, failure)
            raise RefundRefused(
                failure.code,
                f"refund to {request.payment_id} failed ({failure.code}): {failure.message}; "
                f"the credit of {request.amount} {request.currency} was restored",
            ) from error
        return CreditRefundResult(
            refund_id=request.refund_id,
            account_id=request.account_id,
            payment_id=request.payment_id,
            amount=request.amount,
            currency=request.currency,
            credit_balance=used.balance,
            payment_refund_id=refund.refund_id,
        )

    async def _restore_credit(
        self, request: CreditRefundRequest, key: RefundKeys, failure: StepFailure
    ) -> CreditBalance:
        """Compensation: post the used credit back, retried until done (its own key)."""
        return await self._call(
            OrderActivities.post_customer_credit,
            self._credit_entry(
                request,
                key.restore(),
                request.amount,
                f"refund {request.refund_id} failed ({failure.code}): credit restored",
            ),
            options.COMPENSATION,
        )

    @staticmethod
    def _credit_entry(
        request: CreditRefundRequest, key: str, amount: Decimal, reason: str
    ) -> CustomerCreditEntry:
        return CustomerCreditEntry(
            idempotency_key=key,
            account_id=request.account_id,
            currency=request.currency,
            amount=amount,
            reason=reason,
        )
