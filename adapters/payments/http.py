"""Payments over HTTP: the protocol's methods as calls of its REST contract."""

from __future__ import annotations

import httpx

from adapters.http.client import Remote, SystemClient
from adapters.keys import IdempotencyKey
from adapters.payments.http_contract import PAYMENTS_CONTRACT
from adapters.payments.models import (
    Authorisation,
    AuthoriseCard,
    CaptureCard,
    Payment,
    PaymentRecordRequest,
    Refund,
    RefundPayment,
    StoreCard,
    StoredCard,
    VoidAuthorisation,
)


class HttpPayments:
    """`PaymentsAdapter` against a remote system (or the sandbox) that serves PAYMENTS_CONTRACT."""

    def __init__(
        self, remote: Remote, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._client = SystemClient(PAYMENTS_CONTRACT, remote, transport=transport)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def record_payment(self, request: PaymentRecordRequest) -> Payment:
        answer: Payment = await self._client.call("record_payment", request)
        return answer

    async def find_payment(self, idempotency_key: IdempotencyKey) -> Payment | None:
        answer: Payment | None = await self._client.call("find_payment", idempotency_key)
        return answer

    async def refund_payment(self, request: RefundPayment) -> Refund:
        answer: Refund = await self._client.call("refund_payment", request)
        return answer

    async def store_card(self, request: StoreCard) -> StoredCard:
        answer: StoredCard = await self._client.call("store_card", request)
        return answer

    async def find_stored_card(self, idempotency_key: IdempotencyKey) -> StoredCard | None:
        answer: StoredCard | None = await self._client.call("find_stored_card", idempotency_key)
        return answer

    async def authorise_card(self, request: AuthoriseCard) -> Authorisation:
        answer: Authorisation = await self._client.call("authorise_card", request)
        return answer

    async def find_authorisation(self, idempotency_key: IdempotencyKey) -> Authorisation | None:
        answer: Authorisation | None = await self._client.call(
            "find_authorisation", idempotency_key
        )
        return answer

    async def capture_card(self, request: CaptureCard) -> Payment:
        answer: Payment = await self._client.call("capture_card", request)
        return answer

    async def void_authorisation(self, request: VoidAuthorisation) -> Authorisation:
        answer: Authorisation = await self._client.call("void_authorisation", request)
        return answer

    async def list_payments(self, order_id: str) -> list[Payment]:
        answer: list[Payment] = await self._client.call("list_payments", order_id)
        return answer

    async def list_authorisations(self, order_id: str) -> list[Authorisation]:
        answer: list[Authorisation] = await self._client.call("list_authorisations", order_id)
        return answer

    async def list_refunds(self, order_id: str) -> list[Refund]:
        answer: list[Refund] = await self._client.call("list_refunds", order_id)
        return answer
