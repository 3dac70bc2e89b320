"""What a report may be asked for: its period (checked ISO dates) and its sample size."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

DEFAULT_PERIOD_DAYS = 30
DEFAULT_SAMPLE = 500
MAX_SAMPLE = 5000


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
