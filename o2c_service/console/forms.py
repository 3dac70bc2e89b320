"""A form's fields checked with the very models the JSON API takes, and each error put
beside the field that caused it.

A form's field names are not always the model's (a shipment's quantities are one
field per line, the model's `lines` a list), so each form says which field a
pydantic error location belongs to (`Locate`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
Locate = Callable[[tuple[int | str, ...]], str]
"""A pydantic error location (`("lines", 0, "quantity")`) -> the form field it is about."""


def first_name(location: tuple[int | str, ...]) -> str:
    """Fields named as the model's (`amount` -> `amount`)."""
    return str(location[0]) if location else "form"


def _message(error: Mapping[str, Any]) -> str:
    if error.get("input") is None and error["type"] in (
        "missing",
        "string_type",
        "decimal_type",
        "int_type",
    ):
        return "Required"  # an empty field is None to the model, which says "not a string"
    text = str(error["msg"])
    return text.removeprefix("Value error, ")


@dataclass
class FormState:
    """What a form shows: the values entered and the error of each field, if any."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)


@dataclass
class Checked(Generic[M]):
    """A form's message, or the form again with its errors (then `message` is None)."""

    form: FormState
    message: M | None = None


def check(
    model: type[M], data: dict[str, Any], form: FormState, locate: Locate = first_name
) -> Checked[M]:
    """`data` as `model`, or `form` with each validation error at its field."""
    if form.errors:
        return Checked(form)
    try:
        return Checked(form, model.model_validate(data))
    except ValidationError as invalid:
        for error in invalid.errors():
            form.add(locate(tuple(error["loc"])), _message(error))
        return Checked(form)


def text(values: Mapping[str, str], name: str) -> str | None:
    """A text field as the model takes it: None when left empty."""
    value = values.get(name, "").strip()
    return value or None


def quantity(values: Mapping[str, str], name: str, form: FormState) -> int:
    """A quantity field (empty: 0); not a whole number -> an error at the field."""
    raw = values.get(name, "").strip()
    if not raw:
        return 0
    try:
        number = int(raw)
    except ValueError:
        form.add(name, "Enter a whole number")
        return 0
    if number < 0:
        form.add(name, "Enter 0 or more")
    return number
