"""The reports people ask for after the invoice: where orders stand, how long each
stage takes, fallout, open receivables by age and days sales outstanding.

Nothing here is stored. Each figure is read when asked, from where it already
lives: order counts from Temporal visibility, stage times from the orders' own
timelines (their `state` query), money from billing, the system of record for
receivables. docs/reports.md says why, and what each figure cannot tell.

The calculations (percentiles, ageing buckets, DSO) are pure functions
(`figures`); `ReportService` (`service`) only gathers their inputs. The other
modules hold the report's shape (`models`), what a report may be asked for
(`parameters`), the visibility queries it asks (`visibility`) and the report as
tables for a terminal (`tables`). The API and the CLI import from here.
"""

from o2c_service.reports.models import SummaryReport
from o2c_service.reports.parameters import (
    DEFAULT_SAMPLE,
    MAX_SAMPLE,
    InvalidReportRequest,
    ReportDate,
)
from o2c_service.reports.service import BillingUnavailable, ReportService
from o2c_service.reports.tables import summary_tables

__all__ = [
    "DEFAULT_SAMPLE",
    "MAX_SAMPLE",
    "BillingUnavailable",
    "InvalidReportRequest",
    "ReportDate",
    "ReportService",
    "SummaryReport",
    "summary_tables",
]
