"""The thin HTTP API external systems and support tools use.

It validates input with the same models the workflow carries, then talks to
Temporal through `OrderService`; it holds no order state of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Header, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.models import Example
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel

from o2c_service.access.guard import Authenticator, caller_of, protect, require_rules
from o2c_service.api_docs import serve_docs_offline
from o2c_service.codec.server import (
    CODEC_BODY_BYTES,
    CorsByPath,
    add_codec_middleware,
    add_codec_routes,
    is_codec_path,
)
from o2c_service.console.app import create_console
from o2c_service.creating import CreatedOrder
from o2c_service.event_routes import add_event_routes
from o2c_service.idempotency import IdempotencyKeys, IdempotencyMiddleware
from o2c_service.listing import OrderPage
from o2c_service.observability.api_metrics import add_metrics
from o2c_service.observability.logs import OrderLogContext, note_order
from o2c_service.observability.runtime import temporal_runtime
from o2c_service.observability.tracing import Tracing
from o2c_service.openapi import document_every_status
from o2c_service.orders import BulkOutcome, OrderSelection, OrderService, SupportVerb
from o2c_service.outcomes import EventStillApplying, InvalidOrder, OrderError
from o2c_service.problems import SERVICE_UNAVAILABLE, Problem, add_problem_handlers, order_problem
from o2c_service.reconciliation.models import ReconciliationReport
from o2c_service.reconciliation.reading import SystemUnreadable
from o2c_service.reconciliation.service import ReconciliationService
from o2c_service.reports import (
    DEFAULT_SAMPLE,
    MAX_SAMPLE,
    BillingUnavailable,
    InvalidReportRequest,
    ReportDate,
    ReportService,
    SummaryReport,
)
from o2c_service.request_checks import BodyLimit, TrustedHosts, api_cors, require_json
from o2c_service.settings import Settings
from o2c_service.store import ApiStore
from o2c_service.systems import ApiSystems
from o2c_service.temporal import connect
from o2c_service.webhooks.routes import add_webhook_routes, with_rejected_counts
from o2c_workflows.credit_refund import CreditRefundRequest, CreditRefundResult
from o2c_workflows.messages import (
    CancelRequest,
    SupportAction,
)
from o2c_workflows.models import (
    ORDER_REQUEST_EXAMPLE,
    Identifier,
    OrderRequest,
    OrderStatus,
    ShortText,
    Strict,
)
from o2c_workflows.state import OrderState

ORDER_EXAMPLES: dict[str, Example] = {
    "demo": Example(
        summary="The seeded demo customer and items: books as is on a fresh `o2c dev`",
        value=ORDER_REQUEST_EXAMPLE,
    )
}
ServiceFactory = Callable[[], Awaitable[OrderService]]
API_DESCRIPTION = """\
Every error is RFC 9457 problem details (`application/problem+json`): `type` names the
kind (`urn:o2c:problem:validation-error`, ...), `detail` says why, `errors` names each
invalid field, `code` gives a refusal's business code. Each route lists every status it
can answer.

Any `POST` takes an `Idempotency-Key` (up to 255 printable characters, e.g. a UUID): the
same key with the same request answers as the first time, `Idempotent-Replayed: true`,
without running it again; with another request, 422; while the first runs, 409. Kept 24
hours, per API key; answers of 500 and above are not kept.

State-changing requests take `application/json` only (415 otherwise); the API answers
only to its trusted `Host` names (400 otherwise). See docs/errors.md.
"""


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


class EventAccepted(BaseModel):
    """An event the order accepted but had not finished applying when the API stopped waiting."""

    order_id: str
    accepted: bool = True
    message: str
    links: OrderLinks


RESPOND_ASYNC = "respond-async"
PREFER_HEADER = (
    "RFC 7240. `respond-async`: start the order and answer 202 at once (status Entered, "
    "`Preference-Applied: respond-async`) instead of waiting for the booking's outcome."
)
CREATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {
        "description": "Started by this request: how its booking ended (`status` Booked, or "
        "OnHold with `hold_reason` and `hold_message`)"
    },
    200: {
        "model": OrderCreated,
        "description": "The order existed already (`created: false`): how its booking "
        "ended, or its final status once finished",
    },
    202: {
        "model": OrderCreated,
        "description": "Started, booking goes on (`status` Entered): asked for with "
        "`Prefer: respond-async`, or booking took longer than the API waits; follow "
        "`Location`",
    },
    409: {
        "description": "The same `source_order_id` holds an order with other content, or the "
        "same `Idempotency-Key` is still running"
    },
}


def prefers_respond_async(prefer: list[str]) -> bool:
    """Whether the `Prefer` header (RFC 7240: comma-separated preferences, each a
    case-insensitive token with optional `=value` and `;` parameters) asks respond-async."""
    return any(
        preference.split(";")[0].split("=")[0].strip().lower() == RESPOND_ASYNC
        for header in prefer
        for preference in header.split(",")
    )


EVENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "The order cannot take the event now (too early, too late, or on hold; "
        "a cancel once the goods have shipped): `detail` says why, `code` the business "
        "code where there is one; nothing was applied. Or the same `Idempotency-Key` is still "
        "running"
    },
    202: {
        "model": EventAccepted,
        "description": "Accepted by the order (durably) but not finished in time: it will be "
        "applied; `GET /orders/{order_id}` shows it",
    },
    503: {
        "description": "Not taken (no worker accepted it in time, or Temporal is unreachable): "
        "nothing was applied; an event with an id (payment_id, tracking number or event_id, "
        "return_id) may be sent again safely"
    },
}


def orders_of(app: FastAPI) -> OrderService:
    """The app's order service (made when the app starts)."""
    service: OrderService = app.state.orders
    return service


def create_app(
    settings: Settings,
    service_factory: ServiceFactory | None = None,
    *,
    tracing: Tracing | None = None,
) -> FastAPI:
    """The API. Temporal is connected lazily, so the API is up (and says 503) before it is.
    `tracing`: a span for each request, and for the Temporal calls it makes within it."""

    async def default_factory() -> OrderService:
        client = await connect(
            settings,
            lazy=True,
            runtime=temporal_runtime(settings, serve_metrics=False),
            tracing=tracing,
        )
        return OrderService(
            client,
            settings.task_queue,
            settings.dunning,
            local_activities=settings.local_calls(),
            system_queues=settings.system_queues,
            accept_wait=timedelta(seconds=settings.event_accept_seconds),
            event_wait=timedelta(seconds=settings.event_wait_seconds),
            booking_wait=timedelta(seconds=settings.booking_wait_seconds),
            task_timeout=settings.workflow_task_timeout(),
            payments=systems.payments,
        )

    # Reports read billing, orders paid by card store the card in payments: the systems'
    # database is opened when first needed, so the API starts without it.
    systems = ApiSystems(settings)
    # The API's own database (keys, idempotency keys, webhooks), opened at first use.
    api_store = ApiStore(settings.api_database_url)
    authenticator = Authenticator(api_store)
    idempotency_keys = IdempotencyKeys(api_store, timedelta(hours=settings.idempotency_key_hours))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.orders = await (service_factory or default_factory)()
        try:
            yield
        finally:
            await systems.close()
            api_store.close()

    app = FastAPI(
        title="o2c",
        summary="Order-to-Cash orchestration: each order a durable Temporal workflow.",
        description=API_DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
        # The docs' assets are served from an installed package: no CDN, works offline.
        docs_url=None,
        redoc_url=None,
        # State-changing requests take JSON only (415): no cross-site form posts.
        dependencies=[Depends(require_json)],
    )
    # Every route below checks its caller's key against o2c_service/access/rules.py.
    protect(app, authenticator)
    app.state.idempotency_keys = idempotency_keys
    # Outermost last: the Host is checked first, then CORS, the body's size, idempotency.
    app.add_middleware(
        IdempotencyMiddleware, keys=idempotency_keys, known_caller=authenticator.knows
    )
    app.add_middleware(BodyLimit, larger=[(is_codec_path, CODEC_BODY_BYTES)])
    app.add_middleware(
        CorsByPath,
        codec_origins=settings.codec_origins(),
        api=lambda inner: api_cors(inner, settings.api_cors_origins),
    )
    app.add_middleware(TrustedHosts, hosts=settings.api_trusted_hosts)
    # Counted outside every check, so refusals count too; inside the codec key's rewrite,
    # which hands on a scope of its own, where the router notes the route.
    add_metrics(app, lambda: ReportService.over(orders_of(app), systems.billing))
    add_codec_middleware(app)  # a key in a codec path is gone before anything logs
    app.add_middleware(OrderLogContext)  # every line logged for a request names its order
    if tracing is not None:
        tracing.instrument_api(app)
    serve_docs_offline(app)
    add_problem_handlers(app)

    @app.exception_handler(OrderError)
    async def order_error(_: Request, error: OrderError) -> Response:
        if isinstance(error, EventStillApplying):
            accepted = EventAccepted(
                order_id=error.order_id, message=str(error), links=links(error.order_id)
            )
            return JSONResponse(status_code=status.HTTP_202_ACCEPTED,
                                content=accepted.model_dump(mode="json"))  # fmt: skip
        return order_problem(error).response()

    def orders(request: Request) -> OrderService:
        return orders_of(request.app)

    def links(order_id: str) -> OrderLinks:
        return OrderLinks(
            self=f"/orders/{order_id}", temporal_ui=settings.workflow_ui_link(order_id)
        )

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        """People who open the API's address find the console (docs/console.md)."""
        return RedirectResponse("/console/", status_code=status.HTTP_307_TEMPORARY_REDIRECT)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The API process is up (says nothing about Temporal, by design: probes stay cheap)."""
        return {"status": "ok"}

    @app.post(
        "/orders",
        status_code=status.HTTP_201_CREATED,
        tags=["orders"],
        response_model_exclude_none=True,
        responses=CREATE_RESPONSES,
    )
    async def create_order(
        order: Annotated[OrderRequest, Body(openapi_examples=ORDER_EXAMPLES)],
        request: Request,
        response: Response,
        prefer: Annotated[list[str] | None, Header(description=PREFER_HEADER)] = None,
    ) -> OrderCreated:
        """Start an order and answer how its booking ended, in the same call.

        201 with `status` Booked, or OnHold with `hold_reason` (the code, e.g.
        `credit_limit_exceeded`) and `hold_message`; Cancelled with
        `cancellation_reason`. Sending the same source order again starts nothing and
        answers 200 with the order's booking outcome (a finished order: its final
        status), `created: false`; the same `source_order_id` with other content is 409.
        Booking that takes longer than a few seconds (10 by default) is answered 202,
        `status` Entered: the order is started and books on its own; `Location` is where
        to follow it. With `Prefer: respond-async` the order is started without waiting:
        202, `status` Entered, `Preference-Applied: respond-async`. A card order's
        `card_token` is stored in the payments system before the order starts, and the
        order keeps only the card's reference (503 if payments cannot store it: nothing
        is started).
        """
        note_order(order.order_id)
        if order.payment_method is not None and order.payment_method.card_ref is not None:
            raise InvalidOrder(
                ("body", "payment_method", "card_ref"),
                "card_ref is set by o2c once the card is stored: send card_token",
            )
        respond_async = prefers_respond_async(prefer or [])
        created = await orders(request).create(
            order, wait=not respond_async, actor=caller_of(request).actor
        )
        if created.status is OrderStatus.ENTERED:
            response.status_code = status.HTTP_202_ACCEPTED
        elif not created.created:
            response.status_code = status.HTTP_200_OK
        if respond_async:
            response.headers["Preference-Applied"] = RESPOND_ASYNC
        response.headers["Location"] = f"/orders/{created.order_id}"
        return OrderCreated(**created.model_dump(), links=links(created.order_id))

    @app.get("/orders", tags=["orders"])
    async def list_orders(
        request: Request,
        order_status: Annotated[OrderStatus | None, Query(alias="status")] = None,
        customer_id: Identifier | None = None,
        hold_reason: Identifier | None = None,
        limit: Annotated[int, Query(ge=1, le=1000, description="Orders per page.")] = 100,
        page_token: Annotated[str | None, Query(max_length=2000)] = None,
    ) -> OrderPage:
        """One page of orders by status, customer or hold reason, newest first.

        `{"orders": [...], "next_page_token": ..., "total": N}`: `total` counts every
        matching order; while `next_page_token` is not null, send it back as
        `page_token` (with the same filters) for the next page.
        Held orders: `?status=OnHold`, optionally `&hold_reason=out_of_stock`.
        Search is eventually consistent: a change shows here within a second or so.
        `rejected_webhooks` counts the webhook events an order refused, for support
        (`GET /webhooks/rejected?order_id=...`).
        """
        page = await orders(request).search(
            status=order_status,
            customer_id=customer_id,
            hold_reason=hold_reason,
            limit=limit,
            page_token=page_token,
        )
        return await with_rejected_counts(request.app, page)

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
        action = SupportAction(note=body.note, actor=caller_of(request).actor)
        return await bulk(request, "retry", body.selection, action)

    @app.post("/orders/bulk/release", tags=["support"])
    async def release_matching(body: BulkSupportAction, request: Request) -> BulkResult:
        """Release every matching credit hold."""
        action = SupportAction(note=body.note, actor=caller_of(request).actor)
        return await bulk(request, "release", body.selection, action)

    @app.post("/orders/bulk/cancel", tags=["support"])
    async def cancel_matching(body: BulkCancel, request: Request) -> BulkResult:
        """Cancel (and compensate) every matching order that has not shipped."""
        cancel = CancelRequest(reason=body.reason, actor=caller_of(request).actor)
        return await bulk(request, "cancel", body.selection, cancel)

    @app.get("/orders/{order_id}", tags=["orders"])
    async def get_order(order_id: str, request: Request) -> OrderState:
        """The order's whole current state, with its timeline."""
        return await orders(request).get(order_id)

    add_event_routes(app, EVENT_RESPONSES)
    add_webhook_routes(app, settings, api_store)
    add_codec_routes(app, settings.codec)

    # -- customer credit (o2c_workflows/credit_refund.py) ----------------------

    @app.post("/credits/refunds", tags=["support"])
    async def refund_credit(refund: CreditRefundRequest, request: Request) -> CreditRefundResult:
        """Pay customer credit back to a payment; the same `refund_id` again refunds once.

        409 with the reason if the account holds too little credit
        (`insufficient_credit`) or payments refuses the refund (the credit is then
        restored); 422 if the account or payment does not exist or does not match.
        """
        return await orders(request).refund_credit(refund)

    # -- reports (o2c_service/reports/, docs/reports.md) --------------------

    @app.exception_handler(BillingUnavailable)
    async def billing_unavailable(_: Request, error: BillingUnavailable) -> Response:
        return Problem(SERVICE_UNAVAILABLE, str(error)).response()

    @app.get("/reports/summary", tags=["reports"])
    async def summary_report(
        request: Request,
        start: ReportDate | None = None,
        end: ReportDate | None = None,
        sample: Annotated[int, Query(ge=1, le=MAX_SAMPLE)] = DEFAULT_SAMPLE,
    ) -> SummaryReport:
        """Orders by status, cycle time per stage, fallout, receivables ageing and DSO.

        The period is `start` to `end` inclusive (default: the 30 days ending today,
        UTC). Counts are now, from Temporal's search; cycle times come from the
        timelines of up to `sample` orders entered in the period; money is per
        currency, from billing, aged as of `end`. See docs/reports.md.
        """
        reports = ReportService.over(orders(request), systems.billing)
        try:
            return await reports.summary(start, end, sample)
        except InvalidReportRequest as error:
            raise RequestValidationError(
                [{"type": "value_error", "loc": ("query", error.field), "msg": str(error),
                  "input": request.query_params.get(error.field)}]
            ) from error  # fmt: skip

    @app.exception_handler(SystemUnreadable)
    async def system_unreadable(_: Request, error: SystemUnreadable) -> Response:
        return Problem(SERVICE_UNAVAILABLE, str(error)).response()

    @app.get("/reports/reconciliation", tags=["reports"])
    async def reconciliation_report(
        request: Request,
        start: ReportDate | None = None,
        end: ReportDate | None = None,
        order_id: Annotated[
            list[str] | None,
            Query(description="Only these orders (repeat the parameter)."),
        ] = None,
    ) -> ReconciliationReport:
        """Each order against logistics, billing and payments: every mismatch names the
        order, the system, the expected and the found values. Reads only.

        The orders are those in `order_id`, else those entered from `start` to `end`
        (UTC days; either end may be open), else all. 503 when Temporal or a system
        cannot be read. See docs/reports.md, "Reconciliation".
        """
        service = ReconciliationService(orders(request), systems.for_reconciliation)
        return await service.run(order_id or (), start, end)

    # The console: forms and a session cookie, so a mounted app with its own rules
    # (o2c_service/console), leaving every check above as it is for the API's routes.
    app.mount(
        "/console",
        create_console(
            api_store,
            authenticator,
            orders=lambda: orders_of(app),
            reports=lambda: ReportService.over(orders_of(app), systems.billing),
            ui_link=settings.workflow_ui_link,
        ),
    )

    require_rules(app)  # last: every route has a rule (or the API does not start)
    document_every_status(app)
    return app
