"""Where an order's time goes, read from its history: each normal activity's wait on
its task queue (schedule-to-start) and its call (start-to-close), and how the order's
time from start to completion divides between activity calls, activity queues,
workflow tasks running, workflow tasks queued and waiting on the outside world.

Every moment of an order is counted once, under the first of `KINDS` that was
happening then: while two activities overlap, or a workflow task runs beside a
running activity, the activity counts. All times are the server's (event times).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from o2c_bench.report import ActivityTime, TimeFigures, TimeShare, percentile

Kind = Literal["activity_call", "activity_queue", "workflow_task", "workflow_task_queue", "waiting"]
KINDS: tuple[Kind, ...] = get_args(Kind)
"""What an order can be doing, the first that applies winning; `waiting` is the rest."""

_ACTIVITY_CLOSED = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "activity_task_canceled_event_attributes",
}
_WORKFLOW_TASK_CLOSED = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: "workflow_task_completed_event_attributes",
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED: "workflow_task_failed_event_attributes",
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT: "workflow_task_timed_out_event_attributes",
}


@dataclass(frozen=True)
class ActivityRun:
    """One normal activity of one order: its last attempt, in seconds since the epoch."""

    activity: str
    scheduled: float
    started: float
    closed: float

    @property
    def schedule_to_start(self) -> float:
        return self.started - self.scheduled

    @property
    def start_to_close(self) -> float:
        return self.closed - self.started


@dataclass(frozen=True)
class OrderTime:
    """One finished order's time, from its history."""

    end_to_end: float
    spent: dict[Kind, float]
    """Seconds under each kind; they add up to `end_to_end`."""
    activities: tuple[ActivityRun, ...]
    """Its normal activities, in the order they were scheduled."""

    @classmethod
    def of(cls, events: Sequence[HistoryEvent]) -> OrderTime | None:
        """None for a history that has not both started and closed."""
        if not events or events[0].event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            return None
        last = events[-1]
        if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            return None
        activities = _activities(events)
        queued, running = _workflow_tasks(events)
        intervals: dict[Kind, list[tuple[float, float]]] = {
            "activity_call": [(run.started, run.closed) for run in activities],
            "activity_queue": [(run.scheduled, run.started) for run in activities],
            "workflow_task": running,
            "workflow_task_queue": queued,
        }
        start, end = _seconds(events[0]), _seconds(last)
        return cls(
            end_to_end=end - start,
            spent=_divided(start, end, intervals),
            activities=tuple(activities),
        )


def _seconds(event: HistoryEvent) -> float:
    return event.event_time.ToMicroseconds() / 1e6


def _activities(events: Sequence[HistoryEvent]) -> list[ActivityRun]:
    scheduled: dict[int, HistoryEvent] = {}
    started: dict[int, float] = {}
    runs: list[tuple[int, ActivityRun]] = []
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = event
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            # Written when the attempt ends, with the time it started.
            started[event.activity_task_started_event_attributes.scheduled_event_id] = _seconds(
                event
            )
        elif (field := _ACTIVITY_CLOSED.get(event.event_type)) is not None:
            scheduled_id: int = getattr(event, field).scheduled_event_id
            schedule = scheduled[scheduled_id]
            began = started.get(scheduled_id)
            if began is None:  # cancelled or timed out before any worker took it
                continue
            name = schedule.activity_task_scheduled_event_attributes.activity_type.name
            runs.append(
                (scheduled_id, ActivityRun(name, _seconds(schedule), began, _seconds(event)))
            )
    return [run for _, run in sorted(runs, key=lambda pair: pair[0])]


def _workflow_tasks(
    events: Sequence[HistoryEvent],
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Each workflow task's time on its task queue (scheduled to started), and in a worker
    (started to closed)."""
    scheduled: dict[int, float] = {}
    started: dict[int, float] = {}
    queued: list[tuple[float, float]] = []
    running: list[tuple[float, float]] = []
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            scheduled[event.event_id] = _seconds(event)
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            scheduled_id = event.workflow_task_started_event_attributes.scheduled_event_id
            if scheduled_id in scheduled:
                started[scheduled_id] = _seconds(event)
                queued.append((scheduled[scheduled_id], started[scheduled_id]))
        elif (field := _WORKFLOW_TASK_CLOSED.get(event.event_type)) is not None:
            scheduled_id = getattr(event, field).scheduled_event_id
            if scheduled_id in started:
                running.append((started[scheduled_id], _seconds(event)))
    return queued, running


def _divided(
    start: float, end: float, intervals: dict[Kind, list[tuple[float, float]]]
) -> dict[Kind, float]:
    """[start, end] cut at every interval's ends; each piece to the first kind covering it."""
    cuts = sorted(
        {start, end}
        | {at for spans in intervals.values() for span in spans for at in span if start < at < end}
    )
    spent: dict[Kind, float] = dict.fromkeys(KINDS, 0.0)
    for left, right in itertools.pairwise(cuts):
        spent[_kind_at((left + right) / 2, intervals)] += right - left
    return spent


def _kind_at(moment: float, intervals: dict[Kind, list[tuple[float, float]]]) -> Kind:
    for kind, spans in intervals.items():
        if any(since <= moment <= until for since, until in spans):
            return kind
    return "waiting"


def time_figures(orders: Iterable[OrderTime]) -> TimeFigures | None:
    """The orders' activities by type (in lifecycle order) and their share of the time;
    None when no order ran a normal activity (all local, as embedded runs are by default)."""
    times = list(orders)
    by_type: dict[str, list[ActivityRun]] = {}
    for order in times:
        for run in order.activities:
            by_type.setdefault(run.activity, []).append(run)
    if not by_type:
        return None
    count = len(times)
    total = math.fsum(order.end_to_end for order in times)

    def ms(seconds: float) -> float:
        return round(seconds * 1000 / count, 1)

    spent = {kind: math.fsum(order.spent[kind] for order in times) for kind in KINDS}

    def pct(kind: Kind) -> float:
        return round(100 * spent[kind] / total, 1) if total else 0.0

    return TimeFigures(
        orders=count,
        activities=[_activity_time(name, runs, count) for name, runs in by_type.items()],
        share=TimeShare(
            end_to_end_mean_ms=ms(total),
            activity_call_ms=ms(spent["activity_call"]),
            activity_queue_ms=ms(spent["activity_queue"]),
            workflow_task_ms=ms(spent["workflow_task"]),
            workflow_task_queue_ms=ms(spent["workflow_task_queue"]),
            waiting_ms=ms(spent["waiting"]),
            activity_call_pct=pct("activity_call"),
            activity_queue_pct=pct("activity_queue"),
            workflow_task_pct=pct("workflow_task"),
            workflow_task_queue_pct=pct("workflow_task_queue"),
            waiting_pct=pct("waiting"),
        ),
    )


def _activity_time(name: str, runs: Sequence[ActivityRun], orders: int) -> ActivityTime:
    queued = sorted(run.schedule_to_start * 1000 for run in runs)
    called = sorted(run.start_to_close * 1000 for run in runs)
    return ActivityTime(
        activity=name,
        count=len(runs),
        per_order=round(len(runs) / orders, 2),
        schedule_to_start_mean_ms=_mean(queued),
        schedule_to_start_p95_ms=percentile(queued, 95),
        start_to_close_mean_ms=_mean(called),
        start_to_close_p95_ms=percentile(called, 95),
    )


def _mean(values: Sequence[float]) -> float:
    return round(math.fsum(values) / len(values), 1)
