"""What the bench reads from each order's history once it has finished: its size,
and when it recorded each status (the latencies are taken from there).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History, HistoryEvent
from temporalio.converter import DataConverter

from o2c_bench.report import HistoryFigures
from o2c_workflows.models import OrderStatus
from o2c_workflows.search_attributes import ORDER_STATUS

LOCAL_ACTIVITY_MARKER = "core_local_activity"


@dataclass(frozen=True)
class HistorySize:
    """One order's history: its size, and when it recorded each status (server clock)."""

    events: int
    bytes: int
    """The serialized size of the history proto: what the server stores and replays."""
    workflow_tasks: int
    activities: int
    local_activities: int
    reached: dict[OrderStatus, float]

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
        for event in events:
            status = upserted_status(event)
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
                status = OrderStatus.CLOSED  # the result says so; the bench checks it
            if status is not None:
                reached.setdefault(status, event.event_time.ToMicroseconds() / 1e6)
        return cls(
            events=len(events),
            bytes=History(events=events).ByteSize(),
            workflow_tasks=count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
            activities=count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
            local_activities=markers.count(LOCAL_ACTIVITY_MARKER),
            reached=reached,
        )


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
    )
