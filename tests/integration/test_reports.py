"""The summary report (docs/reports.md): its calculations on their own, then the
whole report over HTTP and `o2c report` on the real stack.

The stack is shared by every test in the session, so the integration test
compares the report before and after its own orders. Its money is in ISK, a
currency no other test sells in, so the receivables and DSO it checks are all
its own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.billing.models import Invoice, InvoiceLine, InvoiceRequest, InvoiceStatus
from adapters.local.tables import CustomerRow
from adapters.logistics.models import ShipmentConfirmation
from o2c_domain.lines import SkuQuantity
from o2c_service.reports import (
    AgeingBucket,
    InvalidReportRequest,
    age_receivables,
    ageing_bucket,
    credit_sales,
    cycle_times,
    dso,
    first_seen,
    hours,
    orders_query,
    percentile,
    receivables,
    resolve_period,
    started_between,
)
from o2c_service.runners import serve_api
from o2c_service.settings import Settings
from o2c_workflows.models import OrderStatus
from o2c_workflows.state import TimelineEntry
from tests.integration.test_cli import o2c
from tests.integration.test_support_flows import create, new_item
from tests.support.history import DEFAULT_TIMEOUT, POLL_INTERVAL
from tests.support.stack import Stack, free_port

# -- percentiles and hours ----------------------------------------------------


def minutes(*values: int) -> list[timedelta]:
    return [timedelta(minutes=value) for value in values]


def test_percentiles_are_nearest_rank_values_that_were_observed() -> None:
    ten = minutes(10, 1, 9, 2, 8, 3, 7, 4, 6, 5)  # unsorted on purpose
    assert percentile(ten, 50) == timedelta(minutes=5)
    assert percentile(ten, 90) == timedelta(minutes=9)
    assert percentile(ten, 100) == timedelta(minutes=10)
    assert percentile(ten, 1) == timedelta(minutes=1)
    assert percentile(minutes(7), 50) == percentile(minutes(7), 90) == timedelta(minutes=7)
    assert percentile(minutes(1, 100), 50) == timedelta(minutes=1)  # not 50.5: observed only
    assert percentile(minutes(1, 100), 90) == timedelta(minutes=100)


@pytest.mark.parametrize("p", [0, 101, -5])
def test_a_percentile_outside_1_to_100_is_refused(p: int) -> None:
    with pytest.raises(ValueError, match=r"not in 1\.\.100"):
        percentile(minutes(1, 2), p)


def test_no_values_have_no_percentile() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


@settings(derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=60),
    p=st.integers(min_value=1, max_value=100),
)
def test_a_percentile_has_at_least_p_percent_at_or_below_it(values: list[int], p: int) -> None:
    durations = [timedelta(seconds=value) for value in values]
    result = percentile(durations, p)
    assert result in durations
    at_or_below = sum(1 for value in durations if value <= result)
    below = sum(1 for value in durations if value < result)
    assert at_or_below * 100 >= p * len(durations)
    assert below * 100 < p * len(durations)  # and it is the smallest such value
    assert percentile(durations, 50) <= percentile(durations, 90)


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        (timedelta(minutes=90), "1.50"),
        (timedelta(days=2, hours=3), "51.00"),
        (timedelta(seconds=18), "0.01"),  # 0.005 h rounds half up
        (timedelta(seconds=17), "0.00"),
        (timedelta(hours=1, microseconds=1), "1.00"),
        (timedelta(0), "0.00"),
    ],
)
def test_hours_are_exact_decimals_to_two_places(duration: timedelta, expected: str) -> None:
    assert str(hours(duration)) == expected


# -- cycle times from timelines -------------------------------------------------

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def timeline(*steps: tuple[OrderStatus, float]) -> list[TimelineEntry]:
    """Entries at `hours` after T0."""
    return [TimelineEntry(status=status, at=T0 + timedelta(hours=h)) for status, h in steps]


E, B, S, I, P, C, H = (  # noqa: E741
    OrderStatus.ENTERED,
    OrderStatus.BOOKED,
    OrderStatus.SHIPPED,
    OrderStatus.INVOICED,
    OrderStatus.PAID,
    OrderStatus.CLOSED,
    OrderStatus.ON_HOLD,
)


def test_the_first_time_a_status_appears_counts() -> None:
    held_then_booked = timeline((E, 0), (H, 1), (B, 5), (B, 6), (H, 7), (B, 9))
    assert first_seen(held_then_booked) == {
        E: T0,
        H: T0 + timedelta(hours=1),
        B: T0 + timedelta(hours=5),
    }


def test_each_stage_is_measured_over_the_orders_that_reached_both_ends() -> None:
    closed_fast = timeline((E, 0), (B, 1), (S, 3), (I, 3.5), (P, 13.5), (C, 13.5))
    closed_slow = timeline((E, 0), (H, 0.5), (B, 4), (S, 10), (I, 10.25), (P, 50), (C, 50))
    shipped = timeline((E, 0), (B, 2), (S, 6))
    held = timeline((E, 0), (H, 0.1))
    stages = {s.stage: s for s in cycle_times([closed_fast, closed_slow, shipped, held])}

    assert list(stages) == [
        "Entered->Booked",
        "Booked->Shipped",
        "Shipped->Invoiced",
        "Invoiced->Paid",
        "Entered->Closed",
    ]
    booked = stages["Entered->Booked"]
    assert (booked.from_status, booked.to_status, booked.orders) == (E, B, 3)
    assert (booked.p50_hours, booked.p90_hours) == (Decimal("2.00"), Decimal("4.00"))
    assert stages["Booked->Shipped"].orders == 3
    assert (stages["Booked->Shipped"].p50_hours, stages["Booked->Shipped"].p90_hours) == (
        Decimal("4.00"),
        Decimal("6.00"),
    )
    assert stages["Shipped->Invoiced"].orders == 2
    assert stages["Shipped->Invoiced"].p50_hours == Decimal("0.25")
    assert stages["Invoiced->Paid"].p90_hours == Decimal("39.75")
    closed = stages["Entered->Closed"]
    assert (closed.orders, closed.p50_hours, closed.p90_hours) == (
        2,
        Decimal("13.50"),
        Decimal("50.00"),
    )


def test_a_stage_no_order_reached_has_no_figures() -> None:
    [booked, *others] = cycle_times([timeline((E, 0), (B, 1))])
    assert booked.orders == 1
    assert all((s.orders, s.p50_hours, s.p90_hours) == (0, None, None) for s in others)
    assert all(stage.orders == 0 for stage in cycle_times([]))


# -- ageing, sales and DSO ------------------------------------------------------

END = date(2026, 3, 31)


def invoice(
    currency: str,
    balance: str,
    *,
    due: date,
    dated: date | None = None,
    amount: str | None = None,
    status: InvoiceStatus = InvoiceStatus.OPEN,
) -> Invoice:
    return Invoice(
        invoice_id=f"INV-{uuid.uuid4().hex[:8]}",
        order_id="test:SO-1",
        account_id="BA-1",
        currency=currency,
        amount=Decimal(amount or balance),
        balance=Decimal(balance),
        invoice_date=dated or due - timedelta(days=30),
        due_date=due,
        status=status,
    )


@pytest.mark.parametrize(
    ("days_past_due", "bucket"),
    [
        (-30, AgeingBucket.CURRENT),
        (0, AgeingBucket.CURRENT),  # due today is not late yet
        (1, AgeingBucket.DAYS_1_30),
        (30, AgeingBucket.DAYS_1_30),
        (31, AgeingBucket.DAYS_31_60),
        (60, AgeingBucket.DAYS_31_60),
        (61, AgeingBucket.DAYS_61_90),
        (90, AgeingBucket.DAYS_61_90),
        (91, AgeingBucket.DAYS_OVER_90),
        (4000, AgeingBucket.DAYS_OVER_90),
    ],
)
def test_ageing_buckets_at_their_edges(days_past_due: int, bucket: AgeingBucket) -> None:
    assert ageing_bucket(days_past_due) is bucket


def test_receivables_are_aged_per_currency_as_of_the_end_date() -> None:
    invoices = [
        invoice("EUR", "100.10", due=END + timedelta(days=5)),
        invoice("EUR", "0.20", due=END),
        invoice("EUR", "50.00", due=END - timedelta(days=1)),
        invoice("EUR", "25.05", due=END - timedelta(days=45)),
        invoice("EUR", "1.00", due=END - timedelta(days=91)),
        invoice("JPY", "1000", due=END - timedelta(days=75)),
        invoice("EUR", "999.00", due=END + timedelta(days=30), dated=END + timedelta(days=1)),
        invoice("EUR", "7.00", due=END - timedelta(days=10), status=InvoiceStatus.VOID),
        invoice("EUR", "0.00", amount="9.00", due=END - timedelta(days=10)),
    ]
    aged = age_receivables(invoices, END)

    assert list(aged) == ["EUR", "JPY"]
    eur = aged["EUR"]
    assert [str(eur.current), str(eur.days_1_30), str(eur.days_31_60)] == ["100.30", "50.00",
                                                                          "25.05"]  # fmt: skip
    assert [str(eur.days_61_90), str(eur.days_over_90)] == ["0.00", "1.00"]
    jpy = aged["JPY"]
    assert [str(jpy.current), str(jpy.days_61_90)] == ["0", "1000"]  # JPY has no decimals
    assert all(isinstance(value, Decimal) for value in eur.model_dump().values())


def test_credit_sales_leave_void_invoices_out() -> None:
    sales = credit_sales(
        [
            invoice("EUR", "0.00", amount="10.10", due=END),
            invoice("EUR", "5.05", due=END),
            invoice("EUR", "500.00", due=END, status=InvoiceStatus.VOID),
            invoice("USD", "1.00", due=END),
        ]
    )
    assert sales == {"EUR": (Decimal("15.15"), 2), "USD": (Decimal("1.00"), 1)}


@pytest.mark.parametrize(
    ("open_amount", "sales", "days", "expected"),
    [
        ("1000.00", "3000.00", 30, "10.0"),
        ("1000.00", "3000.00", 31, "10.3"),  # 10.333...
        ("1.00", "4.00", 1, "0.3"),  # 0.25: half up, not to even
        ("0.00", "10.00", 30, "0.0"),
        ("500.00", "100.00", 30, "150.0"),  # more open than sold: old invoices still open
    ],
)
def test_dso_is_open_over_sales_times_days_rounded_half_up(
    open_amount: str, sales: str, days: int, expected: str
) -> None:
    assert str(dso(Decimal(open_amount), Decimal(sales), days)) == expected


def test_without_sales_there_is_no_dso() -> None:
    assert dso(Decimal("100.00"), Decimal("0.00"), 30) is None


def test_receivables_combine_ageing_sales_and_dso_per_currency() -> None:
    start = END - timedelta(days=29)
    open_invoices = [
        invoice("EUR", "60.00", amount="100.00", due=END + timedelta(days=20), dated=END),
        invoice("EUR", "40.00", due=END - timedelta(days=40), dated=start - timedelta(days=60)),
        invoice("USD", "10.00", due=END - timedelta(days=5), dated=start - timedelta(days=40)),
    ]
    dated = [
        open_invoices[0],
        invoice("EUR", "0.00", amount="200.00", due=END, dated=start),
        invoice("GBP", "0.00", amount="5.00", due=END, dated=start),
    ]
    figures = receivables(open_invoices, dated, start, END)

    assert list(figures) == ["EUR", "GBP", "USD"]
    eur = figures["EUR"]
    assert (str(eur.open_total), eur.open_invoices) == ("100.00", 2)
    assert (str(eur.credit_sales), eur.sales_invoices) == ("300.00", 2)
    assert eur.dso_days == Decimal("10.0")  # 100 / 300 x 30
    gbp = figures["GBP"]
    assert (str(gbp.open_total), str(gbp.ageing.current)) == ("0.00", "0.00")
    assert gbp.dso_days == Decimal("0.0")
    usd = figures["USD"]
    assert (str(usd.ageing.days_1_30), str(usd.credit_sales)) == ("10.00", "0.00")
    assert usd.dso_days is None


# -- the period -------------------------------------------------------------------

TODAY = date(2026, 5, 15)


def test_the_default_period_is_the_30_days_ending_today() -> None:
    assert resolve_period(TODAY, None, None) == (date(2026, 4, 16), TODAY)
    assert resolve_period(TODAY, None, date(2026, 1, 31)) == (date(2026, 1, 2), date(2026, 1, 31))
    assert resolve_period(TODAY, date(2026, 5, 1), None) == (date(2026, 5, 1), TODAY)
    assert resolve_period(TODAY, TODAY, TODAY) == (TODAY, TODAY)


def test_a_start_after_the_end_is_refused_naming_start() -> None:
    with pytest.raises(InvalidReportRequest, match="start 2026-05-16 is after end") as refused:
        resolve_period(TODAY, TODAY + timedelta(days=1), None)
    assert refused.value.field == "start"


# -- visibility queries ---------------------------------------------------------


def test_counts_leave_out_runs_that_continued_as_new() -> None:
    assert orders_query("OrderStatus = 'Booked'") == (
        "WorkflowType = 'Order' AND ExecutionStatus != 'ContinuedAsNew' AND OrderStatus = 'Booked'"
    )
    assert orders_query(include_continued=True) == "WorkflowType = 'Order'"


def test_a_period_is_whole_utc_days() -> None:
    assert started_between(date(2026, 1, 1), date(2026, 1, 31)) == (
        "StartTime >= '2026-01-01T00:00:00Z' AND StartTime < '2026-02-01T00:00:00Z'"
    )


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
                        database_url=f"sqlite:///{database}")  # fmt: skip
    stop, listening = asyncio.Event(), asyncio.Event()
    api = asyncio.create_task(serve_api(settings, stop, listening))
    await asyncio.wait_for(listening.wait(), 30)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
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
    assert [error["loc"] for error in response.json()["detail"]] == [["query", field]]


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
        async with httpx.AsyncClient(base_url=settings.api_url, timeout=30) as http:
            assert (await http.get("/healthz")).status_code == 200
            response = await http.get("/reports/summary", params={"sample": 1})
        assert response.status_code == 503, response.text
        assert response.json()["detail"].startswith("billing could not be read")
    finally:
        stop.set()
        await api
