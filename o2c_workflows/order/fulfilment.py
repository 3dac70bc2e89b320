"""The forward steps: entering the order, booking it (customer, billing account, credit
or card, stock), requesting the shipment, and invoicing each confirmed shipment.
"""

from __future__ import annotations

from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from activities import options
from activities.order_activities import CustomerCheck, OrderActivities
from adapters.billing.models import InvoiceLine, InvoiceRequest
from adapters.crm.models import Customer
from adapters.logistics.models import ReserveStock, ShipmentRequest
from o2c_domain.lines import SkuQuantity
from o2c_workflows import return_steps
from o2c_workflows.models import OrderStatus
from o2c_workflows.order.base import (
    PATCH_EXECUTION_KEYS,
    PATCH_PUBLISH_PER_WAIT,
    WORKFLOW_ID_MISMATCH,
    Resolution,
)
from o2c_workflows.order.cash import CashCollection
from o2c_workflows.search_attributes import (
    CUSTOMER_ID,
    ORDER_STATUS,
)
from o2c_workflows.state import BookingState, DispatchState, HoldKind, ShipmentState, UndoKind

A = TypeVar("A")
T = TypeVar("T")


class Fulfilment(CashCollection):
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
        if workflow.patched(PATCH_PUBLISH_PER_WAIT):
            self._state.process_version = 2  # which implies the earlier patches
        if self._state.process_version >= 2 or workflow.patched(PATCH_EXECUTION_KEYS):
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
        self._record(OrderStatus.ENTERED, f"{len(order.lines)} lines from {order.source_system}",
                     self._state.created_by)  # fmt: skip

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
            idempotency_key=self._keys.reserve(), order_id=order.order_id, lines=self._stock_lines()
        )
        self._will_undo("reserve_stock", UndoKind.RELEASE_RESERVATION, reserve.idempotency_key)
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

    async def _request_shipment(self) -> None:
        assert self._state.booking is not None
        request = ShipmentRequest(
            idempotency_key=self._keys.ship(),
            order_id=self._state.order_id,
            reservation_id=self._state.booking.reservation_id,
            ship_to=self._state.booking.customer_name,
            lines=self._stock_lines(),
        )
        self._will_undo("request_shipment", UndoKind.CANCEL_SHIPMENT, request.idempotency_key)
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
            idempotency_key=self._keys.invoice(dispatch.number),
            order_id=order.order_id,
            account_id=booking.billing_account_id,
            currency=order.currency,
            invoice_date=today,
            due_date=order.payment_terms.due_date(today),
            lines=lines,
        )
        self._will_undo(
            f"invoice {dispatch.number}", UndoKind.VOID_INVOICE, request.idempotency_key
        )
        invoice = await self._step(
            "create_invoice", OrderActivities.create_invoice, request, options.BILLING
        )
        state = self._state.record_invoice(
            dispatch, invoice.invoice_id, invoice.amount, workflow.now(), invoice.due_date,
            balance=invoice.balance,
        )  # fmt: skip
        self._show_payment_due()
        self._update_status(f"invoice {invoice.invoice_id} raised for shipment {dispatch.number}",
                            dispatch.actor)  # fmt: skip
        if order.payment_method is not None:
            await self._capture(state)
        self._start_dunning(state)

    def _invoice_line(self, quantity: SkuQuantity) -> InvoiceLine:
        return return_steps.invoice_line(self._state, quantity)

    def _uninvoiced_dispatch(self) -> DispatchState | None:
        return next((d for d in self._state.dispatches if d.invoice_id is None), None)
