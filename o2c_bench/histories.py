"""What the bench reads from each order's history once it has finished: its size,
its billable Actions, when it recorded each status (the latencies are taken from
there), and whether its `OrderStatus` was current while it waited on the outside world.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History, HistoryEvent
from temporalio.converter import DataConverter

from o2c_bench.actions import billable_actions
from o2c_bench.report import HistoryFigures
from o2c_bench.time_spent import OrderTime
from o2c_service import events as order_events
from o2c_workflows.models import OrderStatus
from o2c_workflows.search_attributes import ORDER_STATUS

LOCAL_ACTIVITY_MARKER = "core_local_activity"

WAITS: dict[str, OrderStatus] = {
    name: status
    for event, status in (
        (order_events.SHIPMENT, OrderStatus.BOOKED),
        (order_events.PAYMENT, OrderStatus.INVOICED),
    )
    for name in (event.name, event.signal)
}
"""The outside world's messages in a happy-path order (as Update or Signal), and the
status the order must show while it waits for each: the bench confirms the shipment
of a Booked order and pays an Invoiced one."""


@dataclass(frozen=True)
class HistorySize:
    """One order's history: its size, and when it recorded each status (server clock)."""

    events: int
    bytes: int
    """The serialized size of the history proto: what the server stores and replays."""
    workflow_tasks: int
    activities: int
    local_activities: int
    actions: int
    """Billable Actions (`o2c_bench.actions`)."""
    actions_by_kind: dict[str, int]
    waits: int
    """Messages from the outside world (`WAITS`) the order received."""
    stale_waits: int
    """Of those, the ones that arrived while `OrderStatus` said something else."""
    reached: dict[OrderStatus, float]
    workflow_tasks_by_worker: dict[str, int]
    """Workflow tasks started by each worker, by its identity (`pid@host`)."""
    activity_tasks_by_worker: dict[str, int]
    """Normal activity tasks started by each worker, by its identity."""
    time: OrderTime | None
    """Where its time went (`o2c_bench.time_spent`); None if it has not finished."""

    @classmethod
    def of(cls, events: Sequence[HistoryEvent]) -> HistorySize:
        def count(kind: EventType.ValueType) -> int:
            return sum(1 for event in events if event.event_type == kind)

        markers = [
            event.marker_recorded_event_attributes.marker_name
            for event in events
            if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        ]
        reached: dict[OrderStatus, float] = {}
        visible: OrderStatus | None = None
        waits = stale = 0
        for event in events:
            if (message := outside_message(event)) in WAITS:
                waits += 1
                if visible is not WAITS[message]:
                    stale += 1
            status = upserted_status(event)
            if status is not None:
                visible = status
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
                status = OrderStatus.CLOSED  # the result says so; the bench checks it
            if status is not None:
                reached.setdefault(status, event.event_time.ToMicroseconds() / 1e6)
        actions = billable_actions(events)
        workflow_tasks = Counter(
            event.workflow_task_started_event_attributes.identity
            for event in events
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
        )
        activity_tasks = Counter(
            event.activity_task_started_event_attributes.identity
            for event in events
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        )
        return cls(
            events=len(events),
            bytes=History(events=events).ByteSize(),
            workflow_tasks=count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
            activities=count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
            local_activities=markers.count(LOCAL_ACTIVITY_MARKER),
            actions=actions.total,
            actions_by_kind=actions.by_kind,
            waits=waits,
            stale_waits=stale,
            reached=reached,
            workflow_tasks_by_worker=dict(workflow_tasks),
            activity_tasks_by_worker=dict(activity_tasks),
            time=OrderTime.of(events),
        )


def outside_message(event: HistoryEvent) -> str | None:
    """The name of the Update or Signal this event records the arrival of, if any."""
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
        return event.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
        return event.workflow_execution_signaled_event_attributes.signal_name
    return None


def upserted_status(event: HistoryEvent) -> OrderStatus | None:
    """The `OrderStatus` an event sets: at start (set by the starter) or by an upsert.

    Every status change upserts that search attribute, so the history says
    exactly when the order reached each status.
    """
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        attributes = event.workflow_execution_started_event_attributes.search_attributes
    elif event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        attributes = event.upsert_workflow_search_attributes_event_attributes.search_attributes
    else:
        return None
    payload = attributes.indexed_fields.get(ORDER_STATUS.name)
    if payload is None:
        return None
    return OrderStatus(DataConverter.default.payload_converter.from_payloads([payload])[0])


def history_figures(sizes: list[HistorySize]) -> HistoryFigures:
    def mean(values: Iterable[int]) -> float:
        return round(sum(values) / len(sizes), 1)

    return HistoryFigures(
        orders=len(sizes),
        events_mean=mean(s.events for s in sizes),
        events_max=max(s.events for s in sizes),
        bytes_mean=mean(s.bytes for s in sizes),
        bytes_max=max(s.bytes for s in sizes),
        workflow_tasks_mean=mean(s.workflow_tasks for s in sizes),
        activities_mean=mean(s.activities for s in sizes),
        local_activities_mean=mean(s.local_activities for s in sizes),
        actions_mean=mean(s.actions for s in sizes),
        actions_max=max(s.actions for s in sizes),
        actions_by_kind={
            kind: round(sum(s.actions_by_kind.get(kind, 0) for s in sizes) / len(sizes), 2)
            for kind in sorted({kind for s in sizes for kind in s.actions_by_kind})
        },
        status_current=sum(1 for s in sizes if s.waits and not s.stale_waits),
        workflow_tasks_by_worker=_summed(s.workflow_tasks_by_worker for s in sizes),
        activity_tasks_by_worker=_summed(s.activity_tasks_by_worker for s in sizes),
    )


def _summed(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for count in counts:
        total.update(count)
    return dict(sorted(total.items()))
