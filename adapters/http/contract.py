"""A system's REST contract as data: each protocol method is one `Operation`.

Conventions every contract follows (docs/remote-systems.md):

- a write is a `POST` with its request as the JSON body and an `Idempotency-Key`
  header equal to the request's `idempotency_key`; the same key answers the first
  result again;
- every keyed write has a lookup, `GET .../by-key/{idempotency_key}`, answering the
  result or 404 `not_found`, so a caller that lost an answer can ask what happened;
- a refusal is an RFC 9457 problem (`application/problem+json`) with the business
  `code` as an extension member, under a 4xx status.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

PATH_PARAMETER = re.compile(r"{(\w+)}")


@dataclass(frozen=True)
class Operation:
    """One adapter method as an HTTP exchange.

    The method's arguments map in order onto the path's `{parameters}`, then onto
    `query` (GET), or the single argument is the JSON `body` (POST).
    """

    name: str
    """The protocol method, e.g. `create_invoice` (also the fault rules' operation)."""
    method: Literal["GET", "POST"]
    path: str
    answer: Any
    """What a 2xx body is: a model, `list[Model]`, `bool`."""
    summary: str
    body: type[BaseModel] | None = None
    query: tuple[tuple[str, type], ...] = ()
    absent_is_none: bool = False
    """A lookup: 404 `not_found` means there is none (the method returns None)."""
    key_of: Callable[[Any], str] | None = None
    """The write's idempotency key from its body; default the body's `idempotency_key`."""
    path_parameters: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path_parameters", tuple(PATH_PARAMETER.findall(self.path)))
        if self.writes != (self.body is not None):
            raise ValueError(f"{self.name}: a POST takes a body, a GET none")

    @property
    def writes(self) -> bool:
        return self.method == "POST"

    def idempotency_key(self, body: BaseModel) -> str:
        if self.key_of is not None:
            return self.key_of(body)
        key = getattr(body, "idempotency_key", None)
        if not isinstance(key, str):
            raise TypeError(f"{self.name}: {type(body).__name__} carries no idempotency_key")
        return key


@dataclass(frozen=True)
class Contract:
    """One system's operations, as served and as called."""

    system: str
    title: str
    description: str
    operations: tuple[Operation, ...]

    def operation(self, name: str) -> Operation:
        for operation in self.operations:
            if operation.name == name:
                return operation
        raise KeyError(f"{self.system} has no operation {name}")


def lookup(name: str, collection: str, answer: type[BaseModel], what: str) -> Operation:
    """The lookup by idempotency key that every keyed write has."""
    return Operation(
        name=name,
        method="GET",
        path=f"/{collection}/by-key/{{idempotency_key}}",
        answer=answer,
        summary=f"The {what} made with this idempotency key, if any",
        absent_is_none=True,
    )
