"""`o2c report`: the summary report of docs/reports.md."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from o2c_service.cli.common import (
    ApiUrlOption,
    Output,
    OutputOption,
    app,
    call_api,
    emit,
    out,
)

# -- report -------------------------------------------------------------------


@app.command()
def report(
    from_: Annotated[
        datetime | None,
        typer.Option("--from", formats=["%Y-%m-%d"], help="First day (default: 30 days ago)."),
    ] = None,
    to: Annotated[
        datetime | None,
        typer.Option("--to", formats=["%Y-%m-%d"], help="Last day (default: today)."),
    ] = None,
    sample: Annotated[
        int, typer.Option(help="How many orders' timelines to read for cycle times (1-5000).")
    ] = 500,
    output: OutputOption = Output.TABLE,
    api_url: ApiUrlOption = None,
) -> None:
    """Orders by status, cycle time per stage, fallout, receivables ageing and DSO (UTC days)."""
    params = {"sample": str(sample)}
    if from_ is not None:
        params["start"] = from_.date().isoformat()
    if to is not None:
        params["end"] = to.date().isoformat()
    summary = call_api(api_url, "GET", "/reports/summary", params=params)
    if output is Output.JSON:
        emit(summary, output)
        return
    from o2c_service.reports import SummaryReport, summary_tables

    out.print(*summary_tables(SummaryReport.model_validate(summary)))
