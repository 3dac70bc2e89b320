"""What `o2c bench` measured: the figures, the targets beside them, the table and the JSON.

The targets are reported, never enforced: a run on a busy laptop is still a
valid run, and comparing two JSON files says more than one verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field
from rich.table import Table

FLOOR_RATIO_TARGET = 0.8
EVENTS_TARGET = 30
BYTES_TARGET = 16 * 1024
BOOKED_P99_TARGET_MS = 300.0
BOOKED_TARGET_RATE = 10.0


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
            max_ms=ordered[-1] if ordered else None,
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
    local_activities: bool
    parked: int | None


class FloorFigures(BaseModel):
    """One trivial workflow with one trivial activity: what this server and worker can do."""

    workflows: int
    seconds: float
    per_second: float
    events_per_workflow: int


class LifecycleFigures(BaseModel):
    orders: int
    closed: int
    seconds: float = Field(description="From the first create to the last Closed.")
    per_second: float
    ratio_to_floor: float | None
    create_to_booked: Latency
    shipment_to_invoiced: Latency
    payment_to_closed: Latency


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


class ProcessMemory(BaseModel):
    pid: int
    rss_bytes: int | None
    peak_rss_bytes: int | None = Field(description="VmHWM: the most it ever held.")


class ParkedFigures(BaseModel):
    orders: int
    seconds_to_park: float = Field(description="From the first create to the last Invoiced.")
    worker_before: ProcessMemory | None = Field(description="After the warm-up, before parking.")
    worker_parked: ProcessMemory | None
    server_parked: ProcessMemory | None
    worker_bytes_per_order: float | None
    closed: int = Field(description="Orders whose workflow returned status Closed.")
    seconds_to_close: float = Field(description="From the first payment to the last Closed.")


class Target(BaseModel):
    figure: str
    value: float | None
    target: str
    met: bool | None = Field(description="None when this run cannot tell.")
    note: str = ""


class BenchReport(BaseModel):
    schema_version: int = 1
    machine: Machine
    run: RunInfo
    floor: FloorFigures | None
    lifecycle: LifecycleFigures | None
    parked: ParkedFigures | None
    history: HistoryFigures
    worker: ProcessMemory | None = Field(description="The worker process at the end of the run.")
    server: ProcessMemory | None = Field(description="The dev server, when the bench started it.")
    targets: list[Target]


def targets(
    run: RunInfo, lifecycle: LifecycleFigures | None, history: HistoryFigures
) -> list[Target]:
    found: list[Target] = []
    if lifecycle is not None:
        ratio = lifecycle.ratio_to_floor
        found.append(
            Target(
                figure="lifecycle throughput / floor",
                value=ratio,
                target=f">= {FLOOR_RATIO_TARGET}x",
                met=None if ratio is None else ratio >= FLOOR_RATIO_TARGET,
                note="" if ratio is not None else "no floor measured (--floor 0)",
            )
        )
    found.append(
        Target(
            figure="history events per order (max)",
            value=history.events_max,
            target=f"<= {EVENTS_TARGET}",
            met=history.events_max <= EVENTS_TARGET,
        )
    )
    found.append(
        Target(
            figure="history bytes per order (max)",
            value=history.bytes_max,
            target=f"<= {BYTES_TARGET // 1024} KB",
            met=history.bytes_max <= BYTES_TARGET,
        )
    )
    if lifecycle is not None:
        p99 = lifecycle.create_to_booked.p99_ms
        paced = run.rate is not None and run.rate >= BOOKED_TARGET_RATE
        found.append(
            Target(
                figure="create -> Booked p99 (ms)",
                value=p99,
                target=f"<= {BOOKED_P99_TARGET_MS:.0f} at {BOOKED_TARGET_RATE:.0f} orders/s",
                met=(p99 <= BOOKED_P99_TARGET_MS) if paced and p99 is not None else None,
                note=f"at {run.rate:g} orders/s"
                if run.rate is not None
                else "all at once: run with --rate 10 to compare",
            )
        )
    return found


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 1024 / 1024:.1f} MB"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _memory(memory: ProcessMemory | None) -> str:
    if memory is None:
        return "-"
    return f"{_mb(memory.rss_bytes)} now, {_mb(memory.peak_rss_bytes)} peak"


def _met(target: Target | None) -> str:
    if target is None or target.met is None:
        return "-"
    return "[green]yes[/green]" if target.met else "[red]no[/red]"


def report_table(report: BenchReport) -> Table:
    """Each figure, with its target (if it has one) and whether this run met it."""
    run = report.run
    mode = {"memory": "in-memory dev server", "sqlite": f"dev server on {run.sqlite}",
            "address": f"existing server at {run.address}"}[run.mode]  # fmt: skip
    activities = "local" if run.local_activities else "normal"
    pacing = f"{run.rate:g} orders/s" if run.rate else f"concurrency {run.concurrency}"
    title = f"o2c bench: {mode}, {activities} activities, {pacing}, {report.machine.cores} cores"
    table = Table("figure", "value", "target", "met", title=title)
    by_figure = {target.figure: target for target in report.targets}

    def row(figure: str, value: str, target_key: str | None = None, end: bool = False) -> None:
        target = by_figure.get(target_key) if target_key else None
        shown = target.target + (f" ({target.note})" if target.note else "") if target else ""
        table.add_row(figure, value, shown, _met(target), end_section=end)

    floor, lifecycle, parked, history = (
        report.floor,
        report.lifecycle,
        report.parked,
        report.history,
    )
    if floor is not None:
        row("floor workflows", str(floor.workflows))
        row("floor workflows/s", f"{floor.per_second:.1f}")
        row("floor history events", str(floor.events_per_workflow), end=True)
    if lifecycle is not None:
        row("orders closed", f"{lifecycle.closed} of {lifecycle.orders}")
        row("orders/s (first create to last Closed)", f"{lifecycle.per_second:.1f}")
        ratio = lifecycle.ratio_to_floor
        row("orders/s / floor workflows/s", "-" if ratio is None else f"{ratio:.2f}x",
            "lifecycle throughput / floor", end=True)  # fmt: skip
        for name, latency, key in (
            ("create -> Booked", lifecycle.create_to_booked, "create -> Booked p99 (ms)"),
            ("shipment sent -> Invoiced", lifecycle.shipment_to_invoiced, None),
            ("payment sent -> Closed", lifecycle.payment_to_closed, None),
        ):
            row(f"{name} p50 / p95", f"{_ms(latency.p50_ms)} / {_ms(latency.p95_ms)}")
            row(f"{name} p99", _ms(latency.p99_ms), key, end=key is None)
    if parked is not None:
        row("orders parked Invoiced", str(parked.orders))
        row("time to park", f"{parked.seconds_to_park:.1f} s")
        row("worker RSS, parked", _memory(parked.worker_parked))
        per_order = parked.worker_bytes_per_order
        row(
            "worker RSS per parked order",
            "-" if per_order is None else f"{per_order / 1024:.1f} KB",
        )
        row("dev server RSS, parked", _memory(parked.server_parked))
        row("orders closed after payment", f"{parked.closed} of {parked.orders}")
        row("time to close them all", f"{parked.seconds_to_close:.1f} s", end=True)
    row("history events per order (mean)", f"{history.events_mean:.1f}")
    row("history events per order (max)", str(history.events_max),
        "history events per order (max)")  # fmt: skip
    row("history bytes per order (mean)", f"{history.bytes_mean / 1024:.1f} KB")
    row("history bytes per order (max)", f"{history.bytes_max / 1024:.1f} KB",
        "history bytes per order (max)")  # fmt: skip
    row("workflow tasks per order (mean)", f"{history.workflow_tasks_mean:.1f}")
    activities = f"{history.activities_mean:.1f} / {history.local_activities_mean:.1f}"
    row("activities / local activities per order", activities, end=True)
    row("worker RSS (peak)", _mb(report.worker.peak_rss_bytes if report.worker else None))
    row("dev server RSS (peak)", _mb(report.server.peak_rss_bytes if report.server else None))
    return table
