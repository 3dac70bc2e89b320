"""The four systems as a process reaches them: over HTTP where a URL is set, the
embedded local systems otherwise (O2C_CRM_URL and its siblings; docs/remote-systems.md).

The worker opens them all for its activities (`open_systems`); the API reads billing
for reports and stores cards in payments before an order starts (`ApiSystems`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

from adapters.billing.http import HttpBilling
from adapters.billing.protocol import BillingAdapter
from adapters.crm.http import HttpCrm
from adapters.crm.protocol import CrmAdapter
from adapters.faults import AdapterSet
from adapters.http.client import Remote
from adapters.local import LocalAdapters, open_local_adapters
from adapters.logistics.http import HttpLogistics
from adapters.logistics.protocol import LogisticsAdapter
from adapters.payments.http import HttpPayments
from adapters.payments.protocol import PaymentsAdapter
from o2c_domain.systems import System
from o2c_service.reconciliation.reading import ReadSystems
from o2c_service.settings import Settings

HttpAdapter = HttpCrm | HttpBilling | HttpLogistics | HttpPayments
A = TypeVar("A", HttpCrm, HttpBilling, HttpLogistics, HttpPayments)


def remote(settings: Settings, system: System) -> Remote:
    url = getattr(settings, f"{system}_url")
    token = getattr(settings, f"{system}_token")
    return Remote(
        base_url=url,
        token=token.get_secret_value() if token is not None else None,
        connect_timeout=settings.http_connect_timeout,
        read_timeout=settings.http_read_timeout,
        rate_limit=settings.system_limits(system).rate_limit,
    )


class _Systems:
    """Opens what the settings name: HTTP clients for remote systems, the local
    database when any system is embedded; closes them all."""

    def __init__(self, settings: Settings, *, seed: bool) -> None:
        urls = set(settings.remote_systems())
        self.local: LocalAdapters | None = None
        if len(urls) < 4:
            self.local = open_local_adapters(settings.database_url, seed=seed)
        self.http: list[HttpAdapter] = []
        crm: CrmAdapter = (
            self._opened(HttpCrm(remote(settings, "crm"))) if "crm" in urls else self._local().crm
        )
        billing: BillingAdapter = (
            self._opened(HttpBilling(remote(settings, "billing")))
            if "billing" in urls
            else self._local().billing
        )
        logistics: LogisticsAdapter = (
            self._opened(HttpLogistics(remote(settings, "logistics")))
            if "logistics" in urls
            else self._local().logistics
        )
        payments: PaymentsAdapter = (
            self._opened(HttpPayments(remote(settings, "payments")))
            if "payments" in urls
            else self._local().payments
        )
        self.set = AdapterSet(crm=crm, billing=billing, logistics=logistics, payments=payments)

    def _opened(self, adapter: A) -> A:
        self.http.append(adapter)
        return adapter

    def _local(self) -> LocalAdapters:
        assert self.local is not None, "the local database is open when a system is embedded"
        return self.local

    async def close(self) -> None:
        for adapter in self.http:
            await adapter.aclose()
        if self.local is not None:
            self.local.database.dispose()


@asynccontextmanager
async def open_systems(settings: Settings, *, seed: bool = True) -> AsyncIterator[AdapterSet]:
    """The four adapters a worker's activities call, closed on exit. The embedded systems'
    database is seeded with demo data unless `seed` is False."""
    systems = _Systems(settings, seed=seed)
    try:
        yield systems.set
    finally:
        await systems.close()


class ApiSystems:
    """The systems for the API (billing for reports, payments for cards, all of them for
    reconciliation), opened on first use, so the API starts (and answers everything
    else) when a system or the database is not there yet."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._systems: _Systems | None = None
        self._opening = asyncio.Lock()

    async def _opened(self) -> AdapterSet:
        async with self._opening:
            if self._systems is None:
                self._systems = await asyncio.to_thread(_Systems, self._settings, seed=False)
            return self._systems.set

    async def crm(self) -> CrmAdapter:
        return (await self._opened()).crm

    async def billing(self) -> BillingAdapter:
        return (await self._opened()).billing

    async def logistics(self) -> LogisticsAdapter:
        return (await self._opened()).logistics

    async def payments(self) -> PaymentsAdapter:
        return (await self._opened()).payments

    async def for_reconciliation(self) -> ReadSystems:
        """The three systems an order's goods and money are read from."""
        systems = await self._opened()
        return ReadSystems(
            logistics=systems.logistics, billing=systems.billing, payments=systems.payments
        )

    async def close(self) -> None:
        if self._systems is not None:
            await self._systems.close()
            self._systems = None
