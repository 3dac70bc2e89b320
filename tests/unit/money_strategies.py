"""What the money property tests draw (tests/unit/test_money_*_properties.py).

Orders in currencies with 0, 2 and 3 decimals, prices at currency scale written
the ways a caller may write them, payment terms and amendments; and the hypothesis
settings every property runs with.

Deterministic on purpose (`derandomize=True`, no example database): CI sees
the same examples on every run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from o2c_domain.money import (
    Amount,
    exponent,
    fits_currency,
    from_minor_units,
    normalise,
    to_minor_units,
)
from o2c_workflows.messages import Amendment, LineChange
from o2c_workflows.models import OrderLine, OrderRequest, PaymentTerms, PaymentTermsKind
from o2c_workflows.state import OrderState

PROPERTY = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def examples(n: int) -> settings:
    return settings(PROPERTY, max_examples=n)


CURRENCIES = ("JPY", "EUR", "KWD")  # 0, 2 and 3 decimals
SKUS = tuple(f"SKU-{letter}" for letter in "ABCDEFGH")
NEW_SKUS = ("NEW-1", "NEW-2")
START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
AMOUNT = TypeAdapter(Amount)
SPELLING = st.integers(0, 2)  # an index into `spellings`


# -- strategies ---------------------------------------------------------------


def at_scale(amount: Decimal, currency: str) -> bool:
    """The amount's value fits the currency *and* it is written with exactly its decimals."""
    return fits_currency(amount, currency) and amount.as_tuple().exponent == -exponent(currency)


def spellings(value: Decimal, currency: str) -> list[Decimal]:
    """Ways a caller may write an amount that fits `currency`: `5.00`, `5`, `5.000` for EUR."""
    e = exponent(currency)
    fewest = next(
        value.quantize(Decimal(1).scaleb(-k))
        for k in range(e + 1)
        if value == value.quantize(Decimal(1).scaleb(-k))
    )
    return [normalise(value, currency), fewest, value.quantize(Decimal(1).scaleb(-(e + 1)))]


@st.composite
def prices(draw: st.DrawFn, currency: str, *, any_spelling: bool = True) -> Decimal:
    """A unit price at currency scale: up to 100,000 units of the currency."""
    value = from_minor_units(draw(st.integers(0, 10 ** (exponent(currency) + 5))), currency)
    if not any_spelling:
        return value
    return spellings(value, currency)[draw(SPELLING)]


payment_terms = st.one_of(
    st.just(PaymentTerms.due_on_receipt()),
    st.builds(
        lambda days: PaymentTerms(kind=PaymentTermsKind.NET, net_days=days), st.integers(1, 90)
    ),
    st.builds(
        lambda days, parts: PaymentTerms(
            kind=PaymentTermsKind.INSTALMENTS, net_days=days, instalments=parts
        ),
        st.integers(1, 60),
        st.integers(2, 24),
    ),
)


@st.composite
def orders(draw: st.DrawFn) -> OrderRequest:
    """A valid order: 1-6 lines with distinct SKUs, quantities 1..50, prices at currency scale."""
    currency = draw(st.sampled_from(CURRENCIES))
    skus = draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=6, unique=True))
    lines = [
        OrderLine(sku=sku, quantity=draw(st.integers(1, 50)), unit_price=draw(prices(currency)))
        for sku in skus
    ]
    return OrderRequest(
        source_system="webshop",
        source_order_id="SO-1001",
        customer_id="CUST-ACME",
        currency=currency,
        lines=lines,
        payment_terms=draw(payment_terms),
    )


@st.composite
def amendments_to(draw: st.DrawFn, state: OrderState, *, any_spelling: bool) -> Amendment | None:
    """Quantity changes and removals of existing lines, and new lines with a price."""
    currency = state.order.currency
    existing = [line.sku for line in state.lines]
    changes = [
        LineChange(sku=sku, quantity=draw(st.integers(0, 50)))
        for sku in draw(st.lists(st.sampled_from(existing), unique=True, max_size=len(existing)))
    ]
    changes += [
        LineChange(
            sku=sku,
            quantity=draw(st.integers(1, 50)),
            unit_price=draw(prices(currency, any_spelling=any_spelling)),
        )
        for sku in draw(st.lists(st.sampled_from(NEW_SKUS), unique=True, max_size=2))
    ]
    return Amendment(changes=changes) if changes else None


def minor(amount: Decimal, currency: str) -> int:
    return to_minor_units(amount, currency)
