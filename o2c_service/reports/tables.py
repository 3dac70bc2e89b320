"""The summary report for people: rich tables for a terminal (`o2c report`)."""

from __future__ import annotations

from decimal import Decimal

from rich.table import Table

from o2c_service.reports.models import SummaryReport


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
