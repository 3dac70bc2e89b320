"""Logistics over HTTP: the protocol's methods as calls of its REST contract."""

from __future__ import annotations

import httpx

from adapters.http.client import Remote, SystemClient
from adapters.keys import IdempotencyKey
from adapters.logistics.http_contract import LOGISTICS_CONTRACT
from adapters.logistics.models import (
    AmendReservation,
    CancelShipment,
    ReleaseReservation,
    Reservation,
    ReserveStock,
    ReturnReceipt,
    Shipment,
    ShipmentConfirmation,
    ShipmentRequest,
)


class HttpLogistics:
    """`LogisticsAdapter` against a remote system (or the sandbox) serving LOGISTICS_CONTRACT."""

    def __init__(
        self, remote: Remote, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._client = SystemClient(LOGISTICS_CONTRACT, remote, transport=transport)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def reserve_stock(self, request: ReserveStock) -> Reservation:
        answer: Reservation = await self._client.call("reserve_stock", request)
        return answer

    async def request_shipment(self, request: ShipmentRequest) -> Shipment:
        answer: Shipment = await self._client.call("request_shipment", request)
        return answer

    async def confirm_shipment(self, request: ShipmentConfirmation) -> Shipment:
        answer: Shipment = await self._client.call("confirm_shipment", request)
        return answer

    async def find_reservation(self, idempotency_key: IdempotencyKey) -> Reservation | None:
        answer: Reservation | None = await self._client.call("find_reservation", idempotency_key)
        return answer

    async def find_shipment(self, idempotency_key: IdempotencyKey) -> Shipment | None:
        answer: Shipment | None = await self._client.call("find_shipment", idempotency_key)
        return answer

    async def amend_reservation(self, request: AmendReservation) -> Reservation:
        answer: Reservation = await self._client.call("amend_reservation", request)
        return answer

    async def receive_return(self, receipt: ReturnReceipt) -> Shipment:
        answer: Shipment = await self._client.call("receive_return", receipt)
        return answer

    async def release_reservation(self, request: ReleaseReservation) -> Reservation:
        answer: Reservation = await self._client.call("release_reservation", request)
        return answer

    async def cancel_shipment(self, request: CancelShipment) -> Shipment:
        answer: Shipment = await self._client.call("cancel_shipment", request)
        return answer

    async def list_reservations(self, order_id: str) -> list[Reservation]:
        answer: list[Reservation] = await self._client.call("list_reservations", order_id)
        return answer

    async def list_shipments(self, order_id: str) -> list[Shipment]:
        answer: list[Shipment] = await self._client.call("list_shipments", order_id)
        return answer
