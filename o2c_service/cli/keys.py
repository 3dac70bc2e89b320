"""`o2c keys create|list|revoke`: the API's keys, written to the API's database directly
(as an operator on the API's host does: `O2C_API_DATABASE_URL`, or `api.db` in
`O2C_DATA_DIR`). Secrets are shown once, at creation; the database keeps their SHA-256."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from o2c_service.access.roles import Role
from o2c_service.cli.common import Output, OutputOption, app, emit, err, fail, out
from o2c_service.settings import Settings

if TYPE_CHECKING:
    from o2c_service.access.keys import KeyStore

keys_app = typer.Typer(
    help="API keys: create (shown once), list, revoke. See docs/api-keys.md.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")


@contextmanager
def _keys() -> Iterator[KeyStore]:
    from o2c_service.access.keys import KeyRefused, KeyStore

    url = Settings().api_database_url
    try:
        store = KeyStore.open(url)
    except Exception as error:  # an unreachable or unusable database: one line, exit 1
        fail(f"cannot open the API's database at {url}: {error}")
    try:
        yield store
    except KeyRefused as refused:
        fail(str(refused))
    finally:
        store.close()


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else ""


@keys_app.command("create")
def create_key(
    name: Annotated[str, typer.Option(help="Who or what uses it, e.g. webshop, support-desk.")],
    role: Annotated[Role, typer.Option(help="integration, support or viewer.")],
    output: OutputOption = Output.TABLE,
) -> None:
    """Create a key and print it, alone, once: it cannot be shown again."""
    with _keys() as keys:
        created = keys.create(name, role)
    if output is Output.JSON:
        emit(created.model_dump(mode="json"), output)
        return
    print(created.key, flush=True)  # alone on stdout, for `$(o2c keys create ...)`
    err.print(
        f"{created.key_id} '{created.name}' ({created.role.value}) created; the key above is "
        "shown only now: keep it in a secret store",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


@keys_app.command("list")
def list_keys(output: OutputOption = Output.TABLE) -> None:
    """Every key (never its secret), revoked ones too."""
    with _keys() as keys:
        found = keys.list()
    table = Table("id", "name", "role", "created", "revoked")
    for key in found:
        table.add_row(
            key.key_id, key.name, key.role.value, _when(key.created_at), _when(key.revoked_at)
        )
    emit([key.model_dump(mode="json") for key in found], output, table)


@keys_app.command("revoke")
def revoke_key(
    id_or_name: Annotated[str, typer.Argument(help="The key's id (key_...) or name.")],
    output: OutputOption = Output.TABLE,
) -> None:
    """Revoke a key: the API refuses it (401) within seconds (docs/api-keys.md)."""
    with _keys() as keys:
        key, revoked_now = keys.revoke(id_or_name)
    if output is Output.JSON:
        emit(key.model_dump(mode="json"), output)
        return
    when = _when(key.revoked_at)
    said = "revoked" if revoked_now else f"was already revoked (at {when})"
    out.print(f"{key.key_id} '{key.name}' ({key.role.value}) {said}", highlight=False,
              markup=False, soft_wrap=True)  # fmt: skip
