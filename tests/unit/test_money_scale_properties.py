"""Property tests for the money rules (docs: o2c-domain.md, "Money"): figures at
currency scale.

An order's total is the exact sum of its line amounts, instalments add up exactly,
and rounding is explicit: minor units round-trip, too many decimals are refused, a
line amount is an exact product. Orders, terms and amounts come from
`tests.unit.money_strategies`; the other money properties are in the other
test_money_*_properties.py files.

Deterministic on purpose (`derandomize=True`, no example database): CI sees
the same examples on every run.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from o2c_domain.money import exponent, fits_currency, from_minor_units, normalise, to_minor_units
from o2c_workflows.models import OrderLine, OrderRequest, PaymentTerms
from o2c_workflows.state import LineState
from tests.unit.money_checks import check_invoicing, check_schedule
from tests.unit.money_order_steps import new_state
from tests.unit.money_strategies import (
    CURRENCIES,
    SPELLING,
    at_scale,
    examples,
    minor,
    orders,
    payment_terms,
    spellings,
)

# -- 1. invoiced == shipped, total == sum of lines --------------------------------


@examples(100)
@given(orders())
def test_order_total_is_the_exact_sum_of_line_amounts_at_currency_scale(
    order: OrderRequest,
) -> None:
    currency = order.currency
    total = order.total()
    assert total == sum((line.quantity * line.unit_price for line in order.lines), Decimal(0))
    assert at_scale(total, currency)
    assert minor(total, currency) == sum(
        line.quantity * minor(line.unit_price, currency) for line in order.lines
    )
    assert all(at_scale(line.unit_price, currency) for line in order.lines)
    check_invoicing(new_state(order))


# -- 4. instalments -------------------------------------------------------------


@examples(200)
@given(
    st.sampled_from(CURRENCIES),
    st.integers(0, 10**12),
    payment_terms,
    st.dates(date(2020, 1, 1), date(2035, 12, 31)),
)
def test_instalments_add_up_exactly_at_currency_scale(
    currency: str, amount_minor: int, terms: PaymentTerms, day: date
) -> None:
    amount = from_minor_units(amount_minor, currency)
    check_schedule(terms.schedule(day, amount, currency), amount, currency, terms, day)


# -- 5. rounding is explicit ----------------------------------------------------


@examples(150)
@given(st.sampled_from(CURRENCIES), st.integers(-(10**15), 10**15))
def test_minor_units_round_trip(currency: str, amount_minor: int) -> None:
    amount = from_minor_units(amount_minor, currency)
    assert at_scale(amount, currency)
    assert to_minor_units(amount, currency) == amount_minor
    for spelling in spellings(amount, currency):
        assert spelling == amount
        assert normalise(spelling, currency) == amount
        assert at_scale(normalise(spelling, currency), currency)
        assert from_minor_units(to_minor_units(spelling, currency), currency) == amount


@examples(150)
@given(st.sampled_from(CURRENCIES), st.integers(-(10**12), 10**12), st.integers(1, 3))
def test_too_many_decimals_are_refused_not_rounded(currency: str, digits: int, extra: int) -> None:
    amount = Decimal(digits * 10 + 7).scaleb(-(exponent(currency) + extra))
    assert not fits_currency(amount, currency)
    with pytest.raises(ValueError):
        normalise(amount, currency)
    with pytest.raises(ValueError):
        to_minor_units(amount, currency)
    price = abs(amount) % 10**9  # within what a line accepts; the surplus decimals stay
    with pytest.raises(ValidationError, match="more decimal places than"):
        OrderRequest(
            source_system="webshop",
            source_order_id="SO-1",
            customer_id="CUST-1",
            currency=currency,
            lines=[OrderLine(sku="SKU-A", quantity=1, unit_price=price)],
        )


@examples(150)
@given(st.sampled_from(CURRENCIES), st.integers(1, 1_000_000), st.data())
def test_line_amounts_are_exact_products(currency: str, quantity: int, data: st.DataObject) -> None:
    price_minor = data.draw(st.integers(0, 10 ** (9 + exponent(currency))), label="price")
    price = spellings(from_minor_units(price_minor, currency), currency)[data.draw(SPELLING)]
    order_line = OrderLine(sku="SKU-A", quantity=quantity, unit_price=price)
    line = LineState(sku="SKU-A", unit_price=price, ordered=quantity)
    for amount in (order_line.amount(), line.amount(quantity)):
        assert fits_currency(amount, currency)
        assert to_minor_units(amount, currency) == quantity * price_minor
        assert amount == from_minor_units(quantity * price_minor, currency)
