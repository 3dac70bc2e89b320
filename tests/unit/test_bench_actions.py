"""Billable Actions counted from recorded histories (`o2c_bench.actions`).

The expected counts are worked out by hand below from each file's event list and
the rules in docs/benchmark.md (*Billable Actions*), not by running the function.
"""

from __future__ import annotations

from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History, HistoryEvent
from temporalio.client import WorkflowHistory

from o2c_bench.actions import (
    ACTIVITY_RETRIED,
    ACTIVITY_SCHEDULED,
    LOCAL_ACTIVITIES,
    SEARCH_ATTRIBUTE_UPSERT,
    SIGNAL,
    TIMER_STARTED,
    UPDATE_ACCEPTED,
    WORKFLOW_STARTED,
    billable_actions,
)

HISTORIES = Path(__file__).parents[1] / "histories"
BEFORE = "before-publish-per-wait"
"""Recorded on the code that upserted every status change (process version 1)."""
CURRENT = "before-codec"
"""Recorded on today's command sequence. The encrypted corpus in tests/histories is
re-recorded at will, and how many local activities one workflow task completes varies
from one recording to the next; these figures are of this one."""

# before-publish-per-wait/happy.json, 85 events; the ones that bill (every other event is 0):
#   1  WorkflowExecutionStarted (OrderStatus, CustomerId set at start: excluded) -> 1
#   ActivityTaskScheduled 7 validate_customer, 16 ensure_account, 22 open_balance,
#     28 reserve_stock, 35 request_shipment, 45 confirm_shipment, 53 create_invoice,
#     58 record_payment, 74 apply_payment                                       -> 9
#   ActivityTaskStarted 11 17 23 29 36 46 59 69 75: all attempt 1, no retries    -> 0
#   UpsertWorkflowSearchAttributes 34 OrderStatus, 51 OrderStatus, 64 PaymentDueDate,
#     65 OrderStatus, 80 PaymentDueDate, 81 OrderStatus, 84 OrderStatus          -> 7
#     (6 and 68 set only TemporalChangeVersion: exempt                           -> 0)
#   66 TimerStarted                                                              -> 1
#   WorkflowExecutionUpdateAccepted 44 confirm_shipment, 57 receive_payment      -> 2
#   MarkerRecorded 5 and 67 are core_patch: not billed                           -> 0
#   total 1 + 9 + 7 + 1 + 2                                                      = 20
HAPPY = {
    WORKFLOW_STARTED: 1,
    ACTIVITY_SCHEDULED: 9,
    SEARCH_ATTRIBUTE_UPSERT: 7,
    TIMER_STARTED: 1,
    UPDATE_ACCEPTED: 2,
}

# before-publish-per-wait/local-activities.json, 40 events:
#   1  WorkflowExecutionStarted                                                  -> 1
#   MarkerRecorded core_local_activity, grouped by the workflow task that recorded them
#   (workflowTaskCompletedEventId): 7 8 9 10 12 (task 3), 20 23 (task 17), 33 34 (task 30)
#     -> three workflow tasks, one Action each                                   -> 3
#   MarkerRecorded 5 and 27 are core_patch: not billed                           -> 0
#   UpsertWorkflowSearchAttributes 11 OrderStatus, 21 OrderStatus, 24 PaymentDueDate,
#     25 OrderStatus, 35 PaymentDueDate, 36 OrderStatus, 39 OrderStatus          -> 7
#     (6 and 28 set only TemporalChangeVersion: exempt                           -> 0)
#   26 TimerStarted                                                              -> 1
#   WorkflowExecutionUpdateAccepted 19 confirm_shipment, 32 receive_payment      -> 2
#   WorkflowTaskCompleted 4 15 18 31: no metering metadata, no local retries     -> 0
#   no ActivityTaskScheduled: every adapter call is a local activity            -> 0
#   total 1 + 3 + 7 + 1 + 2                                                      = 14
LOCAL = {
    WORKFLOW_STARTED: 1,
    LOCAL_ACTIVITIES: 3,
    SEARCH_ATTRIBUTE_UPSERT: 7,
    TIMER_STARTED: 1,
    UPDATE_ACCEPTED: 2,
}

# before-codec/local-activities.json (today's code: search attributes published once per
# wait; recorded before payloads were encrypted, which changes no event), 33:
#   1  WorkflowExecutionStarted                                                  -> 1
#   MarkerRecorded core_local_activity by workflow task: 7-11 (task 3), 20 22 (task 17),
#     29 30 (task 26)                                                            -> 3
#   MarkerRecorded 5 core_patch; 6 sets only TemporalChangeVersion               -> 0
#   UpsertWorkflowSearchAttributes 12 OrderStatus (Booked), 24 OrderStatus and
#     PaymentDueDate (Invoiced), 32 OrderStatus and PaymentDueDate (Closed)      -> 3
#   23 TimerStarted                                                              -> 1
#   WorkflowExecutionUpdateAccepted 19, 28                                       -> 2
#   total 1 + 3 + 3 + 1 + 2                                                      = 10
PUBLISHED_PER_WAIT = {
    WORKFLOW_STARTED: 1,
    LOCAL_ACTIVITIES: 3,
    SEARCH_ATTRIBUTE_UPSERT: 3,
    TIMER_STARTED: 1,
    UPDATE_ACCEPTED: 2,
}


def events_of(name: str) -> list[HistoryEvent]:
    path = HISTORIES / f"{name}.json"
    return list(WorkflowHistory.from_json(name, path.read_text()).events)


def test_the_happy_history_bills_20_actions() -> None:
    counted = billable_actions(events_of(f"{BEFORE}/happy"))

    assert counted.by_kind == HAPPY
    assert counted.total == 20


def test_local_activities_of_one_workflow_task_bill_once_together() -> None:
    counted = billable_actions(events_of(f"{BEFORE}/local-activities"))

    assert counted.by_kind == LOCAL
    assert counted.total == 14


def test_an_order_publishing_once_per_wait_bills_10_actions() -> None:
    counted = billable_actions(events_of(f"{CURRENT}/local-activities"))

    assert counted.by_kind == PUBLISHED_PER_WAIT
    assert counted.total == 10


def test_a_history_proto_counts_as_its_events() -> None:
    events = events_of("local-activities")

    assert billable_actions(History(events=events)) == billable_actions(events)


def test_retries_signals_and_signal_with_start() -> None:
    # Hand-built: a Signal-With-Start (started then signaled: the start is its one
    # Action), an activity started on its third attempt (two retries), a later signal.
    started = HistoryEvent(event_id=1, event_type=EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)
    with_start = HistoryEvent(
        event_id=2, event_type=EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    )
    scheduled = HistoryEvent(event_id=3, event_type=EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    retried = HistoryEvent(event_id=4, event_type=EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
    retried.activity_task_started_event_attributes.attempt = 3
    signaled = HistoryEvent(event_id=5, event_type=EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)

    counted = billable_actions([started, with_start, scheduled, retried, signaled])

    assert counted.by_kind == {
        WORKFLOW_STARTED: 1,
        ACTIVITY_SCHEDULED: 1,
        ACTIVITY_RETRIED: 2,
        SIGNAL: 1,
    }
    assert counted.total == 5
