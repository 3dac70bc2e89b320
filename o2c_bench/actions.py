"""Temporal Cloud billable Actions, counted from one workflow history.

Temporal Cloud bills by Actions. Its published rules
(https://docs.temporal.io/cloud/actions) say which operations count, and for
most of them which history event shows it; `billable_actions` applies those rules
to a history and says how many Actions it holds, by kind. docs/benchmark.md
(*Billable Actions*) has the table of rules with the docs' wording.

What a history cannot show is not counted: Queries (each one answered by a worker
is an Action, `OrderService.get` is one), Activity Heartbeats, rejected Updates
(never written to history), a Schedule's own two Actions beyond the start it
records, Export. So the count is a floor for what Cloud would bill, as Temporal's
own per-event estimate in its UI is.

Decisions where the docs leave room, each explained in docs/benchmark.md:

- Markers are billed as "Local Activity started": every marker a workflow task
  records counts once for that task, whatever their number. Patch (version)
  markers (`core_patch`, Go/Java's `Version`) are not billed: the docs bill the
  versioning search attribute as exempt and list markers only as Activity
  markers, and Temporal's UI estimate shows them as 0.
- An upsert that sets only `TemporalChangeVersion` (what `workflow.patched`
  records beside its marker) is exempt; an upsert that also sets others counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import History, HistoryEvent

ACTIONS_DOC = "https://docs.temporal.io/cloud/actions"

PATCH_MARKERS = frozenset({"core_patch", "Version"})
"""Version markers: `workflow.patched` (core-based SDKs) and Go/Java's GetVersion."""
CHANGE_VERSION = "TemporalChangeVersion"
SCHEDULED_BY = "TemporalScheduledById"
LOCAL_ACTIVITY_RETRY_CAP = 100
"""'Local Activities retried following a Workflow Task Heartbeat count as one Action
(capped at 100 Actions)'; Temporal's UI caps the retries of one workflow task at 100."""

# The kinds of Action, as the breakdown names them.
WORKFLOW_STARTED = "workflow started"
SCHEDULE_STARTED = "schedule start"
SEARCH_ATTRIBUTE_UPSERT = "search attribute upsert"
ACTIVITY_SCHEDULED = "activity scheduled"
ACTIVITY_RETRIED = "activity retried"
LOCAL_ACTIVITIES = "local activities (per workflow task)"
LOCAL_ACTIVITY_RETRIED = "local activity retried"
TIMER_STARTED = "timer started"
SIGNAL = "signal received"
UPDATE_ACCEPTED = "update accepted"
UPDATE_REJECTED = "update rejected"
CHILD_WORKFLOW = "child workflow started"
NEXUS_OPERATION = "nexus operation scheduled"
NEXUS_CANCEL = "nexus operation cancel requested"
OPTIONS_UPDATED = "workflow options updated"
WORKFLOW_RESET = "workflow reset"

_ONE_EACH: dict[EventType.ValueType, str] = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: ACTIVITY_SCHEDULED,
    EventType.EVENT_TYPE_TIMER_STARTED: TIMER_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: UPDATE_ACCEPTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED: UPDATE_REJECTED,
    EventType.EVENT_TYPE_NEXUS_OPERATION_SCHEDULED: NEXUS_OPERATION,
    EventType.EVENT_TYPE_NEXUS_OPERATION_CANCEL_REQUESTED: NEXUS_CANCEL,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED: OPTIONS_UPDATED,
}
"""Events that are one Action each, with nothing to read in them."""


@dataclass(frozen=True)
class ActionCount:
    """The billable Actions of one history: the total and how many of each kind."""

    total: int
    by_kind: dict[str, int] = field(default_factory=dict)


def billable_actions(history: History | Iterable[HistoryEvent]) -> ActionCount:
    """The Actions Temporal Cloud would bill for what this history records.

    Pure: reads only the events, in order. Takes a `History` (or a client
    `WorkflowHistory`'s `.events`) or any sequence of its events.
    """
    events = list(history.events if isinstance(history, History) else history)
    kinds: Counter[str] = Counter()
    marker_tasks: set[int] = set()
    last_task_completed = 0
    previous: HistoryEvent | None = None
    for event in events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            last_task_completed = event.event_id
            metering = event.workflow_task_completed_event_attributes.metering_metadata
            retries = metering.nonfirst_local_activity_execution_attempts
            kinds[LOCAL_ACTIVITY_RETRIED] += min(retries, LOCAL_ACTIVITY_RETRY_CAP)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            kinds[WORKFLOW_STARTED] += 1
            fields = event.workflow_execution_started_event_attributes.search_attributes
            if SCHEDULED_BY in fields.indexed_fields:
                kinds[SCHEDULE_STARTED] += 2  # "Schedule Start. This accounts for two actions."
        elif kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            upserted = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            if set(upserted.indexed_fields) - {CHANGE_VERSION}:
                kinds[SEARCH_ATTRIBUTE_UPSERT] += 1
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker = event.marker_recorded_event_attributes
            if marker.marker_name not in PATCH_MARKERS:
                # The workflow task that recorded it, as the event names it (else the
                # task completed just before: its commands' events follow it).
                marker_tasks.add(marker.workflow_task_completed_event_id or last_task_completed)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attempt = event.activity_task_started_event_attributes.attempt
            kinds[ACTIVITY_RETRIED] += max(attempt - 1, 0)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            # Signal-With-Start that started the workflow: the start is its one Action.
            with_start = (
                previous is not None
                and previous.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
            )
            kinds[SIGNAL] += 0 if with_start else 1
        elif kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            kinds[CHILD_WORKFLOW] += 2  # the intent to start it, and the attempt
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            cause = event.workflow_task_failed_event_attributes.cause
            if cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW:
                kinds[WORKFLOW_RESET] += 1
        elif kind in _ONE_EACH:
            kinds[_ONE_EACH[kind]] += 1
        previous = event
    kinds[LOCAL_ACTIVITIES] += len(marker_tasks)
    by_kind = {name: count for name, count in sorted(kinds.items()) if count}
    return ActionCount(total=sum(by_kind.values()), by_kind=by_kind)
