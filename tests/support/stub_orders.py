"""The API in process over a stub order service: every route answers at once, without
Temporal, for tests of the API's edge (errors, idempotency keys, hosts, the OpenAPI
document) rather than of orders.

The stub keeps the orders created through it; it refuses events to them (409, with a
business code) and answers unknown ones 404, and the test may make its next call fail
(`fail_next`) or wait (`hold`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from temporalio.client import Client

from o2c_service.access.roles import Role
from o2c_service.api import create_app
from o2c_service.creating import CreatedOrder
from o2c_service.events import M, OrderEvent, R
from o2c_service.listing import OrderListItem, OrderPage
from o2c_service.orders import BulkOutcome, OrderSelection, OrderService, SupportVerb
from o2c_service.outcomes import EventRejected, OrderConflict, OrderNotFound, TemporalUnavailable
from o2c_service.settings import Settings
from o2c_workflows.credit_refund import CreditRefundRequest, CreditRefundResult
from o2c_workflows.messages import CancelRequest, SupportAction
from o2c_workflows.models import OrderRequest, OrderStatus
from o2c_workflows.state import OrderState
from tests.support.api_keys import bearer, make_key

BASE_URL = "http://127.0.0.1"
"""A trusted host (the loopback names are the default O2C_API_TRUSTED_HOSTS)."""


class StubOrders(OrderService):
    """An order service with no Temporal behind it (its base is never initialised)."""

    def __init__(self) -> None:
        self.orders: dict[str, OrderRequest] = {}
        self.creates = 0
        """How many times `create` ran: a replayed answer does not run it."""
        self.fail_next: Exception | None = None
        self.hold: asyncio.Event | None = None
        """While set to an unset event, `create` waits for it."""
        self.holding = asyncio.Event()
        """Set once a `create` is waiting on `hold`."""
        self.client_failure: Exception | None = None
        """What reading Temporal's visibility (the reports) raises; None: unavailable."""

    async def _enter(self) -> None:
        if self.fail_next is not None:
            failure, self.fail_next = self.fail_next, None
            raise failure
        if self.hold is not None:
            self.holding.set()
            await self.hold.wait()

    @property
    def client(self) -> Client:
        raise self.client_failure or TemporalUnavailable(
            "Temporal is unavailable: this API runs over a stub"
        )

    async def create(
        self, order: OrderRequest, *, wait: bool = True, actor: str | None = None
    ) -> CreatedOrder:
        await self._enter()
        self.creates += 1
        order_id = f"{order.source_system}:{order.source_order_id}"
        known = self.orders.setdefault(order_id, order)
        if known != order:
            raise OrderConflict(f"order {order_id} already exists with different content")
        status = OrderStatus.BOOKED if wait else OrderStatus.ENTERED
        return CreatedOrder(order_id=order_id, status=status, created=known is order)

    async def get(self, order_id: str) -> OrderState:
        await self._enter()
        order = self._known(order_id)
        total = order.total()
        return OrderState(
            order_id=order_id, status=OrderStatus.BOOKED, order=order, lines=[], total=total
        )

    async def search(
        self,
        *,
        status: OrderStatus | None = None,
        customer_id: str | None = None,
        hold_reason: str | None = None,
        limit: int = 100,
        page_token: str | None = None,
    ) -> OrderPage:
        await self._enter()
        items = [
            OrderListItem(order_id=order_id, status=OrderStatus.BOOKED,
                          customer_id=order.customer_id, hold_reason=None,
                          execution_status="Running", started_at=None, closed_at=None)
            for order_id, order in self.orders.items()
            if status in (None, OrderStatus.BOOKED) and customer_id in (None, order.customer_id)
        ][:limit]  # fmt: skip
        return OrderPage(orders=items, next_page_token=None, total=len(items))

    async def send(self, event: OrderEvent[M, R], order_id: str, message: M) -> R:
        await self._enter()
        self._known(order_id)
        raise EventRejected(
            f"stub_refusal: order {order_id} takes no {event.name} in this stub",
            invalid=False,
            code="stub_refusal",
        )

    async def act_on_matching(
        self,
        action: SupportVerb,
        selection: OrderSelection,
        argument: SupportAction | CancelRequest,
    ) -> list[BulkOutcome]:
        await self._enter()
        return []

    async def refund_credit(self, request: CreditRefundRequest) -> CreditRefundResult:
        await self._enter()
        raise EventRejected(
            "insufficient_credit: the account holds no credit", invalid=False,
            code="insufficient_credit",
        )  # fmt: skip

    def _known(self, order_id: str) -> OrderRequest:
        order = self.orders.get(order_id)
        if order is None:
            raise OrderNotFound(f"order {order_id} not found")
        return order


@dataclass
class StubApi:
    app: FastAPI
    http: httpx.AsyncClient
    orders: StubOrders
    settings: Settings


def stub_settings(folder: Path, **changes: Any) -> Settings:
    """Settings whose API store and local systems are in `folder`."""
    return Settings(
        data_dir=folder,
        database_url=f"sqlite:///{folder / 'o2c.db'}",
        api_database_url=f"sqlite:///{folder / 'api.db'}",
        **changes,
    )


@asynccontextmanager
async def stub_api(
    settings: Settings, *, base_url: str = BASE_URL, role: Role | None = Role.SUPPORT
) -> AsyncIterator[StubApi]:
    """The real API app, in process, over `StubOrders`; its client sends a key of `role`
    (made in the settings' API store), or none."""
    orders = StubOrders()
    headers = bearer(make_key(settings, role)) if role is not None else {}

    async def factory() -> OrderService:
        return orders

    app = create_app(settings, factory)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=transport, base_url=base_url, timeout=30, headers=headers
        ) as http,
    ):
        yield StubApi(app=app, http=http, orders=orders, settings=settings)
