"""Property tests for the money rules (docs: o2c-domain.md, "Money"): invoices and
cash application.

Orders in currencies with 0, 2 and 3 decimals go through an amendment, partial
shipments, invoices and a stream of payments built the way `OrderWorkflow` builds
them (`tests.unit.money_order_steps`); `cash_application` must keep every figure
exact and reconciled, and what is outstanding never negative.

Deterministic on purpose (`derandomize=True`, no example database): CI sees
the same examples on every run.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from o2c_workflows.cash_application import outstanding, still_to_invoice
from o2c_workflows.models import OrderRequest
from tests.unit.money_checks import check_invoicing, check_ledger, customer_credit, on_account
from tests.unit.money_order_steps import (
    amend,
    apply_cash,
    draw_payment,
    new_state,
    ship_and_invoice,
)
from tests.unit.money_strategies import START, amendments_to, examples, orders

# -- 1 + 2. partial shipments, invoices and a stream of payments ---------------


@examples(100)
@given(orders(), st.data())
def test_invoices_and_cash_reconcile_over_partial_shipments_and_any_payments(
    order: OrderRequest, data: st.DataObject
) -> None:
    state, at = new_state(order), START
    amendment = data.draw(amendments_to(state, any_spelling=False), label="amendment")
    if amendment is not None:
        amend(state, amendment)
    check_invoicing(state)
    for _ in range(data.draw(st.integers(1, 10), label="events")):
        at += timedelta(days=data.draw(st.integers(0, 20), label="days later"))
        if not state.fully_shipped and data.draw(st.booleans(), label="ship?"):
            ship_and_invoice(data, state, at)
        else:
            for _ in range(data.draw(st.integers(1, 2), label="payments at once")):
                draw_payment(data, state, at, at_most=None)
        apply_cash(state)
        check_invoicing(state)
        check_ledger(state)
        # Settled: what the customer keeps as credit is exactly what was paid beyond the order.
        assert outstanding(state) >= 0
        assert customer_credit(state) == max(Decimal(0), state.paid - state.total)
        assert outstanding(state) == state.total - state.paid + customer_credit(state)


# -- 3. outstanding -------------------------------------------------------------


@examples(100)
@given(orders(), st.data())
def test_outstanding_never_negative_while_payments_stay_within_the_total(
    order: OrderRequest, data: st.DataObject
) -> None:
    state, at = new_state(order), START
    for _ in range(data.draw(st.integers(1, 10), label="events")):
        at += timedelta(days=data.draw(st.integers(0, 20), label="days later"))
        if not state.fully_shipped and data.draw(st.booleans(), label="ship?"):
            ship_and_invoice(data, state, at)
        else:
            for _ in range(data.draw(st.integers(1, 2), label="payments at once")):
                draw_payment(data, state, at, at_most=state.total - state.paid)
                # Recorded, not yet applied: still never negative.
                assert outstanding(state) >= 0
        apply_cash(state)
        assert state.paid <= state.total
        assert customer_credit(state) == 0, "credit only for what exceeds the order"
        assert outstanding(state) >= 0
        assert outstanding(state) == state.total - state.paid
        everything_paid = all(i.balance == 0 for i in state.invoices)
        # Zero exactly when every invoice is paid and what is held on account covers what
        # is left to invoice; once nothing is left to invoice, nothing may be on account.
        assert (outstanding(state) == 0) == (
            everything_paid and on_account(state) == still_to_invoice(state)
        )
        if still_to_invoice(state) == 0:
            assert (outstanding(state) == 0) == (everything_paid and on_account(state) == 0)
