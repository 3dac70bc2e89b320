"""The table of outside events agrees with the workflow, the API and the CLI: an event
added on one side only would be an Update nobody can send, or a route to nothing."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio import workflow
from typer.main import get_command

from o2c_service.api import create_app
from o2c_service.cli import app as cli_app
from o2c_service.events import ORDER_EVENTS, OrderEvent
from o2c_service.settings import Settings
from o2c_workflows.messages import BookingOutcome, OutsideEventNote
from o2c_workflows.order.workflow import OrderWorkflow

DEFINITION = workflow._Definition.must_from_class(OrderWorkflow)
EVENT_IDS = [event.name for event in ORDER_EVENTS]
READ_ONLY_UPDATES: dict[str, type] = {"booking": BookingOutcome}
"""Updates that are reads, not outside events: they take no message, change nothing and
only wait for an answer (`POST /orders` waits on `booking`). Each is named here on purpose."""
NOTE_SIGNALS: dict[str, type] = {"outside_event_noted": OutsideEventNote}
"""Signals that only note an outside event the order does not act on (a delivery, a refused
webhook event): no Update, no route or command of their own; the signed webhooks send
them (`o2c_service/webhooks/`). Each is named here on purpose."""


def test_every_update_and_signal_of_the_order_is_in_the_table() -> None:
    assert sorted(name for name in DEFINITION.updates if name) == sorted(
        [*(event.name for event in ORDER_EVENTS), *READ_ONLY_UPDATES]
    )
    assert sorted(name for name in DEFINITION.signals if name) == sorted(
        [*(event.signal for event in ORDER_EVENTS), *NOTE_SIGNALS]
    )


@pytest.mark.parametrize("name", sorted(NOTE_SIGNALS))
def test_a_note_signal_takes_its_note_and_is_no_event(name: str) -> None:
    assert DEFINITION.signals[name].arg_types == [NOTE_SIGNALS[name]]
    assert name not in DEFINITION.updates
    assert name not in {event.signal for event in ORDER_EVENTS}


@pytest.mark.parametrize("name", sorted(READ_ONLY_UPDATES))
def test_a_read_only_update_takes_nothing_and_has_no_signal(name: str) -> None:
    update = DEFINITION.updates[name]
    assert update.arg_types == []
    assert update.ret_type is READ_ONLY_UPDATES[name]
    assert name not in DEFINITION.signals
    assert name not in {event.name for event in ORDER_EVENTS}


@pytest.mark.parametrize("event", ORDER_EVENTS, ids=EVENT_IDS)
def test_the_update_and_its_signal_take_the_declared_message(event: OrderEvent[Any, Any]) -> None:
    update = DEFINITION.updates[event.name]
    assert update.arg_types == [event.message]
    assert update.ret_type is event.ack
    assert update.validator is not None, "an Update without a validator is accepted blindly"
    assert DEFINITION.signals[event.signal].arg_types == [event.message]


@pytest.mark.parametrize("event", ORDER_EVENTS, ids=EVENT_IDS)
def test_each_event_has_its_route_and_cli_command(event: OrderEvent[Any, Any]) -> None:
    paths = create_app(Settings()).openapi()["paths"]
    operation = paths[f"/orders/{{order_id}}/{event.route}"]["post"]
    assert operation["tags"] == [event.tag]
    assert event.summary in operation["description"]
    body = operation.get("requestBody", {})
    assert body.get("required", False) is event.body_required

    orders = get_command(cli_app).commands["orders"]  # type: ignore[attr-defined]
    command = orders.commands[event.command]
    assert command.help == event.summary
