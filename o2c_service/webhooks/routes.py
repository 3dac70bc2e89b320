"""`POST /webhooks/logistics` and `POST /webhooks/payments`, signed per Standard Webhooks,
and `GET /webhooks/rejected` for support (docs/webhooks.md).

A delivery is checked before anything else (`SignedRoute`: its signature, then its
body), claimed by its `webhook-id` (`records.claim`), taken to the order, and
recorded once the order has it durably, or refused it. Answers: 2xx once the event
is with the order or recorded as rejected (a copy: the same answer, `replayed`);
401 unsigned, 422 a body that does not validate, 409 a copy arriving while the
first is still being taken, 503 when the order could not take it (retry).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Body, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from adapters.local.database import LocalDatabase
from o2c_service.events import PAYMENT, SHIPMENT
from o2c_service.listing import OrderPage
from o2c_service.observability.logs import note_order
from o2c_service.orders import OrderService
from o2c_service.outcomes import EventRejected, EventStillApplying, OrderConflict, OrderNotFound
from o2c_service.settings import Settings
from o2c_service.store import ApiStore
from o2c_service.webhooks import records
from o2c_service.webhooks.payloads import (
    LogisticsEvent,
    PaymentsEvent,
    PaymentSucceededEvent,
    RejectedWebhook,
    RejectedWebhooks,
    ShipmentConfirmedEvent,
    WebhookAnswer,
)
from o2c_service.webhooks.records import Outcome
from o2c_service.webhooks.signatures import SignatureRefused, verify
from o2c_service.webhooks.sources import WebhookSource
from o2c_workflows.messages import OutsideEventNote, PaymentReceived, ShipmentConfirmed

M = TypeVar("M", bound=BaseModel)
Act = Callable[[], Awaitable[tuple[Outcome, str]]]
LEASE_MARGIN = timedelta(seconds=30)
NOTE_LENGTH = 128

WebhookId = Annotated[
    str,
    Header(
        max_length=128,
        description="The sender's id of the event: the same id again is answered once, done once.",
    ),
]
WebhookTimestamp = Annotated[
    str,
    Header(description="Unix seconds when it was sent; more than 5 minutes off is refused (401)."),
]
WebhookSignature = Annotated[
    str,
    Header(description="`v1,<base64 HMAC-SHA256 of '{id}.{timestamp}.{body}'>`, space-separated."),
]

WEBHOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": WebhookAnswer, "description": "Taken durably by the order, still applying"},
    401: {"description": "Not signed by a secret in force for this source, or "
                         "`webhook-timestamp` more than 5 minutes off; nothing recorded"},
    409: {"description": "A copy of this `webhook-id` is being taken to the order right "
                         "now: retry later (`Retry-After`)"},
    503: {"description": "The order could not take it now (Temporal unreachable, no worker "
                         "in time): nothing recorded, send it again"},
}  # fmt: skip


class WebhookDesk:
    """The webhooks' share of the API: its store (opened on first use) and the claim lease."""

    def __init__(self, settings: Settings, store: ApiStore) -> None:
        self._api_store = store
        self.lease = (
            timedelta(seconds=settings.event_accept_seconds + settings.event_wait_seconds)
            + LEASE_MARGIN
        )

    def store(self) -> LocalDatabase:
        return self._api_store.database()


def desk(app: FastAPI) -> WebhookDesk:
    found: WebhookDesk = app.state.webhooks
    return found


def _now() -> datetime:
    return datetime.now(UTC)


def _short(text: str) -> str:
    return text if len(text) <= NOTE_LENGTH else text[: NOTE_LENGTH - 3] + "..."


class SignedRoute(APIRoute):
    """A webhook route: the signature is checked before the body is even parsed, so an
    unsigned caller learns nothing but 401."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        source = WebhookSource(self.path.rsplit("/", 1)[-1])

        async def signed(request: Request) -> Response:
            body = await request.body()  # kept: the handler parses these very bytes
            store = desk(request.app).store()
            secrets = await asyncio.to_thread(records.secrets_in_force, store, source, _now())
            if not secrets:
                raise HTTPException(
                    401,
                    f"no webhook secret is set for {source.value}: "
                    f"o2c webhooks secret --source {source.value}",
                )
            try:
                verify(secrets, request.headers, body, time.time())
            except SignatureRefused as refused:
                raise HTTPException(401, str(refused)) from refused
            return await handler(request)

        return signed


def _message(build: Callable[[], M]) -> M:
    """The order's message from a validated body; its own rules' refusals name the field."""
    try:
        return build()
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", "data", *e["loc"])} for e in error.errors()]
        ) from error


async def _deliver(
    request: Request,
    response: Response,
    source: WebhookSource,
    webhook_id: str,
    event_type: str,
    order_id: str,
    act: Act,
) -> WebhookAnswer:
    """Take a verified delivery to the order once, and record how it ended."""
    note_order(order_id)
    store, lease = desk(request.app).store(), desk(request.app).lease
    claimed = await asyncio.to_thread(records.claim, store, source, webhook_id, _now(), lease)
    if isinstance(claimed, records.AlreadyDone):
        answer = WebhookAnswer.model_validate_json(claimed.answer)
        response.status_code = 202 if answer.outcome is Outcome.ACCEPTED else 200
        return answer.model_copy(update={"replayed": True})
    if isinstance(claimed, records.InProgress):
        raise HTTPException(409, f"webhook {webhook_id} is being taken to order {order_id} by "
                                 "another delivery; send it again later",
                            headers={"Retry-After": "10"})  # fmt: skip
    service: OrderService = request.app.state.orders
    try:
        try:
            outcome, message = await act()
            reason = None
        except (EventRejected, OrderConflict, OrderNotFound) as refused:
            outcome, reason = Outcome.REJECTED, str(refused)
            note = OutsideEventNote(source=source.value, type=event_type, event_id=webhook_id,
                                    rejected=True, detail=_short(reason))  # fmt: skip
            on_order = not isinstance(refused, OrderNotFound) and (
                await service.note_outside_event(order_id, note)
            )
            message = f"rejected: {reason}; recorded for support" + (
                "" if on_order else " (not on the order, which is finished or unknown)"
            )
    except BaseException:
        await asyncio.to_thread(records.release, store, source, webhook_id, claimed)
        raise
    answer = WebhookAnswer(webhook_id=webhook_id, source=source.value, type=event_type,
                           order_id=order_id, outcome=outcome, message=message)  # fmt: skip
    await asyncio.to_thread(
        records.complete, store, source, webhook_id, claimed, event_type=event_type,
        order_id=order_id, outcome=outcome, reason=reason, answer=answer.model_dump_json(),
        now=_now(),
    )  # fmt: skip
    response.status_code = 202 if outcome is Outcome.ACCEPTED else 200
    return answer


def _sent(request: Request, send: Callable[[OrderService], Awaitable[Any]]) -> Act:
    async def act() -> tuple[Outcome, str]:
        try:
            ack = await send(request.app.state.orders)
        except EventStillApplying as accepted:
            return Outcome.ACCEPTED, str(accepted)
        return Outcome.APPLIED, f"{ack.message}; order is {ack.status.value}"

    return act


def _noted(request: Request, order_id: str, note: OutsideEventNote) -> Act:
    async def act() -> tuple[Outcome, str]:
        service: OrderService = request.app.state.orders
        if await service.note_outside_event(order_id, note):
            return Outcome.NOTED, f"noted on order {order_id}"
        return Outcome.NOTED, f"order {order_id} is finished: noted by the API only"

    return act


def _note(source: WebhookSource, webhook_id: str, event_type: str, detail: str) -> OutsideEventNote:
    return OutsideEventNote(source=source.value, type=event_type, event_id=webhook_id,
                            detail=_short(detail) if detail else None)  # fmt: skip


def add_webhook_routes(app: FastAPI, settings: Settings, store: ApiStore) -> None:
    app.state.webhooks = WebhookDesk(settings, store)
    # The API's own route class (its rule table says these are SIGNED, not keyed) with the
    # signature check before it: the routes stay under the API's guard.
    signed_route = type("SignedWebhookRoute", (SignedRoute, app.router.route_class), {})

    def signed(path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def add(endpoint: Callable[..., Any]) -> Callable[..., Any]:
            app.router.add_api_route(path, endpoint, methods=["POST"], tags=["webhooks"],
                                     responses=WEBHOOK_RESPONSES,
                                     route_class_override=signed_route)  # fmt: skip
            return endpoint

        return add

    @signed("/webhooks/logistics")
    async def logistics_webhook(
        event: Annotated[LogisticsEvent, Body()],
        request: Request,
        response: Response,
        webhook_id: WebhookId,
        webhook_timestamp: WebhookTimestamp,
        webhook_signature: WebhookSignature,
    ) -> WebhookAnswer:
        """The 3PL's events: `shipment.confirmed` ships the order; `shipment.delivered` and
        `shipment.exception` are noted on it. See docs/webhooks.md."""
        source, data = WebhookSource.LOGISTICS, event.data
        if isinstance(event, ShipmentConfirmedEvent):
            confirmed = event.data
            shipment = _message(lambda: ShipmentConfirmed(
                carrier=confirmed.carrier, tracking_number=confirmed.tracking_number,
                lines=confirmed.lines,
                actor="webhook:logistics",
            ))  # fmt: skip
            act = _sent(request, lambda orders: orders.send(SHIPMENT, data.order_id, shipment))
        else:
            noted = event.data
            detail = " ".join(filter(None, [noted.carrier, noted.tracking_number])) + (
                f": {noted.reason}" if noted.reason else ""
            )
            act = _noted(request, data.order_id, _note(source, webhook_id, event.type, detail))
        return await _deliver(request, response, source, webhook_id, event.type,
                              data.order_id, act)  # fmt: skip

    @signed("/webhooks/payments")
    async def payments_webhook(
        event: Annotated[PaymentsEvent, Body()],
        request: Request,
        response: Response,
        webhook_id: WebhookId,
        webhook_timestamp: WebhookTimestamp,
        webhook_signature: WebhookSignature,
    ) -> WebhookAnswer:
        """The payment gateway's events: `payment.succeeded` pays the order;
        `payment.failed` and `payment.refunded` are noted on it. See docs/webhooks.md."""
        source, data = WebhookSource.PAYMENTS, event.data
        if isinstance(event, PaymentSucceededEvent):
            paid = event.data
            payment = _message(lambda: PaymentReceived(
                payment_id=paid.payment_id, currency=paid.currency, amount=paid.amount,
                invoice_id=paid.invoice_id, reference=f"webhook {webhook_id}"[:128],
                actor="webhook:payments",
            ))  # fmt: skip
            act = _sent(request, lambda orders: orders.send(PAYMENT, data.order_id, payment))
        else:
            noted = event.data
            amount = f" ({noted.amount} {noted.currency})" if noted.amount is not None else ""
            detail = f"{noted.payment_id}{amount}" + (f": {noted.reason}" if noted.reason else "")
            act = _noted(request, data.order_id, _note(source, webhook_id, event.type, detail))
        return await _deliver(request, response, source, webhook_id, event.type,
                              data.order_id, act)  # fmt: skip

    @app.get("/webhooks/rejected", tags=["support"])
    async def rejected_webhooks(
        request: Request,
        order_id: Annotated[str | None, Query(max_length=160)] = None,
        source: WebhookSource | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> RejectedWebhooks:
        """Webhook events the order refused (too early, too late, on hold, a copy with
        other content) or whose order does not exist, newest first: the sender was
        answered 2xx, so support takes it from here. See docs/webhooks.md."""
        store = desk(request.app).store()
        rows, total = await asyncio.to_thread(
            records.rejected, store, order_id=order_id, source=source, limit=limit
        )
        events = [
            RejectedWebhook(source=row.source, webhook_id=row.webhook_id, type=row.event_type,
                            order_id=row.order_id, reason=row.reason,
                            received_at=records.as_utc(row.claimed_at))
            for row in rows
        ]  # fmt: skip
        return RejectedWebhooks(events=events, total=total)


async def with_rejected_counts(app: FastAPI, page: OrderPage) -> OrderPage:
    """The page with each order's count of rejected webhook events (for the holds list)."""
    ids = [item.order_id for item in page.orders]
    counts = await asyncio.to_thread(records.rejected_counts, desk(app).store(), ids)
    for item in page.orders:
        item.rejected_webhooks = counts.get(item.order_id, 0)
    return page
