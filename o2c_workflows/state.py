"""What an order knows: the state its query returns and the API shows.

Quantities live on the lines (ordered, reserved, shipped, invoiced,
returned); the order's status is rolled up from them. The same state is what
a long-lived order carries into its next run when it continues as new.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field

from adapters.billing.models import InvoiceStatus
from o2c_domain.lines import SkuQuantity
from o2c_domain.money import Amount
from o2c_workflows.dunning import days_past_due
from o2c_workflows.models import Instalment, OrderRequest, OrderStatus


class LineState(BaseModel):
    sku: str
    unit_price: Amount
    ordered: int
    reserved: int = 0
    shipped: int = 0
    invoiced: int = 0
    returned: int = 0

    @property
    def to_ship(self) -> int:
        return self.ordered - self.shipped

    def amount(self, quantity: int) -> Decimal:
        return quantity * self.unit_price


class TimelineEntry(BaseModel):
    status: OrderStatus
    at: datetime
    note: str = ""
    actor: str | None = Field(
        default=None,
        description="Who caused it: the API key's `name (key_id)`, or `webhook:<source>`; "
        "null for the order's own steps.",
    )


class BookingState(BaseModel):
    customer_name: str
    billing_account_id: str
    reservation_id: str
    authorisation_id: str | None = None
    """The card authorisation, for orders paid on order."""


class ShipmentState(BaseModel):
    """The shipment request logistics works on; goods leave in one or more dispatches."""

    shipment_id: str
    requested_at: datetime


class DispatchState(BaseModel):
    """One confirmed shipment: what left, with whom, and the invoice raised for it."""

    number: int
    event_id: str
    carrier: str
    tracking_number: str
    lines: list[SkuQuantity]
    confirmed_at: datetime
    invoice_id: str | None = None
    actor: str | None = None
    """Who confirmed it (`TimelineEntry.actor`)."""


class InvoiceState(BaseModel):
    invoice_id: str
    dispatch: int
    lines: list[SkuQuantity]
    amount: Amount
    balance: Amount
    issued_at: datetime
    due_date: date
    schedule: list[Instalment]
    dunning_level: str | None = None
    """The last reminder or escalation sent."""
    dunning_sent: list[str] = Field(default_factory=list)
    """`<instalment due date>:<level>` of every notice sent, so none is sent twice."""
    days_past_due: int = 0
    """As of the last time the order looked (query, dunning step)."""

    @property
    def status(self) -> InvoiceStatus:
        return InvoiceStatus.PAID if self.balance == 0 else InvoiceStatus.OPEN

    @property
    def paid(self) -> Decimal:
        return self.amount - self.balance

    def unpaid_instalments(self) -> list[Instalment]:
        """The instalments not yet covered by what was paid (oldest first)."""
        paid, due_so_far, unpaid = self.paid, Decimal(0), []
        for instalment in self.schedule:
            due_so_far += instalment.amount
            if paid < due_so_far:
                unpaid.append(instalment)
        return unpaid


class Application(BaseModel):
    invoice_id: str
    amount: Amount


class PaymentState(BaseModel):
    payment_id: str
    amount: Amount
    currency: str
    reference: str | None = None
    received_at: datetime
    invoice_id: str | None = Field(default=None, description="The invoice the payer named.")
    applications: list[Application] = Field(default_factory=list)
    to_customer_credit: Amount = Decimal(0)
    """What exceeded everything the order could ever owe: kept as customer credit."""
    actor: str | None = None
    """Who reported it (`TimelineEntry.actor`)."""

    @property
    def unapplied(self) -> Decimal:
        """Held on account until an invoice is raised for it."""
        applied = sum((a.amount for a in self.applications), Decimal(0))
        return self.amount - applied - self.to_customer_credit


class CreditNoteState(BaseModel):
    credit_note_id: str
    return_id: str
    invoice_id: str
    lines: list[SkuQuantity]
    amount: Amount
    applied_to_invoice: Amount
    to_customer_credit: Amount
    refunded: Amount = Decimal(0)


class ReturnState(BaseModel):
    return_id: str
    lines: list[SkuQuantity]
    resolution: str
    received_at: datetime
    credit_notes: list[str]
    actor: str | None = None
    """Who reported it (`TimelineEntry.actor`)."""


class OutsideEventState(BaseModel):
    """An outside event the order noted without acting on it (`OutsideEventNote`)."""

    source: str
    type: str
    event_id: str
    rejected: bool = False
    detail: str | None = None
    noted_at: datetime


class HoldKind(StrEnum):
    CREDIT = "credit"
    """Over the credit limit: support releases it (or cancels the order)."""
    FALLOUT = "fallout"
    """A step failed in a way a person must fix: support retries it (or cancels)."""


class HoldState(BaseModel):
    """Why the order is parked, where, and where it resumes."""

    kind: HoldKind
    step: str
    code: str = Field(description="The error code, e.g. out_of_stock, credit_limit_exceeded.")
    message: str
    since: datetime
    resume_status: OrderStatus


class HoldResolved(BaseModel):
    """A hold support resolved: where it was, how it was resolved, and by whom."""

    step: str
    code: str
    resolution: str = Field(description="retry or release.")
    note: str | None = None
    at: datetime
    actor: str | None = None
    """Who resolved it (`TimelineEntry.actor`)."""


class CompensationStatus(StrEnum):
    DONE = "done"
    NOTHING_TO_UNDO = "nothing_to_undo"
    FAILED = "failed"


class UndoKind(StrEnum):
    """How a forward step is undone (each an idempotent undo activity)."""

    RELEASE_RESERVATION = "release_reservation"
    CANCEL_SHIPMENT = "cancel_shipment"
    VOID_INVOICE = "void_invoice"
    REFUND_PAYMENT = "refund_payment"
    VOID_AUTHORISATION = "void_authorisation"


class UndoRecord(BaseModel):
    """A forward step compensation would undo, registered before the step runs: its
    effect, if it took one, is found by the step's idempotency key."""

    step: str
    undo: UndoKind
    forward_key: str


class CompensationRecord(BaseModel):
    step: str
    status: CompensationStatus
    note: str
    at: datetime


class OrderState(BaseModel):
    """Everything the order knows now."""

    order_id: str
    status: OrderStatus
    order: OrderRequest
    """As entered; amendments change `lines`, not this."""
    lines: list[LineState]
    total: Amount
    """What the order is worth now: the lines as amended, before returns."""
    booking: BookingState | None = None
    shipment: ShipmentState | None = None
    dispatches: list[DispatchState] = Field(default_factory=list)
    invoices: list[InvoiceState] = Field(default_factory=list)
    payments: list[PaymentState] = Field(default_factory=list)
    credit_notes: list[CreditNoteState] = Field(default_factory=list)
    returns: list[ReturnState] = Field(default_factory=list)
    amendments: list[str] = Field(default_factory=list, description="Applied amendment ids.")
    card_authorisations: list[str] = Field(
        default_factory=list, description="Idempotency keys of the card authorisations made."
    )
    outside_events: list[OutsideEventState] = Field(
        default_factory=list,
        description="Outside events noted, not acted on: deliveries, shipment exceptions, "
        "failed or refunded payments, and events the order refused (`rejected`).",
    )
    hold: HoldState | None = None
    holds_resolved: list[HoldResolved] = Field(default_factory=list)
    cancellation_reason: str | None = None
    cancelled_by: str | None = None
    """Who cancelled it (`TimelineEntry.actor`); null when the order cancelled itself or
    was cancelled in Temporal."""
    created_by: str | None = None
    """Who created it (`TimelineEntry.actor`)."""
    amended_by: dict[str, str] = Field(
        default_factory=dict, description="Who sent each amendment, by amendment id."
    )
    compensations: list[CompensationRecord] = Field(default_factory=list)
    undo: list[UndoRecord] = Field(
        default_factory=list,
        description="What cancelling would undo, oldest first; compensation undoes newest first.",
    )
    timeline: list[TimelineEntry] = Field(default_factory=list)
    runs: int = 1
    """How many workflow runs the order has taken (it continues as new when long-lived)."""
    key_scope: str | None = None
    """What idempotency keys start with: the order id and its first run's id (None for
    orders begun before keys were scoped per execution: the order id alone)."""
    process_version: int = 1
    """Which version of the order process the order runs, fixed when it starts: 2
    publishes its search attributes once per wait (`PATCH_PUBLISH_PER_WAIT`)."""

    @property
    def paid(self) -> Decimal:
        return sum((payment.amount for payment in self.payments), Decimal(0))

    @property
    def invoiced(self) -> Decimal:
        return sum((invoice.amount for invoice in self.invoices), Decimal(0))

    @property
    def shipped(self) -> bool:
        """Past the point of no return: goods left, so cancelling is now a return."""
        return bool(self.dispatches)

    @property
    def fully_shipped(self) -> bool:
        return all(line.to_ship == 0 for line in self.lines)

    @property
    def settled(self) -> bool:
        """Every line shipped and invoiced, every invoice paid."""
        return (
            self.fully_shipped
            and all(dispatch.invoice_id is not None for dispatch in self.dispatches)
            and all(invoice.balance == 0 for invoice in self.invoices)
        )

    def line(self, sku: str) -> LineState | None:
        return next((line for line in self.lines if line.sku == sku), None)

    def invoice(self, invoice_id: str) -> InvoiceState | None:
        return next((i for i in self.invoices if i.invoice_id == invoice_id), None)

    # The events the order has applied, by their ids: a copy of one is a
    # duplicate, answered as such whatever the order's status is now.

    def payment(self, payment_id: str) -> PaymentState | None:
        return next((p for p in self.payments if p.payment_id == payment_id), None)

    def dispatch(self, event_id: str) -> DispatchState | None:
        return next((d for d in self.dispatches if d.event_id == event_id), None)

    def outside_event(self, source: str, event_id: str) -> OutsideEventState | None:
        return next(
            (e for e in self.outside_events if (e.source, e.event_id) == (source, event_id)),
            None,
        )

    def returned(self, return_id: str) -> ReturnState | None:
        return next((r for r in self.returns if r.return_id == return_id), None)

    # -- transitions: the workflow records what its steps did through these, and the
    # property tests drive the same methods, so the rules are tested, not a copy.

    @classmethod
    def entered(cls, order: OrderRequest, created_by: str | None = None) -> OrderState:
        """A new order: every line ordered, nothing reserved, shipped or invoiced yet."""
        return cls(
            order_id=order.order_id,
            status=OrderStatus.ENTERED,
            order=order,
            created_by=created_by,
            lines=[
                LineState(sku=line.sku, unit_price=line.unit_price, ordered=line.quantity)
                for line in order.lines
            ],
            total=order.total(),
        )

    def record_dispatch(
        self, event_id: str, carrier: str, tracking_number: str,
        lines: list[SkuQuantity], at: datetime,
    ) -> DispatchState:  # fmt: skip
        """Goods left: a dispatch numbered in order, each line's shipped quantity counted."""
        dispatch = DispatchState(
            number=len(self.dispatches) + 1,
            event_id=event_id,
            carrier=carrier,
            tracking_number=tracking_number,
            lines=lines,
            confirmed_at=at,
        )
        self.dispatches.append(dispatch)
        for quantity in lines:
            self._line(quantity.sku).shipped += quantity.quantity
        return dispatch

    def record_invoice(
        self, dispatch: DispatchState, invoice_id: str, amount: Decimal, issued_at: datetime,
        due_date: date, balance: Decimal | None = None,
    ) -> InvoiceState:  # fmt: skip
        """The dispatch was invoiced for `amount` (billing's figures), due per the terms."""
        terms, currency = self.order.payment_terms, self.order.currency
        invoice = InvoiceState(
            invoice_id=invoice_id,
            dispatch=dispatch.number,
            lines=dispatch.lines,
            amount=amount,
            balance=amount if balance is None else balance,
            issued_at=issued_at,
            due_date=due_date,
            schedule=terms.schedule(issued_at.date(), amount, currency),
        )
        self.invoices.append(invoice)
        dispatch.invoice_id = invoice_id
        for quantity in dispatch.lines:
            self._line(quantity.sku).invoiced += quantity.quantity
        return invoice

    def record_application(
        self, payment: PaymentState, application: Application, invoice_balance: Decimal
    ) -> None:
        """Billing applied part of `payment` to an invoice, leaving `invoice_balance`."""
        invoice = self.invoice(application.invoice_id)
        assert invoice is not None, application.invoice_id
        invoice.balance = invoice_balance
        payment.applications.append(application)

    def amend(self, lines: list[LineState], total: Decimal, amendment_id: str) -> None:
        """An amendment took effect: the lines as planned, the total after it."""
        self.lines = lines
        self.total = total
        self.amendments.append(amendment_id)

    def _line(self, sku: str) -> LineState:
        line = self.line(sku)
        assert line is not None, f"order {self.order_id} has no line {sku}"
        return line

    def as_of(self, today: date) -> OrderState:
        """A copy with every invoice's days past due counted to `today`."""
        state = self.model_copy(deep=True)
        for invoice in state.invoices:
            unpaid = invoice.unpaid_instalments()
            invoice.days_past_due = days_past_due(unpaid[0].due_date, today) if unpaid else 0
        return state

    def open_invoices(self) -> list[InvoiceState]:
        """Oldest due first: the order cash is applied in."""
        return sorted(
            (invoice for invoice in self.invoices if invoice.balance > 0),
            key=lambda invoice: (invoice.due_date, invoice.dispatch),
        )


class OrderSummary(BaseModel):
    """What a finished order workflow returns."""

    order_id: str
    status: OrderStatus
    customer_id: str
    currency: str
    total: Amount
    invoiced: Amount
    paid: Amount
    invoice_ids: list[str]
    tracking_numbers: list[str]
    customer_credit: Amount
    cancellation_reason: str | None = None
    compensations: list[CompensationRecord] = Field(default_factory=list)
    closed_at: datetime
