"""What every `o2c` command shares: the Typer apps, output as a table or JSON, one
plain `error: ...` line on failure, and calling the HTTP API (the CLI sees exactly
what integrations see).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from o2c_domain.money import parse_amount
from o2c_service.access.dev_keys import local_dev_key
from o2c_service.settings import Settings
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
            error_line(message)
            sys.exit(error.exit_code)
        except typer.Abort:
            error_line("aborted")
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


MAX_PAGE = 1000
"""The most orders the API lists in one page."""
API_TIMEOUT = httpx.Timeout(30, read=90)
"""The API may wait for a worker to accept an event (10 s) and apply it (60 s) before it
answers, with 202 at the latest: read longer than that, so the answer is not lost."""


def error_line(message: str) -> None:
    """`error: ...` on stderr, never wrapped: one line whatever the terminal's width."""
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)


def fail(message: str) -> NoReturn:
    error_line(message)
    raise typer.Exit(1)


def _explain(response: httpx.Response) -> str:
    """The API's error (problem details, RFC 9457) as one line: each field that is not
    valid and what is wrong with it, else the `detail` (with its business `code`)."""
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        return f"HTTP {response.status_code}: {response.text}"
    errors = problem.get("errors")
    if isinstance(errors, list) and errors:
        return "; ".join(
            f"{_where(item)}: {item.get('msg')}" for item in errors if isinstance(item, dict)
        )
    detail = str(problem.get("detail") or problem.get("title") or f"HTTP {response.status_code}")
    if response.status_code == 401:
        return f"{detail} (set O2C_API_KEY to a key from `o2c keys create`; see docs/api-keys.md)"
    return detail


def _where(error: dict[str, Any]) -> str:
    """The field an error names, without `body.` or `query.` (the CLI built those from its
    options): `lines[0].sku`, `start`; a header keeps its `header.`."""
    field = str(error.get("field", ""))
    place, _, rest = field.partition(".")
    return rest if place in ("body", "query") and rest else field


def api_key(base: str, settings: Settings) -> str | None:
    """The key to send: O2C_API_KEY, else the local `o2c dev`'s support key file."""
    if settings.api_key is not None:
        return settings.api_key.get_secret_value().strip()
    return local_dev_key(base, settings)


def call_api(
    api_url: str | None,
    method: str,
    path: str,
    body: Any = None,
    params: Mapping[str, str | list[str]] | None = None,
) -> Any:
    settings = Settings()
    base = api_url or settings.api_url
    key = api_key(base, settings)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = httpx.request(method, f"{base}{path}", json=body, params=params,
                                 headers=headers, timeout=API_TIMEOUT)  # fmt: skip
    except httpx.TransportError as error:
        fail(f"cannot reach the o2c API at {base} ({error}); is `o2c dev` or `o2c api` running?")
    if response.is_error:
        fail(_explain(response))
    return response.json()


def emit(data: Any, output: Output, table: Table | None = None) -> None:
    if output is Output.JSON or table is None:
        out.print_json(json.dumps(data))
    else:
        out.print(table)


def ack_table(
    ack: dict[str, Any], keys: tuple[str, ...] = ("order_id", "status", "message", "duplicate")
) -> Table:
    table = Table(show_header=False)
    # An event still being applied (HTTP 202) answers only order_id, accepted and message.
    for key in (*keys, "accepted"):
        if key in ack:
            table.add_row(key, str(ack[key]))
    return table


def amount_option(text: str) -> Decimal:
    """The API's own strict reading, so the CLI never sends what a person did not type."""
    try:
        return parse_amount(text)
    except ValueError:
        raise typer.BadParameter(f"'{text}' is not an amount such as 120.50") from None


LineOption = Annotated[
    list[str] | None, typer.Option("--line", help="SKU=QUANTITY; repeat for several lines.")
]


def line_option(text: str) -> dict[str, Any]:
    """`SKU=3` -> a line; `SKU=3@12.50` adds a unit price (new lines in an amendment)."""
    sku, _, rest = text.partition("=")
    quantity, _, price = rest.partition("@")
    if not sku or not quantity.isdigit():
        raise typer.BadParameter(f"'{text}' is not SKU=QUANTITY (or SKU=QUANTITY@PRICE)")
    line: dict[str, Any] = {"sku": sku, "quantity": int(quantity)}
    if price:
        line["unit_price"] = str(amount_option(price))
    return line


HeldOption = Annotated[bool, typer.Option("--held", help="Only orders OnHold.")]
StatusOption = Annotated[OrderStatus | None, typer.Option(help="Only orders in this status.")]
CustomerOption = Annotated[str | None, typer.Option(help="Only this customer's orders.")]
ReasonOption = Annotated[
    str | None, typer.Option("--hold-reason", help="Only orders held for this, e.g. out_of_stock.")
]


def order_filters(
    status: OrderStatus | None, held: bool, customer: str | None, hold_reason: str | None
) -> dict[str, str]:
    if held or hold_reason:
        if status not in (None, OrderStatus.ON_HOLD):
            fail("--held and --hold-reason select OnHold orders; leave out --status")
        status = OrderStatus.ON_HOLD
    selection = {"status": status.value} if status else {}
    if customer:
        selection["customer_id"] = customer
    if hold_reason:
        selection["hold_reason"] = hold_reason
    return selection
