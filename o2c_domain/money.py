"""Money rules shared by the order model and the adapters.

Amounts are `Decimal` in a currency; a currency's ISO 4217 exponent says how
many decimal places an amount in it may have. Nothing here ever touches a float.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, WithJsonSchema

# ISO 4217 active codes by minor-unit exponent. Two decimals is the common case,
# so only the exceptions are listed by exponent.
_EXPONENT_0 = frozenset(
    "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split()
)
_EXPONENT_3 = frozenset("BHD IQD JOD KWD LYD OMR TND".split())
_EXPONENT_4 = frozenset("CLF UYW".split())
_EXPONENT_2 = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD
    BTN BWP BYN BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR
    FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS
    KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
    MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR
    SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD
    TWD TZS UAH USD UYU UZS VES WST XCD YER ZAR ZMW ZWG""".split()
)

MINOR_UNIT_EXPONENT: dict[str, int] = {
    **dict.fromkeys(_EXPONENT_0, 0),
    **dict.fromkeys(_EXPONENT_2, 2),
    **dict.fromkeys(_EXPONENT_3, 3),
    **dict.fromkeys(_EXPONENT_4, 4),
}


def _known_currency(code: str) -> str:
    if code not in MINOR_UNIT_EXPONENT:
        raise ValueError(f"'{code}' is not an ISO 4217 currency code")
    return code


CurrencyCode = Annotated[
    str,
    Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$", examples=["EUR"]),
    AfterValidator(_known_currency),
]
"""An upper-case ISO 4217 code such as `EUR`."""

MAX_AMOUNT_DIGITS = 18
"""Digits an amount may have in all: enough for any order, and within a signed 64-bit
integer of minor units, which is how databases store it."""

Amount = Annotated[
    Decimal,
    Field(max_digits=MAX_AMOUNT_DIGITS, allow_inf_nan=False, examples=["19.99"]),
]
"""A money amount the service computed. Serialised as a JSON string so no decimal digit is lost."""

_PLAIN_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")

AMOUNT_FORMAT = "a plain decimal such as 12.50 (ASCII digits and one '.', nothing else)"


def parse_amount(value: Any) -> Decimal:
    """An amount a caller sent, read strictly: `"12.50"`, `"12.5"` or `"12"`, and nothing else.

    `Decimal()` alone would take `-0`, `1_000`, `1e1`, `" 1.00"` and non-ASCII
    digits; a person reading the order later would not recognise what was typed.
    JSON integers (and `Decimal`s built in code) are exact and pass; a JSON number
    with a fraction arrives as a binary float, whose digits are not the sender's,
    so it is refused rather than guessed at.
    """
    if isinstance(value, bool):
        raise ValueError(f"must be {AMOUNT_FORMAT}, not a boolean")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"must be {AMOUNT_FORMAT}, not negative")
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite() or (value.is_signed() and not value.is_zero()):
            raise ValueError(f"must be {AMOUNT_FORMAT}, not {value}")
        return value.copy_abs()
    if isinstance(value, float):
        raise ValueError(
            f'must be {AMOUNT_FORMAT} in a JSON string ("12.50"): a JSON number with a '
            "fraction is read as a binary float and may not keep its digits"
        )
    if not isinstance(value, str):
        raise ValueError(f"must be {AMOUNT_FORMAT}")
    if _PLAIN_DECIMAL.fullmatch(value) is None:
        shown = value if len(value) <= 40 else f"{value[:40]}..."
        raise ValueError(f"must be {AMOUNT_FORMAT}, not {shown!r}")
    return Decimal(value)


def _amount_pattern(integer_digits: int, *, positive: bool = False, also: str = "") -> str:
    """The plain decimals `parse_amount` and MAX_AMOUNT_DIGITS take, as one pattern: an
    integer part of at most `integer_digits` digits (leading zeros aside), above zero if
    `positive`, or matching `also`. A decimal's digits are its integer part's, without
    leading zeros, and its fraction's, without trailing zeros."""
    most = MAX_AMOUNT_DIGITS
    if positive:  # 0.001: some digit of the fraction is not 0
        branches = [
            f"0+\\.0{{{zeros}}}[1-9][0-9]{{0,{most - zeros - 1}}}0*" for zeros in range(most)
        ]
    else:
        branches = [f"0+(?:\\.[0-9]{{1,{most}}}0*)?"]
    for digits in range(1, integer_digits + 1):
        head = "[1-9]" + (f"[0-9]{{{digits - 1}}}" if digits > 1 else "")
        room = most - digits  # trailing zeros of the fraction do not count
        branches.append(f"0*{head}" + (f"(?:\\.[0-9]{{1,{room}}}0*)?" if room else "(?:\\.0+)?"))
    if also:
        branches.append(also)
    return f"^(?:{'|'.join(branches)})$"


def _caller_amount_schema(pattern: str, **integer: int) -> WithJsonSchema:
    """What the API takes as an amount, for /docs and clients generated from it (not a JSON
    float): a string matching `pattern`, or an integer within `integer`'s bounds."""
    # 10**18 - 1 as a JSON Schema bound would be read as a float, 1e18: bound exclusively.
    bounds = {"exclusiveMaximum": 10**MAX_AMOUNT_DIGITS, **integer}
    return WithJsonSchema(
        {
            "anyOf": [{"type": "string", "pattern": pattern}, {"type": "integer", **bounds}],
            "examples": ["19.99"],
        },
        mode="validation",
    )


_CALLER_AMOUNT = (
    BeforeValidator(parse_amount),
    Field(max_digits=MAX_AMOUNT_DIGITS, allow_inf_nan=False),
)

PlainAmount = Annotated[
    Decimal,
    *_CALLER_AMOUNT,
    _caller_amount_schema(_amount_pattern(MAX_AMOUNT_DIGITS), minimum=0),
]
"""A non-negative amount as a caller sends it (prices, payments, refunds): see `parse_amount`.

The models that carry a currency store it at the currency's scale (`normalise`)."""

PositiveAmount = Annotated[
    Decimal,
    *_CALLER_AMOUNT,
    _caller_amount_schema(_amount_pattern(MAX_AMOUNT_DIGITS, positive=True), minimum=1),
]
"""A `PlainAmount` above zero (a payment, a refund)."""

MAX_UNIT_PRICE = Decimal(1_000_000_000)
UnitPrice = Annotated[
    Decimal,
    *_CALLER_AMOUNT,
    _caller_amount_schema(
        _amount_pattern(9, also="0*1000000000(?:\\.0+)?"),
        minimum=0,
        maximum=int(MAX_UNIT_PRICE),
    ),
]
"""A `PlainAmount` of at most MAX_UNIT_PRICE (a line's unit price)."""


def fits_amount_digits(amount: Decimal, currency: str) -> bool:
    """Whether `amount` at `currency`'s scale has at most MAX_AMOUNT_DIGITS digits."""
    return abs(amount) < Decimal(10) ** (MAX_AMOUNT_DIGITS - exponent(currency))


def exponent(currency: str) -> int:
    """How many decimal places an amount in `currency` may carry."""
    return MINOR_UNIT_EXPONENT[currency]


def quantum(currency: str) -> Decimal:
    """The smallest amount in `currency`, e.g. `0.01` for EUR, `1` for JPY."""
    return Decimal(1).scaleb(-exponent(currency))


def fits_currency(amount: Decimal, currency: str) -> bool:
    """Whether `amount` has no more decimal places than `currency` allows."""
    return amount == amount.quantize(quantum(currency))


def normalise(amount: Decimal, currency: str) -> Decimal:
    """`amount` at exactly the currency's scale (`5` EUR -> `5.00`).

    Raises ValueError instead of rounding: rounding is a business decision that
    belongs to the caller, never an accident of formatting.
    """
    if not fits_currency(amount, currency):
        raise ValueError(
            f"{amount} has more decimal places than {currency} allows ({exponent(currency)})"
        )
    return amount.quantize(quantum(currency))


def to_minor_units(amount: Decimal, currency: str) -> int:
    """`12.34` EUR -> `1234`: the integer form databases and payment APIs store."""
    return int(normalise(amount, currency).scaleb(exponent(currency)))


def from_minor_units(minor: int, currency: str) -> Decimal:
    """`1234` EUR -> `Decimal('12.34')`."""
    return Decimal(minor).scaleb(-exponent(currency)).quantize(quantum(currency))


def at_currency_scale(amount: Decimal, info: ValidationInfo) -> Decimal:
    """A field validator: `amount` with exactly its currency's decimals (`12.5` EUR -> `12.50`).

    For a model whose `currency` field is declared before the amount, so that the
    error (too many decimals) lands on the amount's field; a currency that failed
    validation is reported on its own field.
    """
    currency = info.data.get("currency")
    return amount if currency is None else normalise(amount, currency)
