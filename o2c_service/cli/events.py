"""`o2c orders ship|pay|amend|return|retry|release|cancel`: the outside events.

Each command is named, described and routed by its entry in `o2c_service.events`;
what is written here is only how its options become the event's message.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.table import Table

from o2c_service.cli.common import (
    ApiUrlOption,
    CustomerOption,
    LineOption,
    Output,
    OutputOption,
    ReasonOption,
    ack_table,
    amount_option,
    call_api,
    emit,
    fail,
    line_option,
    order_filters,
    orders_app,
)
from o2c_service.events import (
    AMENDMENT,
    CANCEL,
    PAYMENT,
    RELEASE,
    RETRY,
    RETURN,
    SHIPMENT,
    OrderEvent,
)
from o2c_workflows.messages import ReturnResolution


def _support_action(
    event: OrderEvent[Any, Any],
    order_id: str | None,
    all_held: bool,
    body: dict[str, Any],
    selection: dict[str, str],
    output: Output,
    api_url: str | None,
) -> None:
    """One order by id, or (`--all-held`) every held order the filters match."""
    verb = event.command
    if (order_id is None) == (not all_held):
        fail(f"give an order id, or --all-held to {verb} every held order that matches")
    if order_id is not None:
        ack = call_api(api_url, "POST", event.path(order_id), body)
        emit(ack, output, ack_table(ack, ("order_id", "status", "message")))
        return
    result = call_api(
        api_url, "POST", f"/orders/bulk/{event.route}", {"selection": selection, **body}
    )
    title = f"{verb}: {result['succeeded']} of {result['matched']} orders"
    table = Table("order", "done", "status", "message", title=title)
    for outcome in result["outcomes"]:
        table.add_row(
            outcome["order_id"],
            "yes" if outcome["ok"] else "no",
            outcome["status"] or "-",
            outcome["message"],
        )
    emit(result, output, table)
    if result["succeeded"] < result["matched"]:
        raise typer.Exit(1)


OrderIdArgument = Annotated[str | None, typer.Argument(help="The order, or use --all-held.")]
AllHeldOption = Annotated[
    bool, typer.Option("--all-held", help="Every held order matching the filters.")
]
NoteOption = Annotated[str | None, typer.Option(help="A note for the order's timeline.")]


@orders_app.command(RETRY.command, help=RETRY.summary)
def retry_order(
    order_id: OrderIdArgument = None,
    all_held: AllHeldOption = False,
    customer: CustomerOption = None,
    hold_reason: ReasonOption = None,
    note: NoteOption = None,
    output: OutputOption = Output.TABLE,
    api_url: ApiUrlOption = None,
) -> None:
    selection = order_filters(None, True, customer, hold_reason)
    _support_action(RETRY, order_id, all_held, {"note": note}, selection, output, api_url)


@orders_app.command(RELEASE.command, help=RELEASE.summary)
def release_order(
    order_id: OrderIdArgument = None,
    all_held: AllHeldOption = False,
    customer: CustomerOption = None,
    hold_reason: ReasonOption = None,
    note: NoteOption = None,
    output: OutputOption = Output.TABLE,
    api_url: ApiUrlOption = None,
) -> None:
    selection = order_filters(None, True, customer, hold_reason)
    _support_action(RELEASE, order_id, all_held, {"note": note}, selection, output, api_url)


@orders_app.command(CANCEL.command, help=CANCEL.summary)
def cancel_order(
    reason: Annotated[str, typer.Option(help="Why; kept in the order's state.")],
    order_id: OrderIdArgument = None,
    all_held: AllHeldOption = False,
    customer: CustomerOption = None,
    hold_reason: ReasonOption = None,
    output: OutputOption = Output.TABLE,
    api_url: ApiUrlOption = None,
) -> None:
    selection = order_filters(None, True, customer, hold_reason)
    _support_action(CANCEL, order_id, all_held, {"reason": reason}, selection, output, api_url)


@orders_app.command(SHIPMENT.command, help=SHIPMENT.summary)
def ship_order(
    order_id: str,
    carrier: Annotated[str, typer.Option(help="Carrier name, e.g. DHL.")],
    tracking: Annotated[str, typer.Option(help="The carrier's tracking number.")],
    event_id: Annotated[
        str | None, typer.Option(help="De-duplication key (default: tracking).")
    ] = None,
    line: LineOption = None,
    output: OutputOption = Output.TABLE,
    api_url: ApiUrlOption = None,
) -> None:
    body: dict[str, Any] = {"carrier": carrier, "tracking_number": tracking, "event_id": event_id}
    if line:
        body["lines"] = [line_option(item) for item in line]
    ack = call_api(api_url, "POST", SHIPMENT.path(order_id), body)
    emit(ack, output, ack_table(ack))


@orders_app.command(PAYMENT.command, help=PAYMENT.summary)
def pay_order(
    order_id: str,
    amount: Annotated[
        Decimal, typer.Option(help="Amount received, e.g. 120.50.", parser=amount_option)
    ],
    reference: Annotated[str, typer.Option(help="Bank or gateway reference.")],
    payment_id: Annotated[
        str | None, typer.Option(help="Payment id (default: the reference).")
    ] = None,
    currency: Annotated[str | None, typer.Option(help="Default: the order's currency.")] = None,
    invoice: Annotated[
        str | None, typer.Option(help="The invoice it pays (default: oldest due first).")
    ] = None,
    output: OutputOption = Output.TABLE,
    api_url: ApiUrlOption = None,
) -> None:
    if currency is None:
        currency = call_api(api_url, "GET", f"/orders/{order_id}")["order"]["currency"]
    body = {
        "payment_id": payment_id or reference,
        "amount": str(amount),
        "currency": currency,
        "reference": reference,
        "invoice_id": invoice,
    }
    ack = call_api(api_url, "POST", PAYMENT.path(order_id), body)
    emit(ack, output, ack_table(ack))


@orders_app.command(AMENDMENT.command, help=AMENDMENT.summary)
def amend_order(
    order_id: str,
    line: Annotated[
        list[str], typer.Option("--line", help="SKU=QTY (0 removes; a new SKU: SKU=QTY@PRICE).")
    ],
    event_id: Annotated[str | None, typer.Option(help="De-duplication key.")] = None,
    output: OutputOption = Output.TABLE,
    api_url: ApiUrlOption = None,
) -> None:
    body = {"changes": [line_option(item) for item in line], "event_id": event_id}
    ack = call_api(api_url, "POST", AMENDMENT.path(order_id), body)
    table = ack_table(ack, ("order_id", "status", "message", "total_before", "total_after"))
    for change in ack.get("changes", []):
        table.add_row("change", change)
    emit(ack, output, table)


@orders_app.command(RETURN.command, help=RETURN.summary)
def return_goods(
    order_id: str,
    return_id: Annotated[str, typer.Option(help="The return (RMA) id.")],
    line: Annotated[list[str], typer.Option("--line", help="SKU=QTY returned.")],
    resolution: Annotated[
        ReturnResolution, typer.Option(help="Refund the money, or keep it as customer credit.")
    ] = ReturnResolution.REFUND,
    reason: Annotated[str | None, typer.Option(help="Why it came back.")] = None,
    output: OutputOption = Output.TABLE,
    api_url: ApiUrlOption = None,
) -> None:
    body = {
        "return_id": return_id,
        "lines": [line_option(item) for item in line],
        "resolution": resolution.value,
        "reason": reason,
    }
    ack = call_api(api_url, "POST", RETURN.path(order_id), body)
    emit(ack, output, ack_table(ack))
