"""The HTTP routes of the outside events, one per entry of `o2c_service.events`."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Body, FastAPI, Request

from o2c_service.access.guard import caller_of
from o2c_service.events import ORDER_EVENTS, M, OrderEvent, R
from o2c_service.orders import OrderService


def add_event_routes(app: FastAPI, responses: dict[int | str, dict[str, Any]]) -> None:
    """`POST /orders/{order_id}/<route>` for every outside event, from its table entry."""
    for event in ORDER_EVENTS:
        app.post(
            f"/orders/{{order_id}}/{event.route}",
            tags=[event.tag],
            responses=responses,
            response_model=event.ack,
            name=event.name,
            description=event.summary,
        )(_event_route(event))


def _event_route(event: OrderEvent[M, R]) -> Callable[..., Awaitable[R]]:
    """The route of one outside event: its message as the body, its answer as the response;
    the caller's key is recorded as the event's actor (whatever the body said)."""

    async def route(order_id: str, request: Request, message: M | None = None) -> R:
        service: OrderService = request.app.state.orders
        sent = (message or event.message()).model_copy(update={"actor": caller_of(request).actor})
        return await service.send(event, order_id, sent)

    message_type: Any = event.message if event.body_required else event.message | None
    route.__name__ = event.name
    route.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("order_id", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str),
            inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                              annotation=Request),
            inspect.Parameter("message", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                              annotation=Annotated[message_type, Body()],
                              default=inspect.Parameter.empty if event.body_required else None),
        ],
        return_annotation=event.ack,
    )  # fmt: skip
    return route
