"""The summary report as the API returns it: its figures, each with what it counts."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from o2c_workflows.models import OrderStatus


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
