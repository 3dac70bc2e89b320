"""The whole summary report (docs/reports.md) over HTTP and `o2c report` on the
real stack, then its refusals and outages. Its calculations on their own are
tests/unit/test_report_calculations.py.

The stack is shared by every test in the session, so the integration test
compares the report before and after its own orders. Its money is in ISK, a
currency no other test sells in, so the receivables and DSO it checks are all
its own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from adapters.billing.models import InvoiceLine, InvoiceRequest
from adapters.local.tables import CustomerRow
from adapters.logistics.models import ShipmentConfirmation
from o2c_domain.lines import SkuQuantity
from o2c_service.runners import serve_api
from o2c_service.settings import Settings
from o2c_workflows.models import OrderStatus
from tests.integration.test_cli import o2c
from tests.integration.test_support_flows import create, new_item
from tests.support.api_keys import bearer, make_key, remember_key
from tests.support.history import DEFAULT_TIMEOUT, POLL_INTERVAL
from tests.support.stack import Stack, free_port

# -- the whole report on the real stack -----------------------------------------

CURRENCY = "ISK"


def isk_customer(stack: Stack) -> str:
    customer_id = f"CUST-{uuid.uuid4().hex[:8]}"
    with stack.adapters.database.session() as session:
        session.add(CustomerRow(customer_id=customer_id, name=f"Test {customer_id}",
                                email="ap@example.com", status="active", currency=CURRENCY,
                                credit_limit_minor=10_000_000))  # fmt: skip
    return customer_id


def isk_order(customer_id: str, sku: str, quantity: int, price: str) -> dict[str, Any]:
    return {
        "source_system": "reports",
        "source_order_id": f"SO-{uuid.uuid4().hex[:10]}",
        "customer_id": customer_id,
        "currency": CURRENCY,
        "lines": [{"sku": sku, "quantity": quantity, "unit_price": price}],
        "payment_terms": {"kind": "net", "net_days": 30},
    }


async def get_report(stack: Stack, **params: Any) -> dict[str, Any]:
    response = await stack.http.get("/reports/summary", params=params)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


async def report_once(
    stack: Stack, ready: Callable[[dict[str, Any]], bool], **params: Any
) -> dict[str, Any]:
    """The report, once visibility (eventually consistent) shows what `ready` wants."""
    deadline = asyncio.get_running_loop().time() + DEFAULT_TIMEOUT
    while True:
        report = await get_report(stack, **params)
        if ready(report):
            return report
        assert asyncio.get_running_loop().time() < deadline, report
        await asyncio.sleep(POLL_INTERVAL)


async def ship(stack: Stack, order_id: str) -> None:
    shipment = {"carrier": "DHL", "tracking_number": f"T-{order_id}"}
    shipped = await stack.http.post(f"/orders/{order_id}/shipments", json=shipment)
    assert shipped.status_code == 200, shipped.text


async def pay(stack: Stack, order_id: str, amount: str) -> None:
    payment = {"payment_id": f"PAY-{uuid.uuid4().hex[:10]}", "amount": amount, "currency": CURRENCY}
    paid = await stack.http.post(f"/orders/{order_id}/payments", json=payment)
    assert paid.status_code == 200, paid.text


async def legacy_invoice(
    stack: Stack, customer_id: str, amount: Decimal, days_past_due: int
) -> None:
    """An overdue invoice billing holds for the customer (raised outside any order workflow)."""
    customer = await stack.adapters.crm.get_customer(customer_id)
    account = await stack.adapters.billing.ensure_account(customer)
    due = datetime.now(UTC).date() - timedelta(days=days_past_due)
    line = InvoiceLine(sku="SKU-LEGACY", quantity=1, unit_price=amount, amount=amount)
    await stack.adapters.billing.create_invoice(
        InvoiceRequest(
            idempotency_key=f"{customer_id}:legacy:{days_past_due}",
            order_id=f"legacy:{customer_id}-{days_past_due}",
            account_id=account.account_id,
            currency=CURRENCY,
            invoice_date=due - timedelta(days=15),
            due_date=due,
            lines=[line],
        )
    )


async def cancel_after_it_left_unannounced(stack: Stack, order_id: str) -> None:
    """The 3PL ships without telling us, then the order is cancelled: the shipment
    cannot be called back, so the cancelled order is fallout (compensation_failed)."""
    booked = await stack.wait_for_status(order_id, OrderStatus.BOOKED)
    assert booked.shipment is not None
    await stack.adapters.logistics.confirm_shipment(
        ShipmentConfirmation(
            idempotency_key=f"{order_id}:unannounced",
            shipment_id=booked.shipment.shipment_id,
            carrier="DHL",
            tracking_number="T-UNANNOUNCED",
            lines=[SkuQuantity(sku=line.sku, quantity=line.ordered) for line in booked.lines],
        )
    )
    cancelled = await stack.http.post(f"/orders/{order_id}/cancel", json={"reason": "withdrawn"})
    assert cancelled.status_code == 200, cancelled.text
    state = await stack.wait_for_status(order_id, OrderStatus.CANCELLED)
    assert "failed" in [compensation.status for compensation in state.compensations]


def stage_orders(report: dict[str, Any]) -> dict[str, int]:
    return {stage["stage"]: stage["orders"] for stage in report["cycle_times"]}


async def test_the_report_counts_orders_times_stages_and_ages_receivables(stack: Stack) -> None:
    full_sample = {"sample": 5000}  # every order of the session, so the deltas are exact
    before = await get_report(stack, **full_sample)
    assert CURRENCY not in before["receivables"], "another test sells in ISK: pick another"

    customer = isk_customer(stack)
    sku, scarce = new_item(stack, on_hand=10), new_item(stack, on_hand=0)
    to_close = [await create(stack, isk_order(customer, sku, 2, "1500")) for _ in range(2)]
    to_invoice = await create(stack, isk_order(customer, sku, 1, "2500"))
    to_hold = await create(stack, isk_order(customer, scarce, 1, "100"))
    to_cancel = await create(stack, isk_order(customer, sku, 1, "900"))
    for order_id in [*to_close, to_invoice]:
        await stack.wait_for_status(order_id, OrderStatus.BOOKED)
        await ship(stack, order_id)
    for order_id in to_close:
        await stack.wait_for_status(order_id, OrderStatus.INVOICED)
        await pay(stack, order_id, "3000")
        await stack.wait_for_status(order_id, OrderStatus.CLOSED)
    await stack.wait_for_status(to_invoice, OrderStatus.INVOICED)
    await stack.wait_for_status(to_hold, OrderStatus.ON_HOLD)
    await cancel_after_it_left_unannounced(stack, to_cancel)
    await legacy_invoice(stack, customer, Decimal(7000), days_past_due=45)
    await legacy_invoice(stack, customer, Decimal(3000), days_past_due=95)

    expected_status = dict(before["orders_by_status"])
    for status, more in (("Closed", 2), ("Invoiced", 1), ("OnHold", 1), ("Cancelled", 1)):
        expected_status[status] += more
    held_before = before["fallout"]["on_hold_by_reason"].get("out_of_stock", 0)
    compensation_failed_before = before["fallout"]["compensation_failed"]

    def caught_up(report: dict[str, Any]) -> bool:
        return bool(
            report["orders_by_status"] == expected_status
            and report["fallout"]["on_hold_by_reason"].get("out_of_stock") == held_before + 1
            and report["fallout"]["compensation_failed"] == compensation_failed_before + 1
        )

    newest = await report_once(stack, caught_up, sample=1)  # cheap, until visibility caught up
    assert (newest["sample"]["listed"], newest["sample"]["truncated"]) == (1, True)
    after = await get_report(stack, **full_sample)

    assert after["orders_total"] == before["orders_total"] + 5
    assert after["orders_by_status"] == expected_status
    fallout, was = after["fallout"], before["fallout"]
    assert (fallout["on_hold"], fallout["compensation_failed"], fallout["total"]) == (
        was["on_hold"] + 1,
        was["compensation_failed"] + 1,
        was["total"] + 2,
    )
    assert fallout["held_in_sample"] == was["held_in_sample"] + 1

    # The timelines: two orders went all the way, one to Invoiced, one was
    # cancelled once booked, one never booked.
    assert after["sample"]["read"] == before["sample"]["read"] + 5
    assert not after["sample"]["truncated"]
    added = {stage: n - stage_orders(before)[stage] for stage, n in stage_orders(after).items()}
    assert added == {
        "Entered->Booked": 4,
        "Booked->Shipped": 3,
        "Shipped->Invoiced": 3,
        "Invoiced->Paid": 2,
        "Entered->Closed": 2,
    }
    closed = next(s for s in after["cycle_times"] if s["stage"] == "Entered->Closed")
    assert Decimal(closed["p50_hours"]) <= Decimal(closed["p90_hours"])

    # Money: the open invoice of the Invoiced order (due in 30 days) and the two
    # overdue ones; sales are the three invoices raised today (the overdue ones
    # were raised before the period).
    assert after["receivables"][CURRENCY] == {
        "currency": CURRENCY,
        "ageing": {
            "current": "2500",
            "days_1_30": "0",
            "days_31_60": "7000",
            "days_61_90": "0",
            "days_over_90": "3000",
        },
        "open_total": "12500",
        "open_invoices": 3,
        "credit_sales": "8500",
        "sales_invoices": 3,
        "dso_days": "44.1",  # 12500 / 8500 x 30 = 44.117...
    }
    today = datetime.now(UTC).date()
    assert (after["start"], after["end"], after["days"]) == (
        (today - timedelta(days=29)).isoformat(),
        today.isoformat(),
        30,
    )

    # The same report from the CLI, as JSON and as tables.
    as_json = await o2c("report", "-o", "json", "--sample", "5000", api_url=stack.api_url)
    assert as_json.code == 0, as_json.err
    from_cli = as_json.json()
    for key in ("orders_by_status", "fallout", "receivables", "cycle_times", "sample"):
        assert from_cli[key] == after[key], key
    as_tables = await o2c("report", api_url=stack.api_url)
    assert as_tables.code == 0, as_tables.err
    for shown in ("Orders by status", "Entered->Closed", "out_of_stock", "ISK", "12500", "44.1"):
        assert shown in as_tables.out, shown

    # An earlier period sees the same counts (they are now) but none of today's sales.
    earlier = await o2c("report", "--from", "2020-01-01", "--to", "2020-01-31", "-o", "json",
                        api_url=stack.api_url)  # fmt: skip
    assert earlier.code == 0, earlier.err
    old = earlier.json()
    assert old["days"] == 31 and old["sample"]["listed"] == 0
    assert CURRENCY not in old["receivables"]  # every ISK invoice was raised after it


# -- refusals and outages ---------------------------------------------------------


@pytest_asyncio.fixture(scope="module")
async def api_without_temporal(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[
    tuple[httpx.AsyncClient, Path]
]:  # fmt: skip
    """The real API where no Temporal listens, with a database it has not opened."""
    database = tmp_path_factory.mktemp("reports") / "o2c.db"
    port = free_port()
    settings = Settings(temporal_address=f"127.0.0.1:{free_port()}", api_port=port,
                        database_url=f"sqlite:///{database}",
                        data_dir=tmp_path_factory.mktemp("api"))  # fmt: skip
    key = make_key(settings)
    remember_key(f"http://127.0.0.1:{port}", key)
    stop, listening = asyncio.Event(), asyncio.Event()
    api = asyncio.create_task(serve_api(settings, stop, listening))
    await asyncio.wait_for(listening.wait(), 30)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=30, headers=bearer(key)
    ) as http:
        yield http, database
    stop.set()
    await api


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2026-02-01", "end": "2026-01-31"}, "start"),
        ({"start": "2999-01-01"}, "start"),  # after today, the default end
        ({"start": "2026-02-30"}, "start"),
        ({"end": "yesterday"}, "end"),
        ({"sample": "0"}, "sample"),
        ({"sample": "5001"}, "sample"),
        ({"sample": "many"}, "sample"),
    ],
)
async def test_bad_report_parameters_are_422_naming_the_field(
    api_without_temporal: tuple[httpx.AsyncClient, Path], params: dict[str, str], field: str
) -> None:
    http, _ = api_without_temporal
    response = await http.get("/reports/summary", params=params)
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["errors"]] == [["query", field]]


async def test_without_temporal_the_report_is_503_and_billing_is_not_opened(
    api_without_temporal: tuple[httpx.AsyncClient, Path],
) -> None:
    http, database = api_without_temporal
    response = await http.get("/reports/summary")
    assert response.status_code == 503, response.text
    assert response.json()["detail"].startswith("Temporal is unavailable")
    assert not database.exists()  # billing is opened by the first report that needs it


async def test_the_cli_says_which_report_parameter_is_wrong(
    api_without_temporal: tuple[httpx.AsyncClient, Path],
) -> None:
    http, _ = api_without_temporal
    refused = await o2c("report", "--from", "2026-02-01", "--to", "2026-01-01",
                        api_url=str(http.base_url))  # fmt: skip
    assert (refused.code, refused.out) == (1, "")
    assert "start: start 2026-02-01 is after end 2026-01-01" in refused.err
    not_a_date = await o2c("report", "--from", "01/02/2026", api_url=str(http.base_url))
    assert not_a_date.code == 2 and "--from" in not_a_date.err
    down = await o2c("report", api_url=str(http.base_url))
    assert down.code == 1 and "Temporal is unavailable" in down.err


async def test_when_billing_cannot_be_read_the_report_is_503(stack: Stack, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    port = free_port()
    settings = stack.settings.model_copy(update={
        "api_port": port, "api_url": f"http://127.0.0.1:{port}",
        "database_url": f"sqlite:///{blocker / 'o2c.db'}"})  # fmt: skip
    stop, listening = asyncio.Event(), asyncio.Event()
    api = asyncio.create_task(serve_api(settings, stop, listening))
    try:
        await asyncio.wait_for(listening.wait(), 30)
        async with httpx.AsyncClient(
            base_url=settings.api_url, timeout=30, headers=bearer(stack.api_key)
        ) as http:
            assert (await http.get("/healthz")).status_code == 200
            response = await http.get("/reports/summary", params={"sample": 1})
        assert response.status_code == 503, response.text
        assert response.json()["detail"].startswith("billing could not be read")
    finally:
        stop.set()
        await api
