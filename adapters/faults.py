"""Fault injection: make any adapter slow, flaky, unsure or stubborn, by configuration.

A `FaultProfile` is a list of `FaultRule`s. `with_faults` wraps one adapter (the
local ones today, HTTP ones later) in a proxy with the same async methods; every
call is checked against the rules, and the rules that match it add latency,
refuse it with a business error, fail it with a system error before it is made,
or make it and then report an unknown outcome. `apply_fault_profile` does that
for the four systems at once and hands back an `AdapterSet` for the worker.

The profile is JSON (the worker reads it from the `O2C_FAULTS` setting, inline
or as a file path; see `FaultProfile.from_setting`):

    {
      "seed": 7,
      "rules": [
        {"system": "billing", "operation": "create_invoice", "unknown_outcome_rate": 0.3},
        {"system": "*", "error_rate": 0.3},
        {"system": "crm", "customer_id": "CUST-GLOBEX", "business_error": "customer_blocked"}
      ]
    }

A rule matches a call when all of these hold:

- `system`: `crm`, `billing`, `logistics`, `payments`, or `*` (default) for any;
- `operation`: the adapter method name, e.g. `create_invoice`, or `*` (default).
  Only methods of that system's protocol in `adapters.<system>.protocol` are accepted;
- `customer_id` (optional): the call carries this customer id, as an argument
  named `customer_id`, a `Customer`, or a request with a `customer_id` field.
  A call that carries no customer id does not match (`create_invoice`, for one,
  names a billing account, not a customer);
- `sku` (optional): one of the request's `lines` has this SKU.

What a matching rule does:

- `latency_ms`: wait this long before anything else happens;
- `business_error`: refuse the call with `BusinessError(code, ...)`, never calling;
- `fail_times`: the first N matching calls of an operation with one idempotency
  key (or, for calls without one, one first argument) fail, later ones go through;
- `error_rate` (0..1): the probability of failing the call before it is made;
- `error_kind`: the failure `fail_times` and `error_rate` raise: `unavailable`
  (default, `SystemUnavailable`), `timeout` (`SystemTimeout`) or `rate_limited`
  (`RateLimited`, with `retry_after_ms` as its `retry_after` when given);
- `unknown_outcome_rate` (0..1): make the real call, so it takes effect, and then
  raise `UnknownOutcome` instead of returning its answer.

For every call the matching rules apply phase by phase, each phase in rule order:
all latencies, then the first business error, then `fail_times` and `error_rate`,
then the real call, then `unknown_outcome_rate`. A call no rule matches goes
straight through. `seed` makes the random draws repeatable; the `fail_times`
counters live in the proxy, so they are per worker process and start afresh
when it restarts.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, Self, TypeVar, cast

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
from adapters.errors import (
    BusinessError,
    RateLimited,
    SystemFailure,
    SystemTimeout,
    SystemUnavailable,
    UnknownOutcome,
)
from adapters.logistics.protocol import LogisticsAdapter
from adapters.payments.protocol import PaymentsAdapter

if TYPE_CHECKING:
    from adapters.local import LocalAdapters

__all__ = [
    "FAULTS_SETTING",
    "OPERATIONS",
    "SYSTEMS",
    "AdapterSet",
    "FaultProfile",
    "FaultProfileError",
    "FaultRule",
    "apply_fault_profile",
    "with_faults",
]

T = TypeVar("T")

FAULTS_SETTING = "O2C_FAULTS"
"""The setting (environment variable) the worker reads its fault profile from."""

System = Literal["crm", "billing", "logistics", "payments"]
SYSTEMS: tuple[System, ...] = ("crm", "billing", "logistics", "payments")
ANY: Final = "*"

Sleep = Callable[[float], Awaitable[None]]


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
    """Which adapter calls to disturb, and how. See the module docstring."""

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
    def from_setting(cls, value: str | None) -> FaultProfile:
        """The profile a setting names: inline JSON (starting with `{`) or a file path.

        None or blank means no faults.
        """
        if value is None or not value.strip():
            return cls()
        value = value.strip()
        if value.startswith("{"):
            return cls.from_json(value, source=f"{FAULTS_SETTING} (inline JSON)")
        path = Path(value).expanduser()
        if not path.is_file():
            raise FaultProfileError(
                f"{FAULTS_SETTING}: no fault profile file {path} "
                "(the setting holds inline JSON starting with '{' or a path to a JSON file)"
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


# --- the proxy ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _CallFacts:
    """What the rules can see of one call."""

    key: str
    customer_ids: frozenset[str]
    skus: frozenset[str]


def _arguments(
    signature: inspect.Signature | None, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> list[tuple[str | None, Any]]:
    if signature is not None:
        try:
            return list(signature.bind(*args, **kwargs).arguments.items())
        except TypeError:
            pass  # the real call will say what is wrong with these arguments
    return [(None, value) for value in args] + list(kwargs.items())


def _call_facts(arguments: list[tuple[str | None, Any]]) -> _CallFacts:
    key: str | None = None
    customer_ids: set[str] = set()
    skus: set[str] = set()
    for name, value in arguments:
        if isinstance(value, str):
            if name == "customer_id":
                customer_ids.add(value)
            elif name == "idempotency_key" and key is None:
                key = value
            continue
        customer_id = getattr(value, "customer_id", None)
        if isinstance(customer_id, str):
            customer_ids.add(customer_id)
        request_key = getattr(value, "idempotency_key", None)
        if isinstance(request_key, str) and key is None:
            key = request_key
        lines = getattr(value, "lines", None)
        if isinstance(lines, list | tuple):
            skus.update(sku for line in lines if isinstance(sku := getattr(line, "sku", None), str))
    if key is None:
        key = repr(arguments[0][1]) if arguments else ""
    return _CallFacts(key=key, customer_ids=frozenset(customer_ids), skus=frozenset(skus))


def _matches(rule: FaultRule, facts: _CallFacts) -> bool:
    return (rule.customer_id is None or rule.customer_id in facts.customer_ids) and (
        rule.sku is None or rule.sku in facts.skus
    )


def _system_failure(rule: FaultRule, index: int, where: str, why: str) -> SystemFailure:
    message = f"injected fault: {where} {why} (fault rule rules[{index}]: {rule.describe()})"
    if rule.error_kind == "timeout":
        return SystemTimeout(message)
    if rule.error_kind == "rate_limited":
        retry_after = (
            timedelta(milliseconds=rule.retry_after_ms) if rule.retry_after_ms is not None else None
        )
        return RateLimited(message, retry_after=retry_after)
    return SystemUnavailable(message)


class _FaultyAdapter:
    """Forwards every attribute to the adapter; async methods a rule concerns go through faults."""

    def __init__(
        self,
        adapter: object,
        system: str,
        rules: list[tuple[int, FaultRule]],
        rng: random.Random,
        sleep: Sleep,
    ) -> None:
        self._faults_adapter = adapter
        self._faults_system = system
        self._faults_rules = rules
        self._faults_rng = rng
        self._faults_sleep = sleep
        self._faults_seen: dict[tuple[int, str, str], int] = {}

    def __repr__(self) -> str:
        return f"<{self._faults_system} adapter with faults: {self._faults_adapter!r}>"

    def __getattr__(self, name: str) -> Any:
        # Only called for what the proxy itself lacks; cached wrappers land in __dict__.
        if name.startswith("__") or name.startswith("_faults_"):
            raise AttributeError(name)
        attribute = getattr(self._faults_adapter, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(attribute):
            return attribute
        system = self._faults_system
        rules = [(i, rule) for i, rule in self._faults_rules if rule.concerns(system, name)]
        if not rules:
            return attribute
        wrapped = self._wrap(name, attribute, rules)
        setattr(self, name, wrapped)
        return wrapped

    def _wrap(
        self,
        operation: str,
        method: Callable[..., Awaitable[Any]],
        rules: list[tuple[int, FaultRule]],
    ) -> Callable[..., Awaitable[Any]]:
        where = f"{self._faults_system}.{operation}"
        try:
            signature: inspect.Signature | None = inspect.signature(method)
        except (TypeError, ValueError):
            signature = None

        @functools.wraps(method)
        async def call(*args: Any, **kwargs: Any) -> Any:
            facts = _call_facts(_arguments(signature, args, kwargs))
            active = [(i, rule) for i, rule in rules if _matches(rule, facts)]
            if not active:
                return await method(*args, **kwargs)
            for _, rule in active:
                if rule.latency_ms:
                    await self._faults_sleep(rule.latency_ms / 1000)
            for i, rule in active:
                if rule.business_error is not None:
                    raise BusinessError(
                        rule.business_error,
                        f"injected fault: {where} refused with '{rule.business_error}' "
                        f"(fault rule rules[{i}]: {rule.describe()})",
                    )
            for i, rule in active:
                if rule.fail_times:
                    counter = (i, operation, facts.key)
                    seen = self._faults_seen.get(counter, 0) + 1
                    self._faults_seen[counter] = seen
                    if seen <= rule.fail_times:
                        why = f"failed (call {seen} of {rule.fail_times} to fail for this key)"
                        raise _system_failure(rule, i, where, why)
                if rule.error_rate and self._faults_rng.random() < rule.error_rate:
                    raise _system_failure(rule, i, where, f"failed (error_rate {rule.error_rate})")
            result = await method(*args, **kwargs)
            for i, rule in active:
                if rule.unknown_outcome_rate and (
                    self._faults_rng.random() < rule.unknown_outcome_rate
                ):
                    raise UnknownOutcome(
                        f"injected fault: {where} took effect but its answer was lost "
                        f"(fault rule rules[{i}]: {rule.describe()}, "
                        f"unknown_outcome_rate {rule.unknown_outcome_rate})"
                    )
            return result

        return call


def with_faults(
    adapter: T,
    system: str,
    profile: FaultProfile,
    rng: random.Random | None = None,
    *,
    sleep: Sleep = asyncio.sleep,
) -> T:
    """`adapter`, with the profile's rules for `system` applied to its async methods.

    Returns the adapter itself when no rule concerns `system`. `rng` defaults to
    one seeded with `profile.seed`; `sleep` (for latency) to `asyncio.sleep`.
    """
    if system not in SYSTEMS:
        raise ValueError(f"unknown system '{system}'; expected one of: {', '.join(SYSTEMS)}")
    rules = profile.rules_for(system)
    if not rules:
        return adapter
    proxy = _FaultyAdapter(
        adapter, system, rules, rng if rng is not None else random.Random(profile.seed), sleep
    )
    return cast(T, proxy)


@dataclass(frozen=True)
class AdapterSet:
    """The four adapters the activities talk to, typed by protocol (possibly with faults)."""

    crm: CrmAdapter
    billing: BillingAdapter
    logistics: LogisticsAdapter
    payments: PaymentsAdapter


def apply_fault_profile(
    adapters: LocalAdapters | AdapterSet,
    profile: FaultProfile,
    rng: random.Random | None = None,
    *,
    sleep: Sleep = asyncio.sleep,
) -> AdapterSet:
    """The adapters with `profile` applied; the four share one random generator.

    With an empty profile the adapters come back unwrapped.
    """
    rng = rng if rng is not None else random.Random(profile.seed)
    crm: CrmAdapter = adapters.crm
    billing: BillingAdapter = adapters.billing
    logistics: LogisticsAdapter = adapters.logistics
    payments: PaymentsAdapter = adapters.payments
    return AdapterSet(
        crm=with_faults(crm, "crm", profile, rng, sleep=sleep),
        billing=with_faults(billing, "billing", profile, rng, sleep=sleep),
        logistics=with_faults(logistics, "logistics", profile, rng, sleep=sleep),
        payments=with_faults(payments, "payments", profile, rng, sleep=sleep),
    )
