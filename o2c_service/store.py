"""The API's own records: API keys, webhook ids seen, idempotent answers.

Not order state (that lives in Temporal) and not the systems of record (the
adapters' business): what the edge needs to remember about its callers. One
SQLite file by default, PostgreSQL when `O2C_API_DATABASE_URL` says so, with the
same transaction discipline as the local systems' database (`LocalDatabase`):
one writer connection on SQLite, reads beside it, unique indexes as the guard
against two processes recording the same thing.
"""

from __future__ import annotations

import threading

from sqlalchemy.orm import registry
from sqlmodel import SQLModel

from adapters.local.database import LocalDatabase


class ApiTable(SQLModel, registry=registry()):
    """Base of the API's tables: a metadata of their own, apart from the systems' tables."""


def open_store(url: str) -> LocalDatabase:
    """The API's database at `url`, its tables created if missing (safe from many processes).

    Each module that declares an `ApiTable` must be imported before this runs;
    `o2c_service.store_tables` imports them all.
    """
    import o2c_service.store_tables  # noqa: F401  (registers every ApiTable)

    store = LocalDatabase.from_url(url)
    store.create_schema(ApiTable.metadata)
    return store


class ApiStore:
    """The API process's one handle on its database, opened at first use (so the API
    starts, and says 503 where it must, without it) and shared by the key check, the
    idempotency keys and the webhooks: one writer connection per process on SQLite."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._database: LocalDatabase | None = None
        self._opening = threading.Lock()

    def database(self) -> LocalDatabase:
        with self._opening:
            if self._database is None:
                self._database = open_store(self.url)
            return self._database

    def close(self) -> None:
        with self._opening:
            if self._database is not None:
                self._database.dispose()
                self._database = None
