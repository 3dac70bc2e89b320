"""Pytest fixtures that open the local adapters on a fresh database per test.

`local_adapters` runs a test once on SQLite (a file in tmp_path) and once on
PostgreSQL (a throw-away schema, dropped afterwards), so both backends keep the
same promises. Without a reachable PostgreSQL the postgres runs are skipped,
unless O2C_REQUIRE_POSTGRES=1 (CI), where they fail instead.

`open_sqlite` and `open_postgres` are the same databases as context managers,
for the adapter factories of the contract suites (tests/support/adapter_factories.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.exc import OperationalError

from adapters.local import LocalAdapters, LocalDatabase, open_local_adapters

POSTGRES_URL_ENV = "O2C_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL)


@contextmanager
def open_sqlite(tmp_path: Path, *, seed: bool = True) -> Iterator[LocalAdapters]:
    """The local adapters on a SQLite file in `tmp_path`, demo data unless `seed=False`."""
    adapters = open_local_adapters(f"sqlite:///{tmp_path / 'o2c.db'}", seed=seed)
    try:
        yield adapters
    finally:
        adapters.database.dispose()


@contextmanager
def open_postgres(*, seed: bool = True) -> Iterator[LocalAdapters]:
    """The local adapters in a throw-away PostgreSQL schema, dropped afterwards.

    Skips the test (fails it under O2C_REQUIRE_POSTGRES=1) when no server answers.
    """
    url = postgres_url()
    admin = LocalDatabase.from_url(url)
    try:
        with admin.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as error:
        admin.dispose()
        shown = make_url(url).render_as_string()  # the password masked
        reason = f"PostgreSQL at {shown} is not reachable (set {POSTGRES_URL_ENV}): {error.orig}"
        if os.environ.get("O2C_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    schema = f"o2c_test_{uuid.uuid4().hex}"
    try:
        adapters = open_local_adapters(url, schema=schema, seed=seed)
        try:
            yield adapters
        finally:
            adapters.database.dispose()
    finally:
        with admin.engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def local_adapters(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalAdapters]:
    """The local adapters, seeded, on SQLite and then on PostgreSQL."""
    opened = open_sqlite(tmp_path) if request.param == "sqlite" else open_postgres()
    with opened as adapters:
        yield adapters


@pytest.fixture
def sqlite_adapters(tmp_path: Path) -> Iterator[LocalAdapters]:
    """The local adapters, seeded, on a SQLite file of this test's own."""
    with open_sqlite(tmp_path) as adapters:
        yield adapters
