"""Property tests for the money rules (docs: o2c-domain.md, "Money"): amounts
the order keeps stay money.

An amended total stays at currency scale however the new prices are written; an
order is refused exactly when its total would not fit an `Amount`, and an
amendment never takes the total past what an order may hold.

Deterministic on purpose (`derandomize=True`, no example database): CI sees
the same examples on every run.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from o2c_domain.money import MAX_AMOUNT_DIGITS, exponent, from_minor_units, to_minor_units
from o2c_workflows.messages import Amendment, LineChange
from o2c_workflows.models import OrderLine, OrderRequest
from o2c_workflows.state import OrderState
from tests.unit.money_order_steps import amend, new_state
from tests.unit.money_strategies import (
    AMOUNT,
    CURRENCIES,
    NEW_SKUS,
    SKUS,
    amendments_to,
    at_scale,
    examples,
    orders,
)

# -- amounts the order keeps stay money -------------------------------------------


@examples(100)
@given(orders(), st.data())
def test_an_amended_total_stays_at_currency_scale(order: OrderRequest, data: st.DataObject) -> None:
    """Prices on an amendment are written as callers write them (`5`, `5.000` for EUR)."""
    state = new_state(order)
    amendment = data.draw(amendments_to(state, any_spelling=True), label="amendment")
    if amendment is None or not amend(state, amendment):
        return
    currency = order.currency
    assert state.total == sum((line.amount(line.ordered) for line in state.lines), Decimal(0))
    assert at_scale(state.total, currency), f"total {state.total} {currency}"
    assert all(at_scale(line.unit_price, currency) for line in state.lines)


def near(limit: int, below: int) -> st.SearchStrategy[int]:
    """Anything up to `limit`, often just under it: the limits are where money overflows."""
    return st.one_of(st.integers(1, limit), st.integers(0, below).map(lambda k: limit - k))


def fits_an_amount(total: Decimal, currency: str) -> bool:
    """Written at currency scale, at most `MAX_AMOUNT_DIGITS` digits (and so an `Amount`)."""
    return len(str(abs(to_minor_units(total, currency)))) <= MAX_AMOUNT_DIGITS


@examples(100)
@given(st.sampled_from(CURRENCIES), st.data())
def test_an_order_is_refused_exactly_when_its_total_does_not_fit(
    currency: str, data: st.DataObject
) -> None:
    """Up to the limits `OrderLine` accepts (quantity 1,000,000, price 1,000,000,000), an
    order is refused exactly when its total has more than 18 digits at currency scale;
    otherwise the workflow can start it (its total is an `Amount`)."""
    highest_price = 10 ** (9 + exponent(currency))  # in minor units
    lines = [
        OrderLine(
            sku=sku,
            quantity=data.draw(near(1_000_000, 1000), label="quantity"),
            unit_price=from_minor_units(
                data.draw(near(highest_price, 10**4), label="price"), currency
            ),
        )
        for sku in data.draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=6, unique=True))
    ]
    total = sum((line.amount() for line in lines), Decimal(0))
    try:
        order = OrderRequest(
            source_system="webshop",
            source_order_id="SO-1",
            customer_id="CUST-1",
            currency=currency,
            lines=lines,
        )
    except ValidationError as refused:
        assert not fits_an_amount(total, currency), f"{total} {currency} fits, yet: {refused}"
        return
    assert fits_an_amount(total, currency)
    assert order.total() == total
    AMOUNT.validate_python(order.total())
    assert OrderState.model_validate_json(new_state(order).model_dump_json()).total == total


@examples(100)
@given(orders(), st.data())
def test_an_amendment_never_takes_the_total_past_what_an_order_may_hold(
    order: OrderRequest, data: st.DataObject
) -> None:
    """New lines within the limits an order's lines have: the amended total still fits an
    `Amount` (the state travels on, e.g. into the next run), or the amendment is refused."""
    currency = order.currency
    highest_price = 10 ** (9 + exponent(currency))
    new_lines = data.draw(st.lists(st.sampled_from(NEW_SKUS), min_size=1, unique=True))
    amendment = Amendment(
        changes=[
            LineChange(
                sku=sku,
                quantity=data.draw(near(1_000_000, 1000), label="quantity"),
                unit_price=from_minor_units(
                    data.draw(near(highest_price, 10**4), label="price"), currency
                ),
            )
            for sku in new_lines
        ]
    )
    state = new_state(order)
    if not amend(state, amendment):
        return  # refused: nothing changed
    assert fits_an_amount(state.total, currency), f"amended total {state.total} {currency}"
    OrderState.model_validate_json(state.model_dump_json())
