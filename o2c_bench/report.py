"""What `o2c bench` measured: the figures, the targets beside them, and the JSON
(`o2c_bench.table` renders them for people).

The targets are reported, never enforced: a run on a busy laptop is still a
valid run, and comparing two JSON files says more than one verdict. Every ratio
target is to the floor of the same run (same server, worker and machine).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field

from o2c_domain.systems import LocalCalls

FLOOR_RATIO_TARGET = 0.5
WORKER_CPU_RATIO_TARGET = 3.0
SERVER_CPU_RATIO_TARGET = 2.0
EVENTS_TARGET = 30
ACTIONS_TARGET = 10
BYTES_TARGET = 16 * 1024
BOOKED_P99_TARGET_MS = 300.0
BOOKED_TARGET_RATE = 10.0
PARKED_TARGET_ORDERS = 10_000
PARK_SECONDS_TARGET = 600.0
CLOSE_SECONDS_TARGET = 600.0
PARKED_WORKER_RSS_TARGET = 300 * 1024 * 1024

RATIO = "lifecycle throughput / floor"
WORKER_CPU = "worker CPU per order / floor's"
SERVER_CPU = "server CPU per order / floor's"
EVENTS = "history events per order (max)"
STATUS_CURRENT = "orders with OrderStatus current at every wait"
ACTIONS = "billable Actions per order (max)"
BYTES = "history bytes per order (max)"
BOOKED_P99 = "create -> Booked p99 (ms)"
PARK_TIME = "orders parked Invoiced (s)"
PARKED_RSS = "worker peak RSS, parked run (MB)"
CLOSE_TIME = "parked orders paid and Closed (s)"
LOST = "parked orders lost"


class Latency(BaseModel):
    """Milliseconds from an action to the status it leads to, as the caller sees it."""

    count: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        ordered = sorted(value * 1000 for value in seconds)
        return cls(
            count=len(ordered),
            p50_ms=percentile(ordered, 50),
            p95_ms=percentile(ordered, 95),
            p99_ms=percentile(ordered, 99),
            max_ms=round(ordered[-1], 1) if ordered else None,
        )


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of sorted values (the p99 of 20 values is their maximum)."""
    if not ordered:
        return None
    return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 1)


class Machine(BaseModel):
    cores: int | None
    platform: str
    python: str
    temporalio: str
    temporal_cli: str | None = Field(description="`temporal --version` of the installed CLI.")
    temporal_server: str | None = Field(description="The server's own version (GetSystemInfo).")
    git_commit: str | None = Field(description="HEAD of the checkout; `+dirty` if it has changes.")
    load_average: tuple[float, float] = Field(
        description="The 1-minute load average as the run started and as it ended; well "
        "above 0 at the start means other work was sharing the CPUs."
    )


class RunInfo(BaseModel):
    started_at: str
    mode: Literal["memory", "sqlite", "address"]
    address: str
    sqlite: str | None
    task_queue: str
    orders: int
    floor: int
    concurrency: int
    rate: float | None = Field(description="Orders started per second; None: all at once.")
    local_activities: LocalCalls
    system_queues: bool = Field(
        default=False,
        description="Normal activities on each system's task queue, not the order task queue.",
    )
    parked: int | None
    workers: int = Field(
        default=1,
        description="Worker processes on the order task queue (`--workers`); the floor's "
        "worker runs in the first only.",
    )
    remote: bool = Field(
        default=False,
        description="`--remote`: every system called over HTTP at the sandbox the bench "
        "started, as normal activities.",
    )
    sandbox_latency_ms: int | None = Field(
        default=None, description="Added by the sandbox to every request (`--latency-ms`)."
    )


class CpuPerItem(BaseModel):
    """CPU time each process spent per workflow (or order) during a phase, in ms."""

    worker_ms: float | None = Field(
        description="Summed over the worker processes; None if one could not be read."
    )
    worker_ms_each: list[float | None] = Field(
        default_factory=list, description="Each worker process's, in the order they started."
    )
    server_ms: float | None = Field(description="None when the server is not ours to read.")
    bench_ms: float | None = Field(description="This load generator, Temporal client included.")


class FloorFigures(BaseModel):
    """One trivial workflow with one trivial activity: what this server and worker can do."""

    workflows: int
    seconds: float
    per_second: float
    events_per_workflow: int
    actions_per_workflow: int = Field(description="Billable Actions of one floor workflow.")
    cpu: CpuPerItem


class LifecycleFigures(BaseModel):
    orders: int
    closed: int
    seconds: float = Field(description="From the first create to the last Closed.")
    per_second: float
    ratio_to_floor: float | None
    worker_cpu_ratio_to_floor: float | None = Field(
        description="Worker CPU per order / worker CPU per floor workflow."
    )
    server_cpu_ratio_to_floor: float | None = Field(
        description="Server CPU per order / server CPU per floor workflow."
    )
    create_to_booked: Latency
    shipment_to_invoiced: Latency
    payment_to_closed: Latency
    cpu: CpuPerItem
    status_queries_per_order: float = Field(
        description="Visibility queries the bench made to see orders reach Booked and Invoiced."
    )


class HistoryFigures(BaseModel):
    """Read from the orders' real histories after the run."""

    orders: int
    events_mean: float
    events_max: int
    bytes_mean: float
    bytes_max: int
    workflow_tasks_mean: float
    activities_mean: float = Field(description="Normal activities scheduled per order.")
    local_activities_mean: float = Field(description="Local activity markers per order.")
    actions_mean: float = Field(description="Temporal Cloud billable Actions per order.")
    actions_max: int
    actions_by_kind: dict[str, float] = Field(
        description="Billable Actions per order of each kind (mean), named as in o2c_bench.actions."
    )
    status_current: int = Field(
        description="Orders whose OrderStatus search attribute showed the status they waited "
        "in (Booked, Invoiced) when the shipment and the payment arrived."
    )
    workflow_tasks_by_worker: dict[str, int] = Field(
        default_factory=dict,
        description="Workflow tasks of these orders started by each worker, by its identity "
        "(`pid@host`, from the WorkflowTaskStarted events).",
    )
    activity_tasks_by_worker: dict[str, int] = Field(
        default_factory=dict,
        description="The same for normal activity tasks (ActivityTaskStarted).",
    )


class ActivityTime(BaseModel):
    """One activity type's calls in the measured orders, from their histories (server clock)."""

    activity: str = Field(description="Its type, `<system>.<operation>`.")
    count: int
    per_order: float
    schedule_to_start_mean_ms: float
    schedule_to_start_p95_ms: float | None = Field(
        description="Waiting on the task queue for a worker to take it."
    )
    start_to_close_mean_ms: float
    start_to_close_p95_ms: float | None = Field(
        description="The call: in the worker, over HTTP and in the system (the sandbox)."
    )


class TimeShare(BaseModel):
    """An order's time from its start to its completion (the history's), each moment
    counted once, under the first of these that was happening then."""

    end_to_end_mean_ms: float
    activity_call_ms: float = Field(description="Mean per order: an activity was running.")
    activity_queue_ms: float = Field(
        description="Mean per order: none running, one waiting on its task queue."
    )
    workflow_task_ms: float = Field(
        description="Mean per order: no activity, a workflow task running in a worker."
    )
    workflow_task_queue_ms: float = Field(
        description="Mean per order: none of the above, a workflow task on its task queue."
    )
    waiting_ms: float = Field(
        description="Mean per order: nothing of the order's own in flight; it waited on the "
        "outside world (the bench's shipment and payment) or a timer."
    )
    activity_call_pct: float
    activity_queue_pct: float
    workflow_task_pct: float
    workflow_task_queue_pct: float
    waiting_pct: float


class TimeFigures(BaseModel):
    """Where the measured orders' time went: their normal activities, and the share of
    their end-to-end time; present when their histories hold normal activities."""

    orders: int
    activities: list[ActivityTime] = Field(description="Each type, in lifecycle order.")
    share: TimeShare


class OperationTime(BaseModel):
    """One operation of one system, as the sandbox served it."""

    system: str
    operation: str
    calls: int
    mean_ms: float = Field(description="Server side: arrival to answer, the latency included.")
    p95_ms: float | None
    failed: int = Field(description="Answered 4xx or 5xx.")


class SandboxFigures(BaseModel):
    """The sandbox `--remote` started, and the requests of the measured orders in its call log."""

    pid: int
    urls: dict[str, str]
    latency_ms: int = Field(description="Added to every request (O2C_SANDBOX_LATENCY_MS).")
    calls: int
    calls_per_order: float
    calls_by_system: dict[str, int]
    operations: list[OperationTime]
    cpu_ms_per_order: float | None = Field(
        description="The sandbox process's CPU time over the phase, per order."
    )
    rss_bytes: int | None


class ProcessMemory(BaseModel):
    pid: int
    rss_bytes: int | None
    peak_rss_bytes: int | None = Field(description="VmHWM: the most it ever held.")


class WorkerProcessFigures(ProcessMemory):
    """One worker process: its memory at the end of the run, and the work it took."""

    identity: str = Field(description="`pid@host`, as its histories name it.")
    floor: bool = Field(description="It also runs the floor's worker (the first only).")
    profiled: bool = Field(description="`--profile` profiled it (the first only).")
    workflow_tasks: int = Field(
        description="Workflow tasks of the measured orders it started (their histories)."
    )
    activity_tasks: int = Field(description="Normal activity tasks of those orders it started.")


class ParkedFigures(BaseModel):
    orders: int
    seconds_to_park: float = Field(description="From the first create to the last Invoiced.")
    workers_before: list[ProcessMemory] = Field(
        description="Each worker process after the warm-up, before parking."
    )
    workers_parked: list[ProcessMemory] = Field(
        description="Each worker process with the orders parked."
    )
    worker_bytes_per_order: float | None = Field(
        description="RSS gained per parked order, summed over the worker processes."
    )
    server_before: ProcessMemory | None
    server_parked: ProcessMemory | None
    server_bytes_per_order: float | None
    closed: int = Field(description="Orders whose workflow returned status Closed.")
    seconds_to_close: float = Field(description="From the first payment to the last Closed.")


class ProfiledFunction(BaseModel):
    function: str
    location: str = Field(description="File and first line, as the profiler names them.")
    own: float = Field(description="Samples (py-spy) or seconds (cProfile) in the function itself.")
    total: float = Field(description="The same, with the functions it called.")
    own_pct: float
    total_pct: float


class ProfileFigures(BaseModel):
    """Where the worker spent its CPU, from `--profile`."""

    tool: Literal["py-spy", "cProfile"]
    file: str
    scope: str = Field(description="What was profiled: the orders phase, or the worker's life.")
    unit: Literal["samples", "seconds"]
    total: float = Field(description="Samples taken (idle ones left out), or seconds of CPU.")
    top: list[ProfiledFunction]


class Target(BaseModel):
    figure: str
    value: float | None
    target: str
    met: bool | None = Field(description="None when this run cannot tell.")
    note: str = ""


class BenchReport(BaseModel):
    schema_version: int = 4
    machine: Machine
    run: RunInfo
    floor: FloorFigures | None
    lifecycle: LifecycleFigures | None
    parked: ParkedFigures | None
    history: HistoryFigures
    worker: ProcessMemory | None = Field(
        description="The worker process at the end of the run; with several, the one with the "
        "highest peak RSS (the parked target is per worker process)."
    )
    workers: list[WorkerProcessFigures] = Field(
        default_factory=list, description="Every worker process, in the order they started."
    )
    server: ProcessMemory | None = Field(description="The dev server, when the bench started it.")
    targets: list[Target]
    profile: ProfileFigures | None = None
    time: TimeFigures | None = Field(
        default=None, description="Where the time goes, when the orders ran normal activities."
    )
    sandbox: SandboxFigures | None = Field(default=None, description="With `--remote`.")


def highest_peak(memories: Sequence[ProcessMemory | None]) -> ProcessMemory | None:
    """The process that held the most at its peak (VmHWM), of those read."""
    read = [memory for memory in memories if memory is not None]
    return max(read, key=lambda memory: memory.peak_rss_bytes or 0, default=None)


def cpu_ratio(orders: float | None, floor: float | None) -> float | None:
    """CPU per order over CPU per floor workflow, when both were read."""
    if orders is None or not floor:
        return None
    return round(orders / floor, 2)


def _at_most(figure: str, value: float | None, limit: float, target: str, note: str = "") -> Target:
    """A `<=` target; `note` says why this run cannot judge it, unless it already failed."""
    over = value is not None and value > limit
    met = None if value is None or (note and not over) else not over
    return Target(figure=figure, value=value, target=target, met=met, note="" if over else note)


def targets(
    run: RunInfo,
    history: HistoryFigures,
    lifecycle: LifecycleFigures | None = None,
    parked: ParkedFigures | None = None,
    worker: ProcessMemory | None = None,
) -> list[Target]:
    found: list[Target] = []
    if lifecycle is not None:
        ratio = lifecycle.ratio_to_floor
        # Paced by --rate, orders/s says how fast they were sent, not how fast they can go.
        note = "no floor run" if ratio is None else "paced by --rate" if run.rate else ""
        found.append(
            Target(
                figure=RATIO,
                value=ratio,
                target=f">= {FLOOR_RATIO_TARGET}x",
                met=None if note else ratio is not None and ratio >= FLOOR_RATIO_TARGET,
                note=note,
            )
        )
        for figure, value, limit in (
            (WORKER_CPU, lifecycle.worker_cpu_ratio_to_floor, WORKER_CPU_RATIO_TARGET),
            (SERVER_CPU, lifecycle.server_cpu_ratio_to_floor, SERVER_CPU_RATIO_TARGET),
        ):
            note = "no floor run" if run.floor == 0 else "not read" if value is None else ""
            found.append(_at_most(figure, value, limit, f"<= {limit:g}x", note))
    found.append(_at_most(EVENTS, history.events_max, EVENTS_TARGET, f"<= {EVENTS_TARGET}"))
    found.append(
        Target(
            figure=STATUS_CURRENT,
            value=history.status_current,
            target=f"all {history.orders}",
            met=history.status_current == history.orders,
        )
    )
    found.append(_at_most(ACTIONS, history.actions_max, ACTIONS_TARGET, f"<= {ACTIONS_TARGET}"))
    found.append(_at_most(BYTES, history.bytes_max, BYTES_TARGET, f"<= {BYTES_TARGET // 1024} KB"))
    if lifecycle is not None:
        # All at once, orders queue behind each other: only a paced run can tell.
        p99 = lifecycle.create_to_booked.p99_ms
        paced = run.rate is not None and run.rate >= BOOKED_TARGET_RATE
        found.append(
            Target(
                figure=BOOKED_P99,
                value=p99,
                target=f"<= {BOOKED_P99_TARGET_MS:.0f} ms at {BOOKED_TARGET_RATE:.0f}/s",
                met=(p99 <= BOOKED_P99_TARGET_MS) if paced and p99 is not None else None,
                note="" if paced else f"needs --rate {BOOKED_TARGET_RATE:.0f}",
            )
        )
    if parked is not None:
        # Judged at 10,000 parked orders; a smaller run can only fail them.
        small = (
            f"needs --parked {PARKED_TARGET_ORDERS}" if parked.orders < PARKED_TARGET_ORDERS else ""
        )
        peak = worker.peak_rss_bytes if worker is not None else None
        found += [
            _at_most(
                PARK_TIME,
                parked.seconds_to_park,
                PARK_SECONDS_TARGET,
                f"<= {PARK_SECONDS_TARGET:.0f} s for {PARKED_TARGET_ORDERS:,}",
                small,
            ),
            _at_most(
                PARKED_RSS,
                None if peak is None else round(peak / 1024 / 1024, 1),
                PARKED_WORKER_RSS_TARGET / 1024 / 1024,
                f"<= {PARKED_WORKER_RSS_TARGET // 1024 // 1024} MB throughout",
                small if peak is not None else "not read",
            ),
            _at_most(
                CLOSE_TIME,
                parked.seconds_to_close,
                CLOSE_SECONDS_TARGET,
                f"<= {CLOSE_SECONDS_TARGET:.0f} s after",
                small,
            ),
            _at_most(LOST, parked.orders - parked.closed, 0, "none", small),
        ]
    return found
