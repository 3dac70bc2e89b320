"""Adapter factories: every implementation of the four system protocols the contract
suites (tests/contract/test_*_contract.py) run against.

A factory opens a fresh, empty set of systems for one test: the four adapters,
typed by protocol only, plus a `Seeder` for the data no protocol can create (a
customer in CRM, an item's stock on hand). Tests never look behind the protocol;
whatever an implementation needs to seed or to clean up stays in its factory.

The local adapters run on SQLite and PostgreSQL; the HTTP adapters run against the
sandbox's servers on loopback ports over the same two databases. To add an
implementation, write a class with an `open(tmp_path, sandbox)` async context manager that
yields `Systems`, and add one `pytest.param` to `FACTORIES`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from adapters.billing.http import HttpBilling
from adapters.billing.protocol import BillingAdapter
from adapters.crm.http import HttpCrm
from adapters.crm.models import Customer
from adapters.crm.protocol import CrmAdapter
from adapters.http.client import Remote
from adapters.local import LocalAdapters, LocalDatabase, open_local_adapters
from adapters.local.tables import CustomerRow, ItemRow, to_minor
from adapters.logistics.http import HttpLogistics
from adapters.logistics.protocol import LogisticsAdapter
from adapters.payments.http import HttpPayments
from adapters.payments.protocol import PaymentsAdapter
from o2c_sandbox.routes import CallLog, contract_app
from o2c_sandbox.serve import CONTRACTS, running_sandbox
from o2c_service.systems import HttpAdapter
from tests.support.fixtures_db import open_postgres, open_sqlite


class Seeder(Protocol):
    """Test data the protocols cannot create, put in place before a test acts."""

    async def add_customer(self, customer: Customer) -> None:
        """CRM knows this customer (as given, status included) from now on."""
        ...

    async def set_stock(self, sku: str, on_hand: int) -> None:
        """Logistics stocks this item (created if new) with `on_hand` units on the shelf."""
        ...


@dataclass(frozen=True)
class Systems:
    """One implementation's CRM, billing, logistics and payments, and its seeder."""

    crm: CrmAdapter
    billing: BillingAdapter
    logistics: LogisticsAdapter
    payments: PaymentsAdapter
    seeder: Seeder
    another_client: Callable[[], AbstractAsyncContextManager[Systems]]
    """A second client of the very same systems, as another worker process holds:
    its own connections, nothing shared in memory with this one."""


class AdapterFactory(Protocol):
    def open(self, tmp_path: Path, sandbox: SharedSandbox) -> AbstractAsyncContextManager[Systems]:
        """Fresh, empty systems for one test, closed (and thrown away) on exit (served by
        `sandbox`, for an implementation over HTTP)."""
        ...


# --- the local adapters, on SQLite and on PostgreSQL ---------------------------------------


class LocalSeeder:
    """Writes the seed rows the local CRM and logistics read."""

    def __init__(self, database: LocalDatabase) -> None:
        self._db = database

    async def add_customer(self, customer: Customer) -> None:
        row = CustomerRow(
            customer_id=customer.customer_id,
            name=customer.name,
            email=customer.email,
            status=customer.status.value,
            currency=customer.currency,
            credit_limit_minor=to_minor(customer.credit_limit, customer.currency),
        )
        await asyncio.to_thread(self._merge, row)

    async def set_stock(self, sku: str, on_hand: int) -> None:
        await asyncio.to_thread(self._set_stock, sku, on_hand)

    def _merge(self, row: CustomerRow) -> None:
        with self._db.session() as session:
            session.merge(row)

    def _set_stock(self, sku: str, on_hand: int) -> None:
        with self._db.session() as session:
            item = session.get(ItemRow, sku)
            if item is None:
                session.add(ItemRow(sku=sku, name=sku, on_hand=on_hand))
            else:
                item.on_hand = on_hand
                session.add(item)


def local_systems(adapters: LocalAdapters) -> Systems:
    """The local adapters as `Systems` (also for local-only tests that then read rows)."""
    database = adapters.database

    @asynccontextmanager
    async def another_client() -> AsyncIterator[Systems]:
        other = open_local_adapters(database.url, schema=database.schema, seed=False)
        try:
            yield local_systems(other)
        finally:
            other.database.dispose()

    return Systems(
        crm=adapters.crm,
        billing=adapters.billing,
        logistics=adapters.logistics,
        payments=adapters.payments,
        seeder=LocalSeeder(database),
        another_client=another_client,
    )


@asynccontextmanager
async def _opened_local(opened: AbstractContextManager[LocalAdapters]) -> AsyncIterator[Systems]:
    with opened as adapters:
        yield local_systems(adapters)


class LocalSqliteFactory:
    """The local adapters on a SQLite file of the test's own, without demo data."""

    def open(self, tmp_path: Path, sandbox: SharedSandbox) -> AbstractAsyncContextManager[Systems]:
        return _opened_local(open_sqlite(tmp_path, seed=False))


class LocalPostgresFactory:
    """The local adapters in a throw-away PostgreSQL schema, without demo data.

    Skipped, with the reason, when no PostgreSQL answers (failed under
    O2C_REQUIRE_POSTGRES=1), as for the `local_adapters` fixture.
    """

    def open(self, tmp_path: Path, sandbox: SharedSandbox) -> AbstractAsyncContextManager[Systems]:
        return _opened_local(open_postgres(seed=False))


# --- the HTTP adapters, against the sandbox on loopback ports ------------------------------


def http_systems(urls: dict[str, str], seeder: Seeder) -> tuple[Systems, list[HttpAdapter]]:
    """HTTP clients of the systems at `urls`, and the clients to close."""
    crm = HttpCrm(Remote(urls["crm"]))
    billing = HttpBilling(Remote(urls["billing"]))
    logistics = HttpLogistics(Remote(urls["logistics"]))
    payments = HttpPayments(Remote(urls["payments"]))

    @asynccontextmanager
    async def another_client() -> AsyncIterator[Systems]:
        other, clients = http_systems(urls, seeder)
        try:
            yield other
        finally:
            for client in clients:
                await client.aclose()

    systems = Systems(
        crm=crm,
        billing=billing,
        logistics=logistics,
        payments=payments,
        seeder=seeder,
        another_client=another_client,
    )
    return systems, [crm, billing, logistics, payments]


class _Current:
    """Stands in, in the shared sandbox, for one system's adapter of the test running now:
    each method is looked up on that adapter when it is called."""

    def __init__(self) -> None:
        self.adapter: object | None = None

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        async def call(*arguments: Any) -> Any:
            assert self.adapter is not None, "no test is using the sandbox now"
            return await getattr(self.adapter, name)(*arguments)

        return call


class SharedSandbox:
    """The sandbox's four contract servers, started once for the test session and pointed,
    test by test, at that test's own fresh local systems: starting and stopping four
    servers per test would cost more than most tests themselves. Tests run one at a time
    in a process, so one test at a time uses it."""

    def __init__(self, urls: dict[str, str], current: dict[str, _Current]) -> None:
        self.urls = urls
        self._current = current

    @classmethod
    @asynccontextmanager
    async def running(cls) -> AsyncIterator[SharedSandbox]:
        current = {system: _Current() for system in CONTRACTS}
        apps = {
            system: contract_app(contract, current[system], CallLog())
            for system, contract in CONTRACTS.items()
        }
        async with running_sandbox(apps) as urls:
            yield cls(urls, current)

    @contextmanager
    def serving(self, local: LocalAdapters) -> Iterator[None]:
        """The servers answer from `local`'s systems for the length of the block."""
        for system, stand_in in self._current.items():
            stand_in.adapter = getattr(local, system)
        try:
            yield
        finally:
            for stand_in in self._current.values():
                stand_in.adapter = None


@asynccontextmanager
async def _opened_http(
    opened: AbstractContextManager[LocalAdapters], sandbox: SharedSandbox
) -> AsyncIterator[Systems]:
    with opened as local, sandbox.serving(local):
        systems, clients = http_systems(sandbox.urls, LocalSeeder(local.database))
        try:
            yield systems
        finally:
            for client in clients:
                await client.aclose()


class HttpSqliteFactory:
    """The HTTP adapters talking to the sandbox on loopback ports, over a SQLite file."""

    def open(self, tmp_path: Path, sandbox: SharedSandbox) -> AbstractAsyncContextManager[Systems]:
        return _opened_http(open_sqlite(tmp_path, seed=False), sandbox)


class HttpPostgresFactory:
    """The HTTP adapters talking to the sandbox, over a throw-away PostgreSQL schema."""

    def open(self, tmp_path: Path, sandbox: SharedSandbox) -> AbstractAsyncContextManager[Systems]:
        return _opened_http(open_postgres(seed=False), sandbox)


FACTORIES: list[pytest.ParameterSet] = [
    pytest.param(LocalSqliteFactory(), id="local-sqlite"),
    pytest.param(LocalPostgresFactory(), id="local-postgres", marks=pytest.mark.postgres),
    pytest.param(HttpSqliteFactory(), id="http-sqlite"),
    pytest.param(HttpPostgresFactory(), id="http-postgres", marks=pytest.mark.postgres),
]
"""Every implementation the contract suites run against, one `pytest.param` each."""
