"""CRM over HTTP: the protocol's methods as calls of its REST contract."""

from __future__ import annotations

import httpx

from adapters.crm.http_contract import CRM_CONTRACT
from adapters.crm.models import Customer, CustomerHold
from adapters.http.client import Remote, SystemClient


class HttpCrm:
    """`CrmAdapter` against a remote system (or the sandbox) that serves CRM_CONTRACT."""

    def __init__(
        self, remote: Remote, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._client = SystemClient(CRM_CONTRACT, remote, transport=transport)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get_customer(self, customer_id: str) -> Customer:
        answer: Customer = await self._client.call("get_customer", customer_id)
        return answer

    async def place_on_hold(self, request: CustomerHold) -> Customer:
        answer: Customer = await self._client.call("place_on_hold", request)
        return answer
