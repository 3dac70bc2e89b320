"""The Temporal visibility queries the report counts and lists orders with."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from o2c_workflows.order.base import WORKFLOW_NAME


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
