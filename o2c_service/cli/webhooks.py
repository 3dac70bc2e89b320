"""`o2c webhooks ...`: the signing secrets of the 3PL's and the payment gateway's webhooks,
and the webhook events orders rejected (docs/webhooks.md).

The secrets are the API's own records: these commands open its store
(`O2C_API_DATABASE_URL`) directly, as whoever runs the API would; `rejected` asks
the API, like every command about orders.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from o2c_service.cli.common import ApiUrlOption, Output, OutputOption, app, call_api, emit, err
from o2c_service.settings import Settings
from o2c_service.webhooks.sources import WebhookSource

if TYPE_CHECKING:
    from adapters.local.database import LocalDatabase

webhooks_app = typer.Typer(
    help="Signed webhooks from the 3PL (logistics) and the payment gateway (payments).",
    no_args_is_help=True,
)
app.add_typer(webhooks_app, name="webhooks")


@contextmanager
def _api_store() -> Iterator[LocalDatabase]:
    """The API's database (where the secrets are), opened for one command."""
    from o2c_service.store import open_store

    store = open_store(Settings().api_database_url)
    try:
        yield store
    finally:
        store.dispose()


SourceOption = Annotated[WebhookSource, typer.Option(help="Whose webhooks: logistics or payments.")]
DEFAULT_GRACE_HOURS = 24.0


@webhooks_app.command("secret")
def rotate_secret(
    source: SourceOption,
    grace_hours: Annotated[
        float,
        typer.Option(min=0, help="How long the secret it replaces still verifies, in hours."),
    ] = DEFAULT_GRACE_HOURS,
    retire_previous: Annotated[
        bool,
        typer.Option(help="The secret it replaces stops verifying at once (no grace period)."),
    ] = False,
) -> None:
    """Create the source's signing secret, or rotate it: prints the new `whsec_...` alone.

    Give it to the sender. Until the grace period ends (--grace-hours, 24 by default)
    deliveries signed with the secret it replaces verify too, so the sender can
    switch without losing any; `o2c webhooks retire` ends the grace period early.
    """
    now = datetime.now(UTC)
    grace = timedelta(0) if retire_previous else timedelta(hours=grace_hours)
    from o2c_service.webhooks import records

    with _api_store() as store:
        secret = records.rotate_secret(store, source, grace, now)
    typer.echo(secret)
    ends = (now + grace).isoformat(timespec="seconds")
    err.print(
        f"new {source.value} webhook secret; any previous one verifies until {ends}",
        highlight=False,
        soft_wrap=True,
    )


@webhooks_app.command("retire")
def retire(source: SourceOption) -> None:
    """End the grace period now: only the source's newest secret verifies from here on."""
    from o2c_service.webhooks import records

    with _api_store() as store:
        ended = records.retire_previous(store, source, datetime.now(UTC))
    err.print(f"{ended} previous {source.value} secret(s) retired", highlight=False)


@webhooks_app.command("secrets")
def list_secrets(output: OutputOption = Output.TABLE) -> None:
    """The secrets in force per source (when made, until when they verify), not their values."""
    from o2c_service.webhooks import records

    with _api_store() as store:
        found = records.list_secrets(store, datetime.now(UTC))
    rows = [
        {
            "source": info.source,
            "created_at": info.created_at.isoformat(timespec="seconds"),
            "verifies_until": (
                info.expires_at.isoformat(timespec="seconds") if info.expires_at else None
            ),
        }
        for info in found
    ]
    table = Table("source", "created", "verifies until", caption=f"{len(rows)} in force")
    for row in rows:
        table.add_row(row["source"], row["created_at"], row["verifies_until"] or "current")
    emit(rows, output, table)


@webhooks_app.command("rejected")
def rejected(
    order: Annotated[str | None, typer.Option(help="Only this order's.")] = None,
    source: Annotated[WebhookSource | None, typer.Option(help="Only this source's.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Show at most this many.")] = 100,
    output: OutputOption = Output.TABLE,
    api_url: ApiUrlOption = None,
) -> None:
    """Webhook events an order refused (or whose order does not exist), newest first.

    The sender was answered 2xx (it cannot fix them by sending again): each waits
    for a person, who fixes the order (or asks the sender) and then sends the
    event as `o2c orders ship` or `o2c orders pay`.
    """
    params = {"limit": str(limit)}
    if order is not None:
        params["order_id"] = order
    if source is not None:
        params["source"] = source.value
    page = call_api(api_url, "GET", "/webhooks/rejected", params=params)
    table = Table("received", "source", "type", "order", "webhook id", "reason",
                  caption=f"{len(page['events'])} shown of {page['total']}")  # fmt: skip
    for event in page["events"]:
        table.add_row(event["received_at"], event["source"], event["type"] or "-",
                      event["order_id"] or "-", event["webhook_id"],
                      event["reason"] or "")  # fmt: skip
    emit(page, output, table)
