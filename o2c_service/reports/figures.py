"""The report's calculations, as pure functions: percentiles and cycle times from
timelines, ageing buckets, credit sales and DSO from invoices.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from adapters.billing.models import Invoice, InvoiceStatus
from o2c_domain.money import MINOR_UNIT_EXPONENT, quantum
from o2c_service.reports.models import Ageing, CurrencyReceivables, StageCycleTime
from o2c_service.reports.parameters import period_days
from o2c_workflows.models import OrderStatus
from o2c_workflows.state import TimelineEntry

HOURS = Decimal("0.01")
DSO_PLACES = Decimal("0.1")


def percentile(values: Sequence[timedelta], p: int) -> timedelta:
    """The nearest-rank percentile: the smallest value at least `p`% of values are <= to.

    Always a value that was observed, so the median of two orders is one of them.
    """
    if not values:
        raise ValueError("no values")
    if not 0 < p <= 100:
        raise ValueError(f"percentile {p} is not in 1..100")
    ordered = sorted(values)
    rank = -(-p * len(ordered) // 100)  # ceil without floats
    return ordered[rank - 1]


def hours(duration: timedelta) -> Decimal:
    """A duration in hours, two places, rounded half up (exact: no float on the way)."""
    microseconds = (duration.days * 86_400 + duration.seconds) * 1_000_000 + duration.microseconds
    return (Decimal(microseconds) / Decimal(3_600_000_000)).quantize(HOURS, ROUND_HALF_UP)


STAGES: tuple[tuple[OrderStatus, OrderStatus], ...] = (
    (OrderStatus.ENTERED, OrderStatus.BOOKED),
    (OrderStatus.BOOKED, OrderStatus.SHIPPED),
    (OrderStatus.SHIPPED, OrderStatus.INVOICED),
    (OrderStatus.INVOICED, OrderStatus.PAID),
    (OrderStatus.ENTERED, OrderStatus.CLOSED),
)
"""Booked->Shipped ends when the order is Shipped, i.e. every line has left."""


def first_seen(timeline: Iterable[TimelineEntry]) -> dict[OrderStatus, datetime]:
    """When each status first appears in a timeline (later returns to it do not count)."""
    seen: dict[OrderStatus, datetime] = {}
    for entry in timeline:
        seen.setdefault(entry.status, entry.at)
    return seen


def cycle_times(timelines: Iterable[Sequence[TimelineEntry]]) -> list[StageCycleTime]:
    """p50 and p90 of each stage over the orders that reached both of its statuses."""
    durations: dict[tuple[OrderStatus, OrderStatus], list[timedelta]] = {s: [] for s in STAGES}
    for timeline in timelines:
        seen = first_seen(timeline)
        for stage in STAGES:
            begin, finish = seen.get(stage[0]), seen.get(stage[1])
            if begin is not None and finish is not None and finish >= begin:
                durations[stage].append(finish - begin)
    return [
        StageCycleTime(
            stage=f"{begin.value}->{finish.value}",
            from_status=begin,
            to_status=finish,
            orders=len(values),
            p50_hours=hours(percentile(values, 50)) if values else None,
            p90_hours=hours(percentile(values, 90)) if values else None,
        )
        for (begin, finish), values in durations.items()
    ]


class AgeingBucket(StrEnum):
    CURRENT = "current"
    DAYS_1_30 = "days_1_30"
    DAYS_31_60 = "days_31_60"
    DAYS_61_90 = "days_61_90"
    DAYS_OVER_90 = "days_over_90"


def ageing_bucket(days_past_due: int) -> AgeingBucket:
    if days_past_due <= 0:
        return AgeingBucket.CURRENT
    if days_past_due <= 30:
        return AgeingBucket.DAYS_1_30
    if days_past_due <= 60:
        return AgeingBucket.DAYS_31_60
    if days_past_due <= 90:
        return AgeingBucket.DAYS_61_90
    return AgeingBucket.DAYS_OVER_90


def at_scale(amount: Decimal, currency: str) -> Decimal:
    """`amount` at the currency's scale (`0` EUR -> `0.00`); a sum of amounts that
    each fit the currency always fits, so nothing is rounded here."""
    if currency not in MINOR_UNIT_EXPONENT:
        return amount
    return amount.quantize(quantum(currency))


def open_at(invoices: Iterable[Invoice], as_of: date) -> list[Invoice]:
    """The invoices with a balance left, dated by `as_of` (later ones were not
    receivables then)."""
    return [
        invoice
        for invoice in invoices
        if invoice.status is not InvoiceStatus.VOID
        and invoice.balance > 0
        and invoice.invoice_date <= as_of
    ]


def age_receivables(open_invoices: Iterable[Invoice], as_of: date) -> dict[str, Ageing]:
    """Open balances per currency and bucket, by days past due at `as_of`."""
    sums: dict[str, dict[AgeingBucket, Decimal]] = {}
    for invoice in open_at(open_invoices, as_of):
        buckets = sums.setdefault(invoice.currency, dict.fromkeys(AgeingBucket, Decimal(0)))
        buckets[ageing_bucket((as_of - invoice.due_date).days)] += invoice.balance
    return {
        currency: Ageing(
            **{bucket.value: at_scale(amount, currency) for bucket, amount in buckets.items()}
        )
        for currency, buckets in sorted(sums.items())
    }


def ageing_total(ageing: Ageing) -> Decimal:
    return (
        ageing.current
        + ageing.days_1_30
        + ageing.days_31_60
        + ageing.days_61_90
        + ageing.days_over_90
    )


def credit_sales(invoices: Iterable[Invoice]) -> dict[str, tuple[Decimal, int]]:
    """Invoiced amount and invoice count per currency, void invoices left out."""
    sales: dict[str, tuple[Decimal, int]] = {}
    for invoice in invoices:
        if invoice.status is InvoiceStatus.VOID:
            continue
        amount, count = sales.get(invoice.currency, (Decimal(0), 0))
        sales[invoice.currency] = (amount + invoice.amount, count + 1)
    return {currency: (at_scale(a, currency), n) for currency, (a, n) in sorted(sales.items())}


def dso(open_receivables: Decimal, sales: Decimal, days: int) -> Decimal | None:
    """Days sales outstanding: open receivables / credit sales x days, to one decimal
    rounded half up; None when nothing was sold (no rate to divide by)."""
    if sales <= 0:
        return None
    return (open_receivables * days / sales).quantize(DSO_PLACES, ROUND_HALF_UP)


def receivables(
    open_invoices: Iterable[Invoice], dated: Iterable[Invoice], start: date, end: date
) -> dict[str, CurrencyReceivables]:
    """Ageing and DSO per currency, from billing's open invoices and the period's invoices."""
    still_open = open_at(open_invoices, end)
    ageing = age_receivables(still_open, end)
    sales = credit_sales(dated)
    days = period_days(start, end)
    figures: dict[str, CurrencyReceivables] = {}
    for currency in sorted(set(ageing) | set(sales)):
        zero = at_scale(Decimal(0), currency)
        aged = ageing.get(currency) or Ageing(**dict.fromkeys(AgeingBucket, zero))
        open_total = at_scale(ageing_total(aged), currency)
        sold, sales_count = sales.get(currency, (zero, 0))
        figures[currency] = CurrencyReceivables(
            currency=currency,
            ageing=aged,
            open_total=open_total,
            open_invoices=sum(1 for invoice in still_open if invoice.currency == currency),
            credit_sales=sold,
            sales_invoices=sales_count,
            dso_days=dso(open_total, sold, days),
        )
    return figures
