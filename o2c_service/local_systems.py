"""The local systems (the four adapters over one database), as the API process uses them.

The API reads billing for reports and stores cards in payments before an order starts.
Opening the database lazily keeps the API starting (and answering everything else) when
the database is not there. Nothing is seeded; missing tables are created, as every
process does.
"""

from __future__ import annotations

import asyncio

from adapters.billing.protocol import BillingAdapter
from adapters.local import LocalAdapters, open_local_adapters
from adapters.payments.protocol import PaymentsAdapter


class LocalSystems:
    """The local adapters at `database_url`, opened on first use."""

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._adapters: LocalAdapters | None = None
        self._opening = asyncio.Lock()

    async def _opened(self) -> LocalAdapters:
        async with self._opening:
            if self._adapters is None:
                self._adapters = await asyncio.to_thread(
                    open_local_adapters, self._database_url, seed=False
                )
            return self._adapters

    async def billing(self) -> BillingAdapter:
        return (await self._opened()).billing

    async def payments(self) -> PaymentsAdapter:
        return (await self._opened()).payments

    def close(self) -> None:
        if self._adapters is not None:
            self._adapters.database.dispose()
            self._adapters = None
