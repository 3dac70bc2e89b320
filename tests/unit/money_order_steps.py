"""The order as the workflow keeps it, for the money property tests.

Each step is built the way `OrderWorkflow` builds it, on the pure money functions
(`amendments.plan`, `cash_application`, `returns.credit_plan`): the order booked,
amended, shipped and invoiced, paid with the cash applied, goods returned. Steps
that move money run the checks of `tests.unit.money_checks` as they go.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from hypothesis import strategies as st
from temporalio.exceptions import ApplicationError

from o2c_domain.lines import SkuQuantity
from o2c_domain.money import from_minor_units, normalise, to_minor_units
from o2c_workflows import amendments
from o2c_workflows.cash_application import allocate, outstanding
from o2c_workflows.messages import Amendment, ReturnReceived
from o2c_workflows.models import OrderRequest, OrderStatus
from o2c_workflows.state import (
    CreditNoteState,
    DispatchState,
    InvoiceState,
    OrderState,
    PaymentState,
    ReturnState,
)
from tests.unit.money_checks import check_allocation, check_invoicing, check_ledger, line_of
from tests.unit.money_strategies import SPELLING, START, minor, spellings

# -- the order as the workflow keeps it ----------------------------------------


def new_state(order: OrderRequest) -> OrderState:
    """The order as the workflow enters it (`OrderState.entered`), then booked."""
    state = OrderState.entered(order)
    state.status = OrderStatus.BOOKED
    for line in state.lines:
        line.reserved = line.ordered
    return state


def amend(state: OrderState, amendment: Amendment) -> bool:
    """Plan the amendment and apply it as the workflow does, or change nothing when the
    plan is refused."""
    try:
        plan = amendments.plan(state, amendment)
    except ApplicationError:
        return False
    state.amend(plan.lines, plan.total_after, f"amendment-{len(state.amendments) + 1}")
    return True


def ship(state: OrderState, lines: list[SkuQuantity], at: datetime) -> DispatchState:
    tracking = f"TRK-{len(state.dispatches) + 1}"
    return state.record_dispatch(tracking, "DHL", tracking, lines, at)


def invoice(state: OrderState, dispatch: DispatchState, at: datetime) -> InvoiceState:
    """`OrderWorkflow._invoice`: bill what the dispatch shipped, at the lines' prices."""
    order, currency, today = state.order, state.order.currency, at.date()
    amount = sum((line_of(state, q.sku).amount(q.quantity) for q in dispatch.lines), Decimal(0))
    # Billing keeps minor units (adapters/billing/local_invoices.py) and answers with them.
    amount = from_minor_units(to_minor_units(amount, currency), currency)
    due = order.payment_terms.due_date(today)
    return state.record_invoice(dispatch, f"INV-{dispatch.number}", amount, at, due)


def draw_dispatch(data: st.DataObject, state: OrderState) -> list[SkuQuantity]:
    """What one shipment takes: everything left, or some lines, never more than is left."""
    left = [line for line in state.lines if line.to_ship > 0]
    if data.draw(st.integers(0, 3), label="everything left?") == 0:
        return [SkuQuantity(sku=line.sku, quantity=line.to_ship) for line in left]
    chosen = data.draw(
        st.lists(st.sampled_from(left), min_size=1, unique_by=lambda line: line.sku),
        label="lines shipped",
    )
    return [
        SkuQuantity(sku=line.sku, quantity=data.draw(st.integers(1, line.to_ship)))
        for line in chosen
    ]


def ship_and_invoice(data: st.DataObject, state: OrderState, at: datetime) -> InvoiceState:
    created = invoice(state, ship(state, draw_dispatch(data, state), at), at)
    check_invoicing(state)
    return created


def draw_payment(
    data: st.DataObject, state: OrderState, at: datetime, *, at_most: Decimal | None
) -> PaymentState | None:
    """A payment at currency scale (any spelling), perhaps naming an open invoice.

    With `at_most`, never more than that (None when nothing may be paid).
    """
    currency = state.order.currency
    open_ids = [i.invoice_id for i in state.invoices if i.balance > 0]
    exact = [minor(i.balance, currency) for i in state.invoices if i.balance > 0]
    exact.append(minor(max(Decimal(0), outstanding(state)), currency))
    # Unbounded: up to twice the order (overpayments included), and something even when it is free.
    unbounded = 2 * minor(state.total, currency) + 10
    ceiling = unbounded if at_most is None else minor(at_most, currency)
    exact = [m for m in exact if 0 < m <= ceiling]
    if ceiling <= 0:
        return None
    # A part of what is left, anything up to the ceiling, or exactly a balance or the rest.
    kind = data.draw(st.integers(0, 2 if exact else 1), label="amount kind")
    if kind == 2:
        amount_minor = exact[data.draw(st.integers(0, len(exact) - 1), label="exactly")]
    else:
        top = ceiling if kind == 1 else max(1, ceiling // 5)
        amount_minor = data.draw(st.integers(1, top), label="amount (minor units)")
    amount = spellings(from_minor_units(amount_minor, currency), currency)[data.draw(SPELLING)]
    pick = data.draw(st.integers(0, len(open_ids)), label="names invoice (0: none)")
    named = open_ids[pick - 1] if pick else None
    payment = PaymentState(
        payment_id=f"PAY-{len(state.payments) + 1}",
        amount=amount,
        currency=currency,
        received_at=at,
        invoice_id=named,
    )
    state.payments.append(payment)
    return payment


def apply_cash(state: OrderState) -> None:
    """`OrderWorkflow._apply_cash_as_it_comes`: oldest payment with cash to apply first.

    Every allocation is checked against the rules before it is carried out the
    way `_apply` does: billing lowers the balance, the payment records the
    application, what is left over beyond the order goes to customer credit.
    """
    for _ in range(1000):
        chosen = None
        for payment in state.payments:
            applications, credit = allocate(state, payment)
            check_allocation(state, payment, applications, credit)
            if chosen is None and (applications or credit > 0):
                chosen = payment, applications, credit
        if chosen is None:
            return
        payment, applications, credit = chosen
        for application in applications:
            target = state.invoice(application.invoice_id)
            assert target is not None
            balance = target.balance - application.amount  # what billing answers
            assert balance >= 0, f"{target.invoice_id} balance went below zero"
            state.record_application(payment, application, balance)
        payment.to_customer_credit += credit
        check_ledger(state)
    raise AssertionError("cash application never settled")


def record_return(
    state: OrderState, returned: ReturnReceived, plan: dict[str, list[SkuQuantity]]
) -> None:
    """`OrderWorkflow._record_return`: one credit note per invoice, lines count the return."""
    currency = state.order.currency
    notes = []
    for invoice_id, lines in plan.items():
        target = state.invoice(invoice_id)
        assert target is not None
        amount = normalise(
            sum((line_of(state, q.sku).amount(q.quantity) for q in lines), Decimal(0)), currency
        )
        applied = min(amount, target.balance)
        target.balance -= applied
        note = CreditNoteState(
            credit_note_id=f"CN-{len(state.credit_notes) + 1}",
            return_id=returned.return_id,
            invoice_id=invoice_id,
            lines=lines,
            amount=amount,
            applied_to_invoice=applied,
            to_customer_credit=amount - applied,
        )
        state.credit_notes.append(note)
        notes.append(note.credit_note_id)
    for item in returned.lines:
        line_of(state, item.sku).returned += item.quantity
    state.returns.append(
        ReturnState(
            return_id=returned.return_id,
            lines=returned.lines,
            resolution=returned.resolution.value,
            received_at=START,
            credit_notes=notes,
        )
    )
