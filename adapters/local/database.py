"""Where the local adapters keep their state: one SQLite file or a PostgreSQL schema.

SQLite is the default so everything runs on one machine with nothing installed;
PostgreSQL is there for several workers on several hosts. Every transaction
that may write is serialised on SQLite (`BEGIN IMMEDIATE` + a busy timeout), and
relies on row locks and unique indexes on PostgreSQL, so the insert-and-catch
idempotency in `run_once` holds across threads and processes on both.

Transactions that only read say so (`reading()`, and `run_once`'s look-ups):
on SQLite they begin deferred on connections of their own, so in WAL mode they
read a snapshot and never wait for a writer, nor a writer for them; on
PostgreSQL they are `READ ONLY`. Either way a write in one of them is refused.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    MetaData,
    create_engine,
    event,
    inspect,
    make_url,
    text,
)
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import QueuePool
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


def _executor_threads() -> int:
    """How many threads asyncio's default executor has: the threads the local
    adapters' calls (`asyncio.to_thread`) run on in the worker and the API."""
    return min(32, (os.cpu_count() or 1) + 4)


def _sqlite_engine(url: URL, *, write: bool) -> Engine:
    """The engine of this process's writing or of its reading transactions.

    SQLAlchemy's default pool for a file (5 connections, 10 more opened and closed
    per use beyond that) let every executor thread hold a connection of its own.
    SQLite lets one transaction write at a time. The writing engine has one
    connection, so this process's writers queue for it in the pool and each is
    woken as the one before returns it, instead of every thread holding a
    connection of its own and polling for the write lock in SQLite's busy handler
    (it sleeps 1 to 100 ms between tries, in no order), and that connection's page
    cache stays warm. Writers in other processes (the API, another worker) still
    meet this one at the lock, waiting up to the busy timeout; a writer here waits
    as long for the pool.

    The reading engine keeps a connection per executor thread (more are opened,
    and closed after use, when more threads read at once): in WAL mode readers do
    not wait for each other or for the writer, so none should wait for the pool.
    Its connections are `query_only`, so a transaction marked as reading that
    tries to write fails at once rather than racing for the lock it did not take
    up front. Each connection is set up once, when opened. (The price of readers
    running beside the writer is the GIL they then share: see "SQLite: reads
    beside the writer" in docs/benchmark.md.)
    """
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise ValueError(
            "the local adapters need a SQLite file shared by all threads, not an in-memory "
            f"database: {url}"
        )
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    readers = _executor_threads()
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False},
        poolclass=QueuePool,
        pool_size=1 if write else readers,
        max_overflow=0 if write else readers,
        pool_timeout=_BUSY_TIMEOUT_MS / 1000,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy, not the sqlite3 module, decides when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        if not write:
            cursor.execute("PRAGMA query_only = ON")
        cursor.close()

    # Take the write lock up front: a deferred transaction that reads and then
    # writes fails with SQLITE_BUSY instead of waiting when another wrote meanwhile.
    # A transaction that only reads begins deferred: in WAL mode it reads the last
    # committed state without taking, or waiting for, the write lock.
    begin = "BEGIN IMMEDIATE" if write else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)

    return engine


def _postgres_engine(url: URL, schema: str | None) -> Engine:
    connect_args: dict[str, Any] = {"connect_timeout": 10}
    if schema is not None:
        connect_args["options"] = f"-csearch_path={schema}"
    return create_engine(url, connect_args=connect_args, pool_pre_ping=True)


class LocalDatabase:
    """A SQLAlchemy engine plus the transaction helpers the local adapters share.

    `engine` runs the transactions that may write; `reader` those that only read
    (on PostgreSQL, the same pool in `READ ONLY` transactions).
    """

    def __init__(
        self, engine: Engine, *, schema: str | None = None, reader: Engine | None = None
    ) -> None:
        self.engine = engine
        self.schema = schema
        self.reader = reader if reader is not None else engine

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
            return cls(
                _sqlite_engine(parsed, write=True), reader=_sqlite_engine(parsed, write=False)
            )
        if backend == "postgresql":
            engine = _postgres_engine(parsed, schema)
            # PostgreSQL's plain BEGIN never waits for a writer: readers share the pool,
            # in READ ONLY transactions (a write in one is refused, as on SQLite).
            reader = engine.execution_options(postgresql_readonly=True)
            return cls(engine, schema=schema, reader=reader)
        raise ValueError(f"unsupported database URL {parsed!r}: use sqlite:/// or postgresql://")

    @property
    def url(self) -> str:
        """The URL with its password, to open the same database from another process."""
        return self.engine.url.render_as_string(hide_password=False)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def create_schema(self, metadata: MetaData = LocalTable.metadata) -> None:
        """Create the schema and tables that are missing; safe to run from many processes.

        `metadata`: whose tables (the local systems' by default; the API's own records
        use the same database discipline with tables of their own)."""
        with self.engine.begin() as connection:
            if self.is_postgres:
                lock = text("SELECT pg_advisory_xact_lock(:id)")
                connection.execute(lock, {"id": _CREATE_LOCK_ID})
                if self.schema is not None:
                    connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            metadata.create_all(connection)
            _add_missing_columns(connection, metadata)

    def dispose(self) -> None:
        """Close every pooled connection (before dropping a schema, or at shutdown)."""
        self.engine.dispose()
        if self.reader.pool is not self.engine.pool:
            self.reader.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction that may write: committed when the block ends, rolled back
        if it raises. On SQLite it holds the write lock from its first statement."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """One transaction that only reads; a write in it is refused. On SQLite it reads
        one snapshot and neither waits for a writer nor holds one up."""
        with Session(self.reader, expire_on_commit=False) as session, session.begin():
            yield session

    def run_once(self, find: Callable[[Session], T | None], create: Callable[[Session], T]) -> T:
        """The keyed record `find` sees, else the one `create` makes, never two.

        `find` only reads (it runs in a `reading()` transaction); `create` must
        insert the row carrying the unique key (and do the work that key guards) in
        its transaction, which may write; if a concurrent caller inserted it first, the
        unique index refuses ours, everything rolls back and the winner's is returned.
        """
        with self.reading() as session:
            found = find(session)
        if found is not None:
            return found
        try:
            with self.session() as session:
                return create(session)
        except IntegrityError:
            with self.reading() as session:
                found = find(session)
            if found is None:
                raise
            return found


def _add_missing_columns(connection: Connection, metadata: MetaData) -> None:
    """Columns added to a table after a database was created: nullable, so a database
    from an earlier version opens as it is (create_all makes only missing tables)."""
    inspector = inspect(connection)
    for table in metadata.sorted_tables:
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
