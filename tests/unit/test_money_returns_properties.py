"""Property tests for the money rules (docs: o2c-domain.md, "Money"): returns.

Shipped, invoiced and perhaps paid orders take returns; `returns.credit_plan`
must never credit a unit twice, newest invoice first, and a return naming a SKU
twice is refused or credited once.

Deterministic on purpose (`derandomize=True`, no example database): CI sees
the same examples on every run.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from o2c_domain.lines import SkuQuantity
from o2c_workflows import returns
from o2c_workflows.messages import ReturnReceived
from o2c_workflows.models import OrderRequest
from o2c_workflows.state import OrderState
from tests.unit.money_checks import check_credit_plan
from tests.unit.money_order_steps import (
    apply_cash,
    draw_payment,
    new_state,
    record_return,
    ship_and_invoice,
)
from tests.unit.money_strategies import START, examples, orders

# -- 6. returns -----------------------------------------------------------------


def shipped_and_invoiced(data: st.DataObject, order: OrderRequest) -> OrderState:
    state, at = new_state(order), START
    for _ in range(data.draw(st.integers(1, 5), label="shipments")):
        if state.fully_shipped:
            break
        at += timedelta(days=data.draw(st.integers(0, 10), label="days later"))
        ship_and_invoice(data, state, at)
    if data.draw(st.booleans(), label="payments?"):
        for _ in range(data.draw(st.integers(1, 3), label="payments")):
            draw_payment(data, state, at, at_most=None)
        apply_cash(state)
    return state


def returnable(state: OrderState) -> dict[str, int]:
    return {
        line.sku: line.invoiced - line.returned
        for line in state.lines
        if line.invoiced > line.returned
    }


@examples(80)
@given(orders(), st.data())
def test_returns_never_credit_a_unit_twice(order: OrderRequest, data: st.DataObject) -> None:
    state = shipped_and_invoiced(data, order)
    for number in range(1, data.draw(st.integers(1, 4), label="returns") + 1):
        left = returnable(state)
        if not left:
            break
        skus = data.draw(st.lists(st.sampled_from(sorted(left)), min_size=1, unique=True))
        returned = ReturnReceived(
            return_id=f"RMA-{number}",
            lines=[SkuQuantity(sku=s, quantity=data.draw(st.integers(1, left[s]))) for s in skus],
        )
        plan = returns.credit_plan(state, returned)
        check_credit_plan(state, returned, plan)
        record_return(state, returned, plan)
        assert all(line.returned <= line.invoiced for line in state.lines)


@examples(40)
@given(orders(), st.data())
def test_a_return_naming_a_sku_twice_is_refused_or_credited_once(
    order: OrderRequest, data: st.DataObject
) -> None:
    """A return that names a SKU on two lines is refused (by the message or the plan), or
    credited without crediting a unit twice."""
    state = shipped_and_invoiced(data, order)
    left = returnable(state)
    skus = data.draw(st.lists(st.sampled_from(sorted(left)), min_size=2, max_size=4))
    lines = [SkuQuantity(sku=s, quantity=data.draw(st.integers(1, left[s]))) for s in skus]
    try:
        returned = ReturnReceived(return_id="RMA-1", lines=lines)
        plan = returns.credit_plan(state, returned)
    except (ValidationError, ApplicationError):
        return  # refusing it is fine
    check_credit_plan(state, returned, plan)
