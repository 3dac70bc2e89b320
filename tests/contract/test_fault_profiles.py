"""Fault profiles are checked as they are read: a rule naming an unknown system or
operation, or one that could never apply, is refused by name, and a profile read
from the O2C_FAULTS setting (inline JSON or a file) names its source and the
field in every complaint. What the rules do to calls is tests/contract/test_faults.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from adapters.faults import OPERATIONS, FaultProfile, FaultProfileError, FaultRule

# --- validation ----------------------------------------------------------------------------


def test_rule_operations_are_the_protocol_methods() -> None:
    assert OPERATIONS["crm"] == {"get_customer", "place_on_hold"}
    assert "create_invoice" in OPERATIONS["billing"]
    assert "reserve_stock" in OPERATIONS["logistics"]
    assert "refund_payment" in OPERATIONS["payments"]


@pytest.mark.parametrize(
    ("system", "operation"),
    [("billing", "create_invoce"), ("crm", "create_invoice"), ("*", "launch_rocket")],
)
def test_an_unknown_operation_is_refused_by_name(system: str, operation: str) -> None:
    with pytest.raises(ValidationError, match=f"unknown operation '{operation}'"):
        FaultRule.model_validate({"system": system, "operation": operation, "error_rate": 1})


@pytest.mark.parametrize(
    ("rule", "complaint"),
    [
        ({"system": "erp", "error_rate": 1}, "system"),
        ({"system": "billing"}, "does nothing"),
        ({"error_rate": 1.5}, "error_rate"),
        ({"unknown_outcome_rate": -0.1}, "unknown_outcome_rate"),
        ({"error_rat": 0.3}, "error_rat"),
        ({"fail_times": 1, "retry_after_ms": 5}, "retry_after_ms applies only"),
        ({"latency_ms": 5, "error_kind": "timeout"}, "error_kind applies only"),
        ({"business_error": "x", "error_rate": 0.5}, "business_error refuses"),
    ],
)
def test_inconsistent_rules_are_refused(rule: dict[str, object], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        FaultRule.model_validate(rule)


# --- reading profiles ----------------------------------------------------------------------

EXAMPLE = """
{"seed": 7, "rules": [
  {"system": "billing", "operation": "create_invoice", "unknown_outcome_rate": 0.3},
  {"system": "*", "error_rate": 0.3},
  {"system": "crm", "customer_id": "CUST-GLOBEX", "business_error": "customer_blocked"}
]}
"""


def test_from_setting_reads_inline_json() -> None:
    faults = FaultProfile.from_setting(EXAMPLE)

    assert faults.seed == 7
    assert [rule.system for rule in faults.rules] == ["billing", "*", "crm"]
    assert faults.rules[2].business_error == "customer_blocked"


def test_from_setting_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "faults.json"
    path.write_text(EXAMPLE)

    assert FaultProfile.from_setting(str(path)) == FaultProfile.from_json(EXAMPLE)
    assert FaultProfile.from_file(path) == FaultProfile.from_json(EXAMPLE)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_a_blank_setting_means_no_faults(value: str | None) -> None:
    assert FaultProfile.from_setting(value) == FaultProfile(seed=None, rules=[])


def test_a_malformed_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"rules": [')

    with pytest.raises(FaultProfileError, match="not valid JSON") as raised:
        FaultProfile.from_setting(str(path))

    assert str(path) in str(raised.value)


def test_a_bad_field_in_a_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "faults.json"
    path.write_text('{"rules": [{"error_rate": 0.1}, {"system": "billing", "operation": "bill"}]}')

    with pytest.raises(FaultProfileError) as raised:
        FaultProfile.from_setting(str(path))

    message = str(raised.value)
    assert str(path) in message
    assert "rules[1].operation: unknown operation 'bill' for system 'billing'" in message


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"

    with pytest.raises(FaultProfileError, match="O2C_FAULTS") as raised:
        FaultProfile.from_setting(str(path))

    assert str(path) in str(raised.value)


def test_bad_inline_json_names_the_setting() -> None:
    with pytest.raises(FaultProfileError, match=r"O2C_FAULTS \(inline JSON\): rules\[0\]\.system"):
        FaultProfile.from_setting('{"rules": [{"system": "erp", "error_rate": 1}]}')
