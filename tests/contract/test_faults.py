"""Fault injection disturbs exactly the calls its rules match, in the ways they say.

Small fake adapters (tests/contract/fault_fakes.py) count the calls that reach
them, so a test can tell a fault raised before the call from one raised after
it. One test wraps the real local billing to show that an unknown outcome still
commits the invoice. Reading and checking profiles is
tests/contract/test_fault_profiles.py.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from adapters.errors import (
    BusinessError,
    RateLimited,
    SystemFailure,
    SystemTimeout,
    SystemUnavailable,
    UnknownOutcome,
)
from adapters.faults import AdapterSet, FaultProfile, apply_fault_profile, with_faults
from adapters.local import LocalAdapters
from tests.contract.fault_fakes import (
    FakeBilling,
    FakeCrm,
    FakeLogistics,
    RecordingSleep,
    customer,
    invoice_request,
    reservation,
)


def profile(*rules: dict[str, object], seed: int | None = 1) -> FaultProfile:
    return FaultProfile.model_validate({"seed": seed, "rules": list(rules)})


def billing_with(
    *rules: dict[str, object], seed: int | None = 1
) -> tuple[FakeBilling, FakeBilling]:
    fake = FakeBilling()
    return fake, with_faults(fake, "billing", profile(*rules, seed=seed))


async def outcome(billing: FakeBilling, key: str) -> str:
    """`ok` or the name of the error the call raised."""
    try:
        await billing.create_invoice(invoice_request(key))
    except (SystemFailure, BusinessError) as error:
        return type(error).__name__
    return "ok"


# --- passthrough ---------------------------------------------------------------------------


async def test_an_empty_profile_returns_the_adapter_itself() -> None:
    fake = FakeBilling()

    assert with_faults(fake, "billing", FaultProfile()) is fake
    assert with_faults(fake, "billing", FaultProfile.from_setting(None)) is fake


async def test_rules_for_other_systems_leave_the_adapter_alone() -> None:
    fake = FakeBilling()
    faults = profile({"system": "crm", "error_rate": 1}, {"system": "payments", "fail_times": 3})

    assert with_faults(fake, "billing", faults) is fake


async def test_calls_no_rule_matches_pass_straight_through() -> None:
    fake, billing = billing_with(
        {"system": "billing", "operation": "find_invoice", "error_rate": 1},
        {"system": "billing", "customer_id": "CUST-GLOBEX", "business_error": "blocked"},
    )

    assert await billing.create_invoice(invoice_request("k1")) == "INV-k1"
    assert await billing.ensure_account(customer("CUST-ACME")) == "BA-CUST-ACME"
    assert fake.calls == ["k1", "account:CUST-ACME"]
    assert billing.label == "fake billing"  # plain attributes are forwarded
    assert billing.create_invoice.__name__ == "create_invoice"
    with pytest.raises(SystemUnavailable):
        await billing.find_invoice("k1")


# --- fail_times ----------------------------------------------------------------------------


async def test_fail_times_fails_the_first_calls_per_key_then_succeeds() -> None:
    fake, billing = billing_with({"system": "billing", "fail_times": 2})

    first = [await outcome(billing, "a") for _ in range(2)]
    other = [await outcome(billing, "b") for _ in range(3)]
    later = [await outcome(billing, "a") for _ in range(2)]

    assert first == ["SystemUnavailable", "SystemUnavailable"]
    assert other == ["SystemUnavailable", "SystemUnavailable", "ok"]
    assert later == ["ok", "ok"]
    assert fake.calls == ["b", "a", "a"]  # failures happen before the call


async def test_fail_times_without_a_key_counts_per_first_argument() -> None:
    fake, billing = billing_with(
        {"system": "billing", "operation": "open_balance", "fail_times": 1}
    )

    with pytest.raises(SystemUnavailable):
        await billing.open_balance("CUST-ACME")
    with pytest.raises(SystemUnavailable):
        await billing.open_balance(customer_id="CUST-GLOBEX")
    assert await billing.open_balance("CUST-ACME") == "0"
    assert await billing.open_balance("CUST-GLOBEX") == "0"
    assert fake.calls == ["balance:CUST-ACME", "balance:CUST-GLOBEX"]


async def test_fail_times_counts_each_operation_apart() -> None:
    _, billing = billing_with({"system": "billing", "fail_times": 1})

    with pytest.raises(SystemUnavailable):
        await billing.create_invoice(invoice_request("a"))
    with pytest.raises(SystemUnavailable):
        await billing.find_invoice("a")
    assert await billing.find_invoice("a") is None
    assert await billing.create_invoice(invoice_request("a")) == "INV-a"


# --- error_rate ----------------------------------------------------------------------------


async def test_error_rate_zero_never_fails_and_one_always_fails() -> None:
    never_fake, never = billing_with({"system": "billing", "error_rate": 0, "latency_ms": 1})
    always_fake, always = billing_with({"system": "billing", "error_rate": 1})

    assert {await outcome(never, f"k{i}") for i in range(50)} == {"ok"}
    assert {await outcome(always, f"k{i}") for i in range(50)} == {"SystemUnavailable"}
    assert len(never_fake.calls) == 50
    assert always_fake.calls == []


async def test_a_seeded_error_rate_fails_a_repeatable_plausible_share() -> None:
    async def failures(seed: int) -> int:
        _, billing = billing_with({"system": "*", "error_rate": 0.3}, seed=seed)
        outcomes = [await outcome(billing, f"k{i}") for i in range(200)]
        return outcomes.count("SystemUnavailable")

    count = await failures(7)

    assert count == 71
    assert 40 <= count <= 80
    assert await failures(7) == count
    assert await failures(8) != count


async def test_an_injected_random_generator_is_used() -> None:
    fake = FakeBilling()
    billing = with_faults(
        fake, "billing", profile({"system": "billing", "error_rate": 0.5}), random.Random(3)
    )
    expected = random.Random(3)

    outcomes = [await outcome(billing, f"k{i}") for i in range(20)]

    assert outcomes == ["SystemUnavailable" if expected.random() < 0.5 else "ok" for _ in range(20)]


# --- error kinds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "error_type"),
    [
        ({}, SystemUnavailable),
        ({"error_kind": "unavailable"}, SystemUnavailable),
        ({"error_kind": "timeout"}, SystemTimeout),
        ({"error_kind": "rate_limited"}, RateLimited),
    ],
)
async def test_error_kind_picks_the_system_failure(
    rule: dict[str, object], error_type: type[SystemFailure]
) -> None:
    _, billing = billing_with({"system": "billing", "error_rate": 1, **rule})

    with pytest.raises(error_type) as raised:
        await billing.create_invoice(invoice_request("k1"))

    assert type(raised.value) is error_type
    assert "injected fault: billing.create_invoice" in str(raised.value)
    assert "rules[0]" in str(raised.value)


async def test_rate_limited_carries_retry_after() -> None:
    _, billing = billing_with(
        {"system": "billing", "fail_times": 1, "error_kind": "rate_limited", "retry_after_ms": 1500}
    )
    _, no_hint = billing_with({"system": "billing", "fail_times": 1, "error_kind": "rate_limited"})

    with pytest.raises(RateLimited) as raised:
        await billing.create_invoice(invoice_request("k1"))
    with pytest.raises(RateLimited) as unhinted:
        await no_hint.create_invoice(invoice_request("k1"))

    assert raised.value.retry_after == timedelta(seconds=1.5)
    assert unhinted.value.retry_after is None


# --- unknown outcome -----------------------------------------------------------------------


async def test_unknown_outcome_makes_the_call_and_then_raises() -> None:
    fake, billing = billing_with(
        {"system": "billing", "operation": "create_invoice", "unknown_outcome_rate": 1}
    )

    with pytest.raises(UnknownOutcome, match="took effect"):
        await billing.create_invoice(invoice_request("k1"))

    assert fake.calls == ["k1"]


async def test_unknown_outcome_commits_a_real_invoice_once(
    sqlite_adapters: LocalAdapters,
) -> None:
    raw = sqlite_adapters.billing
    faults = profile(
        {"system": "billing", "operation": "create_invoice", "unknown_outcome_rate": 1}
    )
    adapters = apply_fault_profile(sqlite_adapters, faults)
    account = await adapters.billing.ensure_account(await adapters.crm.get_customer("CUST-ACME"))
    request = invoice_request("shop:1:invoice:1", account.account_id)

    with pytest.raises(UnknownOutcome):
        await adapters.billing.create_invoice(request)

    committed = await adapters.billing.find_invoice("shop:1:invoice:1")
    assert committed is not None
    retried = await raw.create_invoice(request)  # the retry, once the fault has cleared
    assert retried == committed
    assert await raw.list_invoices("shop:1") == [committed]


# --- business errors -----------------------------------------------------------------------


async def test_business_error_refuses_only_the_matching_customer() -> None:
    fake_crm = FakeCrm()
    fake_billing = FakeBilling()
    faults = profile({"customer_id": "CUST-GLOBEX", "business_error": "customer_blocked"})
    crm = with_faults(fake_crm, "crm", faults)
    billing = with_faults(fake_billing, "billing", faults)

    assert await crm.get_customer("CUST-ACME") == "CUST-ACME"
    with pytest.raises(BusinessError) as raised:
        await crm.get_customer("CUST-GLOBEX")
    with pytest.raises(BusinessError):
        await billing.ensure_account(customer("CUST-GLOBEX"))  # a Customer argument
    with pytest.raises(BusinessError):
        await billing.open_balance(customer_id="CUST-GLOBEX")
    assert await billing.list_invoices("CUST-GLOBEX") == []  # an order id, not a customer id

    assert raised.value.code == "customer_blocked"
    assert "injected" in raised.value.message
    assert "customer_id=CUST-GLOBEX" in raised.value.message
    assert fake_crm.calls == ["CUST-ACME"]
    assert fake_billing.calls == ["list:CUST-GLOBEX"]


async def test_business_error_refuses_only_requests_with_the_matching_sku() -> None:
    fake = FakeLogistics()
    logistics = with_faults(
        fake,
        "logistics",
        profile({"system": "logistics", "sku": "SKU-RARE", "business_error": "out_of_stock"}),
    )

    assert await logistics.reserve_stock(reservation("r1", "SKU-WIDGET")) == "RES-r1"
    with pytest.raises(BusinessError) as raised:
        await logistics.reserve_stock(reservation("r2", "SKU-WIDGET", "SKU-RARE"))

    assert raised.value.code == "out_of_stock"
    assert "sku=SKU-RARE" in raised.value.message
    assert fake.calls == ["r1"]


async def test_business_error_comes_before_system_failures() -> None:
    fake, billing = billing_with(
        {"system": "billing", "error_rate": 1},
        {"system": "billing", "business_error": "account_closed"},
    )

    assert await outcome(billing, "k1") == "BusinessError"
    assert fake.calls == []


# --- latency -------------------------------------------------------------------------------


async def test_latency_is_awaited_for_each_matching_rule_before_the_call() -> None:
    sleep = RecordingSleep()
    fake = FakeBilling()
    faults = profile(
        {"system": "*", "latency_ms": 100},
        {"system": "billing", "operation": "create_invoice", "latency_ms": 250},
        {"system": "billing", "operation": "find_invoice", "latency_ms": 999},
    )
    billing = with_faults(fake, "billing", faults, sleep=sleep)

    assert await billing.create_invoice(invoice_request("k1")) == "INV-k1"

    assert sleep.delays == [0.1, 0.25]
    assert fake.calls == ["k1"]


async def test_latency_is_awaited_before_a_business_error() -> None:
    sleep = RecordingSleep()
    fake = FakeBilling()
    faults = profile({"system": "billing", "latency_ms": 40}, {"business_error": "nope"})
    billing = with_faults(fake, "billing", faults, sleep=sleep)

    with pytest.raises(BusinessError):
        await billing.create_invoice(invoice_request("k1"))

    assert sleep.delays == [0.04]


# --- validation ----------------------------------------------------------------------------


def test_an_unknown_system_cannot_be_wrapped() -> None:
    with pytest.raises(ValueError, match="unknown system 'erp'"):
        with_faults(FakeBilling(), "erp", FaultProfile())


# --- the four adapters ---------------------------------------------------------------------


async def test_apply_fault_profile_wraps_only_the_systems_with_rules(
    sqlite_adapters: LocalAdapters,
) -> None:
    faults = profile({"system": "crm", "customer_id": "CUST-ACME", "business_error": "blocked"})

    adapters = apply_fault_profile(sqlite_adapters, faults)
    untouched = apply_fault_profile(sqlite_adapters, FaultProfile())

    assert isinstance(adapters, AdapterSet)
    assert adapters.billing is sqlite_adapters.billing
    assert adapters.logistics is sqlite_adapters.logistics
    assert adapters.payments is sqlite_adapters.payments
    assert adapters.crm is not sqlite_adapters.crm
    assert (await adapters.crm.get_customer("CUST-GLOBEX")).customer_id == "CUST-GLOBEX"
    with pytest.raises(BusinessError, match="injected"):
        await adapters.crm.get_customer("CUST-ACME")
    assert untouched == AdapterSet(
        crm=sqlite_adapters.crm,
        billing=sqlite_adapters.billing,
        logistics=sqlite_adapters.logistics,
        payments=sqlite_adapters.payments,
    )
