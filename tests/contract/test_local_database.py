"""What belongs to the local database alone: URLs and settings it accepts or refuses,
a database from before a new column, which opens and gains it, and reads that go
on while another client holds a write open.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import inspect, text, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import col

from adapters.local import LocalAdapters, LocalDatabase
from adapters.local.tables import CustomerRow, ItemRow
from tests.contract.builders import reserve

WAIT = 10.0
"""Seconds a call that must not wait gets, far more than it takes: a bound, so that
a read stuck behind the write lock fails the test instead of hanging it."""

# --- the database itself -------------------------------------------------------------------


def test_postgres_urls_use_the_psycopg_driver() -> None:
    for url in ("postgres://u@db/o2c", "postgresql://u@db/o2c"):
        database = LocalDatabase.from_url(url, schema="o2c_test")
        assert database.engine.url.drivername == "postgresql+psycopg"
        assert database.schema == "o2c_test"
        database.dispose()


def test_sqlite_creates_its_folder_and_writes_ahead(tmp_path: Path) -> None:
    database = LocalDatabase.from_url(f"sqlite:///{tmp_path / 'deep' / 'er' / 'o2c.db'}")
    try:
        assert (tmp_path / "deep" / "er").is_dir()
        with database.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30_000
    finally:
        database.dispose()


@pytest.mark.parametrize(
    ("url", "schema"),
    [
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///o2c.db", "o2c_test"),
        ("postgresql://u@db/o2c", 'x"; DROP TABLE invoices; --'),
        ("mysql://u@db/o2c", None),
    ],
)
def test_unusable_database_settings_are_refused(url: str, schema: str | None) -> None:
    with pytest.raises(ValueError):
        LocalDatabase.from_url(url, schema=schema)


def test_a_database_from_before_a_new_column_opens_and_gets_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = LocalDatabase.from_url(url)
    old.create_schema()
    with old.engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_customer_credit_entries_payment_id"))
        connection.execute(text("ALTER TABLE customer_credit_entries DROP COLUMN payment_id"))
    old.dispose()

    reopened = LocalDatabase.from_url(url)
    reopened.create_schema()

    columns = {c["name"] for c in inspect(reopened.engine).get_columns("customer_credit_entries")}
    reopened.dispose()
    assert "payment_id" in columns


# --- reads and writes ----------------------------------------------------------------------


@contextmanager
def write_held_by_another_client(db: LocalDatabase) -> Iterator[threading.Thread]:
    """Another client (its own engine, as another worker process has) holds a write
    transaction open on CUST-ACME and SKU-WIDGET for the block, then commits it. On
    SQLite it holds the database's write lock, on PostgreSQL those rows' locks."""
    other = LocalDatabase.from_url(db.url, schema=db.schema)
    holding, done = threading.Event(), threading.Event()

    def hold() -> None:
        with other.session() as session:
            session.exec(
                update(ItemRow)
                .where(col(ItemRow.sku) == "SKU-WIDGET")
                .values(on_hand=col(ItemRow.on_hand))
            )
            session.exec(
                update(CustomerRow)
                .where(col(CustomerRow.customer_id) == "CUST-ACME")
                .values(name=col(CustomerRow.name))
            )
            holding.set()
            done.wait(timeout=60)

    holder = threading.Thread(target=hold, name="write-holder")
    holder.start()
    try:
        assert holding.wait(timeout=WAIT), "the other client could not start its write"
        yield holder
    finally:
        done.set()
        holder.join(timeout=60)
        other.dispose()


async def test_reads_go_on_while_another_client_holds_a_write(
    local_adapters: LocalAdapters,
) -> None:
    """Look-ups, balances and the replay of a request already made answer while
    another client writes; a write to the same rows waits for it to commit."""
    crm, billing, logistics = local_adapters.crm, local_adapters.billing, local_adapters.logistics
    made = await logistics.reserve_stock(reserve("reserve-1", ("SKU-WIDGET", 2)))

    with write_held_by_another_client(local_adapters.database) as holder:
        writing = asyncio.ensure_future(
            logistics.reserve_stock(reserve("reserve-2", ("SKU-WIDGET", 3)))
        )
        customer, balance, found, replayed = await asyncio.wait_for(
            asyncio.gather(
                crm.get_customer("CUST-ACME"),
                billing.open_balance("CUST-ACME"),
                logistics.find_reservation("reserve-1"),
                logistics.reserve_stock(reserve("reserve-1", ("SKU-WIDGET", 2))),
            ),
            timeout=WAIT,
        )
        assert holder.is_alive() and not writing.done()

    assert customer.customer_id == "CUST-ACME"
    assert balance.amount == 0
    assert found == replayed == made
    taken = await asyncio.wait_for(writing, timeout=WAIT)
    assert taken.lines == reserve("reserve-2", ("SKU-WIDGET", 3)).lines


def test_a_reading_transaction_refuses_to_write(local_adapters: LocalAdapters) -> None:
    db = local_adapters.database
    with pytest.raises(DBAPIError), db.reading() as session:
        session.exec(update(ItemRow).where(col(ItemRow.sku) == "SKU-RARE").values(on_hand=0))

    with db.reading() as session:
        item = session.get(ItemRow, "SKU-RARE")
        assert item is not None and item.on_hand == 5
