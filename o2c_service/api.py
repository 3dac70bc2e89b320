"""The thin HTTP API external systems and support tools use.

It validates input with the same models the workflow carries, then talks to
Temporal through `OrderService`; it holds no order state of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date
from typing import Annotated

from fastapi import Body, FastAPI, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from o2c_service.orders import (
    BulkOutcome,
    CreatedOrder,
    EventRejected,
    OrderConflict,
    OrderError,
    OrderListItem,
    OrderNotFound,
    OrderSelection,
    OrderService,
    SupportVerb,
    TemporalUnavailable,
)
from o2c_service.reports import (
    DEFAULT_SAMPLE,
    MAX_SAMPLE,
    BillingUnavailable,
    InvalidReportRequest,
    LocalBillingReader,
    ReportService,
    SummaryReport,
)
from o2c_service.settings import Settings
from o2c_service.temporal import connect
from o2c_workflows.credit_refund import CreditRefundRequest, CreditRefundResult
from o2c_workflows.messages import (
    Amendment,
    AmendmentAck,
    CancelRequest,
    EventAck,
    PaymentReceived,
    ReturnReceived,
    ShipmentConfirmed,
    SupportAck,
    SupportAction,
)
from o2c_workflows.models import Identifier, OrderRequest, OrderStatus, ShortText, Strict
from o2c_workflows.state import OrderState

ServiceFactory = Callable[[], Awaitable[OrderService]]
OptionalAction = Annotated[SupportAction | None, Body()]
"""A retry or release needs no body; `{"note": "..."}` adds a note to the timeline."""


class OrderLinks(BaseModel):
    self: str
    temporal_ui: str


class OrderCreated(CreatedOrder):
    links: OrderLinks


class BulkSupportAction(Strict):
    """Retry or release every order the selection matches (by default: all OnHold)."""

    selection: OrderSelection = OrderSelection()
    note: ShortText | None = None


class BulkCancel(Strict):
    selection: OrderSelection = OrderSelection()
    reason: ShortText


class BulkResult(BaseModel):
    matched: int
    succeeded: int
    outcomes: list[BulkOutcome]


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
        return OrderService(
            client,
            settings.task_queue,
            settings.dunning,
            local_activities=settings.local_activities,
            task_timeout=settings.workflow_task_timeout(),
        )

    # Reports read billing too: opened on the first report, so the API starts without it.
    billing_for_reports = LocalBillingReader(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.orders = await (service_factory or default_factory)()
        try:
            yield
        finally:
            billing_for_reports.close()

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
        hold_reason: Identifier | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[OrderListItem]:
        """Orders by status, customer or hold reason, newest first.

        Held orders: `?status=OnHold`, optionally `&hold_reason=out_of_stock`.
        Search is eventually consistent: a change shows here within a second or so.
        """
        return await orders(request).search(
            status=order_status, customer_id=customer_id, hold_reason=hold_reason, limit=limit
        )

    async def bulk(request: Request, verb: SupportVerb, selection: OrderSelection,
                   argument: SupportAction | CancelRequest) -> BulkResult:  # fmt: skip
        outcomes = await orders(request).act_on_matching(verb, selection, argument)
        return BulkResult(
            matched=len(outcomes),
            succeeded=sum(outcome.ok for outcome in outcomes),
            outcomes=outcomes,
        )

    # Declared before /orders/{order_id}/...: order ids always hold a ':', "bulk" never.
    @app.post("/orders/bulk/retry", tags=["support"])
    async def retry_matching(body: BulkSupportAction, request: Request) -> BulkResult:
        """Retry the parked step of every matching order; one line per order."""
        return await bulk(request, "retry", body.selection, SupportAction(note=body.note))

    @app.post("/orders/bulk/release", tags=["support"])
    async def release_matching(body: BulkSupportAction, request: Request) -> BulkResult:
        """Release every matching credit hold."""
        return await bulk(request, "release", body.selection, SupportAction(note=body.note))

    @app.post("/orders/bulk/cancel", tags=["support"])
    async def cancel_matching(body: BulkCancel, request: Request) -> BulkResult:
        """Cancel (and compensate) every matching order that has not shipped."""
        return await bulk(request, "cancel", body.selection, CancelRequest(reason=body.reason))

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

    @app.post("/orders/{order_id}/amendments", tags=["events"])
    async def amend(order_id: str, amendment: Amendment, request: Request) -> AmendmentAck:
        """Change quantities, add or remove lines that have not started shipping."""
        return await orders(request).amend(order_id, amendment)

    @app.post("/orders/{order_id}/returns", tags=["events"])
    async def record_return(order_id: str, returned: ReturnReceived, request: Request) -> EventAck:
        """Goods came back: a credit note, then a refund or customer credit."""
        return await orders(request).record_return(order_id, returned)

    @app.post("/orders/{order_id}/retry", tags=["support"])
    async def retry(order_id: str, request: Request, action: OptionalAction = None) -> SupportAck:
        """Run the step the order is parked at again, once its cause is fixed."""
        return await orders(request).retry(order_id, action or SupportAction())

    @app.post("/orders/{order_id}/release", tags=["support"])
    async def release(order_id: str, request: Request, action: OptionalAction = None) -> SupportAck:
        """Let an order held for credit go on."""
        return await orders(request).release(order_id, action or SupportAction())

    @app.post("/orders/{order_id}/cancel", tags=["support"])
    async def cancel(order_id: str, cancel: CancelRequest, request: Request) -> SupportAck:
        """Cancel before shipment; what was done is undone. 409 once it has shipped."""
        return await orders(request).cancel(order_id, cancel)

    # -- customer credit (o2c_workflows/credit_refund.py) ----------------------

    @app.post("/credits/refunds", tags=["support"])
    async def refund_credit(refund: CreditRefundRequest, request: Request) -> CreditRefundResult:
        """Pay customer credit back to a payment; the same `refund_id` again refunds once.

        409 with the reason if the account holds too little credit
        (`insufficient_credit`) or payments refuses the refund (the credit is then
        restored); 422 if the account or payment does not exist or does not match.
        """
        return await orders(request).refund_credit(refund)

    # -- reports (o2c_service/reports.py, docs/reports.md) --------------------

    @app.exception_handler(BillingUnavailable)
    async def billing_unavailable(_: Request, error: BillingUnavailable) -> JSONResponse:
        return JSONResponse(status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                            content={"detail": str(error)})  # fmt: skip

    @app.get("/reports/summary", tags=["reports"])
    async def summary_report(
        request: Request,
        start: date | None = None,
        end: date | None = None,
        sample: Annotated[int, Query(ge=1, le=MAX_SAMPLE)] = DEFAULT_SAMPLE,
    ) -> SummaryReport:
        """Orders by status, cycle time per stage, fallout, receivables ageing and DSO.

        The period is `start` to `end` inclusive (default: the 30 days ending today,
        UTC). Counts are now, from Temporal's search; cycle times come from the
        timelines of up to `sample` orders entered in the period; money is per
        currency, from billing, aged as of `end`. See docs/reports.md.
        """
        reports = ReportService.over(orders(request), billing_for_reports)
        try:
            return await reports.summary(start, end, sample)
        except InvalidReportRequest as error:
            raise RequestValidationError(
                [{"type": "value_error", "loc": ("query", error.field), "msg": str(error),
                  "input": request.query_params.get(error.field)}]
            ) from error  # fmt: skip

    return app
