"""What Prometheus scrapes (docs/operations.md): the worker's endpoint, with the Temporal
SDK's metrics and the dunning notices sent, and the API's `/metrics`, with its requests,
orders by status, holds by reason, events rejected and reconciliation mismatches.

The worker and the API run as `o2c dev` runs them, on a queue and database of their own;
CRM's calls are local activities and the others normal ones, so both kinds report, and
each order's first call to CRM and to logistics fails once, as a flaky system would.
Every figure is read by scraping and parsing the exposition format, as Prometheus does.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml
from prometheus_client.metrics_core import Metric
from temporalio.testing import WorkflowEnvironment

from o2c_service.access.roles import Role
from o2c_service.observability.business import record_reconcile_mismatches
from o2c_workflows.dunning import DunningLevel, DunningPolicy
from o2c_workflows.models import OrderStatus
from tests.integration.test_end_to_end import demo_order
from tests.support.api_keys import bearer, make_key
from tests.support.history import until
from tests.support.observed import families, observed_stack, value
from tests.support.stack import Stack

REMIND_ON_THE_DUE_DATE = DunningPolicy(levels=[DunningLevel(name="reminder", days_past_due=0)])
FLAKY = json.dumps({"rules": [
    {"system": "crm", "operation": "get_customer", "fail_times": 1},
    {"system": "logistics", "operation": "reserve_stock", "fail_times": 1},
]})  # fmt: skip
OVER_ACMES_CREDIT = [{"sku": "SKU-WIDGET", "quantity": 10, "unit_price": "6000.00"}]
"""60,000 EUR: more than CUST-ACME's credit limit of 50,000 (the demo data)."""


@pytest_asyncio.fixture(scope="module")
async def observed(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    async with observed_stack(
        dev_env,
        tmp_path_factory.mktemp("metrics"),
        dunning=REMIND_ON_THE_DUE_DATE,
        local_activities=["crm"],
        faults=FLAKY,
    ) as stack:
        yield stack


async def scrape_worker(stack: Stack) -> dict[str, Metric]:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{stack.settings.metrics_port}/metrics")
    assert response.status_code == 200, response.text
    return families(response.text)


async def scrape_api(stack: Stack) -> dict[str, Metric]:
    response = await stack.http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return families(response.text)


async def create(stack: Stack, **changes: Any) -> dict[str, Any]:
    created = await stack.http.post("/orders", json=demo_order() | changes)
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def test_the_worker_serves_the_sdk_metrics_and_the_dunning_notices_it_sent(
    observed: Stack,
) -> None:
    queue = observed.settings.task_queue
    order = await create(observed, payment_terms={"kind": "due_on_receipt", "net_days": 0})
    shipped = await observed.http.post(
        f"/orders/{order['order_id']}/shipments", json={"carrier": "DHL", "tracking_number": "T1"}
    )
    assert shipped.status_code == 200, shipped.text

    # Due on receipt, reminded 0 days past due: the notice goes out once it is invoiced.
    async def reminded() -> bool:
        found = await scrape_worker(observed)
        sent = value(found, "o2c_dunning_notices_sent", level="reminder")
        return sent == 1

    await until(reminded, "a reminder counted on the worker's endpoint")
    found = await scrape_worker(observed)
    [notice] = found["o2c_dunning_notices_sent"].samples
    assert {
        "level": "reminder",
        "activity_type": "billing.send_dunning_notice",
        "task_queue": f"{queue}.billing",  # a normal activity, on billing's queue
    }.items() <= notice.labels.items()
    # The SDK's own, per queue: the order's workflow tasks, CRM's local calls and the
    # others' normal ones (each attempt: the flaky calls failed once, then went through),
    # the pollers.
    order_tasks = {"task_queue": queue, "workflow_type": "Order"}
    validate = {"task_queue": queue, "activity_type": "crm.validate_customer"}
    reserve = {"task_queue": f"{queue}.logistics", "activity_type": "logistics.reserve_stock"}
    assert value(found, "temporal_workflow_task_execution_latency_count", **order_tasks) > 0
    assert value(found, "temporal_local_activity_execution_latency_count", **validate) == 2
    assert value(found, "temporal_local_activity_execution_failed", **validate) == 1
    assert value(found, "temporal_activity_execution_latency_count", **reserve) == 2
    assert value(found, "temporal_activity_execution_failed", **reserve) == 1
    assert value(found, "temporal_num_pollers", task_queue=queue) > 0
    assert value(found, "temporal_worker_task_slots_available", task_queue=queue) > 0


async def test_the_api_counts_orders_by_status_holds_by_reason_and_events_refused(
    observed: Stack,
) -> None:
    before = await scrape_api(observed)
    held = await create(observed, lines=OVER_ACMES_CREDIT)
    assert (held["status"], held["hold_reason"]) == ("OnHold", "credit_limit_exceeded")
    refused = await observed.http.post(
        f"/orders/{held['order_id']}/shipments", json={"carrier": "DHL", "tracking_number": "T2"}
    )
    assert refused.status_code == 409, refused.text

    def grew(found: dict[str, Metric], sample: str, **labels: str) -> float:
        return value(found, sample, **labels) - value(before, sample, **labels)

    # Visibility catches up within a second or so; the API reads it at most every 5 s.
    async def counted() -> bool:
        found = await scrape_api(observed)
        return grew(found, "o2c_orders_on_hold", reason="credit_limit_exceeded") == 1

    await until(counted, "the held order counted by its reason")
    after = await scrape_api(observed)
    assert value(after, "o2c_visibility_up") == 1
    assert grew(after, "o2c_orders", status=OrderStatus.ON_HOLD.value) == 1
    assert value(after, "o2c_orders_on_hold_oldest_age_seconds") > 0
    assert grew(after, "o2c_events_rejected_total",
                event="confirm_shipment", reason="not_allowed") == 1  # fmt: skip
    assert grew(after, "o2c_http_requests_total",
                method="POST", route="/orders", status="201") == 1  # fmt: skip
    assert grew(after, "o2c_http_requests_total", method="POST",
                route="/orders/{order_id}/shipments", status="409") == 1  # fmt: skip
    assert grew(after, "o2c_http_request_duration_seconds_count",
                method="POST", route="/orders") == 1  # fmt: skip
    assert value(after, "process_resident_memory_bytes") > 0


async def test_the_metrics_take_a_key_of_any_role(observed: Stack) -> None:
    async with httpx.AsyncClient(base_url=observed.api_url) as http:
        assert (await http.get("/metrics")).status_code == 401
        viewer = bearer(make_key(observed.settings, Role.VIEWER))
        assert (await http.get("/metrics", headers=viewer)).status_code == 200


async def test_a_reconciliation_shows_its_mismatches_until_a_run_finds_them_gone(
    observed: Stack, tmp_path: Path
) -> None:
    textfile = tmp_path / "o2c_reconcile.prom"
    record_reconcile_mismatches({("billing", "invoice_amount"): 2}, textfile=textfile)
    found = await scrape_api(observed)
    assert value(found, "o2c_reconcile_mismatches", system="billing", kind="invoice_amount") == 2
    assert value(found, "o2c_reconcile_last_run_timestamp_seconds") > 0
    written = families(textfile.read_text())
    assert value(written, "o2c_reconcile_mismatches", system="billing", kind="invoice_amount") == 2

    record_reconcile_mismatches({})
    found = await scrape_api(observed)
    assert value(found, "o2c_reconcile_mismatches", system="billing", kind="invoice_amount") == 0


OPERATIONS = Path(__file__).parents[2] / "docs" / "operations.md"
ONLY_AFTER_A_FAILURE = {"temporal_workflow_task_execution_failed"}
"""Named in an alert, exported only once a workflow task has failed (a bug): the SDK's
name for it, as in its metrics reference."""
OPTIONAL_GROUP = re.compile(r"\((\w+)\)\?")


def exported_names(*expositions: str) -> set[str]:
    """Every metric and sample name on the wire, as Prometheus stores them."""
    names = set()
    for exposition in expositions:
        for line in exposition.splitlines():
            if line.startswith("# TYPE "):
                names.add(line.split()[2])
            elif line and not line.startswith("#"):
                names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def alert_rules() -> list[dict[str, Any]]:
    blocks = re.findall(r"```yaml\n(.*?)```", OPERATIONS.read_text(), re.DOTALL)
    [rules] = [yaml.safe_load(block) for block in blocks if block.startswith("groups:")]
    return [rule for group in rules["groups"] for rule in group["rules"]]


def names_in(expr: str) -> set[str]:
    """The o2c and Temporal metrics an expression reads; a `__name__=~` pattern names each
    metric it matches with its optional part left out and put in."""
    named = set()
    for pattern in re.findall(r'__name__=~"([^"]+)"', expr):
        named |= {OPTIONAL_GROUP.sub("", pattern), OPTIONAL_GROUP.sub(r"\1", pattern)}
    plain = re.sub(r'\{__name__=~"[^"]+"\}', "", expr)
    return named | set(re.findall(r"\b(?:o2c|temporal)_[a-z_]+\b", plain))


async def test_the_operations_doc_lists_every_o2c_metric_and_alerts_only_on_exported_ones(
    observed: Stack,
) -> None:
    await create(observed)  # its first stock reservation fails once, as every order's here
    async with httpx.AsyncClient() as http:
        worker = await http.get(f"http://127.0.0.1:{observed.settings.metrics_port}/metrics")
    api = await observed.http.get("/metrics")
    exported = exported_names(worker.text, api.text)

    documented = OPERATIONS.read_text()
    for name in sorted(name for name in exported if name.startswith("o2c_")):
        family = re.sub(r"_(bucket|count|sum)$", "", name)
        assert f"`{family}`" in documented, f"{family} is exported but not in docs/operations.md"
    rules = alert_rules()
    assert {"O2COrderHeldTooLong", "O2CActivitiesFailing"} <= {rule["alert"] for rule in rules}
    for rule in rules:
        unknown = names_in(rule["expr"]) - exported - ONLY_AFTER_A_FAILURE
        assert not unknown, f"{rule['alert']} reads {unknown}, which no scrape exported"


async def test_a_worker_whose_metrics_port_is_taken_stops_saying_so(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "o2c_service", "worker",
            env={"O2C_METRICS_PORT": str(port), "O2C_DATABASE_URL": f"sqlite:///{tmp_path / 'db'}",
                 "PATH": ""},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await process.communicate()
    assert process.returncode == 1
    [line] = [line for line in err.decode().splitlines() if "O2C_METRICS_PORT" in line]
    assert f"127.0.0.1:{port}" in line and "Address already in use" in line
