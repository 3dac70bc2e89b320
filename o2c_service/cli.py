"""`o2c`: run the service, and work orders as support staff.

`dev`, `worker` and `api` run processes. `orders ...` talks to the HTTP API
(so the CLI sees exactly what integrations see): tables for people, `-o json`
for scripts, a plain message and a non-zero exit on errors.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from adapters.faults import FaultProfileError
from o2c_domain.money import parse_amount
from o2c_service.settings import Settings
from o2c_workflows.messages import ReturnResolution
from o2c_workflows.models import OrderStatus


class _OneLineErrors(TyperGroup):
    """Usage errors as one plain line on stderr, like every other error of `o2c`.

    Click's convention stays (exit 2 for usage, 1 for refusals and unreachable
    services); only Typer's boxed, multi-line rendering goes, so scripts and
    people read the same single `error: ...` line whatever went wrong.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        plain = (args, prog_name, complete_var, False, windows_expand_args)
        if not standalone_mode:
            return super().main(*plain, **extra)
        try:
            code = super().main(*plain, **extra)
        except typer.TyperException as error:  # Click's usage errors (exit 2) and the like
            message = " ".join(error.format_message().split())
            if type(error).__name__ == "NoArgsIsHelpError":  # the help was the answer
                if message:  # already shown when Typer renders help itself
                    print(error.format_message(), file=sys.stderr)
                sys.exit(error.exit_code)
            ctx = getattr(error, "ctx", None)
            if ctx is not None:
                message += f" (see {ctx.command_path} --help)"
            _error_line(message)
            sys.exit(error.exit_code)
        except typer.Abort:
            _error_line("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    help="Order-to-Cash orchestration on Temporal.", no_args_is_help=True, cls=_OneLineErrors
)
orders_app = typer.Typer(
    help="Create, inspect and move orders (through the HTTP API).", no_args_is_help=True
)
app.add_typer(orders_app, name="orders")

out = Console()
err = Console(stderr=True)


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"


OutputOption = Annotated[Output, typer.Option("--output", "-o", help="table or json")]
ApiUrlOption = Annotated[
    str | None, typer.Option("--api-url", envvar="O2C_API_URL", help="The o2c API address.")
]


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.command()
def dev() -> None:
    """Run everything locally: Temporal dev server + UI, worker and API (Ctrl-C stops all)."""
    from o2c_service.dev import run_dev

    _logging()
    try:
        asyncio.run(run_dev(Settings()))
    except (RuntimeError, FaultProfileError) as error:
        _fail(str(error))


@app.command()
def worker() -> None:
    """Run a worker for the order task queue against the configured Temporal."""
    from o2c_service.runners import run_worker, stop_on_signals

    _logging()

    async def main() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        await run_worker(Settings(), stop)

    try:
        asyncio.run(main())
    except FaultProfileError as error:
        _fail(str(error))


@app.command()
def api() -> None:
    """Serve the HTTP API (OpenAPI at /docs)."""
    from o2c_service.runners import serve_api, stop_on_signals

    _logging()

    async def main() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        await serve_api(Settings(), stop)

    asyncio.run(main())


# -- orders -------------------------------------------------------------------


MAX_PAGE = 1000
"""The most orders the API lists in one page."""
API_TIMEOUT = httpx.Timeout(30, read=90)
"""The API may wait for a worker to accept an event (10 s) and apply it (60 s) before it
answers, with 202 at the latest: read longer than that, so the answer is not lost."""


def _error_line(message: str) -> None:
    """`error: ...` on stderr, never wrapped: one line whatever the terminal's width."""
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)


def _fail(message: str) -> NoReturn:
    _error_line(message)
    raise typer.Exit(1)


def _explain(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        return f"HTTP {response.status_code}: {response.text}"
    if isinstance(detail, list):  # validation errors: name each field
        return "; ".join(
            f"{'.'.join(str(part) for part in item.get('loc', [])[1:])}: {item.get('msg')}"
            for item in detail
        )
    return str(detail)


def _call(
    api_url: str | None,
    method: str,
    path: str,
    body: Any = None,
    params: dict[str, str] | None = None,
) -> Any:
    base = api_url or Settings().api_url
    try:
        response = httpx.request(method, f"{base}{path}", json=body, params=params,
                                 timeout=API_TIMEOUT)  # fmt: skip
    except httpx.TransportError as error:
        _fail(f"cannot reach the o2c API at {base} ({error}); is `o2c dev` or `o2c api` running?")
    if response.is_error:
        _fail(_explain(response))
    return response.json()


def _emit(data: Any, output: Output, table: Table | None = None) -> None:
    if output is Output.JSON or table is None:
        out.print_json(json.dumps(data))
    else:
        out.print(table)


def _ack_table(
    ack: dict[str, Any], keys: tuple[str, ...] = ("order_id", "status", "message", "duplicate")
) -> Table:
    table = Table(show_header=False)
    # An event still being applied (HTTP 202) answers only order_id, accepted and message.
    for key in (*keys, "accepted"):
        if key in ack:
            table.add_row(key, str(ack[key]))
    return table


@orders_app.command("create")
def create_order(
    file: Annotated[
        Path,
        typer.Option(
            "--file",
            "-f",
            exists=True,
            dir_okay=False,
            help="The order as JSON (see POST /orders).",
        ),
    ],
    output: OutputOption = Output.TABLE,
    api_url: ApiUrlOption = None,
) -> None:
    """Create an order from a JSON file; sending it again returns the same order."""
    try:
        body = json.loads(file.read_text())
    except json.JSONDecodeError as error:
        _fail(f"{file} is not valid JSON: {error}")
    created = _call(api_url, "POST", "/orders", body)
    table = Table(show_header=False)
    for key in ("order_id", "status", "created"):
        table.add_row(key, str(created[key]))
    table.add_row("temporal_ui", created["links"]["temporal_ui"])
    _emit(created, output, table)


@orders_app.command("show")
def show_order(order_id: str, output: OutputOption = Output.TABLE,
               api_url: ApiUrlOption = None) -> None:  # fmt: skip
    """Show an order: status, lines, shipments, invoices, payments, timeline."""
    state = _call(api_url, "GET", f"/orders/{order_id}")
    if output is Output.JSON:
        _emit(state, output)
        return
    currency = state["order"]["currency"]
    summary = Table(title=f"Order {order_id}", show_header=False)
    summary.add_row("status", state["status"])
    summary.add_row("customer", state["order"]["customer_id"])
    summary.add_row("total", f"{currency} {state['total']}")
    summary.add_row("terms", _terms(state["order"]))
    if state.get("hold"):
        hold = state["hold"]
        summary.add_row("held", f"{hold['kind']} at {hold['step']}: {hold['code']}")
        summary.add_row("why", hold["message"])
        summary.add_row("since", hold["since"])
        summary.add_row("next", "o2c orders release ID, or cancel" if hold["kind"] == "credit"
                        else "fix the cause, then o2c orders retry ID, or cancel")  # fmt: skip
    if state.get("cancellation_reason"):
        summary.add_row("cancelled", state["cancellation_reason"])
    for compensation in state["compensations"]:
        summary.add_row("undone", f"{compensation['step']}: {compensation['status']}, "
                                  f"{compensation['note']}")  # fmt: skip
    tables: list[Table] = [summary]
    lines = Table("sku", "ordered", "shipped", "invoiced", "returned", "unit price", title="Lines")
    for line in state["lines"]:
        lines.add_row(line["sku"], str(line["ordered"]), str(line["shipped"]),
                      str(line["invoiced"]), str(line["returned"]), line["unit_price"])  # fmt: skip
    tables.append(lines)
    if state["dispatches"]:
        shipments = Table("#", "carrier", "tracking", "shipped", "invoice", title="Shipments")
        for dispatch in state["dispatches"]:
            shipped = ", ".join(f"{q['quantity']} {q['sku']}" for q in dispatch["lines"])
            shipments.add_row(str(dispatch["number"]), dispatch["carrier"],
                              dispatch["tracking_number"], shipped,
                              dispatch["invoice_id"] or "-")  # fmt: skip
        tables.append(shipments)
    elif state.get("shipment"):
        summary.add_row("shipment", f"{state['shipment']['shipment_id']} (awaiting confirmation)")
    if state["invoices"]:
        invoices = Table("invoice", "amount", "balance", "due", "days past due", "dunning",
                         title="Invoices")  # fmt: skip
        for invoice in state["invoices"]:
            invoices.add_row(invoice["invoice_id"], invoice["amount"], invoice["balance"],
                             invoice["due_date"], str(invoice["days_past_due"]),
                             invoice["dunning_level"] or "-")  # fmt: skip
        tables.append(invoices)
    if state["payments"]:
        payments = Table("payment", "amount", "applied", "customer credit", "reference",
                         title="Payments")  # fmt: skip
        for payment in state["payments"]:
            applications = [f"{a['amount']} to {a['invoice_id']}" for a in payment["applications"]]
            applied = ", ".join(applications) or "held until invoiced"
            payments.add_row(payment["payment_id"], payment["amount"], applied,
                             payment["to_customer_credit"], payment["reference"] or "")  # fmt: skip
        tables.append(payments)
    timeline = Table("status", "at", "note", title="Timeline")
    for entry in state["timeline"]:
        timeline.add_row(entry["status"], entry["at"], entry["note"])
    tables.append(timeline)
    out.print(*tables)


FINISHED = frozenset({OrderStatus.CLOSED, OrderStatus.CANCELLED})
WAIT_POLL_SECONDS = 0.2


@orders_app.command("wait")
def wait_for_order(
    order_id: str,
    status: Annotated[OrderStatus, typer.Option(help="The status to wait for, e.g. Booked.")],
    timeout: Annotated[
        float, typer.Option(min=0, help="Seconds to wait before giving up (exit 1).")
    ] = 60,
    output: OutputOption = Output.TABLE,
    api_url: ApiUrlOption = None,
) -> None:
    """Wait until an order reaches a status: orders book, invoice and close on their own.

    Gives up at once if the order finished in another status, and after --timeout
    seconds otherwise (say, the order is held: see `o2c orders show`).
    """
    deadline = time.monotonic() + timeout
    while True:
        current = OrderStatus(_call(api_url, "GET", f"/orders/{order_id}")["status"])
        if current is status:
            break
        if current in FINISHED:
            _fail(f"order {order_id} is {current.value}; it will not become {status.value}")
        if time.monotonic() >= deadline:
            _fail(f"order {order_id} is still {current.value}, not {status.value}, "
                  f"after {timeout:g} s")  # fmt: skip
        time.sleep(WAIT_POLL_SECONDS)
    reached = {"order_id": order_id, "status": current.value}
    _emit(reached, output, _ack_table(reached, ("order_id", "status")))


def _terms(order: dict[str, Any]) -> str:
    terms = order["payment_terms"]
    if order.get("payment_method"):
        return "card, captured per invoice"
    if terms["kind"] == "due_on_receipt":
        return "due on receipt"
    if terms["kind"] == "instalments":
        return f"{terms['instalments']} instalments every {terms['net_days']} days"
    return f"NET {terms['net_days']}"


HeldOption = Annotated[bool, typer.Option("--held", help="Only orders OnHold.")]
StatusOption = Annotated[OrderStatus | None, typer.Option(help="Only orders in this status.")]
CustomerOption = Annotated[str | None, typer.Option(help="Only this customer's orders.")]
ReasonOption = Annotated[
    str | None, typer.Option("--hold-reason", help="Only orders held for this, e.g. out_of_stock.")
]


def _selection(
    status: OrderStatus | None, held: bool, customer: str | None, hold_reason: str | None
) -> dict[str, str]:
    if held or hold_reason:
        if status not in (None, OrderStatus.ON_HOLD):
            _fail("--held and --hold-reason select OnHold orders; leave out --status")
        status = OrderStatus.ON_HOLD
    selection = {"status": status.value} if status else {}
    if customer:
        selection["customer_id"] = customer
    if hold_reason:
        selection["hold_reason"] = hold_reason
    return selection


@orders_app.command("list")
def list_orders(
    status: StatusOption = None,
    held: HeldOption = False,
    customer: CustomerOption = None,
    hold_reason: ReasonOption = None,
    limit: Annotated[
        int, typer.Option(min=1, help="Show at most this many orders, following pages.")
    ] = 100,
    page_token: Annotated[
        str | None, typer.Option("--page-token", help="Start at this page (as printed).")
    ] = None,
    output: OutputOption = Output.TABLE,
    api_url: ApiUrlOption = None,
) -> None:
    """List orders by status, customer or hold reason (from Temporal's search, seconds behind).

    Follows the API's pages until `--limit` orders are shown; when more match, it
    says how many and prints the `--page-token` that lists the rest.
    """
    filters = _selection(status, held, customer, hold_reason)
    items: list[dict[str, Any]] = []
    total, token = 0, page_token
    while True:
        params = {"limit": str(min(limit - len(items), MAX_PAGE)), **filters}
        if token is not None:
            params["page_token"] = token
        page = _call(api_url, "GET", "/orders", params=params)
        items.extend(page["orders"])
        total, token = page["total"], page["next_page_token"]
        if token is None or len(items) >= limit:
            break
    if output is Output.JSON:
        _emit({"orders": items, "next_page_token": token, "total": total}, output)
        return
    table = Table("order", "status", "held for", "customer", "workflow", "started",
                  caption=f"{len(items)} shown of {total} matching")  # fmt: skip
    for item in items:
        table.add_row(
            item["order_id"],
            item["status"] or "-",
            item["hold_reason"] or "",
            item["customer_id"] or "-",
            item["execution_status"],
            item["started_at"] or "-",
        )
    _emit(items, output, table)
    if token is not None:
        err.print(f"more orders match: --page-token {token}", highlight=False, soft_wrap=True)


def _support_action(
    verb: str,
    order_id: str | None,
    all_held: bool,
    body: dict[str, Any],
    selection: dict[str, str],
    output: Output,
    api_url: str | None,
) -> None:
    """One order by id, or (`--all-held`) every held order the filters match."""
    if (order_id is None) == (not all_held):
        _fail(f"give an order id, or --all-held to {verb} every held order that matches")
    if order_id is not None:
        ack = _call(api_url, "POST", f"/orders/{order_id}/{verb}", body)
        _emit(ack, output, _ack_table(ack, ("order_id", "status", "message")))
        return
    result = _call(api_url, "POST", f"/orders/bulk/{verb}", {"selection": selection, **body})
    title = f"{verb}: {result['succeeded']} of {result['matched']} orders"
    table = Table("order", "done", "status", "message", title=title)
    for outcome in result["outcomes"]:
        table.add_row(
            outcome["order_id"],
            "yes" if outcome["ok"] else "no",
            outcome["status"] or "-",
            outcome["message"],
        )
    _emit(result, output, table)
    if result["succeeded"] < result["matched"]:
        raise typer.Exit(1)


OrderIdArgument = Annotated[str | None, typer.Argument(help="The order, or use --all-held.")]
AllHeldOption = Annotated[
    bool, typer.Option("--all-held", help="Every held order matching the filters.")
]
NoteOption = Annotated[str | None, typer.Option(help="A note for the order's timeline.")]


@orders_app.command("retry")
def retry_order(
    order_id: OrderIdArgument = None,
    all_held: AllHeldOption = False,
    customer: CustomerOption = None,
    hold_reason: ReasonOption = None,
    note: NoteOption = None,
    output: OutputOption = Output.TABLE,
    api_url: ApiUrlOption = None,
) -> None:
    """Run a held order's parked step again, once its cause is fixed."""
    selection = _selection(None, True, customer, hold_reason)
    _support_action("retry", order_id, all_held, {"note": note}, selection, output, api_url)


@orders_app.command("release")
def release_order(
    order_id: OrderIdArgument = None,
    all_held: AllHeldOption = False,
    customer: CustomerOption = None,
    hold_reason: ReasonOption = None,
    note: NoteOption = None,
    output: OutputOption = Output.TABLE,
    api_url: ApiUrlOption = None,
) -> None:
    """Let an order held for credit go on without the credit check."""
    selection = _selection(None, True, customer, hold_reason)
    _support_action("release", order_id, all_held, {"note": note}, selection, output, api_url)


@orders_app.command("cancel")
def cancel_order(
    reason: Annotated[str, typer.Option(help="Why; kept in the order's state.")],
    order_id: OrderIdArgument = None,
    all_held: AllHeldOption = False,
    customer: CustomerOption = None,
    hold_reason: ReasonOption = None,
    output: OutputOption = Output.TABLE,
    api_url: ApiUrlOption = None,
) -> None:
    """Cancel an order that has not shipped; everything done so far is undone."""
    selection = _selection(None, True, customer, hold_reason)
    _support_action("cancel", order_id, all_held, {"reason": reason}, selection, output, api_url)


@orders_app.command("ship")
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
    """Confirm that goods left: everything left to ship, or the given --line SKU=QTY."""
    body: dict[str, Any] = {"carrier": carrier, "tracking_number": tracking, "event_id": event_id}
    if line:
        body["lines"] = [_quantity(item) for item in line]
    ack = _call(api_url, "POST", f"/orders/{order_id}/shipments", body)
    _emit(ack, output, _ack_table(ack))


def _amount(text: str) -> Decimal:
    """The API's own strict reading, so the CLI never sends what a person did not type."""
    try:
        return parse_amount(text)
    except ValueError:
        raise typer.BadParameter(f"'{text}' is not an amount such as 120.50") from None


@orders_app.command("pay")
def pay_order(
    order_id: str,
    amount: Annotated[Decimal, typer.Option(help="Amount received, e.g. 120.50.", parser=_amount)],
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
    """Record a payment received for an order; it is applied to its invoices."""
    if currency is None:
        currency = _call(api_url, "GET", f"/orders/{order_id}")["order"]["currency"]
    body = {
        "payment_id": payment_id or reference,
        "amount": str(amount),
        "currency": currency,
        "reference": reference,
        "invoice_id": invoice,
    }
    ack = _call(api_url, "POST", f"/orders/{order_id}/payments", body)
    _emit(ack, output, _ack_table(ack))


LineOption = Annotated[
    list[str] | None, typer.Option("--line", help="SKU=QUANTITY; repeat for several lines.")
]


def _quantity(text: str) -> dict[str, Any]:
    """`SKU=3` -> a line; `SKU=3@12.50` adds a unit price (new lines in an amendment)."""
    sku, _, rest = text.partition("=")
    quantity, _, price = rest.partition("@")
    if not sku or not quantity.isdigit():
        raise typer.BadParameter(f"'{text}' is not SKU=QUANTITY (or SKU=QUANTITY@PRICE)")
    line: dict[str, Any] = {"sku": sku, "quantity": int(quantity)}
    if price:
        line["unit_price"] = str(_amount(price))
    return line


@orders_app.command("amend")
def amend_order(
    order_id: str,
    line: Annotated[
        list[str], typer.Option("--line", help="SKU=QTY (0 removes; a new SKU: SKU=QTY@PRICE).")
    ],
    event_id: Annotated[str | None, typer.Option(help="De-duplication key.")] = None,
    output: OutputOption = Output.TABLE,
    api_url: ApiUrlOption = None,
) -> None:
    """Change quantities, add or remove lines before they ship; prints what changed."""
    body = {"changes": [_quantity(item) for item in line], "event_id": event_id}
    ack = _call(api_url, "POST", f"/orders/{order_id}/amendments", body)
    table = _ack_table(ack, ("order_id", "status", "message", "total_before", "total_after"))
    for change in ack.get("changes", []):
        table.add_row("change", change)
    _emit(ack, output, table)


@orders_app.command("return")
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
    """Record goods that came back: a credit note, then a refund or customer credit."""
    body = {
        "return_id": return_id,
        "lines": [_quantity(item) for item in line],
        "resolution": resolution.value,
        "reason": reason,
    }
    ack = _call(api_url, "POST", f"/orders/{order_id}/returns", body)
    _emit(ack, output, _ack_table(ack))


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
    summary = _call(api_url, "GET", "/reports/summary", params=params)
    if output is Output.JSON:
        _emit(summary, output)
        return
    from o2c_service.reports import SummaryReport, summary_tables

    out.print(*summary_tables(SummaryReport.model_validate(summary)))


# -- credits ------------------------------------------------------------------

credits_app = typer.Typer(
    help="Customer credit (overpayments) held in billing.", no_args_is_help=True
)
app.add_typer(credits_app, name="credits")


@credits_app.command("refund")
def refund_credit(
    refund_id: Annotated[str, typer.Option(help="Your id for it: the same id twice refunds once.")],
    account: Annotated[str, typer.Option(help="The billing account holding the credit.")],
    payment: Annotated[str, typer.Option(help="The payment to pay the money back to.")],
    amount: Annotated[Decimal, typer.Option(help="Amount to refund, e.g. 25.00.", parser=_amount)],
    currency: Annotated[str, typer.Option(help="The credit's currency, e.g. EUR.")],
    reason: Annotated[str | None, typer.Option(help="Why; kept with the refund.")] = None,
    output: OutputOption = Output.TABLE,
    api_url: ApiUrlOption = None,
) -> None:
    """Pay customer credit back to a payment (the credit is used first, restored on failure)."""
    body = {
        "refund_id": refund_id,
        "account_id": account,
        "payment_id": payment,
        "amount": str(amount),
        "currency": currency,
    }
    if reason is not None:
        body["reason"] = reason
    result = _call(api_url, "POST", "/credits/refunds", body)
    keys = ("refund_id", "account_id", "payment_id", "amount", "currency", "credit_balance")
    _emit(result, output, _ack_table(result, keys))


def main() -> None:
    app()


# -- bench (o2c_bench/run.py) -----------------------------------------------------


@app.command()
def bench(
    orders: Annotated[
        int, typer.Option("--orders", "-n", min=1, help="Orders, Entered to Closed.")
    ] = 100,
    floor: Annotated[
        int | None,
        typer.Option(min=0, help="Floor workflows (default: as many as orders; 0: none)."),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Workflows in flight at once.")] = 20,
    rate: Annotated[
        float | None, typer.Option(min=0.01, help="Start orders at this many per second instead.")
    ] = None,
    local_activities: Annotated[
        bool | None,
        typer.Option(
            "--local-activities/--no-local-activities",
            help="Adapter calls as local activities (default: O2C_LOCAL_ACTIVITIES).",
        ),
    ] = None,
    sqlite: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Run the dev server on this SQLite file.")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Use the Temporal server at HOST:PORT instead.")
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", dir_okay=False, help="Write every figure here.")
    ] = None,
    parked: Annotated[
        int | None, typer.Option(min=1, help="Park N orders Invoiced, read memory, pay them all.")
    ] = None,
) -> None:
    """Measure throughput, latency, history size and memory per order against a floor workflow."""
    from o2c_bench.report import report_table
    from o2c_bench.run import BenchError, BenchOptions, run

    if sqlite is not None and address is not None:
        _fail("--sqlite starts a dev server on that file; --address uses another server: not both")
    if local_activities is None:
        local_activities = Settings().local_activities
    options = BenchOptions(
        orders=orders,
        floor=floor,
        concurrency=concurrency,
        rate=rate,
        local_activities=local_activities,
        sqlite=sqlite,
        address=address,
        parked=parked,
    )
    try:
        report = run(options, err)
    except BenchError as error:
        _fail(str(error))
    # Piped to a file, rich would wrap at 80 columns.
    (out if out.is_terminal else Console(width=110)).print(report_table(report))
    if json_file is not None:
        json_file.write_text(report.model_dump_json(indent=2) + "\n")
        out.print(f"figures written to {json_file}", highlight=False, markup=False)
