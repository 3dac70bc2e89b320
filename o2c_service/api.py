"""The thin HTTP API external systems and support tools use.

It validates input with the same models the workflow carries, then talks to
Temporal through `OrderService`; it holds no order state of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from o2c_service.orders import (
    CreatedOrder,
    EventRejected,
    OrderConflict,
    OrderError,
    OrderListItem,
    OrderNotFound,
    OrderService,
    TemporalUnavailable,
)
from o2c_service.settings import Settings
from o2c_service.temporal import connect
from o2c_workflows.models import (
    EventAck,
    Identifier,
    OrderRequest,
    OrderState,
    OrderStatus,
    PaymentReceived,
    ShipmentConfirmed,
)

ServiceFactory = Callable[[], Awaitable[OrderService]]


class OrderLinks(BaseModel):
    self: str
    temporal_ui: str


class OrderCreated(CreatedOrder):
    links: OrderLinks


_STATUS_FOR: dict[type[OrderError], int] = {
    OrderNotFound: status.HTTP_404_NOT_FOUND,
    OrderConflict: status.HTTP_409_CONFLICT,
    TemporalUnavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
}


def _error_status(error: OrderError) -> int:
    if isinstance(error, EventRejected):
        return status.HTTP_422_UNPROCESSABLE_CONTENT if error.invalid else status.HTTP_409_CONFLICT
    return _STATUS_FOR[type(error)]


def create_app(settings: Settings, service_factory: ServiceFactory | None = None) -> FastAPI:
    """The API. Temporal is connected lazily, so the API is up (and says 503) before it is."""

    async def default_factory() -> OrderService:
        client = await connect(settings.temporal_address, settings.temporal_namespace, lazy=True)
        return OrderService(client, settings.task_queue)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.orders = await (service_factory or default_factory)()
        yield

    app = FastAPI(
        title="o2c",
        summary="Order-to-Cash orchestration: each order a durable Temporal workflow.",
        version="0.1.0",
        lifespan=lifespan,
    )

    @app.exception_handler(OrderError)
    async def order_error(_: Request, error: OrderError) -> JSONResponse:
        return JSONResponse(status_code=_error_status(error), content={"detail": str(error)})

    def orders(request: Request) -> OrderService:
        service: OrderService = request.app.state.orders
        return service

    def links(order_id: str) -> OrderLinks:
        return OrderLinks(
            self=f"/orders/{order_id}", temporal_ui=settings.workflow_ui_link(order_id)
        )

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The API process is up (says nothing about Temporal, by design: probes stay cheap)."""
        return {"status": "ok"}

    @app.post(
        "/orders",
        status_code=status.HTTP_201_CREATED,
        tags=["orders"],
        responses={200: {"model": OrderCreated, "description": "The order existed already"}},
    )
    async def create_order(
        order: OrderRequest, request: Request, response: Response
    ) -> OrderCreated:
        """Start an order. Sending the same source order again returns it and starts nothing."""
        created = await orders(request).create(order)
        if not created.created:
            response.status_code = status.HTTP_200_OK
        response.headers["Location"] = f"/orders/{created.order_id}"
        return OrderCreated(**created.model_dump(), links=links(created.order_id))

    @app.get("/orders", tags=["orders"])
    async def list_orders(
        request: Request,
        order_status: Annotated[OrderStatus | None, Query(alias="status")] = None,
        customer_id: Identifier | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[OrderListItem]:
        """Orders by status and customer, newest first (search is eventually consistent)."""
        return await orders(request).list(status=order_status, customer_id=customer_id, limit=limit)

    @app.get("/orders/{order_id}", tags=["orders"])
    async def get_order(order_id: str, request: Request) -> OrderState:
        """The order's whole current state, with its timeline."""
        return await orders(request).get(order_id)

    @app.post("/orders/{order_id}/shipments", tags=["events"])
    async def confirm_shipment(
        order_id: str, event: ShipmentConfirmed, request: Request
    ) -> EventAck:
        """The goods left: 409 if the order cannot take a shipment now, with the reason."""
        return await orders(request).confirm_shipment(order_id, event)

    @app.post("/orders/{order_id}/payments", tags=["events"])
    async def receive_payment(order_id: str, event: PaymentReceived, request: Request) -> EventAck:
        """Money arrived: 409 if it does not fit the order now, 422 if it contradicts it."""
        return await orders(request).receive_payment(order_id, event)

    return app
