"""What belongs to the local database alone: URLs and settings it accepts or refuses,
and a database from before a new column, which opens and gains it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from adapters.local import LocalDatabase

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
