"""Where the local adapters keep their state: one SQLite file or a PostgreSQL schema.

SQLite is the default so everything runs on one machine with nothing installed;
PostgreSQL is there for several workers on several hosts. Every transaction
that may write is serialised on SQLite (`BEGIN IMMEDIATE` + a busy timeout), and
relies on row locks and unique indexes on PostgreSQL, so the insert-and-catch
idempotency in `run_once` holds across threads and processes on both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from adapters.local.tables import LocalTable

T = TypeVar("T")

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_BUSY_TIMEOUT_MS = 30_000
_CREATE_LOCK_ID = 202_020  # any constant: serialises create_schema across processes


def _normalised_url(url: str) -> URL:
    """`postgres://` and `postgresql://` use the psycopg 3 driver, the one installed."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_engine(url: URL) -> Engine:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise ValueError(
            "the local adapters need a SQLite file shared by all threads, not an in-memory "
            f"database: {url}"
        )
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy, not the sqlite3 module, decides when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Take the write lock up front: a deferred transaction that reads and then
        # writes fails with SQLITE_BUSY instead of waiting when another wrote meanwhile.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _postgres_engine(url: URL, schema: str | None) -> Engine:
    connect_args: dict[str, Any] = {"connect_timeout": 10}
    if schema is not None:
        connect_args["options"] = f"-csearch_path={schema}"
    return create_engine(url, connect_args=connect_args, pool_pre_ping=True)


class LocalDatabase:
    """A SQLAlchemy engine plus the transaction helpers the local adapters share."""

    def __init__(self, engine: Engine, *, schema: str | None = None) -> None:
        self.engine = engine
        self.schema = schema

    @classmethod
    def from_url(cls, url: str, *, schema: str | None = None) -> LocalDatabase:
        """`sqlite:///path/file.db` (parent folder created) or `postgresql://...`.

        `schema` (PostgreSQL only) puts every table in that schema, e.g. a throw-away
        schema per test run; it is created by `create_schema` if missing.
        """
        parsed = _normalised_url(url)
        if schema is not None and not _SCHEMA_NAME.match(schema):
            raise ValueError(f"'{schema}' is not a plain SQL identifier")
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            if schema is not None:
                raise ValueError("a schema can only be chosen on PostgreSQL")
            return cls(_sqlite_engine(parsed))
        if backend == "postgresql":
            return cls(_postgres_engine(parsed, schema), schema=schema)
        raise ValueError(f"unsupported database URL {parsed!r}: use sqlite:/// or postgresql://")

    @property
    def url(self) -> str:
        """The URL with its password, to open the same database from another process."""
        return self.engine.url.render_as_string(hide_password=False)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def create_schema(self) -> None:
        """Create the schema and tables that are missing; safe to run from many processes."""
        with self.engine.begin() as connection:
            if self.is_postgres:
                lock = text("SELECT pg_advisory_xact_lock(:id)")
                connection.execute(lock, {"id": _CREATE_LOCK_ID})
                if self.schema is not None:
                    connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            LocalTable.metadata.create_all(connection)
            _add_missing_columns(connection)

    def dispose(self) -> None:
        """Close every pooled connection (before dropping a schema, or at shutdown)."""
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    def run_once(self, find: Callable[[Session], T | None], create: Callable[[Session], T]) -> T:
        """The keyed record `find` sees, else the one `create` makes, never two.

        `create` must insert the row carrying the unique key (and do the work that key
        guards) in its transaction; if a concurrent caller inserted it first, the
        unique index refuses ours, everything rolls back and the winner's is returned.
        """
        with self.session() as session:
            found = find(session)
        if found is not None:
            return found
        try:
            with self.session() as session:
                return create(session)
        except IntegrityError:
            with self.session() as session:
                found = find(session)
            if found is None:
                raise
            return found


def _add_missing_columns(connection: Connection) -> None:
    """Columns added to a table after a database was created: nullable, so a database
    from an earlier version opens as it is (create_all makes only missing tables)."""
    inspector = inspect(connection)
    for table in LocalTable.metadata.sorted_tables:
        if not inspector.has_table(table.name):  # tables live on the search path
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            assert column.nullable, f"{table.name}.{column.name} must be nullable to be added"
            column_type = column.type.compile(dialect=connection.dialect)
            connection.execute(
                text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {column_type}')
            )
