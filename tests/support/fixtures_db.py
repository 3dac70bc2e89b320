"""Pytest fixtures that open the local adapters on a fresh database per test.

`local_adapters` runs a test once on SQLite (a file in tmp_path) and once on
PostgreSQL (a throw-away schema, dropped afterwards), so both backends keep the
same promises. Without a reachable PostgreSQL the postgres runs are skipped,
unless O2C_REQUIRE_POSTGRES=1 (CI), where they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.exc import OperationalError

from adapters.local import LocalAdapters, LocalDatabase, open_local_adapters

POSTGRES_URL_ENV = "O2C_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL)


def _sqlite(tmp_path: Path) -> Iterator[LocalAdapters]:
    adapters = open_local_adapters(f"sqlite:///{tmp_path / 'o2c.db'}")
    yield adapters
    adapters.database.dispose()


def _postgres() -> Iterator[LocalAdapters]:
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
    adapters = open_local_adapters(url, schema=schema)
    try:
        yield adapters
    finally:
        adapters.database.dispose()
        with admin.engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def local_adapters(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalAdapters]:
    """The local adapters, seeded, on SQLite and then on PostgreSQL."""
    if request.param == "sqlite":
        yield from _sqlite(tmp_path)
    else:
        yield from _postgres()


@pytest.fixture
def sqlite_adapters(tmp_path: Path) -> Iterator[LocalAdapters]:
    """The local adapters, seeded, on a SQLite file of this test's own."""
    yield from _sqlite(tmp_path)
