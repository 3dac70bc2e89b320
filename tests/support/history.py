"""Reading the statuses an order went through, and waiting for one.

The order's timeline holds every status it went through; its history holds the
`OrderStatus` search attribute as published, once per wait on the outside world
(orders begun on earlier code published every change).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeAlias

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHandle
from temporalio.converter import DataConverter

from o2c_workflows.models import OrderStatus
from o2c_workflows.order.workflow import OrderWorkflow
from o2c_workflows.search_attributes import ORDER_STATUS
from o2c_workflows.state import OrderState, OrderSummary

OrderHandle: TypeAlias = WorkflowHandle[OrderWorkflow, OrderSummary]
"""A handle on an order's workflow, its queries, updates and result typed."""

DEFAULT_TIMEOUT = 30.0


def upserted_status(event: HistoryEvent) -> OrderStatus | None:
    """The `OrderStatus` an event sets: at start (set by the starter) or by an upsert."""
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        attributes = event.workflow_execution_started_event_attributes.search_attributes
    elif event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        attributes = event.upsert_workflow_search_attributes_event_attributes.search_attributes
    else:
        return None
    fields = attributes.indexed_fields
    if ORDER_STATUS.name not in fields:
        return None
    value = DataConverter.default.payload_converter.from_payloads([fields[ORDER_STATUS.name]])[0]
    return OrderStatus(value)


async def status_transitions(handle: OrderHandle) -> list[OrderStatus]:
    """Every status the order went through, in order, from its timeline."""
    state = await handle.query(OrderWorkflow.state)
    statuses = [entry.status for entry in state.timeline]
    return [status for i, status in enumerate(statuses) if i == 0 or statuses[i - 1] != status]


async def published_statuses(handle: OrderHandle) -> list[OrderStatus]:
    """Every `OrderStatus` the history shows published (at start, then by upserts)."""
    return [
        status
        async for event in handle.fetch_history_events()
        if (status := upserted_status(event)) is not None
    ]


async def until(
    condition: Callable[[], Awaitable[bool]],
    what: str,
    within: float = DEFAULT_TIMEOUT,
    every: float | None = None,
) -> None:
    """Poll `condition` the way a caller would, until it holds; fail after `within` seconds.
    `every`: seconds between two looks (default POLL_INTERVAL)."""
    deadline = asyncio.get_running_loop().time() + within
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not {what} within {within}s")
        await asyncio.sleep(POLL_INTERVAL if every is None else every)


async def wait_for_status(
    handle: OrderHandle, status: OrderStatus, within: float = DEFAULT_TIMEOUT
) -> None:
    """Return once the order reports `status`; fail after `within` seconds."""
    await wait_for_state(handle, lambda state: state.status is status, str(status), within)


async def wait_for_state(
    handle: OrderHandle,
    holds: Callable[[OrderState], bool],
    what: str,
    within: float = DEFAULT_TIMEOUT,
) -> OrderState:
    """Return the order's state once `holds` is true of it; fail after `within` seconds.

    Asks the order itself (its `state` query) every few milliseconds: the
    time-skipping server has no long poll on history to wait on instead.
    """
    deadline = asyncio.get_running_loop().time() + within
    while True:
        state = await handle.query(OrderWorkflow.state)
        if holds(state):
            return state
        if state.status in (OrderStatus.CLOSED, OrderStatus.CANCELLED):
            raise AssertionError(f"order {handle.id} ended {state.status} without {what}")
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(
                f"order {handle.id} is {state.status}, not {what}, after {within}s"
            )
        await asyncio.sleep(POLL_INTERVAL)


POLL_INTERVAL = 0.02
