"""The order workflow: one durable execution per order, from Entered to Closed.

`run` reads as the lifecycle. Shipment and payment events arrive as Updates
(the caller gets an answer: accepted, or rejected and why) and as Signals (so
the Temporal UI and `temporal workflow signal` can send them); both go through
the same methods, and a rejected event changes nothing.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import options
    from activities.order_activities import CustomerCheck, OrderActivities
    from adapters.models import (
        ApplyPayment,
        InvoiceLine,
        InvoiceRequest,
        PaymentRecordRequest,
        ReserveStock,
        ShipmentConfirmation,
        ShipmentRequest,
        StockLine,
    )
    from o2c_workflows import presentation, rejections
    from o2c_workflows.models import (
        BookingState,
        EventAck,
        InvoiceState,
        OrderRequest,
        OrderState,
        OrderStatus,
        OrderSummary,
        PaymentReceived,
        PaymentState,
        ShipmentConfirmed,
        ShipmentState,
        TimelineEntry,
    )
    from o2c_workflows.money import fits_currency
    from o2c_workflows.search_attributes import CUSTOMER_ID, ORDER_STATUS

WORKFLOW_NAME = "Order"


@workflow.defn(name=WORKFLOW_NAME)
class OrderWorkflow:
    """An order's lifecycle across CRM, billing, logistics and payments."""

    @workflow.init
    def __init__(self, order: OrderRequest) -> None:
        self._state = OrderState(
            order_id=order.order_id,
            status=OrderStatus.ENTERED,
            order=order,
            total=order.total(),
        )
        # Payments are recorded and applied one at a time, in arrival order, so
        # the invoice balance each one sees is the one the previous one left.
        self._payment_lock = asyncio.Lock()
        # Amounts accepted but not yet applied: a second payment is checked
        # against what is left after them, so two at once cannot overpay.
        self._pending_payments: dict[str, Decimal] = {}
        self._confirming_shipment = False

    @workflow.run
    async def run(self, order: OrderRequest) -> OrderSummary:
        self._enter()
        await self._book()
        await self._ship()
        await self._invoice()
        await self._collect_payment()
        self._transition(OrderStatus.CLOSED, "every invoice settled")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._summary()

    # -- the lifecycle -------------------------------------------------------

    def _enter(self) -> None:
        order = self._state.order
        # Orders started by the API carry their search attributes from the
        # start; one started from the UI or CLI gets them here.
        if workflow.info().typed_search_attributes.get(ORDER_STATUS) is None:
            workflow.upsert_search_attributes(
                [
                    ORDER_STATUS.value_set(OrderStatus.ENTERED),
                    CUSTOMER_ID.value_set(order.customer_id),
                ]
            )
        self._record(OrderStatus.ENTERED, f"{len(order.lines)} lines from {order.source_system}")

    async def _book(self) -> None:
        order = self._state.order
        customer = await workflow.execute_activity_method(
            OrderActivities.validate_customer,
            CustomerCheck(order_id=order.order_id, customer_id=order.customer_id),
            **options.CRM,
        )
        account = await workflow.execute_activity_method(
            OrderActivities.ensure_billing_account, customer, **options.BILLING
        )
        reservation = await workflow.execute_activity_method(
            OrderActivities.reserve_stock,
            ReserveStock(
                idempotency_key=self._key("reserve"),
                order_id=order.order_id,
                lines=self._stock_lines(),
            ),
            **options.LOGISTICS,
        )
        self._state.booking = BookingState(
            customer_name=customer.name,
            billing_account_id=account.account_id,
            reservation_id=reservation.reservation_id,
        )
        self._transition(OrderStatus.BOOKED, f"stock reserved as {reservation.reservation_id}")

    async def _ship(self) -> None:
        assert self._state.booking is not None
        shipment = await workflow.execute_activity_method(
            OrderActivities.request_shipment,
            ShipmentRequest(
                idempotency_key=self._key("ship"),
                order_id=self._state.order_id,
                reservation_id=self._state.booking.reservation_id,
                ship_to=self._state.booking.customer_name,
                lines=self._stock_lines(),
            ),
            **options.LOGISTICS,
        )
        self._state.shipment = ShipmentState(
            shipment_id=shipment.shipment_id, requested_at=workflow.now()
        )
        self._show_details()
        # The shipment-confirmed event moves the order to Shipped.
        await workflow.wait_condition(lambda: self._state.status is OrderStatus.SHIPPED)

    async def _invoice(self) -> None:
        order = self._state.order
        assert self._state.booking is not None
        today = workflow.now().date()
        invoice = await workflow.execute_activity_method(
            OrderActivities.create_invoice,
            InvoiceRequest(
                idempotency_key=self._key("invoice"),
                order_id=order.order_id,
                account_id=self._state.booking.billing_account_id,
                currency=order.currency,
                invoice_date=today,
                due_date=order.payment_terms.due_date(today),
                lines=[
                    InvoiceLine(
                        sku=line.sku,
                        quantity=line.quantity,
                        unit_price=line.unit_price,
                        amount=line.amount(),
                    )
                    for line in order.lines
                ],
            ),
            **options.BILLING,
        )
        self._state.invoice = InvoiceState(
            invoice_id=invoice.invoice_id,
            amount=invoice.amount,
            balance=invoice.balance,
            issued_at=workflow.now(),
            due_date=invoice.due_date,
        )
        self._transition(OrderStatus.INVOICED, f"invoice {invoice.invoice_id} raised")

    async def _collect_payment(self) -> None:
        # Payment events apply cash until the balance is zero and mark the order Paid.
        await workflow.wait_condition(lambda: self._state.status is OrderStatus.PAID)

    # -- shipment events -----------------------------------------------------

    @workflow.update(name="confirm_shipment")
    async def confirm_shipment(self, event: ShipmentConfirmed) -> EventAck:
        """The shipment left: answer at once whether the order took it."""
        return await self._confirm_shipment(event)

    @confirm_shipment.validator
    def _validate_shipment(self, event: ShipmentConfirmed) -> None:
        if not self._is_duplicate_shipment(event):
            self._check_shipment(event)

    @workflow.signal(name="shipment_confirmed")
    async def shipment_confirmed(self, event: ShipmentConfirmed) -> None:
        """Fire-and-forget form of `confirm_shipment` for the UI and CLI."""
        await self._as_signal(self._confirm_shipment(event))

    async def _confirm_shipment(self, event: ShipmentConfirmed) -> EventAck:
        if self._is_duplicate_shipment(event):
            return self._ack("shipment already confirmed", duplicate=True)
        self._check_shipment(event)
        self._confirming_shipment = True
        try:
            # The event may overtake the shipment request's own answer.
            await workflow.wait_condition(lambda: self._state.shipment is not None)
            shipment = self._state.shipment
            assert shipment is not None
            await workflow.execute_activity_method(
                OrderActivities.confirm_shipment,
                ShipmentConfirmation(
                    idempotency_key=self._key("ship-confirm"),
                    shipment_id=shipment.shipment_id,
                    carrier=event.carrier,
                    tracking_number=event.tracking_number,
                ),
                **options.LOGISTICS,
            )
        finally:
            self._confirming_shipment = False
        shipment.carrier = event.carrier
        shipment.tracking_number = event.tracking_number
        shipment.event_id = event.dedup_key
        shipment.confirmed_at = workflow.now()
        self._transition(OrderStatus.SHIPPED, f"{event.carrier} {event.tracking_number}")
        return self._ack("shipment confirmed", duplicate=False)

    def _is_duplicate_shipment(self, event: ShipmentConfirmed) -> bool:
        shipment = self._state.shipment
        return shipment is not None and shipment.event_id == event.dedup_key

    def _check_shipment(self, event: ShipmentConfirmed) -> None:
        status = self._state.status
        shipment = self._state.shipment
        if shipment is not None and shipment.confirmed_at is not None:
            rejections.not_allowed(
                f"order {self._state.order_id} already shipped with {shipment.carrier} "
                f"{shipment.tracking_number}; it is {status.value}"
            )
        if self._confirming_shipment:
            rejections.not_allowed(
                f"a shipment confirmation for order {self._state.order_id} is being applied"
            )
        if status is not OrderStatus.BOOKED:
            rejections.not_allowed(
                f"order {self._state.order_id} is {status.value}; "
                "a shipment can be confirmed once it is Booked"
            )

    # -- payment events ------------------------------------------------------

    @workflow.update(name="receive_payment")
    async def receive_payment(self, event: PaymentReceived) -> EventAck:
        """Money arrived: record it, apply it to the invoice, answer with the new status."""
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
        if self._is_duplicate_payment(event):
            return self._ack(f"payment {event.payment_id} already received", duplicate=True)
        self._check_payment(event)
        self._pending_payments[event.payment_id] = event.amount
        try:
            # A payment may arrive between shipment and invoice; it waits for the invoice.
            await workflow.wait_condition(lambda: self._state.invoice is not None)
            async with self._payment_lock:
                await self._record_and_apply(event)
        finally:
            del self._pending_payments[event.payment_id]
        invoice = self._state.invoice
        assert invoice is not None
        if invoice.balance == 0:
            self._transition(OrderStatus.PAID, f"invoice {invoice.invoice_id} settled")
        else:
            self._show_details()
        return self._ack(
            f"payment {event.payment_id} applied; balance {invoice.balance}", duplicate=False
        )

    async def _record_and_apply(self, event: PaymentReceived) -> None:
        invoice = self._state.invoice
        assert invoice is not None
        payment = await workflow.execute_activity_method(
            OrderActivities.record_payment,
            PaymentRecordRequest(
                idempotency_key=f"payment:{event.payment_id}",
                payment_id=event.payment_id,
                order_id=self._state.order_id,
                amount=event.amount,
                currency=event.currency,
                reference=event.reference,
            ),
            **options.PAYMENTS,
        )
        application = await workflow.execute_activity_method(
            OrderActivities.apply_payment,
            ApplyPayment(
                idempotency_key=self._key(f"apply:{event.payment_id}"),
                invoice_id=invoice.invoice_id,
                payment_id=payment.payment_id,
                amount=event.amount,
            ),
            **options.BILLING,
        )
        invoice.balance = application.invoice_balance
        self._state.payments.append(
            PaymentState(
                payment_id=event.payment_id,
                amount=event.amount,
                currency=event.currency,
                reference=event.reference,
                received_at=workflow.now(),
                applied_to=invoice.invoice_id,
            )
        )

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
        order_id, status, currency = (
            self._state.order_id,
            self._state.status,
            self._state.order.currency,
        )
        if event.currency != currency:
            rejections.invalid(
                f"order {order_id} is in {currency}, the payment in {event.currency}"
            )
        if not fits_currency(event.amount, currency):
            rejections.invalid(f"{event.amount} has more decimal places than {currency} allows")
        if status not in (OrderStatus.SHIPPED, OrderStatus.INVOICED):
            rejections.not_allowed(
                f"order {order_id} is {status.value}; payments are accepted once it has "
                "shipped and until it is paid"
            )
        if event.amount > self._open_balance():
            rejections.not_allowed(
                f"payment of {event.amount} {currency} exceeds the open balance of "
                f"{self._open_balance()} {currency} on order {order_id}"
            )

    def _open_balance(self) -> Decimal:
        owed = self._state.invoice.balance if self._state.invoice else self._state.total
        return owed - sum(self._pending_payments.values(), Decimal(0))

    # -- reads ---------------------------------------------------------------

    @workflow.query(name="state")
    def state(self) -> OrderState:
        """Everything the order knows now."""
        return self._state

    # -- helpers -------------------------------------------------------------

    async def _as_signal(self, handling: object) -> None:
        """Run an event as a signal: a rejection is logged, never fails the order."""
        assert asyncio.iscoroutine(handling)
        try:
            await handling
        except (ApplicationError, ActivityError) as error:
            workflow.logger.warning("event rejected: %s", error)

    def _key(self, step: str) -> str:
        """Idempotency key for a side effect: the same order and step, the same key."""
        return f"{self._state.order_id}:{step}"

    def _stock_lines(self) -> list[StockLine]:
        return [StockLine(sku=line.sku, quantity=line.quantity) for line in self._state.order.lines]

    def _transition(self, status: OrderStatus, note: str) -> None:
        workflow.upsert_search_attributes([ORDER_STATUS.value_set(status.value)])
        self._record(status, note)

    def _record(self, status: OrderStatus, note: str) -> None:
        self._state.status = status
        self._state.timeline.append(TimelineEntry(status=status, at=workflow.now(), note=note))
        self._show_details()

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
            invoiced=state.invoice.amount if state.invoice else Decimal(0),
            paid=state.paid,
            invoice_id=state.invoice.invoice_id if state.invoice else None,
            tracking_number=state.shipment.tracking_number if state.shipment else None,
            closed_at=workflow.now(),
        )
