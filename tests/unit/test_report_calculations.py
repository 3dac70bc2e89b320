"""The summary report's calculations on their own (docs/reports.md): percentiles
and cycle times from timelines, ageing, credit sales and DSO from invoices, the
period asked for, and the visibility queries. The whole report, over HTTP and
`o2c report` on the real stack, is tests/integration/test_reports.py.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.billing.models import Invoice, InvoiceStatus
from o2c_service.reports.figures import (
    AgeingBucket,
    age_receivables,
    ageing_bucket,
    credit_sales,
    cycle_times,
    dso,
    first_seen,
    hours,
    percentile,
    receivables,
)
from o2c_service.reports.parameters import InvalidReportRequest, resolve_period
from o2c_service.reports.visibility import orders_query, started_between
from o2c_workflows.models import OrderStatus
from o2c_workflows.state import TimelineEntry

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
