"""The order workflow: one durable execution per order, from Entered to Closed.

`run` reads as the lifecycle. Events from the outside world (shipments,
payments, returns, amendments) and support actions (retry, release, cancel)
arrive as Updates, whose validators answer at once, and as Signals, which the
Temporal UI and `temporal workflow signal` can send; both go through the same
methods, and a rejected message changes nothing.

Goods may leave in several shipments; each is invoiced for exactly what it
shipped, every invoice has its due dates as durable timers and is dunned when
late, and cash is applied oldest due first. A step that fails for good parks
the order OnHold where it stands (`failure_policy`); cancelling undoes, in
reverse, every step that took effect. A long-lived order continues as new
with its state when Temporal suggests it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.types import MethodAsyncSingleParam

with workflow.unsafe.imports_passed_through():
    from activities import options
    from activities.order_activities import CustomerCheck, OrderActivities, Undo, UndoResult
    from adapters.models import (
        AmendReservation,
        ApplyPayment,
        AuthoriseCard,
        CaptureCard,
        CreditNoteRequest,
        Customer,
        CustomerCreditEntry,
        CustomerHold,
        DunningNotice,
        InvoiceLine,
        InvoiceRequest,
        PaymentRecordRequest,
        RefundPayment,
        ReserveStock,
        ReturnReceipt,
        ShipmentConfirmation,
        ShipmentRequest,
        StockLine,
    )
    from o2c_workflows import (
        amendments,
        calls,
        cash_application,
        presentation,
        rejections,
        returns,
    )
    from o2c_workflows.dunning import DunningPolicy, days_past_due, fires_at
    from o2c_workflows.failure_policy import ACTIVITY_FAILURES, OnFailure, StepFailure
    from o2c_workflows.messages import (
        Amendment,
        AmendmentAck,
        CancelRequest,
        EventAck,
        PaymentReceived,
        ReturnReceived,
        ReturnResolution,
        ShipmentConfirmed,
        SupportAck,
        SupportAction,
    )
    from o2c_workflows.models import OrderRequest, OrderStatus
    from o2c_workflows.money import fits_amount_digits, fits_currency
    from o2c_workflows.search_attributes import (
        CUSTOMER_ID,
        DUNNING_LEVEL,
        HOLD_REASON,
        ORDER_STATUS,
        PAYMENT_DUE,
    )
    from o2c_workflows.state import (
        BookingState,
        CompensationRecord,
        CompensationStatus,
        CreditNoteState,
        DispatchState,
        HoldKind,
        HoldState,
        InvoiceState,
        LineState,
        OrderState,
        OrderSummary,
        PaymentState,
        QuantityLine,
        ReturnState,
        ShipmentState,
        TimelineEntry,
    )

WORKFLOW_NAME = "Order"

A = TypeVar("A")
T = TypeVar("T")

COMPENSATION_FAILED = "compensation_failed"
"""HoldReason of a cancelled order whose compensation could not undo everything."""

FINISHED = frozenset({OrderStatus.PAID, OrderStatus.CLOSED, OrderStatus.CANCELLED})


class OrderInput(BaseModel):
    """The workflow's input: the order, the dunning rules, and a long-lived order's state."""

    order: OrderRequest
    dunning: DunningPolicy = Field(default_factory=DunningPolicy)
    carried: OrderState | None = Field(
        default=None, description="The state of the previous run, when continuing as new."
    )
    local_activities: bool = Field(
        default=False, description="Run the adapter calls as local activities (fewer events)."
    )


class Resolution(StrEnum):
    RETRY = "retry"
    RELEASE = "release"


class Applying(StrEnum):
    """Events applied one at a time per kind; a copy of the one in flight waits for it."""

    SHIPMENT = "shipment"
    AMENDMENT = "amendment"
    RETURN = "return"


WORKFLOW_ID_MISMATCH = "workflow_id_mismatch"

# Patches: each guards a change of the command sequence, so orders started on
# earlier code replay and go on as they began.
PATCH_EXECUTION_KEYS = "execution-scoped-keys"
"""Idempotency keys carry the first run's id, so another execution under the same
workflow id (restarted from the CLI after the first closed) never shares them."""
PATCH_PAYMENTS_IN_FLIGHT = "payments-in-flight-keep-the-order-open"
"""The order does not settle while a payment is still being recorded."""


class _Abandon(Exception):
    """A step failed in a way that means the order cannot go on: undo and cancel."""

    def __init__(self, step: str, failure: StepFailure) -> None:
        super().__init__(f"{step} failed: {failure.message}")
        self.reason = f"{step} failed ({failure.code}): {failure.message}"


@dataclass(frozen=True)
class _UndoStep:
    """How to undo a forward step: registered before the step runs."""

    step: str
    activity: MethodAsyncSingleParam[OrderActivities, Undo, UndoResult]
    forward_key: str


@workflow.defn(name=WORKFLOW_NAME)
class OrderWorkflow:
    """An order's lifecycle across CRM, billing, logistics and payments."""

    @workflow.init
    def __init__(self, start: OrderInput) -> None:
        order = start.order
        self._dunning = start.dunning
        self._local_activities = start.local_activities
        self._state = start.carried or OrderState(
            order_id=order.order_id,
            status=OrderStatus.ENTERED,
            order=order,
            lines=[
                LineState(sku=line.sku, unit_price=line.unit_price, ordered=line.quantity)
                for line in order.lines
            ],
            total=order.total(),
        )
        if start.carried is not None:
            self._state.runs += 1
        self._undo_steps: list[_UndoStep] = self._undo_steps_from_state()
        # Amounts accepted but not yet recorded count against the order, so two
        # payments at once cannot both be taken as the last one.
        self._pending_payments: dict[str, Decimal] = {}
        self._busy: set[str] = set()
        """Loops with an activity in flight (cash, dunning); continue-as-new waits for them."""
        self._applying: dict[Applying, str] = {}
        """The event of each kind being applied, by its id (tracking number, return id, ...)."""
        self._resolution: Resolution | None = None
        self._lifecycle: asyncio.Task[None] | None = None
        self._stopping = False
        self._cancelled_in_temporal = False
        self._dunning_tasks: dict[str, asyncio.Task[None]] = {}

    @workflow.run
    async def run(self, start: OrderInput) -> OrderSummary:
        self._refuse_a_foreign_workflow_id()
        if start.carried is None:
            self._enter()
        else:
            self._note(f"continued as new (run {self._state.runs})")
        if await self._completed_unless_cancelled(self._book_ship_invoice_collect()):
            self._transition(OrderStatus.CLOSED, "every line shipped, every invoice settled")
        else:
            await self._compensate()
            self._transition(OrderStatus.CANCELLED, self._state.cancellation_reason or "")
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._cancelled_in_temporal:
            raise asyncio.CancelledError(self._state.cancellation_reason)
        return self._summary()

    async def _book_ship_invoice_collect(self) -> None:
        if self._state.booking is None:
            await self._book()
        if self._state.shipment is None:
            await self._request_shipment()
        for invoice in self._state.open_invoices():
            self._start_dunning(invoice)  # after continue-as-new
        cash = asyncio.create_task(self._apply_cash_as_it_comes())
        try:
            await self._invoice_each_shipment()
            # A payment still being recorded must be applied or credited before the end.
            in_flight_counts = workflow.patched(PATCH_PAYMENTS_IN_FLIGHT)
            await self._wait_for(
                lambda: (
                    self._state.settled
                    and not self._unapplied_cash()
                    and not (in_flight_counts and self._pending_payments)
                )
            )
        finally:
            cash.cancel()
        for dunning in self._dunning_tasks.values():
            dunning.cancel()  # every invoice is paid: nothing left to remind
        self._transition(OrderStatus.PAID, "every invoice settled")

    # -- booking -------------------------------------------------------------

    def _refuse_a_foreign_workflow_id(self) -> None:
        """Side effects are keyed by the order id: a workflow under another id would share
        the real order's keys (and could undo its effects), so it fails before doing anything."""
        workflow_id = workflow.info().workflow_id
        if workflow_id != self._state.order_id:
            raise ApplicationError(
                f"workflow id {workflow_id!r} is not the order id {self._state.order_id!r}; "
                "an order runs only under its own id: start it with POST /orders or "
                "`o2c orders create`, or give the workflow the order id",
                type=WORKFLOW_ID_MISMATCH,
                non_retryable=True,
            )

    def _enter(self) -> None:
        order = self._state.order
        if workflow.patched(PATCH_EXECUTION_KEYS):
            # The run id's random tail (its head is a timestamp in time-ordered UUIDs).
            first_run = workflow.info().first_execution_run_id.replace("-", "")
            self._state.key_scope = f"{order.order_id}:{first_run[-12:]}"
        # Orders started by the API carry their search attributes from the
        # start; one started from the UI or CLI gets them here.
        if workflow.info().typed_search_attributes.get(ORDER_STATUS) is None:
            workflow.upsert_search_attributes(
                [
                    ORDER_STATUS.value_set(OrderStatus.ENTERED.value),
                    CUSTOMER_ID.value_set(order.customer_id),
                ]
            )
        self._record(OrderStatus.ENTERED, f"{len(order.lines)} lines from {order.source_system}")

    async def _book(self) -> None:
        order = self._state.order
        check = CustomerCheck(order_id=order.order_id, customer_id=order.customer_id)
        customer = await self._step(
            "validate_customer", OrderActivities.validate_customer, check, options.CRM
        )
        account = await self._step(
            "ensure_billing_account", OrderActivities.ensure_billing_account, customer,
            options.BILLING,
        )  # fmt: skip
        authorisation_id = None
        if order.payment_method is None:
            await self._check_credit(customer, check)
        else:
            authorisation_id = await self._authorise_card(self._state.total)
        reserve = ReserveStock(
            idempotency_key=self._key("reserve"), order_id=order.order_id, lines=self._stock_lines()
        )
        self._undo_steps.append(
            _UndoStep("reserve_stock", OrderActivities.release_reservation, reserve.idempotency_key)
        )
        reservation = await self._step(
            "reserve_stock", OrderActivities.reserve_stock, reserve, options.LOGISTICS
        )
        for line in self._state.lines:
            line.reserved = line.ordered
        self._state.booking = BookingState(
            customer_name=customer.name,
            billing_account_id=account.account_id,
            reservation_id=reservation.reservation_id,
            authorisation_id=authorisation_id,
        )
        self._update_status(f"stock reserved as {reservation.reservation_id}")

    async def _check_credit(self, customer: Customer, check: CustomerCheck) -> None:
        """Open balance plus this order must stay within the CRM credit limit."""
        while True:
            balance = await self._step(
                "credit_check", OrderActivities.open_balance, check, options.BILLING
            )
            if balance.currency not in ("", customer.currency):
                code = "credit_currency_mismatch"
                message = f"open balance in {balance.currency}, credit limit in {customer.currency}"
            elif self._state.order.currency != customer.currency:
                code = "credit_currency_mismatch"
                message = (
                    f"order in {self._state.order.currency}, "
                    f"credit limit in {customer.currency}: needs review"
                )
            elif balance.amount + self._state.total > customer.credit_limit:
                code = "credit_limit_exceeded"
                message = (
                    f"open balance {balance.amount} + this order {self._state.total} exceeds "
                    f"the credit limit {customer.credit_limit} {customer.currency}"
                )
            else:
                return
            resolution = await self._park(HoldKind.CREDIT, "credit_check", code, message)
            if resolution is Resolution.RELEASE:
                return

    async def _authorise_card(self, amount: Decimal) -> str:
        """Reserve `amount` on the order's card; a decline parks the order for support."""
        method = self._state.order.payment_method
        assert method is not None
        request = AuthoriseCard(
            idempotency_key=self._key(f"authorise:{len(self._state.card_authorisations)}"),
            order_id=self._state.order_id,
            card_token=method.card_token,
            amount=amount,
            currency=self._state.order.currency,
        )
        self._undo_steps.append(
            _UndoStep("authorise_card", OrderActivities.void_authorisation, request.idempotency_key)
        )
        authorisation = await self._step(
            "authorise_card", OrderActivities.authorise_card, request, options.PAYMENTS
        )
        self._state.card_authorisations.append(request.idempotency_key)
        self._note(f"card authorised for {amount} as {authorisation.authorisation_id}")
        return authorisation.authorisation_id

    # -- shipping and invoicing ---------------------------------------------

    async def _request_shipment(self) -> None:
        assert self._state.booking is not None
        request = ShipmentRequest(
            idempotency_key=self._key("ship"),
            order_id=self._state.order_id,
            reservation_id=self._state.booking.reservation_id,
            ship_to=self._state.booking.customer_name,
            lines=self._stock_lines(),
        )
        self._undo_steps.append(
            _UndoStep("request_shipment", OrderActivities.cancel_shipment, request.idempotency_key)
        )
        shipment = await self._step(
            "request_shipment", OrderActivities.request_shipment, request, options.LOGISTICS
        )
        self._state.shipment = ShipmentState(
            shipment_id=shipment.shipment_id, requested_at=workflow.now()
        )
        self._show_details()

    async def _invoice_each_shipment(self) -> None:
        """Invoice every confirmed shipment for what it shipped, until every line has shipped."""
        while True:
            await self._wait_for(
                lambda: self._uninvoiced_dispatch() is not None or self._state.fully_shipped
            )
            dispatch = self._uninvoiced_dispatch()
            if dispatch is None:
                return
            await self._invoice(dispatch)

    async def _invoice(self, dispatch: DispatchState) -> None:
        order, booking = self._state.order, self._state.booking
        assert booking is not None
        today = workflow.now().date()
        lines = [self._invoice_line(q) for q in dispatch.lines]
        request = InvoiceRequest(
            idempotency_key=self._key(f"invoice:{dispatch.number}"),
            order_id=order.order_id,
            account_id=booking.billing_account_id,
            currency=order.currency,
            invoice_date=today,
            due_date=order.payment_terms.due_date(today),
            lines=lines,
        )
        self._undo_steps.append(
            _UndoStep(f"invoice {dispatch.number}", OrderActivities.void_invoice,
                      request.idempotency_key)
        )  # fmt: skip
        invoice = await self._step(
            "create_invoice", OrderActivities.create_invoice, request, options.BILLING
        )
        state = InvoiceState(
            invoice_id=invoice.invoice_id,
            dispatch=dispatch.number,
            lines=dispatch.lines,
            amount=invoice.amount,
            balance=invoice.balance,
            issued_at=workflow.now(),
            due_date=invoice.due_date,
            schedule=order.payment_terms.schedule(today, invoice.amount, order.currency),
        )
        self._state.invoices.append(state)
        dispatch.invoice_id = invoice.invoice_id
        for quantity in dispatch.lines:
            line = self._state.line(quantity.sku)
            assert line is not None
            line.invoiced += quantity.quantity
        self._show_payment_due()
        self._update_status(f"invoice {invoice.invoice_id} raised for shipment {dispatch.number}")
        if order.payment_method is not None:
            await self._capture(state)
        self._start_dunning(state)

    def _invoice_line(self, quantity: QuantityLine) -> InvoiceLine:
        line = self._state.line(quantity.sku)
        assert line is not None
        return InvoiceLine(
            sku=line.sku,
            quantity=quantity.quantity,
            unit_price=line.unit_price,
            amount=line.amount(quantity.quantity),
        )

    def _uninvoiced_dispatch(self) -> DispatchState | None:
        return next((d for d in self._state.dispatches if d.invoice_id is None), None)

    # -- payment on order: capture per invoice --------------------------------

    async def _capture(self, invoice: InvoiceState) -> None:
        """Take the invoice's amount from the card, renewing an expired or short authorisation."""
        booking = self._state.booking
        assert booking is not None and booking.authorisation_id is not None
        attempt = 0
        while True:
            request = CaptureCard(
                idempotency_key=self._key(f"capture:{invoice.invoice_id}:{attempt}"),
                authorisation_id=booking.authorisation_id,
                payment_id=f"{invoice.invoice_id}-card-{attempt}",
                amount=invoice.amount,
            )
            self._undo_steps.append(
                _UndoStep(f"capture {invoice.invoice_id}", OrderActivities.refund_payment,
                          request.idempotency_key)
            )  # fmt: skip
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

    # -- cash application -----------------------------------------------------

    async def _apply_cash_as_it_comes(self) -> None:
        """Apply every payment's unapplied money to open invoices, one payment at a time."""
        while True:
            await workflow.wait_condition(lambda: self._unapplied_cash() is not None)
            payment = self._unapplied_cash()
            assert payment is not None
            self._busy.add("cash")
            try:
                await self._apply(payment)
            finally:
                self._busy.discard("cash")

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
                    idempotency_key=self._key(
                        f"apply:{payment.payment_id}:{application.invoice_id}"
                    ),
                    invoice_id=application.invoice_id,
                    payment_id=payment.payment_id,
                    amount=application.amount,
                ),
                options.BILLING,
            )
            invoice = self._state.invoice(application.invoice_id)
            assert invoice is not None
            invoice.balance = result.invoice_balance
            payment.applications.append(application)
        if to_credit:
            await self._credit_customer(payment, to_credit)
        self._show_payment_due()
        self._update_status(f"payment {payment.payment_id} applied")

    async def _credit_customer(self, payment: PaymentState, amount: Decimal) -> None:
        booking = self._state.booking
        assert booking is not None
        await self._step(
            "post_customer_credit",
            OrderActivities.post_customer_credit,
            CustomerCreditEntry(
                idempotency_key=self._key(f"credit:{payment.payment_id}"),
                account_id=booking.billing_account_id,
                currency=payment.currency,
                amount=amount,
                reason=f"overpayment {payment.payment_id} on order {self._state.order_id}",
                payment_id=payment.payment_id,
            ),
            options.BILLING,
        )
        payment.to_customer_credit += amount
        self._note(f"{amount} {payment.currency} of {payment.payment_id} kept as customer credit")

    # -- dunning ---------------------------------------------------------------

    def _start_dunning(self, invoice: InvoiceState) -> None:
        if invoice.invoice_id not in self._dunning_tasks and invoice.balance > 0:
            self._dunning_tasks[invoice.invoice_id] = asyncio.create_task(self._dun(invoice))

    async def _dun(self, invoice: InvoiceState) -> None:
        """Remind, then escalate, for each instalment not paid on time; stop once paid."""
        due_so_far = Decimal(0)
        for instalment in invoice.schedule:
            due_so_far += instalment.amount
            for level in self._dunning.levels:
                sent = f"{instalment.due_date}:{level.name}"
                if sent in invoice.dunning_sent:  # before a continue-as-new
                    continue
                deadline = fires_at(instalment.due_date, level)
                if await self._paid_by(invoice, due_so_far, deadline):
                    break
                await self._send_dunning(invoice, level.name, level.escalate, instalment.due_date)
                invoice.dunning_sent.append(sent)

    async def _paid_by(self, invoice: InvoiceState, amount: Decimal, deadline: datetime) -> bool:
        """Wait until `amount` of the invoice is paid (True) or `deadline` passes (False)."""
        remaining = deadline - workflow.now()
        if remaining.total_seconds() <= 0:
            return invoice.paid >= amount
        try:
            await workflow.wait_condition(lambda: invoice.paid >= amount, timeout=remaining)
        except TimeoutError:
            return False
        return True

    async def _send_dunning(
        self, invoice: InvoiceState, level: str, escalate: bool, due: date
    ) -> None:
        late = days_past_due(due, workflow.now().date())
        self._busy.add(f"dunning {invoice.invoice_id}")
        try:
            await self._call(
                OrderActivities.send_dunning_notice,
                DunningNotice(
                    idempotency_key=f"{invoice.invoice_id}:dunning:{due}:{level}",
                    invoice_id=invoice.invoice_id,
                    level=level,
                    days_past_due=late,
                ),
                options.BILLING,
            )
            if escalate:
                await self._call(
                    OrderActivities.place_customer_on_hold,
                    CustomerHold(
                        idempotency_key=f"{invoice.invoice_id}:dunning:{due}:{level}:hold",
                        customer_id=self._state.order.customer_id,
                        reason=f"invoice {invoice.invoice_id} {late} days past due",
                    ),
                    options.CRM,
                )
        finally:
            self._busy.discard(f"dunning {invoice.invoice_id}")
        invoice.dunning_level, invoice.days_past_due = level, late
        workflow.upsert_search_attributes([DUNNING_LEVEL.value_set(level)])
        self._note(f"{level} sent for invoice {invoice.invoice_id}, {late} days past due")

    def _show_payment_due(self) -> None:
        """PaymentDueDate: the next unpaid due date, so overdue orders are one search away."""
        due = [
            instalment.due_date
            for invoice in self._state.open_invoices()
            for instalment in invoice.unpaid_instalments()
        ]
        if due:
            first = datetime.combine(min(due), time.min, UTC)
            workflow.upsert_search_attributes([PAYMENT_DUE.value_set(first)])
        elif workflow.info().typed_search_attributes.get(PAYMENT_DUE) is not None:
            workflow.upsert_search_attributes([PAYMENT_DUE.value_unset()])

    # -- running steps: park on failure, undo on cancel ------------------------

    async def _call(
        self,
        activity: MethodAsyncSingleParam[OrderActivities, A, T],
        argument: A,
        config: workflow.ActivityConfig,
    ) -> T:
        """One activity, normal or local as this order was started (`calls.execute`)."""
        return await calls.execute(activity, argument, config, local=self._local_activities)

    async def _step(
        self,
        step: str,
        activity: MethodAsyncSingleParam[OrderActivities, A, T],
        argument: A,
        config: workflow.ActivityConfig,
    ) -> T:
        """Run one step; if it fails for good, act on the failure policy.

        Parked, the order waits here for support: `retry` runs the same step
        again with the same idempotency key, so nothing is lost or repeated.
        """
        while True:
            self._stop_if_cancelled()
            try:
                result = await self._call(activity, argument, config)
            except ACTIVITY_FAILURES as error:
                self._stop_if_cancelled()
                failure = StepFailure.of(error)
                if failure.policy is OnFailure.COMPENSATE:
                    raise _Abandon(step, failure) from error
                await self._park(HoldKind.FALLOUT, step, failure.code, failure.message)
                continue
            self._stop_if_cancelled()
            return result

    def _stop_if_cancelled(self) -> None:
        # An activity may finish after the order was cancelled; its effect is
        # then undone by compensation, but the lifecycle must not go on.
        if self._stopping:
            raise asyncio.CancelledError()

    async def _park(self, kind: HoldKind, step: str, code: str, message: str) -> Resolution:
        """Put the order OnHold at `step` until support retries, releases or cancels it."""
        hold = HoldState(
            kind=kind,
            step=step,
            code=code,
            message=message,
            since=workflow.now(),
            resume_status=self._state.status,
        )
        self._state.hold = hold
        self._resolution = None
        self._transition(OrderStatus.ON_HOLD, f"{step}: {message}", hold_reason=code)
        await workflow.wait_condition(lambda: self._resolution is not None)
        resolution, self._resolution = self._resolution, None
        assert resolution is not None
        self._state.hold = None
        self._transition(self._rolled_up_status(), f"{resolution.value} at {step}",
                         hold_reason=None)  # fmt: skip
        return resolution

    async def _wait_for(self, condition: Callable[[], bool]) -> None:
        """Wait for `condition`; a long-lived order continues as new while it waits."""
        while True:
            await workflow.wait_condition(
                lambda: condition() or workflow.info().is_continue_as_new_suggested()
            )
            if condition():
                return
            await self._continue_as_new()

    async def _continue_as_new(self) -> None:
        # Nothing may be in flight: every handler finished and no activity of
        # ours running, so the next run starts from exactly this state.
        await workflow.wait_condition(
            lambda: (
                workflow.all_handlers_finished()
                and not self._busy
                and not self._applying
                and not self._pending_payments
            )
        )
        workflow.continue_as_new(
            OrderInput(
                order=self._state.order,
                dunning=self._dunning,
                carried=self._state,
                local_activities=self._local_activities,
            )
        )

    async def _completed_unless_cancelled(self, lifecycle: Coroutine[Any, Any, None]) -> bool:
        """Run the lifecycle to its end (True), or until the order is cancelled (False).

        A cancel Update stops the lifecycle task directly; cancelling the
        workflow in Temporal (UI, CLI) cancels `run`, and is honoured the same
        way unless the goods have shipped.
        """
        self._lifecycle = asyncio.create_task(lifecycle)
        while True:
            try:
                await asyncio.shield(self._lifecycle)
                return True
            except asyncio.CancelledError:
                if self._lifecycle.done():
                    return False
                # A confirmation being applied decides which side of the point of no return we are.
                await workflow.wait_condition(lambda: Applying.SHIPMENT not in self._applying)
                if self._state.shipped:
                    self._note("cancellation requested in Temporal refused: the goods have shipped")
                    continue
                self._cancelled_in_temporal = True
                self._stop("cancelled in Temporal")
            except _Abandon as abandoned:
                self._state.cancellation_reason = abandoned.reason
                self._stopping = True
                return False

    def _stop(self, reason: str) -> None:
        self._state.cancellation_reason = reason
        self._stopping = True
        assert self._lifecycle is not None
        self._lifecycle.cancel()

    async def _compensate(self) -> None:
        """Undo, newest first, every step that took effect; a further cancel cannot stop it."""
        undoing = asyncio.ensure_future(self._undo_all())
        while not undoing.done():
            try:
                await asyncio.shield(undoing)
            except asyncio.CancelledError:
                if not undoing.done():
                    self._cancelled_in_temporal = True
                    self._note("cancelled in Temporal while compensating: compensation goes on")

    async def _undo_all(self) -> None:
        if self._lifecycle is not None and not self._lifecycle.done():
            # Let an activity in flight finish, so its effect can be found and undone.
            await asyncio.wait([self._lifecycle])
        # Likewise a payment being recorded: it must be found to be refunded.
        await workflow.wait_condition(lambda: not self._pending_payments)
        reason = self._state.cancellation_reason or "order cancelled"
        while self._undo_steps:
            undo = self._undo_steps.pop()
            try:
                result = await self._call(
                    undo.activity,
                    Undo(forward_key=undo.forward_key, undo_key=f"{undo.forward_key}:undo",
                         reason=reason),
                    options.COMPENSATION,
                )  # fmt: skip
            except ACTIVITY_FAILURES as error:
                # Cannot be undone (e.g. the goods left after all): keep going, and
                # leave the order findable as fallout for a person to sort out.
                failure = StepFailure.of(error)
                self._compensated(undo.step, CompensationStatus.FAILED, failure.message)
                workflow.upsert_search_attributes([HOLD_REASON.value_set(COMPENSATION_FAILED)])
                continue
            status = CompensationStatus.DONE if result.done else CompensationStatus.NOTHING_TO_UNDO
            self._compensated(undo.step, status, result.note)

    def _compensated(self, step: str, status: CompensationStatus, note: str) -> None:
        self._state.compensations.append(
            CompensationRecord(step=step, status=status, note=note, at=workflow.now())
        )
        self._show_details()

    def _undo_steps_from_state(self) -> list[_UndoStep]:
        """After continue-as-new: what compensation would undo, rebuilt from the state."""
        steps: list[_UndoStep] = []
        if self._state.booking is None:
            return steps
        steps += [
            _UndoStep("authorise_card", OrderActivities.void_authorisation, key)
            for key in self._state.card_authorisations
        ]
        steps.append(
            _UndoStep("reserve_stock", OrderActivities.release_reservation, self._key("reserve"))
        )
        if self._state.shipment is not None:
            steps.append(
                _UndoStep("request_shipment", OrderActivities.cancel_shipment, self._key("ship"))
            )
        steps += [
            _UndoStep(f"payment {p.payment_id}", OrderActivities.refund_payment,
                      f"payment:{p.payment_id}")
            for p in self._state.payments
        ]  # fmt: skip
        return steps

    # -- shipment events -----------------------------------------------------

    @workflow.update(name="confirm_shipment")
    async def confirm_shipment(self, event: ShipmentConfirmed) -> EventAck:
        """Goods left (some or all): answer at once whether the order took it."""
        return await self._confirm_shipment(event)

    @confirm_shipment.validator
    def _validate_shipment(self, event: ShipmentConfirmed) -> None:
        if not self._is_duplicate_shipment(event):
            self._shipped_lines(event)

    @workflow.signal(name="shipment_confirmed")
    async def shipment_confirmed(self, event: ShipmentConfirmed) -> None:
        """Fire-and-forget form of `confirm_shipment` for the UI and CLI."""
        await self._as_signal(self._confirm_shipment(event))

    async def _confirm_shipment(self, event: ShipmentConfirmed) -> EventAck:
        await self._after_the_original(Applying.SHIPMENT, event.dedup_key)
        applied = self._state.dispatch(event.dedup_key)
        if applied is not None:
            return self._ack(
                f"shipment already confirmed: {_quantities(applied.lines)}", duplicate=True
            )
        lines = self._shipped_lines(event)
        self._applying[Applying.SHIPMENT] = event.dedup_key
        try:
            # The event may overtake the shipment request's own answer.
            await workflow.wait_condition(
                lambda: (
                    self._state.shipment is not None
                    or self._state.status is not OrderStatus.BOOKED
                    or self._stopping
                )
            )
            shipment = self._state.shipment
            if shipment is None or self._stopping:
                rejections.not_allowed(
                    f"order {self._state.order_id} is {self._state.status.value} and has no "
                    "shipment awaiting confirmation"
                )
            await self._call(
                OrderActivities.confirm_shipment,
                ShipmentConfirmation(
                    idempotency_key=self._key(f"dispatch:{event.dedup_key}"),
                    shipment_id=shipment.shipment_id,
                    carrier=event.carrier,
                    tracking_number=event.tracking_number,
                    lines=[StockLine(sku=q.sku, quantity=q.quantity) for q in lines],
                ),
                options.LOGISTICS,
            )
        finally:
            del self._applying[Applying.SHIPMENT]
        self._state.dispatches.append(
            DispatchState(
                number=len(self._state.dispatches) + 1,
                event_id=event.dedup_key,
                carrier=event.carrier,
                tracking_number=event.tracking_number,
                lines=lines,
                confirmed_at=workflow.now(),
            )
        )
        for quantity in lines:
            line = self._state.line(quantity.sku)
            assert line is not None
            line.shipped += quantity.quantity
        shipped = _quantities(lines)
        self._update_status(f"{event.carrier} {event.tracking_number}: {shipped}")
        return self._ack(f"shipment confirmed: {shipped}", duplicate=False)

    def _is_duplicate_shipment(self, event: ShipmentConfirmed) -> bool:
        """Applied already, or being applied (the copy then waits for the original)."""
        return (
            self._state.dispatch(event.dedup_key) is not None
            or self._applying.get(Applying.SHIPMENT) == event.dedup_key
        )

    def _shipped_lines(self, event: ShipmentConfirmed) -> list[QuantityLine]:
        """What this shipment ships, checked against what is left to ship."""
        state, order_id = self._state, self._state.order_id
        if self._stopping or state.status in FINISHED:
            rejections.not_allowed(f"order {order_id} is {state.status.value}; it ships nothing")
        if Applying.SHIPMENT in self._applying:
            rejections.not_allowed(f"another shipment for order {order_id} is being applied")
        if state.booking is None:
            rejections.not_allowed(
                f"order {order_id} is {state.status.value}; "
                "a shipment can be confirmed once it is Booked"
            )
        if state.fully_shipped:
            rejections.not_allowed(f"every line of order {order_id} has already shipped")
        if event.lines is None:
            return [QuantityLine(sku=line.sku, quantity=line.to_ship)
                    for line in state.lines if line.to_ship > 0]  # fmt: skip
        seen: set[str] = set()
        for item in event.lines:
            line = state.line(item.sku)
            if line is None:
                rejections.invalid(f"order {order_id} has no line for {item.sku}")
            if item.sku in seen:
                rejections.invalid(f"{item.sku} appears twice in the shipment")
            seen.add(item.sku)
            if item.quantity > line.to_ship:
                rejections.not_allowed(
                    f"{item.sku}: {item.quantity} shipped, but only {line.to_ship} of "
                    f"{line.ordered} are left to ship"
                )
        return [QuantityLine(sku=item.sku, quantity=item.quantity) for item in event.lines]

    # -- payment events ------------------------------------------------------

    @workflow.update(name="receive_payment")
    async def receive_payment(self, event: PaymentReceived) -> EventAck:
        """Money arrived: record it, apply it to the invoices, answer with the new status."""
        return await self._receive_payment(event)

    @receive_payment.validator
    def _validate_payment(self, event: PaymentReceived) -> None:
        if not self._is_duplicate_payment(event):
            self._check_payment(event)

    @workflow.signal(name="payment_received")
    async def payment_received(self, event: PaymentReceived) -> None:
        """Fire-and-forget form of `receive_payment` for the UI and CLI."""
        await self._as_signal(self._receive_payment(event))

    async def _receive_payment(self, event: PaymentReceived) -> EventAck:
        """Record the payment now; cash application applies it as invoices allow."""
        if self._is_duplicate_payment(event):
            # A copy racing the original waits for it, and answers as the original will.
            await workflow.wait_condition(lambda: event.payment_id not in self._pending_payments)
            received = self._state.payment(event.payment_id)
            if received is not None:
                await self._applied_as_far_as_it_can_be(received)
                return self._ack(
                    f"already received: {self._payment_outcome(received)}", duplicate=True
                )
        self._check_payment(event)
        request = PaymentRecordRequest(
            idempotency_key=f"payment:{event.payment_id}",
            payment_id=event.payment_id,
            order_id=self._state.order_id,
            amount=event.amount,
            currency=event.currency,
            reference=event.reference,
        )
        self._pending_payments[event.payment_id] = event.amount
        try:
            # Registered first: if the order is cancelled, a recorded payment is refunded.
            self._undo_steps.append(
                _UndoStep(f"payment {event.payment_id}", OrderActivities.refund_payment,
                          request.idempotency_key)
            )  # fmt: skip
            await self._call(OrderActivities.record_payment, request, options.PAYMENTS)
        finally:
            del self._pending_payments[event.payment_id]
        payment = PaymentState(
            payment_id=event.payment_id,
            amount=event.amount,
            currency=event.currency,
            reference=event.reference,
            received_at=workflow.now(),
            invoice_id=event.invoice_id,
        )
        self._state.payments.append(payment)
        self._show_details()
        await self._applied_as_far_as_it_can_be(payment)
        return self._ack(self._payment_outcome(payment), duplicate=False)

    async def _applied_as_far_as_it_can_be(self, payment: PaymentState) -> None:
        await workflow.wait_condition(
            lambda: (
                not self._cash_to_apply(payment)
                or self._state.status is OrderStatus.ON_HOLD
                or self._stopping
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

    def _is_duplicate_payment(self, event: PaymentReceived) -> bool:
        known = {p.payment_id: p.amount for p in self._state.payments} | self._pending_payments
        if event.payment_id not in known:
            return False
        if known[event.payment_id] != event.amount:
            rejections.invalid(
                f"payment {event.payment_id} was already received for "
                f"{known[event.payment_id]}, not {event.amount}"
            )
        return True

    def _check_payment(self, event: PaymentReceived) -> None:
        order_id, status = self._state.order_id, self._state.status
        currency = self._state.order.currency
        if event.currency != currency:
            rejections.invalid(
                f"order {order_id} is in {currency}, the payment in {event.currency}"
            )
        if not fits_currency(event.amount, currency):
            rejections.invalid(f"{event.amount} has more decimal places than {currency} allows")
        # Refused here, before anything is recorded: what the order has received must
        # stay an amount, or every later step that sums it would fail on every retry.
        received = self._state.paid + sum(self._pending_payments.values(), Decimal(0))
        if not fits_amount_digits(received + event.amount, currency):
            rejections.invalid(
                f"order {order_id} has received {received} {currency}; {event.amount} more "
                "would exceed the largest amount it can hold"
            )
        if self._stopping or status in FINISHED:
            rejections.not_allowed(f"order {order_id} is {status.value}; it takes no payments")
        if self._state.booking is None:
            rejections.not_allowed(
                f"order {order_id} is {status.value}; payments are accepted once it is Booked"
            )
        if event.invoice_id is not None:
            invoice = self._state.invoice(event.invoice_id)
            if invoice is None:
                rejections.invalid(f"order {order_id} has no invoice {event.invoice_id}")
            if invoice.balance == 0:
                rejections.not_allowed(f"invoice {event.invoice_id} is already paid")

    # -- amendments and returns -------------------------------------------------

    @workflow.update(name="amend")
    async def amend(self, amendment: Amendment) -> AmendmentAck:
        """Change quantities, add or remove lines, before they ship."""
        return await self._amend(amendment)

    @amend.validator
    def _validate_amend(self, amendment: Amendment) -> None:
        if not self._is_duplicate_amendment(amendment):
            self._check_amend(amendment)

    def _is_duplicate_amendment(self, amendment: Amendment) -> bool:
        return amendment.event_id is not None and (
            amendment.event_id in self._state.amendments
            or self._applying.get(Applying.AMENDMENT) == amendment.event_id
        )

    @workflow.signal(name="amendment_requested")
    async def amendment_requested(self, amendment: Amendment) -> None:
        await self._as_signal(self._amend(amendment))

    def _check_amend(self, amendment: Amendment) -> amendments.AmendmentPlan:
        state = self._state
        if self._stopping or state.status in FINISHED or state.fully_shipped:
            rejections.not_allowed(
                f"order {state.order_id} is {state.status.value}; only an order with lines "
                "still to ship can be amended"
            )
        if (
            state.booking is None
            or Applying.SHIPMENT in self._applying
            or (Applying.AMENDMENT in self._applying)
        ):
            rejections.not_allowed(
                f"order {state.order_id} is {state.status.value}; it can be amended once Booked "
                "and while no shipment or other amendment is being applied"
            )
        return amendments.plan(state, amendment)

    async def _amend(self, amendment: Amendment) -> AmendmentAck:
        state = self._state
        if amendment.event_id is not None:
            await self._after_the_original(Applying.AMENDMENT, amendment.event_id)
            if amendment.event_id in state.amendments:
                return self._amendment_ack("amendment already applied", [], duplicate=True)
        plan = self._check_amend(amendment)
        booking = state.booking
        assert booking is not None
        number = len(state.amendments) + 1
        self._applying[Applying.AMENDMENT] = amendment.event_id or f"amendment-{number}"
        try:
            await self._call(
                OrderActivities.amend_reservation,
                AmendReservation(
                    idempotency_key=self._key(f"amend:{amendment.event_id or number}"),
                    reservation_id=booking.reservation_id,
                    shipment_id=state.shipment.shipment_id if state.shipment else None,
                    lines=[StockLine(sku=line.sku, quantity=line.ordered) for line in plan.lines],
                ),
                options.LOGISTICS,
            )
        finally:
            del self._applying[Applying.AMENDMENT]
        state.lines = plan.lines
        state.total = plan.total_after
        state.amendments.append(amendment.event_id or f"amendment-{number}")
        self._update_status("amended: " + "; ".join(plan.changes))
        return self._amendment_ack("amendment applied", plan.changes, duplicate=False,
                                   before=plan.total_before)  # fmt: skip

    def _amendment_ack(
        self, message: str, changes: list[str], *, duplicate: bool, before: Decimal | None = None
    ) -> AmendmentAck:
        return AmendmentAck(
            order_id=self._state.order_id,
            status=self._state.status,
            duplicate=duplicate,
            message=message,
            changes=changes,
            total_before=self._state.total if before is None else before,
            total_after=self._state.total,
        )

    @workflow.update(name="record_return")
    async def record_return(self, returned: ReturnReceived) -> EventAck:
        """Goods came back: credit note, then a refund or customer credit."""
        return await self._record_return(returned)

    @record_return.validator
    def _validate_return(self, returned: ReturnReceived) -> None:
        if not self._is_duplicate_return(returned):
            self._check_return(returned)

    @workflow.signal(name="return_received")
    async def return_received(self, returned: ReturnReceived) -> None:
        await self._as_signal(self._record_return(returned))

    def _is_duplicate_return(self, returned: ReturnReceived) -> bool:
        return (
            self._state.returned(returned.return_id) is not None
            or self._applying.get(Applying.RETURN) == returned.return_id
        )

    def _check_return(self, returned: ReturnReceived) -> dict[str, list[QuantityLine]]:
        state = self._state
        if self._stopping or state.status in (OrderStatus.CLOSED, OrderStatus.CANCELLED):
            rejections.not_allowed(f"order {state.order_id} is {state.status.value}")
        if Applying.RETURN in self._applying:
            rejections.not_allowed(f"another return for order {state.order_id} is being applied")
        return returns.credit_plan(state, returned)

    async def _record_return(self, returned: ReturnReceived) -> EventAck:
        await self._after_the_original(Applying.RETURN, returned.return_id)
        if self._state.returned(returned.return_id) is not None:
            return self._ack(
                f"return {returned.return_id} already recorded: "
                f"{self._return_outcome(returned.return_id)}",
                duplicate=True,
            )
        plan = self._check_return(returned)
        state, booking, shipment = self._state, self._state.booking, self._state.shipment
        assert booking is not None and shipment is not None
        key = self._key(f"return:{returned.return_id}")
        self._applying[Applying.RETURN] = returned.return_id
        try:
            await self._call(
                OrderActivities.receive_return,
                ReturnReceipt(
                    idempotency_key=key,
                    order_id=state.order_id,
                    shipment_id=shipment.shipment_id,
                    lines=[StockLine(sku=q.sku, quantity=q.quantity) for q in returned.lines],
                ),
                options.LOGISTICS,
            )
            notes = [
                await self._credit_return(returned, invoice_id, lines, key)
                for invoice_id, lines in plan.items()
            ]
        finally:
            del self._applying[Applying.RETURN]
        for item in returned.lines:
            line = state.line(item.sku)
            assert line is not None
            line.returned += item.quantity
        state.returns.append(
            ReturnState(
                return_id=returned.return_id,
                lines=[QuantityLine(sku=q.sku, quantity=q.quantity) for q in returned.lines],
                resolution=returned.resolution.value,
                received_at=workflow.now(),
                credit_notes=[note.credit_note_id for note in notes],
            )
        )
        credited = sum((note.amount for note in notes), Decimal(0))
        self._show_payment_due()
        self._update_status(f"return {returned.return_id}: credit notes for {credited}")
        return self._ack(
            f"return {returned.return_id}: {self._return_outcome(returned.return_id)}",
            duplicate=False,
        )

    def _return_outcome(self, return_id: str) -> str:
        notes = [note for note in self._state.credit_notes if note.return_id == return_id]
        credited = sum((note.amount for note in notes), Decimal(0))
        refunded = sum((note.refunded for note in notes), Decimal(0))
        return f"credited {credited}, refunded {refunded}"

    async def _credit_return(
        self, returned: ReturnReceived, invoice_id: str, lines: list[QuantityLine], key: str
    ) -> CreditNoteState:
        """One credit note on one invoice; what the customer had paid is refunded or kept."""
        state, booking = self._state, self._state.booking
        assert booking is not None
        invoice = state.invoice(invoice_id)
        assert invoice is not None
        note = await self._call(
            OrderActivities.create_credit_note,
            CreditNoteRequest(
                idempotency_key=f"{key}:{invoice_id}",
                order_id=state.order_id,
                account_id=booking.billing_account_id,
                invoice_id=invoice_id,
                currency=state.order.currency,
                lines=[self._invoice_line(q) for q in lines],
                reason=returned.reason or f"return {returned.return_id}",
            ),
            options.BILLING,
        )
        invoice.balance -= note.applied_to_invoice
        record = CreditNoteState(
            credit_note_id=note.credit_note_id,
            return_id=returned.return_id,
            invoice_id=invoice_id,
            lines=lines,
            amount=note.amount,
            applied_to_invoice=note.applied_to_invoice,
            to_customer_credit=note.to_customer_credit,
        )
        state.credit_notes.append(record)
        if returned.resolution is ReturnResolution.REFUND and note.to_customer_credit > 0:
            record.refunded = await self._refund(
                invoice, note.to_customer_credit, f"{key}:{invoice_id}"
            )
        return record

    async def _refund(self, invoice: InvoiceState, amount: Decimal, key: str) -> Decimal:
        """Pay `amount` back from the payments applied to `invoice`, newest first."""
        booking = self._state.booking
        assert booking is not None
        left = amount
        paid_in = [
            (payment, application)
            for payment in reversed(self._state.payments)
            for application in payment.applications
            if application.invoice_id == invoice.invoice_id
        ]
        for payment, application in paid_in:
            take = min(left, application.amount)
            if take <= 0:
                break
            await self._call(
                OrderActivities.refund,
                RefundPayment(
                    idempotency_key=f"{key}:refund:{payment.payment_id}",
                    payment_id=payment.payment_id,
                    amount=take,
                    reason=f"return on invoice {invoice.invoice_id}",
                ),
                options.PAYMENTS,
            )
            await self._call(
                OrderActivities.post_customer_credit,
                CustomerCreditEntry(
                    idempotency_key=f"{key}:refund:{payment.payment_id}:credit",
                    account_id=booking.billing_account_id,
                    currency=payment.currency,
                    amount=-take,
                    reason=f"refunded to {payment.payment_id}",
                    payment_id=payment.payment_id,
                ),
                options.BILLING,
            )
            left -= take
        return amount - left

    # -- support actions -------------------------------------------------------

    @workflow.update(name="retry")
    async def retry(self, action: SupportAction) -> SupportAck:
        """Run the parked step again, after the cause was fixed."""
        return await self._resolve(Resolution.RETRY, action)

    @retry.validator
    def _validate_retry(self, action: SupportAction) -> None:
        self._check_resolution(Resolution.RETRY)

    @workflow.signal(name="retry_requested")
    async def retry_requested(self, action: SupportAction) -> None:
        await self._as_signal(self._resolve(Resolution.RETRY, action))

    @workflow.update(name="release_hold")
    async def release_hold(self, action: SupportAction) -> SupportAck:
        """Let a credit-held order go on without passing the credit check."""
        return await self._resolve(Resolution.RELEASE, action)

    @release_hold.validator
    def _validate_release(self, action: SupportAction) -> None:
        self._check_resolution(Resolution.RELEASE)

    @workflow.signal(name="release_requested")
    async def release_requested(self, action: SupportAction) -> None:
        await self._as_signal(self._resolve(Resolution.RELEASE, action))

    async def _resolve(self, resolution: Resolution, action: SupportAction) -> SupportAck:
        self._check_resolution(resolution)
        hold = self._state.hold
        assert hold is not None
        self._resolution = resolution
        if action.note:
            self._note(f"{resolution.value}: {action.note}")
        await workflow.wait_condition(lambda: self._state.hold is not hold)
        return SupportAck(
            order_id=self._state.order_id,
            status=self._state.status,
            message=f"{resolution.value} of {hold.step} ({hold.code}) accepted",
        )

    def _check_resolution(self, resolution: Resolution) -> None:
        hold, order_id = self._state.hold, self._state.order_id
        if hold is None or self._resolution is not None or self._stopping:
            rejections.not_allowed(
                f"order {order_id} is {self._state.status.value}, not waiting on a hold"
            )
        if resolution is Resolution.RELEASE and hold.kind is not HoldKind.CREDIT:
            rejections.not_allowed(
                f"order {order_id} is held at {hold.step} ({hold.code}), not for credit: "
                "fix the cause and retry, or cancel"
            )

    @workflow.update(name="cancel")
    async def cancel(self, request: CancelRequest) -> SupportAck:
        """Cancel before shipment: everything done so far is undone, newest first."""
        return await self._cancel(request)

    @cancel.validator
    def _validate_cancel(self, request: CancelRequest) -> None:
        self._check_cancel()

    @workflow.signal(name="cancel_requested")
    async def cancel_requested(self, request: CancelRequest) -> None:
        await self._as_signal(self._cancel(request))

    async def _cancel(self, request: CancelRequest) -> SupportAck:
        self._check_cancel()
        self._stop(request.reason)
        await workflow.wait_condition(lambda: self._state.status is OrderStatus.CANCELLED)
        undone = [c.note for c in self._state.compensations if c.status is CompensationStatus.DONE]
        return SupportAck(
            order_id=self._state.order_id,
            status=self._state.status,
            message="cancelled; " + ("; ".join(undone) if undone else "nothing to undo"),
        )

    def _check_cancel(self) -> None:
        state = self._state
        if state.shipped:
            rejections.not_allowed(
                f"order {state.order_id} has shipped ({state.status.value}): past the point of "
                "no return, so it cannot be cancelled; return the goods instead"
            )
        if self._stopping or state.status in FINISHED:
            rejections.not_allowed(f"order {state.order_id} is already {state.status.value}")
        if Applying.SHIPMENT in self._applying or Applying.AMENDMENT in self._applying:
            rejections.not_allowed(f"order {state.order_id} is applying a shipment or amendment")

    # -- reads ---------------------------------------------------------------

    @workflow.query(name="state")
    def state(self) -> OrderState:
        """Everything the order knows, days past due as of its last activity; callers
        with a clock (the API) count them to their today with `OrderState.as_of`."""
        return self._state.as_of(workflow.now().date())

    # -- helpers -------------------------------------------------------------

    async def _as_signal(self, handling: Awaitable[object]) -> None:
        """Run a message as a signal: a refusal is a business outcome, logged in one line."""
        try:
            await handling
        except ACTIVITY_FAILURES as error:
            failure = StepFailure.of(error)
            workflow.logger.info(
                "signal refused for order %s: %s: %s",
                self._state.order_id,
                failure.code,
                failure.message,
            )

    async def _after_the_original(self, kind: Applying, event_id: str) -> None:
        """A copy of the event being applied waits for the original to finish."""
        await workflow.wait_condition(lambda: self._applying.get(kind) != event_id)

    def _key(self, step: str) -> str:
        """Idempotency key for a side effect: the same order execution and step, the same key."""
        return f"{self._state.key_scope or self._state.order_id}:{step}"

    def _stock_lines(self) -> list[StockLine]:
        return [StockLine(sku=line.sku, quantity=line.ordered) for line in self._state.lines]

    def _rolled_up_status(self) -> OrderStatus:
        """The order's status from its lines and invoices."""
        state = self._state
        if state.booking is None:
            return OrderStatus.ENTERED
        if not state.fully_shipped:
            return OrderStatus.BOOKED
        if any(dispatch.invoice_id is None for dispatch in state.dispatches):
            return OrderStatus.SHIPPED
        return OrderStatus.INVOICED

    def _update_status(self, note: str) -> None:
        """Record progress; move to the rolled-up status unless held or finishing."""
        if self._state.status in (OrderStatus.ON_HOLD, *FINISHED) or self._stopping:
            self._note(note)
            return
        status = self._rolled_up_status()
        if status is self._state.status:
            self._note(note)
        else:
            self._transition(status, note)

    def _transition(
        self, status: OrderStatus, note: str, *, hold_reason: str | bool | None = False
    ) -> None:
        """Move to `status`; `hold_reason` sets (a code) or clears (None) HoldReason."""
        updates = [ORDER_STATUS.value_set(status.value)]
        if hold_reason is None:
            updates.append(HOLD_REASON.value_unset())
        elif isinstance(hold_reason, str):
            updates.append(HOLD_REASON.value_set(hold_reason))
        workflow.upsert_search_attributes(updates)
        self._record(status, note)

    def _record(self, status: OrderStatus, note: str) -> None:
        self._state.status = status
        self._state.timeline.append(TimelineEntry(status=status, at=workflow.now(), note=note))
        self._show_details()

    def _note(self, note: str) -> None:
        """A timeline entry that does not change the status."""
        self._record(self._state.status, note)

    def _show_details(self) -> None:
        workflow.set_current_details(presentation.current_details(self._state))

    def _ack(self, message: str, *, duplicate: bool) -> EventAck:
        return EventAck(
            order_id=self._state.order_id,
            status=self._state.status,
            duplicate=duplicate,
            message=message,
        )

    def _summary(self) -> OrderSummary:
        state = self._state
        return OrderSummary(
            order_id=state.order_id,
            status=state.status,
            customer_id=state.order.customer_id,
            currency=state.order.currency,
            total=state.total,
            invoiced=state.invoiced,
            paid=state.paid,
            invoice_ids=[invoice.invoice_id for invoice in state.invoices],
            tracking_numbers=[dispatch.tracking_number for dispatch in state.dispatches],
            customer_credit=sum((p.to_customer_credit for p in state.payments), Decimal(0))
            + sum((n.to_customer_credit - n.refunded for n in state.credit_notes), Decimal(0)),
            cancellation_reason=state.cancellation_reason,
            compensations=state.compensations,
            closed_at=workflow.now(),
        )


def _quantities(lines: list[QuantityLine]) -> str:
    return ", ".join(f"{q.quantity} {q.sku}" for q in lines)
