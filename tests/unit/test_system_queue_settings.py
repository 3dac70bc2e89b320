"""The settings and the `--systems` option that decide which queues a worker serves and how
fast each system's activities run."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from o2c_domain.systems import SYSTEMS
from o2c_service.cli import app
from o2c_service.queues import SERVED, UnknownQueue, served_queues
from o2c_service.settings import Settings, SystemLimits
from o2c_workflows.calls import system_queue


def test_each_system_has_its_queue_beside_the_order_task_queue() -> None:
    assert [system_queue("o2c-orders", system) for system in SYSTEMS] == [
        "o2c-orders.crm", "o2c-orders.billing", "o2c-orders.logistics", "o2c-orders.payments"
    ]  # fmt: skip


def test_a_worker_serves_every_queue_unless_told_otherwise() -> None:
    assert SERVED == ("orders", "crm", "billing", "logistics", "payments")
    helped = CliRunner().invoke(app, ["worker", "--help"], env={"COLUMNS": "200"})
    assert "[default: orders,crm,billing,logistics,payments]" in helped.output


def test_the_queues_named_are_served_once_each_in_a_fixed_order() -> None:
    assert served_queues(["billing", " orders", "billing"]) == ("orders", "billing")
    assert served_queues(["payments", "logistics", "crm"]) == ("crm", "logistics", "payments")


def test_an_unknown_name_is_refused_with_the_names_there_are() -> None:
    with pytest.raises(UnknownQueue) as refused:
        served_queues(["orders", "bogus"])
    assert refused.value.name == "bogus"
    assert str(refused.value) == (
        "unknown system 'bogus'; the names are orders, crm, billing, logistics, payments"
    )
    with pytest.raises(ValueError, match="no queue named"):
        served_queues([])


@pytest.mark.parametrize("systems", ["bogus", "orders,Billing", ",", ""])
def test_o2c_worker_refuses_what_names_no_queue_with_one_line_and_exit_2(systems: str) -> None:
    result = CliRunner().invoke(app, ["worker", "--systems", systems], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: Invalid value for '--systems': ")
    assert "the names are orders, crm, billing, logistics, payments" in line


def test_no_system_is_limited_by_default_and_each_runs_20_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("RATE_LIMIT", "CONCURRENCY"):
        for system in SYSTEMS:
            monkeypatch.delenv(f"O2C_{system.upper()}_{name}", raising=False)
    monkeypatch.delenv("O2C_SYSTEM_QUEUES", raising=False)
    settings = Settings()
    assert settings.system_queues is True
    for system in SYSTEMS:
        assert settings.system_limits(system) == SystemLimits(rate_limit=None, concurrency=20)


def test_each_systems_limits_come_from_its_own_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O2C_BILLING_RATE_LIMIT", "2.5")
    monkeypatch.setenv("O2C_BILLING_CONCURRENCY", "5")
    monkeypatch.setenv("O2C_CRM_RATE_LIMIT", "40")
    monkeypatch.setenv("O2C_SYSTEM_QUEUES", "false")
    settings = Settings()
    assert settings.system_limits("billing") == SystemLimits(rate_limit=2.5, concurrency=5)
    assert settings.system_limits("crm") == SystemLimits(rate_limit=40, concurrency=20)
    assert settings.system_limits("logistics") == SystemLimits(rate_limit=None, concurrency=20)
    assert settings.system_queues is False


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("O2C_BILLING_RATE_LIMIT", "0"),
        ("O2C_PAYMENTS_RATE_LIMIT", "-1"),
        ("O2C_LOGISTICS_CONCURRENCY", "0"),
        ("O2C_CRM_CONCURRENCY", "many"),
    ],
)
def test_a_limit_that_is_not_above_zero_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert variable.removeprefix("O2C_").lower() in str(refused.value)
