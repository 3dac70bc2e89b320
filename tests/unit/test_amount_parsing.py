"""Amounts callers send are read strictly and kept at their currency's scale.

`Decimal()` alone takes `-0`, `1_000`, `1e1`, `" 1.00"` and Arabic-Indic digits;
none of them is an amount a person would recognise on the order afterwards.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from o2c_domain.money import exponent, parse_amount
from o2c_workflows.credit_refund import CreditRefundRequest
from o2c_workflows.messages import Amendment, PaymentReceived
from o2c_workflows.models import OrderRequest

PROPERTY = settings(derandomize=True, database=None, deadline=None, max_examples=300)
CURRENCIES = ("JPY", "EUR", "KWD")  # 0, 2 and 3 decimals

LAX_SPELLINGS = [
    "-0", "-1.00", "+1.00", "1_000", "\u0661\u0660", "\uff11", " 1.00", "1.00 ", "1.00\n",
    "1e1", "1E+1", "1.", ".5", "1,00", "1.0.0", "NaN", "Infinity", "", "0x10", "12.50 EUR",
]  # fmt: skip


def order(unit_price: Any, currency: str = "EUR") -> dict[str, Any]:
    return {
        "source_system": "webshop",
        "source_order_id": "SO-1",
        "customer_id": "CUST-ACME",
        "currency": currency,
        "lines": [{"sku": "SKU-WIDGET", "quantity": 1, "unit_price": unit_price}],
    }


def payment(amount: Any, currency: str = "EUR") -> dict[str, Any]:
    return {"payment_id": "PAY-1", "amount": amount, "currency": currency}


def refund(amount: Any, currency: str = "EUR") -> dict[str, Any]:
    return {"refund_id": "RF-1", "account_id": "BA-1", "payment_id": "PAY-1",
            "amount": amount, "currency": currency}  # fmt: skip


def error_locations(error: ValidationError) -> list[tuple[Any, ...]]:
    return [tuple(item["loc"]) for item in error.errors()]


@PROPERTY
@given(st.integers(0, 10**12), st.integers(0, 6))
def test_plain_decimals_read_exactly(units: int, places: int) -> None:
    text = f"{units}" if places == 0 else f"{units // 10**places}.{units % 10**places:0{places}d}"
    amount = parse_amount(text)
    assert amount == Decimal(units).scaleb(-places)
    assert str(amount) == text  # every digit the caller wrote, no exponent


@PROPERTY
@given(st.text(max_size=12))
def test_only_ascii_digits_and_one_point_are_an_amount(text: str) -> None:
    plain = text.replace(".", "", 1)
    is_plain = (
        plain.isascii() and plain.isdigit() and not text.startswith(".") and not text.endswith(".")
    )
    if is_plain:
        assert parse_amount(text) == Decimal(text)
    else:
        with pytest.raises(ValueError, match=r"plain decimal such as 12\.50"):
            parse_amount(text)


@pytest.mark.parametrize("text", LAX_SPELLINGS)
def test_lax_spellings_are_refused_naming_the_field(text: str) -> None:
    with pytest.raises(ValidationError) as rejected:
        OrderRequest.model_validate(order(text))
    assert ("lines", 0, "unit_price") in error_locations(rejected.value)
    with pytest.raises(ValidationError) as rejected:
        PaymentReceived.model_validate(payment(text))
    assert error_locations(rejected.value) == [("amount",)]
    with pytest.raises(ValidationError) as rejected:
        Amendment.model_validate({"changes": [{"sku": "SKU-NEW", "quantity": 1,
                                               "unit_price": text}]})  # fmt: skip
    assert error_locations(rejected.value) == [("changes", 0, "unit_price")]
    with pytest.raises(ValidationError) as rejected:
        CreditRefundRequest.model_validate(refund(text))
    assert error_locations(rejected.value) == [("amount",)]


def test_json_numbers_integers_only() -> None:
    """A JSON integer is exact; a JSON number with a fraction arrives as a float and is refused."""
    assert PaymentReceived.model_validate_json(
        '{"payment_id": "P", "amount": 12, "currency": "EUR"}'
    ).amount == Decimal("12.00")
    for body in ('{"payment_id": "P", "amount": 12.5, "currency": "EUR"}',
                 '{"payment_id": "P", "amount": 1e1, "currency": "EUR"}',
                 '{"payment_id": "P", "amount": true, "currency": "EUR"}'):  # fmt: skip
        with pytest.raises(ValidationError) as rejected:
            PaymentReceived.model_validate_json(body)
        assert error_locations(rejected.value) == [("amount",)]
    with pytest.raises(ValidationError, match="JSON string"):
        PaymentReceived.model_validate(payment(12.5))


@PROPERTY
@given(st.sampled_from(CURRENCIES), st.integers(0, 10**9), st.data())
def test_amounts_are_kept_at_currency_scale(currency: str, minor: int, data: st.DataObject) -> None:
    scale = exponent(currency)
    canonical = Decimal(minor).scaleb(-scale).quantize(Decimal(1).scaleb(-scale))
    # The same value written with fewer decimals (down to none, if it has none).
    fewest = canonical.normalize()
    fewest = fewest.quantize(Decimal(1)) if fewest == fewest.to_integral() else fewest
    text = data.draw(st.sampled_from([str(canonical), f"{fewest:f}"]), label="spelling")
    created = OrderRequest.model_validate(order(text, currency))
    assert str(created.lines[0].unit_price) == f"{canonical:f}"
    assert created.model_dump(mode="json")["lines"][0]["unit_price"] == f"{canonical:f}"
    if minor > 0:
        paid = PaymentReceived.model_validate_json(PaymentReceived.model_validate(
            payment(text, currency)).model_dump_json())  # fmt: skip
        assert paid.model_dump(mode="json")["amount"] == f"{canonical:f}"
        assert str(CreditRefundRequest.model_validate(refund(text, currency)).amount) == (
            f"{canonical:f}"
        )


def test_examples_from_the_issue() -> None:
    assert str(OrderRequest.model_validate(order("12.5")).lines[0].unit_price) == "12.50"
    assert str(PaymentReceived.model_validate(payment("12.5")).amount) == "12.50"
    assert str(PaymentReceived.model_validate(payment("3", "KWD")).amount) == "3.000"


@pytest.mark.parametrize(
    ("currency", "text"), [("EUR", "10.001"), ("JPY", "10.5"), ("KWD", "1.0001")]
)
def test_more_decimals_than_the_currency_allows_name_the_field(currency: str, text: str) -> None:
    with pytest.raises(ValidationError, match=f"more decimal places than {currency}") as rejected:
        PaymentReceived.model_validate(payment(text, currency))
    assert error_locations(rejected.value) == [("amount",)]
    with pytest.raises(ValidationError, match=f"more decimal places than {currency}") as rejected:
        CreditRefundRequest.model_validate(refund(text, currency))
    assert error_locations(rejected.value) == [("amount",)]
    with pytest.raises(ValidationError, match=r"lines\[0\].unit_price"):
        OrderRequest.model_validate(order(text, currency))


def test_recorded_payloads_still_parse() -> None:
    """What running orders carry in their histories: strings at currency scale."""
    assert OrderRequest.model_validate_json(
        '{"source_system": "webshop", "source_order_id": "SO-1", "customer_id": "C",'
        ' "currency": "EUR", "lines": [{"sku": "S", "quantity": 3, "unit_price": "19.99"}]}'
    ).lines[0].unit_price == Decimal("19.99")
    assert PaymentReceived.model_validate_json(
        '{"payment_id": "P", "amount": "159.97", "currency": "EUR", "reference": null}'
    ).amount == Decimal("159.97")


def test_the_schema_offers_strings_and_integers_not_floats() -> None:
    """/docs and generated clients must not suggest a JSON number with a fraction."""
    amount = PaymentReceived.model_json_schema()["properties"]["amount"]
    assert [option["type"] for option in amount["anyOf"]] == ["string", "integer"]
    assert re.fullmatch(amount["anyOf"][0]["pattern"].strip("^$"), "12.50")
    assert not re.fullmatch(amount["anyOf"][0]["pattern"].strip("^$"), "1e1")
