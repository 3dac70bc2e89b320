"""The reports people ask for after the invoice: where orders stand, how long each
stage takes, fallout, open receivables by age and days sales outstanding.

Nothing here is stored. Each figure is read when asked, from where it already
lives: order counts from Temporal visibility, stage times from the orders' own
timelines (their `state` query), money from billing, the system of record for
receivables. docs/reports.md says why, and what each figure cannot tell.

The calculations (percentiles, ageing buckets, DSO) are pure functions below;
`ReportService` only gathers their inputs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import Client

from adapters.billing.models import Invoice, InvoiceStatus
from adapters.billing.protocol import BillingAdapter
from adapters.errors import SystemFailure
from adapters.local import LocalAdapters, open_local_adapters
from o2c_domain.money import MINOR_UNIT_EXPONENT, quantum
from o2c_service.orders import OrderService
from o2c_service.outcomes import RPC_TIMEOUT, OrderError
from o2c_workflows.models import OrderStatus
from o2c_workflows.order.base import COMPENSATION_FAILED, WORKFLOW_NAME
from o2c_workflows.search_attributes import HOLD_REASON, ORDER_STATUS
from o2c_workflows.state import TimelineEntry

DEFAULT_PERIOD_DAYS = 30
DEFAULT_SAMPLE = 500
MAX_SAMPLE = 5000
READ_CONCURRENCY = 20
"""How many order `state` queries run at once (each may make a worker replay a history)."""
HELD_LISTING_LIMIT = 1000
"""How many held orders are listed to find which hold reasons to count."""

HOURS = Decimal("0.01")
DSO_PLACES = Decimal("0.1")


# -- the report ---------------------------------------------------------------


class StageCycleTime(BaseModel):
    """How long orders took from one status to the next, over the timeline sample."""

    stage: str = Field(examples=["Entered->Booked"])
    from_status: OrderStatus
    to_status: OrderStatus
    orders: int = Field(description="Sampled orders that reached both statuses.")
    p50_hours: Decimal | None = Field(description="Median; None when no order reached the stage.")
    p90_hours: Decimal | None


class TimelineSample(BaseModel):
    """Which orders the cycle times were computed from."""

    limit: int
    listed: int = Field(description="Orders visibility lists as started in the period.")
    truncated: bool = Field(description="More orders started in the period than `limit`.")
    read: int = Field(description="Orders whose timeline was read and entered in the period.")
    unreadable: int = Field(description="Orders whose state query failed (no worker, gone).")
    entered_before_period: int = Field(
        description="Listed runs of orders entered before the period (continued as new)."
    )


class Fallout(BaseModel):
    """Orders that dropped out of automatic processing and wait for a person."""

    total: int = Field(description="on_hold + compensation_failed")
    on_hold: int
    on_hold_by_reason: dict[str, int]
    on_hold_other: int = Field(
        description="Held orders whose reason was not among those listed (or carry none)."
    )
    compensation_failed: int = Field(
        description="Cancelled orders with an undo that could not be done."
    )
    held_in_sample: int = Field(
        description="Orders of the timeline sample that were OnHold at some point."
    )


class Ageing(BaseModel):
    """Open balances by days past due, as of the report's end date."""

    current: Decimal = Field(description="Not yet due.")
    days_1_30: Decimal
    days_31_60: Decimal
    days_61_90: Decimal
    days_over_90: Decimal


class CurrencyReceivables(BaseModel):
    """One currency's receivables and DSO (amounts in different currencies never add up)."""

    currency: str
    ageing: Ageing
    open_total: Decimal
    open_invoices: int
    credit_sales: Decimal = Field(description="Invoiced in the period (void invoices left out).")
    sales_invoices: int
    dso_days: Decimal | None = Field(
        description="open_total / credit_sales x days in the period, to one decimal; "
        "None without sales."
    )


class SummaryReport(BaseModel):
    start: date
    end: date
    days: int = Field(description="Days in the period, both ends included.")
    generated_at: datetime
    orders_total: int = Field(description="Every order, whatever its status, now.")
    orders_by_status: dict[OrderStatus, int] = Field(description="Every order by status, now.")
    cycle_times: list[StageCycleTime]
    sample: TimelineSample
    fallout: Fallout
    receivables: dict[str, CurrencyReceivables]


# -- pure calculations --------------------------------------------------------


class InvalidReportRequest(ValueError):
    """A report parameter that cannot be used; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


EARLIEST_DATE = date(1971, 1, 1)
LATEST_DATE = date(9998, 12, 31)
"""Report dates are bounded so that every date computed from them (the default start
30 days back, the day after `end`) stays a valid date and visibility timestamp."""


def _iso_date(value: Any) -> Any:
    """Only `YYYY-MM-DD`: pydantic would also read `0` or `1700000000` as a timestamp."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or len(value) != 10:
        raise ValueError("must be a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise ValueError("must be a date written YYYY-MM-DD") from error


def _in_range(value: date) -> date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValueError(f"must be from {EARLIEST_DATE} to {LATEST_DATE}")
    return value


ReportDate = Annotated[date, BeforeValidator(_iso_date), AfterValidator(_in_range)]
"""A report's start or end: an ISO date from EARLIEST_DATE to LATEST_DATE."""


def resolve_period(today: date, start: date | None, end: date | None) -> tuple[date, date]:
    """The period asked for: `end` defaults to today, `start` to 30 days ending at `end`."""
    end = end or today
    start = start or end - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    if start > end:
        raise InvalidReportRequest("start", f"start {start} is after end {end}")
    return start, end


def period_days(start: date, end: date) -> int:
    return (end - start).days + 1


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


def _visibility_time(day: date) -> str:
    return datetime.combine(day, time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def orders_query(*clauses: str, include_continued: bool = False) -> str:
    """A visibility query over order workflows.

    A long-lived order continues as new: its earlier runs stay listed (status
    ContinuedAsNew) with the search attributes they had, so they are left out
    of counts, or every such order would count twice.
    """
    base = [f"WorkflowType = '{WORKFLOW_NAME}'"]
    if not include_continued:
        base.append("ExecutionStatus != 'ContinuedAsNew'")
    return " AND ".join([*base, *clauses])


def started_between(first: date, last: date) -> str:
    """Runs started from `first` to `last`, both whole days (UTC)."""
    return (
        f"StartTime >= '{_visibility_time(first)}' "
        f"AND StartTime < '{_visibility_time(last + timedelta(days=1))}'"
    )


# -- gathering the inputs -----------------------------------------------------


class BillingUnavailable(Exception):
    """Billing could not be read (HTTP 503)."""


BillingSource = Callable[[], Awaitable[BillingAdapter]]
"""Billing, opened when a report first needs it."""
Clock = Callable[[], Awaitable[datetime]]


async def _utc_now() -> datetime:
    return datetime.now(UTC)


def fixed_billing(adapter: BillingAdapter) -> BillingSource:
    async def source() -> BillingAdapter:
        return adapter

    return source


class LocalBillingReader:
    """The local billing adapter at `database_url`, opened on first use.

    The API process reads billing only for reports: opening it lazily keeps the
    API starting (and answering everything else) when the database is not there.
    Nothing is seeded; missing tables are created, as every process does.
    """

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._adapters: LocalAdapters | None = None
        self._opening = asyncio.Lock()

    async def __call__(self) -> BillingAdapter:
        async with self._opening:
            if self._adapters is None:
                self._adapters = await asyncio.to_thread(
                    open_local_adapters, self._database_url, seed=False
                )
        return self._adapters.billing

    def close(self) -> None:
        if self._adapters is not None:
            self._adapters.database.dispose()
            self._adapters = None


class ReportService:
    """Builds a `SummaryReport` from Temporal visibility, the orders' timelines and billing.

    Temporal errors reach the caller as the `OrderService`'s errors
    (`TemporalUnavailable` -> 503); billing errors as `BillingUnavailable`.
    """

    def __init__(
        self,
        client: Client,
        orders: OrderService,
        billing: BillingSource,
        clock: Clock | None = None,
    ) -> None:
        self._client = client
        self._orders = orders
        self._billing = billing
        self._clock = clock or _utc_now

    @classmethod
    def over(cls, orders: OrderService, billing: BillingSource) -> ReportService:
        """Reports on the namespace `orders` works in, through its client."""
        return cls(orders.client, orders, billing, orders.clock)

    async def summary(
        self, start: date | None = None, end: date | None = None, sample: int = DEFAULT_SAMPLE
    ) -> SummaryReport:
        """The report for `[start, end]` (default: the 30 days ending today, UTC).

        Raises InvalidReportRequest naming the parameter, an OrderError when
        Temporal cannot answer, BillingUnavailable when billing cannot.
        """
        if not 1 <= sample <= MAX_SAMPLE:
            raise InvalidReportRequest("sample", f"sample must be from 1 to {MAX_SAMPLE}")
        now = await self._clock()
        start, end = resolve_period(now.astimezone(UTC).date(), start, end)
        # One count first: if Temporal is down, that is all we ask it.
        total = await self._count()
        by_status, fallout_counts, (timelines, sample_info) = await asyncio.gather(
            self._counts_by_status(),
            self._fallout_counts(),
            self._timeline_sample(start, end, sample),
        )
        on_hold, by_reason, compensation_failed = fallout_counts
        money = await self._receivables(start, end)
        return SummaryReport(
            start=start,
            end=end,
            days=period_days(start, end),
            generated_at=now,
            orders_total=total,
            orders_by_status=by_status,
            cycle_times=cycle_times(timelines),
            sample=sample_info,
            fallout=Fallout(
                total=on_hold + compensation_failed,
                on_hold=on_hold,
                on_hold_by_reason=by_reason,
                on_hold_other=max(0, on_hold - sum(by_reason.values())),
                compensation_failed=compensation_failed,
                held_in_sample=sum(
                    1 for timeline in timelines if OrderStatus.ON_HOLD in first_seen(timeline)
                ),
            ),
            receivables=money,
        )

    # -- visibility --

    async def _count(self, *clauses: str, include_continued: bool = False) -> int:
        query = orders_query(*clauses, include_continued=include_continued)
        # The order service's translation: unreachable Temporal -> TemporalUnavailable.
        async with self._orders.translated(None):
            counted = await self._client.count_workflows(query, rpc_timeout=RPC_TIMEOUT)
        return counted.count

    async def _counts_by_status(self) -> dict[OrderStatus, int]:
        statuses = list(OrderStatus)
        counts = await asyncio.gather(
            *(self._count(f"{ORDER_STATUS.name} = '{status.value}'") for status in statuses)
        )
        return dict(zip(statuses, counts, strict=True))

    async def _fallout_counts(self) -> tuple[int, dict[str, int], int]:
        """Held now (and by reason), and cancelled with a failed undo.

        Visibility cannot group by a custom attribute, so the reasons are found
        by listing held orders, then each is counted.
        """
        held_clause = f"{ORDER_STATUS.name} = '{OrderStatus.ON_HOLD.value}'"
        held = (
            await self._orders.search(status=OrderStatus.ON_HOLD, limit=HELD_LISTING_LIMIT)
        ).orders
        reasons = sorted(
            {item.hold_reason for item in held if item.hold_reason and _plain(item.hold_reason)}
        )
        on_hold, compensation_failed, *per_reason = await asyncio.gather(
            self._count(held_clause),
            self._count(
                f"{ORDER_STATUS.name} = '{OrderStatus.CANCELLED.value}'",
                f"{HOLD_REASON.name} = '{COMPENSATION_FAILED}'",
            ),
            *(self._count(held_clause, f"{HOLD_REASON.name} = '{r}'") for r in reasons),
        )
        by_reason = {r: n for r, n in zip(reasons, per_reason, strict=True) if n}
        return on_hold, by_reason, compensation_failed

    async def _list_ids(self, query: str, into: dict[str, None], limit: int) -> None:
        async with self._orders.translated(None):
            async for execution in self._client.list_workflows(query, rpc_timeout=RPC_TIMEOUT):
                into[execution.id] = None
                if len(into) >= limit:
                    return

    async def _sampled_order_ids(
        self, start: date, end: date, sample: int
    ) -> tuple[list[str], bool]:
        """Up to `sample` orders with a run started in the period, newest days first.

        Visibility on SQL cannot ORDER BY, so when more started than the sample
        takes, days are listed one by one from `end` back.
        """
        found: dict[str, None] = {}
        in_period = started_between(start, end)
        if await self._count(in_period, include_continued=True) <= sample:
            await self._list_ids(orders_query(in_period, include_continued=True), found, sample + 1)
        else:
            day = end
            while day >= start and len(found) <= sample:
                query = orders_query(started_between(day, day), include_continued=True)
                await self._list_ids(query, found, sample + 1)
                day -= timedelta(days=1)
        ids = list(found)
        return ids[:sample], len(ids) > sample

    async def _timeline_sample(
        self, start: date, end: date, sample: int
    ) -> tuple[list[list[TimelineEntry]], TimelineSample]:
        order_ids, truncated = await self._sampled_order_ids(start, end, sample)
        limit = asyncio.Semaphore(READ_CONCURRENCY)

        async def read(order_id: str) -> list[TimelineEntry] | None:
            async with limit:
                try:
                    state = await self._orders.get(order_id)
                except (OrderError, ValueError):
                    return None
            return state.timeline

        read_timelines = await asyncio.gather(*(read(order_id) for order_id in order_ids))
        timelines: list[list[TimelineEntry]] = []
        before = 0
        for timeline in read_timelines:
            if timeline is None:
                continue
            entered = first_seen(timeline).get(OrderStatus.ENTERED)
            if entered is None or entered.astimezone(UTC).date() < start:
                before += 1  # a later run of an order entered earlier
                continue
            timelines.append(timeline)
        unreadable = sum(1 for timeline in read_timelines if timeline is None)
        return timelines, TimelineSample(
            limit=sample,
            listed=len(order_ids),
            truncated=truncated,
            read=len(timelines),
            unreadable=unreadable,
            entered_before_period=before,
        )

    # -- billing --

    async def _receivables(self, start: date, end: date) -> dict[str, CurrencyReceivables]:
        try:
            billing = await self._billing()
            open_invoices, dated = await asyncio.gather(
                billing.list_open_invoices(), billing.list_invoices_dated(start, end)
            )
        except (SystemFailure, SQLAlchemyError, OSError) as error:
            raise BillingUnavailable(f"billing could not be read: {error}") from error
        return receivables(open_invoices, dated, start, end)


def _plain(value: str) -> bool:
    """Safe inside a quoted visibility literal."""
    return "'" not in value and "\\" not in value


# -- for people ---------------------------------------------------------------


def summary_tables(report: SummaryReport) -> list[Table]:
    """The report as tables for a terminal."""
    period = f"{report.start} to {report.end} ({report.days} days)"
    statuses = Table("status", "orders", title="Orders by status (all orders, now)")
    for status, count in report.orders_by_status.items():
        statuses.add_row(status.value, str(count))
    statuses.add_row("total", str(report.orders_total), style="bold")

    sample = report.sample
    caption = (
        f"{sample.read} orders read of {sample.listed} listed"
        + (f", {sample.unreadable} unreadable" if sample.unreadable else "")
        + (f" (sample limit {sample.limit} reached: newest only)" if sample.truncated else "")
    )
    stages = Table("stage", "orders", "p50 hours", "p90 hours",
                   title=f"Cycle time, orders entered {period}", caption=caption)  # fmt: skip
    for stage in report.cycle_times:
        stages.add_row(stage.stage, str(stage.orders), _or_dash(stage.p50_hours),
                       _or_dash(stage.p90_hours))  # fmt: skip

    fallout = Table("fallout", "orders", title="Fallout (now)")
    fallout.add_row("on hold", str(report.fallout.on_hold))
    for reason, count in report.fallout.on_hold_by_reason.items():
        fallout.add_row(f"  {reason}", str(count))
    if report.fallout.on_hold_other:
        fallout.add_row("  other", str(report.fallout.on_hold_other))
    fallout.add_row("cancelled, compensation failed", str(report.fallout.compensation_failed))
    fallout.add_row("total", str(report.fallout.total), style="bold")
    fallout.add_row("held at some point (sample)", f"{report.fallout.held_in_sample} "
                    f"of {sample.read}")  # fmt: skip

    money = Table("currency", "current", "1-30", "31-60", "61-90", "90+", "open", "sales",
                  "DSO days", title=f"Receivables as of {report.end}, sales {period}")  # fmt: skip
    for currency, figures in report.receivables.items():
        aged = figures.ageing
        money.add_row(currency, str(aged.current), str(aged.days_1_30), str(aged.days_31_60),
                      str(aged.days_61_90), str(aged.days_over_90), str(figures.open_total),
                      str(figures.credit_sales), _or_dash(figures.dso_days))  # fmt: skip
    return [statuses, stages, fallout, money]


def _or_dash(value: Decimal | None) -> str:
    return "-" if value is None else str(value)
