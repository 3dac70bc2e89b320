"""`o2c reconcile`: each order against logistics, billing and payments (docs/reports.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.markup import escape

from o2c_service.cli.common import ApiUrlOption, Output, OutputOption, app, call_api, emit, out


@app.command()
def reconcile(
    from_: Annotated[
        datetime | None,
        typer.Option("--from", formats=["%Y-%m-%d"], help="Orders entered from this day (UTC)."),
    ] = None,
    to: Annotated[
        datetime | None,
        typer.Option("--to", formats=["%Y-%m-%d"], help="Orders entered up to this day (UTC)."),
    ] = None,
    order: Annotated[
        list[str] | None, typer.Option("--order", help="Only this order; repeat for several.")
    ] = None,
    output: OutputOption = Output.TABLE,
    api_url: ApiUrlOption = None,
) -> None:
    """Check every order (or those chosen) against each system; reads only.

    One line per mismatch: order, system, check, expected and found. Exit status 1
    when any mismatch exists, an order named is not found, or the check could not
    run; 0 when none.
    """
    params: dict[str, str | list[str]] = {"order_id": order or []}
    if from_ is not None:
        params["start"] = from_.date().isoformat()
    if to is not None:
        params["end"] = to.date().isoformat()
    report = call_api(api_url, "GET", "/reports/reconciliation", params=params)
    mismatches = report["mismatches"]
    if output is Output.JSON:
        emit(report, output)
    else:
        from o2c_service.reconciliation.models import Mismatch

        for mismatch in mismatches:
            line = Mismatch.model_validate(mismatch).line()
            out.print(escape(line), highlight=False, soft_wrap=True)
        for order_id in report["unreadable"]:
            out.print(escape(f"{order_id}  not found: its state could not be read"))
        out.print(f"{len(mismatches)} mismatches in {report['orders_checked']} orders")
    if mismatches or report["unreadable"]:
        raise typer.Exit(1)
