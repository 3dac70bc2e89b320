"""Every outside event an order takes, declared once.

An entry names the event's message and answer, the workflow Update that applies
it (a typed reference, so the client can never call an Update by a misspelt
name), its Signal twin, the HTTP route, the CLI command, and how a finished
order's final state shows the event was applied. The API registers its routes
from this table, `OrderService.send` sends any entry, and the CLI names its
commands and routes from it; `tests/unit/test_event_table.py` checks that the
table and the workflow's Update and Signal declarations agree.

Adding an event: its message in `o2c_workflows/messages.py`, what it does in
`o2c_workflows/order/events.py`, its Update, validator and Signal in
`o2c_workflows/order/workflow.py`, and one entry here.

Not here: the `booking` Update, a read that changes nothing (`POST /orders` asks it how
booking ended); the test names each such read-only Update.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel
from temporalio.exceptions import ApplicationError
from temporalio.workflow import UpdateMethodMultiParam

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
from o2c_workflows.order import guards
from o2c_workflows.order.base import InFlight
from o2c_workflows.order.workflow import OrderWorkflow
from o2c_workflows.state import OrderState

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)


class DuplicateContradicts(Exception):
    """The event's id was applied with other content: the copy is refused (HTTP 422)."""


@dataclass(frozen=True)
class OrderEvent(Generic[M, R]):
    """One outside event, in every form it takes outside the workflow."""

    update: UpdateMethodMultiParam[[OrderWorkflow, M], R]
    """The Update that applies it; its validator answers at once."""
    signal: str
    """The fire-and-forget twin, for the Temporal UI and `temporal workflow signal`."""
    message: type[M]
    ack: type[R]
    route: str
    """The path after `/orders/{order_id}/`."""
    command: str
    """`o2c orders <command>`."""
    tag: Literal["events", "support"]
    summary: str
    """What it does, for people: the route's description and the CLI command's help."""
    body_required: bool = True
    applied: Callable[[OrderState, M], R | None] | None = None
    """The answer a finished order gives a copy of an event it applied; None: not applied."""
    recognised: Callable[[M], bool] = lambda _: True
    """False for a message without an id: a copy of it cannot be told from a new one."""

    @property
    def name(self) -> str:
        """The Update's name; also the route's operation."""
        name = self.update._defn.name
        assert name is not None
        return name

    def path(self, order_id: str) -> str:
        return f"/orders/{order_id}/{self.route}"


def duplicate(state: OrderState, message: str) -> EventAck:
    """A finished order's answer to a copy of an event it applied."""
    return EventAck(
        order_id=state.order_id,
        status=state.status,
        duplicate=True,
        message=f"{message}; order is {state.status.value}, nothing done again",
    )


def _shipment_applied(state: OrderState, event: ShipmentConfirmed) -> EventAck | None:
    dispatch = state.dispatch(event.dedup_key)
    if dispatch is None:
        return None
    return duplicate(state, f"shipment {event.dedup_key} was already confirmed "
                     f"({dispatch.carrier} {dispatch.tracking_number})")  # fmt: skip


def _payment_applied(state: OrderState, event: PaymentReceived) -> EventAck | None:
    # The order's own rule: the same payment id with another amount is refused.
    try:
        if not guards.is_duplicate_payment(state, InFlight(), event):
            return None
    except ApplicationError as refused:
        raise DuplicateContradicts(refused.message) from refused
    payment = state.payment(event.payment_id)
    assert payment is not None
    return duplicate(state, f"payment {event.payment_id} was already received "
                     f"({payment.amount} {payment.currency})")  # fmt: skip


def _amendment_applied(state: OrderState, amendment: Amendment) -> AmendmentAck | None:
    if amendment.event_id is None or amendment.event_id not in state.amendments:
        return None
    return AmendmentAck(
        **duplicate(state, f"amendment {amendment.event_id} was already applied").model_dump(),
        changes=[],
        total_before=state.total,
        total_after=state.total,
    )


def _return_applied(state: OrderState, returned: ReturnReceived) -> EventAck | None:
    if state.returned(returned.return_id) is None:
        return None
    return duplicate(state, f"return {returned.return_id} was already recorded")


SHIPMENT = OrderEvent(
    update=OrderWorkflow.confirm_shipment,
    signal="shipment_confirmed",
    message=ShipmentConfirmed,
    ack=EventAck,
    route="shipments",
    command="ship",
    tag="events",
    summary="Confirm that goods left: everything left to ship, or the given lines.",
    applied=_shipment_applied,
)
PAYMENT = OrderEvent(
    update=OrderWorkflow.receive_payment,
    signal="payment_received",
    message=PaymentReceived,
    ack=EventAck,
    route="payments",
    command="pay",
    tag="events",
    summary="Record money received; it is applied to the order's invoices, oldest due first.",
    applied=_payment_applied,
)
AMENDMENT = OrderEvent(
    update=OrderWorkflow.amend,
    signal="amendment_requested",
    message=Amendment,
    ack=AmendmentAck,
    route="amendments",
    command="amend",
    tag="events",
    summary="Change quantities, add or remove lines that have not started shipping.",
    applied=_amendment_applied,
    recognised=lambda amendment: amendment.event_id is not None,
)
RETURN = OrderEvent(
    update=OrderWorkflow.record_return,
    signal="return_received",
    message=ReturnReceived,
    ack=EventAck,
    route="returns",
    command="return",
    tag="events",
    summary="Record goods that came back: a credit note, then a refund or customer credit "
    "(on a Closed order too: it runs as a `ClosedOrderReturn` workflow of its own).",
    applied=_return_applied,
)
RETRY = OrderEvent(
    update=OrderWorkflow.retry,
    signal="retry_requested",
    message=SupportAction,
    ack=SupportAck,
    route="retry",
    command="retry",
    tag="support",
    summary="Run the step a held order is parked at again, once its cause is fixed.",
    body_required=False,
)
RELEASE = OrderEvent(
    update=OrderWorkflow.release_hold,
    signal="release_requested",
    message=SupportAction,
    ack=SupportAck,
    route="release",
    command="release",
    tag="support",
    summary="Let an order held for credit go on without passing the credit check.",
    body_required=False,
)
CANCEL = OrderEvent(
    update=OrderWorkflow.cancel,
    signal="cancel_requested",
    message=CancelRequest,
    ack=SupportAck,
    route="cancel",
    command="cancel",
    tag="support",
    summary="Cancel an order that has not shipped: everything done so far is undone, newest first.",
)

ORDER_EVENTS: tuple[OrderEvent[Any, Any], ...] = (
    SHIPMENT,
    PAYMENT,
    AMENDMENT,
    RETURN,
    RETRY,
    RELEASE,
    CANCEL,
)
