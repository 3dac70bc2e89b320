"""A fault profile: the rules (which calls to disturb, and how), checked as they are
read from JSON inline or in a file. What each field means is in the `adapters.faults`
docstring.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Final, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from adapters.billing.protocol import BillingAdapter
from adapters.crm.protocol import CrmAdapter
from adapters.logistics.protocol import LogisticsAdapter
from adapters.payments.protocol import PaymentsAdapter
from o2c_domain.systems import System

FAULTS_SETTING = "O2C_FAULTS"
"""The setting (environment variable) the worker reads its fault profile from."""

ANY: Final = "*"


def _operations_of(protocol: type) -> frozenset[str]:
    return frozenset(
        name
        for name, value in vars(protocol).items()
        if not name.startswith("_") and inspect.iscoroutinefunction(value)
    )


OPERATIONS: dict[str, frozenset[str]] = {
    "crm": _operations_of(CrmAdapter),
    "billing": _operations_of(BillingAdapter),
    "logistics": _operations_of(LogisticsAdapter),
    "payments": _operations_of(PaymentsAdapter),
}
"""The operation names a rule may name, per system: the methods of its protocol."""


class FaultProfileError(ValueError):
    """A fault profile could not be read; the message names the source and the field."""


class FaultRule(BaseModel):
    """Which adapter calls to disturb, and how. See the `adapters.faults` docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    system: System | Literal["*"] = ANY
    operation: str = ANY
    customer_id: str | None = Field(default=None, min_length=1)
    sku: str | None = Field(default=None, min_length=1)

    latency_ms: int = Field(default=0, ge=0)
    business_error: str | None = Field(default=None, min_length=1)
    fail_times: int = Field(default=0, ge=0)
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0, allow_inf_nan=False)
    error_kind: Literal["unavailable", "timeout", "rate_limited"] = "unavailable"
    retry_after_ms: int | None = Field(default=None, ge=0)
    unknown_outcome_rate: float = Field(default=0.0, ge=0.0, le=1.0, allow_inf_nan=False)

    @field_validator("operation")
    @classmethod
    def _known_operation(cls, operation: str, info: ValidationInfo) -> str:
        if operation == ANY:
            return operation
        system = info.data.get("system")
        if system is None:  # the system itself was invalid and is reported on its own
            return operation
        if system == ANY:
            known = frozenset().union(*OPERATIONS.values())
            where = "any system"
        else:
            known = OPERATIONS[system]
            where = f"system '{system}'"
        if operation not in known:
            raise ValueError(
                f"unknown operation '{operation}' for {where}; "
                f"expected '*' or one of: {', '.join(sorted(known))}"
            )
        return operation

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        fails = self.fail_times > 0 or self.error_rate > 0
        if not (
            self.latency_ms or self.business_error is not None or fails or self.unknown_outcome_rate
        ):
            raise ValueError(
                "the rule does nothing: set latency_ms, business_error, fail_times, "
                "error_rate or unknown_outcome_rate"
            )
        if self.business_error is not None and (fails or self.unknown_outcome_rate):
            raise ValueError(
                "business_error refuses every matching call, so fail_times, error_rate and "
                "unknown_outcome_rate in the same rule would never apply; use two rules"
            )
        if "error_kind" in self.model_fields_set and not fails:
            raise ValueError("error_kind applies only with fail_times or error_rate")
        if self.retry_after_ms is not None and self.error_kind != "rate_limited":
            raise ValueError("retry_after_ms applies only with error_kind 'rate_limited'")
        return self

    def describe(self) -> str:
        """The rule's conditions, for messages: `system=crm, customer_id=CUST-GLOBEX`."""
        parts = [f"system={self.system}", f"operation={self.operation}"]
        if self.customer_id is not None:
            parts.append(f"customer_id={self.customer_id}")
        if self.sku is not None:
            parts.append(f"sku={self.sku}")
        return ", ".join(parts)

    def concerns(self, system: str, operation: str | None = None) -> bool:
        """Whether the rule can match calls to this system (and operation)."""
        return self.system in (ANY, system) and (
            operation is None or self.operation in (ANY, operation)
        )


class FaultProfile(BaseModel):
    """The fault rules in force, and the seed of their random draws."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int | None = None
    rules: list[FaultRule] = Field(default_factory=list)

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "fault profile") -> FaultProfile:
        """Parse a profile; `FaultProfileError` names `source` and the offending field."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as error:
            raise FaultProfileError(f"{source}: {_explain(error)}") from error

    @classmethod
    def from_file(cls, path: str | Path) -> FaultProfile:
        """Read a profile from a JSON file; errors name the file."""
        path = Path(path)
        try:
            text = path.read_bytes()
        except OSError as error:
            raise FaultProfileError(
                f"cannot read fault profile file {path}: {error.strerror or error}"
            ) from error
        return cls.from_json(text, source=f"fault profile file {path}")

    @classmethod
    def from_setting(cls, value: str | None, setting: str = FAULTS_SETTING) -> FaultProfile:
        """The profile a setting names: inline JSON (starting with `{`) or a file path.

        None or blank means no faults. Errors name `setting`, where the value came from.
        """
        if value is None or not value.strip():
            return cls()
        value = value.strip()
        if value.startswith("{"):
            return cls.from_json(value, source=f"{setting} (inline JSON)")
        path = Path(value).expanduser()
        if not path.is_file():
            raise FaultProfileError(
                f"{setting}: no fault profile file {path} "
                "(it takes inline JSON starting with '{' or a path to a JSON file)"
            )
        return cls.from_file(path)

    def rules_for(self, system: str) -> list[tuple[int, FaultRule]]:
        """The rules that can match calls to `system`, with their index in `rules`."""
        return [(index, rule) for index, rule in enumerate(self.rules) if rule.concerns(system)]


def _explain(error: ValidationError) -> str:
    problems = []
    for detail in error.errors(include_url=False):
        location = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in detail["loc"]
        ).lstrip(".")
        message = detail["msg"].removeprefix("Value error, ")
        if detail["type"] == "json_invalid":
            problems.append(f"not valid JSON: {detail['ctx']['error']}")
        else:
            problems.append(f"{location or '(top level)'}: {message}")
    return "; ".join(problems)
