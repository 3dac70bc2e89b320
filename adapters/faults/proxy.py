"""Applying a fault profile: the proxy around one adapter that checks each call
against the rules (`with_faults`), and the four adapters at once for the worker
(`apply_fault_profile`). The order the rules apply in is in the `adapters.faults`
docstring.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast

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
from adapters.faults.profile import FaultProfile, FaultRule
from adapters.logistics.protocol import LogisticsAdapter
from adapters.payments.protocol import PaymentsAdapter
from o2c_domain.systems import SYSTEMS

if TYPE_CHECKING:
    from adapters.local import LocalAdapters

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]


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
