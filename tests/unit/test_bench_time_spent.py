"""Where an order's time goes, read from its history (`o2c_bench.time_spent`).

The expected figures are worked out by hand from the event times below, or from
the recorded histories' event lists, not by running the functions.
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.common.v1 import ActivityType
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import (
    ActivityTaskCompletedEventAttributes,
    ActivityTaskScheduledEventAttributes,
    ActivityTaskStartedEventAttributes,
    HistoryEvent,
    WorkflowTaskCompletedEventAttributes,
    WorkflowTaskStartedEventAttributes,
)
from temporalio.client import WorkflowHistory

from o2c_bench.time_spent import OrderTime, time_figures

HISTORIES = Path(__file__).parents[1] / "histories"
E = EventType


def recorded(name: str) -> list[HistoryEvent]:
    text = (HISTORIES / f"{name}.json").read_text()
    return list(WorkflowHistory.from_json(name, text).events)


class History:
    """Events with ids in order, each at a time in ms from the start."""

    def __init__(self) -> None:
        self.events: list[HistoryEvent] = []

    def add(self, kind: EventType.ValueType, at_ms: int, **attributes: object) -> int:
        event = HistoryEvent(
            event_id=len(self.events) + 1,
            event_type=kind,
            event_time=Timestamp(seconds=1_000, nanos=at_ms * 1_000_000),
            **attributes,  # type: ignore[arg-type]
        )
        self.events.append(event)
        return event.event_id

    def workflow_task(self, scheduled_ms: int, started_ms: int, completed_ms: int) -> None:
        scheduled = self.add(E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, scheduled_ms)
        self.add(
            E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
            started_ms,
            workflow_task_started_event_attributes=WorkflowTaskStartedEventAttributes(
                scheduled_event_id=scheduled
            ),
        )
        self.add(
            E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
            completed_ms,
            workflow_task_completed_event_attributes=WorkflowTaskCompletedEventAttributes(
                scheduled_event_id=scheduled
            ),
        )

    def activity(self, name: str, scheduled_ms: int, started_ms: int, closed_ms: int) -> None:
        scheduled = self.add(
            E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
            scheduled_ms,
            activity_task_scheduled_event_attributes=ActivityTaskScheduledEventAttributes(
                activity_type=ActivityType(name=name)
            ),
        )
        self.add(
            E.EVENT_TYPE_ACTIVITY_TASK_STARTED,
            started_ms,
            activity_task_started_event_attributes=ActivityTaskStartedEventAttributes(
                scheduled_event_id=scheduled
            ),
        )
        self.add(
            E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
            closed_ms,
            activity_task_completed_event_attributes=ActivityTaskCompletedEventAttributes(
                scheduled_event_id=scheduled
            ),
        )


def two_calls_and_a_wait() -> list[HistoryEvent]:
    """0 start; task queued 0-2, running 2-10; crm queued 10-30, running 30-80; billing
    queued 40-60 (beside crm's call), running 60-90; task queued 85-88 and running 88-100
    (beside billing's call until 90); nothing 100-190 (the outside world); task queued
    190-195, running 195-200; completed at 200."""
    history = History()
    history.add(E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, 0)
    history.workflow_task(0, 2, 10)
    history.activity("crm.validate_customer", 10, 30, 80)
    history.activity("billing.ensure_account", 40, 60, 90)
    history.workflow_task(85, 88, 100)  # while billing's call still runs
    history.workflow_task(190, 195, 200)
    history.add(E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, 200)
    return history.events


def test_each_moment_counts_once_under_the_first_thing_happening() -> None:
    time = OrderTime.of(two_calls_and_a_wait())

    assert time is not None
    # Calls 30-90 (crm, then billing); queued 10-30 (crm); tasks running 2-10, 90-100,
    # 195-200; tasks queued 0-2, 190-195.
    assert {kind: round(seconds * 1000) for kind, seconds in time.spent.items()} == {
        "activity_call": 60,
        "activity_queue": 20,
        "workflow_task": 23,
        "workflow_task_queue": 7,
        "waiting": 90,
    }
    assert round(time.end_to_end * 1000) == 200
    assert [
        (run.activity, round(run.schedule_to_start * 1000), round(run.start_to_close * 1000))
        for run in time.activities
    ] == [("crm.validate_customer", 20, 50), ("billing.ensure_account", 20, 30)]


def test_the_figures_give_each_activity_type_and_the_share_of_the_orders_time() -> None:
    time = OrderTime.of(two_calls_and_a_wait())
    assert time is not None

    figures = time_figures([time, time])

    assert figures is not None and figures.orders == 2
    assert [(a.activity, a.count, a.per_order) for a in figures.activities] == [
        ("crm.validate_customer", 2, 1.0),
        ("billing.ensure_account", 2, 1.0),
    ]
    crm = figures.activities[0]
    assert (crm.schedule_to_start_mean_ms, crm.start_to_close_mean_ms) == (20.0, 50.0)
    share = figures.share
    assert (share.end_to_end_mean_ms, share.activity_call_ms, share.waiting_ms) == (
        200.0,
        60.0,
        90.0,
    )
    assert (share.activity_call_pct, share.activity_queue_pct) == (30.0, 10.0)
    assert (share.workflow_task_pct, share.workflow_task_queue_pct) == (11.5, 3.5)
    assert share.waiting_pct == 45.0


def test_a_recorded_order_on_system_queues_has_its_nine_calls() -> None:
    time = OrderTime.of(recorded("system-queues"))

    assert time is not None
    assert len(time.activities) == 9
    assert all(run.scheduled <= run.started <= run.closed for run in time.activities)
    assert abs(sum(time.spent.values()) - time.end_to_end) < 1e-6


def test_orders_of_local_activities_only_have_nothing_to_say() -> None:
    time = OrderTime.of(recorded("local-activities"))

    assert time is not None and time.activities == ()
    assert time_figures([time]) is None


def test_an_order_still_running_is_left_out() -> None:
    assert OrderTime.of(two_calls_and_a_wait()[:-1]) is None
