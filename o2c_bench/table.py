"""`o2c bench`'s output for people: every figure beside its target, and the profile."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Column, Table

from o2c_bench.report import (
    ACTIONS,
    BOOKED_P99,
    BYTES,
    CLOSE_TIME,
    EVENTS,
    LOST,
    PARK_TIME,
    PARKED_RSS,
    RATIO,
    SERVER_CPU,
    STATUS_CURRENT,
    WORKER_CPU,
    BenchReport,
    CpuPerItem,
    Latency,
    ProcessMemory,
    SandboxFigures,
    Target,
    TimeFigures,
)


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 1024 / 1024:.1f} MB"


def _kb(value: float | None) -> str:
    return "-" if value is None else f"{value / 1024:.1f} KB"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _cpu(cpu: CpuPerItem) -> str:
    return " / ".join(_ms(value) for value in (cpu.worker_ms, cpu.server_ms, cpu.bench_ms)) + " ms"


def _latency(latency: Latency) -> str:
    return (
        " / ".join(_ms(value) for value in (latency.p50_ms, latency.p95_ms, latency.p99_ms)) + " ms"
    )


def _memory(memory: ProcessMemory | None) -> str:
    if memory is None:
        return "-"
    return f"{_mb(memory.rss_bytes)} ({_mb(memory.peak_rss_bytes)} peak)"


def _memories(memories: Sequence[ProcessMemory]) -> str:
    """One process's memory; several: each one's RSS, then their sum and the largest."""
    if len(memories) <= 1:
        return _memory(memories[0] if memories else None)
    each = ", ".join(_mb(memory.rss_bytes) for memory in memories)
    return f"{each} ({_sum_max(memories)})"


def _sum_max(memories: Sequence[ProcessMemory]) -> str:
    rss = [memory.rss_bytes or 0 for memory in memories]
    return f"sum {_mb(sum(rss))}, max {_mb(max(rss, default=0))}"


def _each_ms(cpu: CpuPerItem) -> str:
    return " + ".join(_ms(value) for value in cpu.worker_ms_each) + " ms"


def _met(target: Target | None) -> str:
    if target is None:
        return ""
    if target.met is None:
        return target.note or "-"
    return "[green]yes[/green]" if target.met else "[red]no[/red]"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _kinds(by_kind: dict[str, float]) -> str:
    """`9 activity scheduled, 7 search attribute upsert, ...`, the most first."""
    ordered = sorted(by_kind.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{count:g} {kind}" for kind, count in ordered) or "-"


def report_table(report: BenchReport) -> Table:
    """Each figure, with its target (if it has one) and whether this run met it."""
    run = report.run
    mode = {"memory": "in-memory dev server", "sqlite": f"dev server on {run.sqlite}",
            "address": f"server at {run.address}"}[run.mode]  # fmt: skip
    local = run.local_activities
    kind = {True: "local", False: "normal"}.get(local) if isinstance(local, bool) else None
    kind = kind or f"local for {', '.join(local) if isinstance(local, list) else ''}"
    queues = " on system queues" if run.system_queues and local is not True else ""
    pacing = f"{run.rate:g} orders/s" if run.rate else f"concurrency {run.concurrency}"
    load = "{:.1f} -> {:.1f}".format(*report.machine.load_average)
    several = run.workers > 1
    which = f"worker 1 of {run.workers}" if several else "worker"
    profiled = f", {which} profiled ({report.profile.tool})" if report.profile else ""
    workers = f", {run.workers} worker processes" if several else ""
    remote = (
        f", systems at the sandbox (+{run.sandbox_latency_ms} ms a request)" if run.remote else ""
    )
    title = (
        f"o2c bench: {mode}, {kind} activities{queues}{remote}, {pacing}{workers}, "
        f"{report.machine.cores} cores (load {load}){profiled}"
    )
    table = Table(Column("figure", no_wrap=True), "value", "target", "met", title=title)
    by_figure = {target.figure: target for target in report.targets}

    def row(figure: str, value: str, target_key: str | None = None, end: bool = False) -> None:
        target = by_figure.get(target_key) if target_key else None
        table.add_row(figure, value, target.target if target else "", _met(target), end_section=end)

    if (floor := report.floor) is not None:
        row(
            "floor workflows/s",
            f"{floor.per_second:.1f} ({floor.workflows} in {floor.seconds:.1f} s)",
        )
        row(
            "floor history events, Actions",
            f"{floor.events_per_workflow}, {floor.actions_per_workflow}",
        )
        row("floor CPU: worker / server / bench", _cpu(floor.cpu), end=not several)
        if several:
            row("floor CPU: each worker", _each_ms(floor.cpu), end=True)
    if (lifecycle := report.lifecycle) is not None:
        row(
            "orders closed",
            f"{lifecycle.closed} of {lifecycle.orders} in {lifecycle.seconds:.1f} s",
        )
        row("orders/s", f"{lifecycle.per_second:.1f}")
        row("orders/s / floor workflows/s", _ratio(lifecycle.ratio_to_floor), RATIO)
        row("order CPU: worker / server / bench", _cpu(lifecycle.cpu))
        if several:
            row("order CPU: each worker", _each_ms(lifecycle.cpu))
        row("worker CPU/order / floor's", _ratio(lifecycle.worker_cpu_ratio_to_floor), WORKER_CPU)
        row("server CPU/order / floor's", _ratio(lifecycle.server_cpu_ratio_to_floor), SERVER_CPU)
        queries = f"{lifecycle.status_queries_per_order:.1f}"
        row("bench's status queries/order", queries, end=True)
        row("create -> Booked p50/95/99", _latency(lifecycle.create_to_booked), BOOKED_P99)
        row("shipment -> Invoiced p50/95/99", _latency(lifecycle.shipment_to_invoiced))
        row("payment -> Closed p50/95/99", _latency(lifecycle.payment_to_closed), end=True)
    if (parked := report.parked) is not None:
        row(
            "orders parked Invoiced",
            f"{parked.orders} in {parked.seconds_to_park:.1f} s",
            PARK_TIME,
        )
        row("worker RSS, parked", _memories(parked.workers_parked))
        row(
            f"worker peak RSS, whole run{' (max)' if several else ''}",
            _mb(report.worker.peak_rss_bytes if report.worker else None),
            PARKED_RSS,
        )
        summed = " (all workers)" if several else ""
        row(f"worker RSS per parked order{summed}", _kb(parked.worker_bytes_per_order))
        row("dev server RSS, parked", _memory(parked.server_parked))
        row("dev server RSS per parked order", _kb(parked.server_bytes_per_order))
        closed = f"{parked.closed} of {parked.orders} in {parked.seconds_to_close:.1f} s"
        row("closed after payment", closed, CLOSE_TIME)
        row("lost (not Closed)", str(parked.orders - parked.closed), LOST, end=True)
    history = report.history
    row(
        "history events/order mean, max", f"{history.events_mean:.1f}, {history.events_max}", EVENTS
    )
    current = f"{history.status_current} of {history.orders}"
    row("OrderStatus current at each wait", current, STATUS_CURRENT)
    size = f"{history.bytes_mean / 1024:.1f}, {history.bytes_max / 1024:.1f} KB"
    row("history bytes/order mean, max", size, BYTES)
    row("workflow tasks/order", f"{history.workflow_tasks_mean:.1f}")
    activities = f"{history.activities_mean:.1f}, {history.local_activities_mean:.1f}"
    row("activities/order: normal, local", activities, end=True)
    actions = f"{history.actions_mean:.1f}, {history.actions_max}"
    row("billable Actions/order mean, max", actions, ACTIONS)
    row("Actions/order by kind (mean)", _kinds(history.actions_by_kind), end=True)
    if several:
        for index, worker in enumerate(report.workers, start=1):
            roles = [
                role for role, on in (("floor", worker.floor), ("profiled", worker.profiled)) if on
            ]
            tasks = f"{worker.workflow_tasks} workflow, {worker.activity_tasks} activity tasks"
            row(
                f"worker {index} (pid {worker.pid}{', ' if roles else ''}{', '.join(roles)})",
                f"{_memory(worker)}; {tasks}",
            )
        row("worker RSS", _sum_max(report.workers))
    else:
        row("worker RSS", _memory(report.worker))
    row("dev server RSS", _memory(report.server))
    return table


def time_tables(report: BenchReport) -> list[Table]:
    """Where the time goes: the share of an order's time, its activities, and (with
    `--remote`) the sandbox's side of the calls; none when the orders ran no normal
    activity and no sandbox served them."""
    tables: list[Table] = []
    if (time := report.time) is not None:
        tables += [_share_table(time), _activities_table(time)]
    if (sandbox := report.sandbox) is not None:
        tables.append(_sandbox_table(sandbox))
    return tables


def _share_table(time: TimeFigures) -> Table:
    share = time.share
    title = (
        f"where the time goes: {time.orders} orders, {_ms(share.end_to_end_mean_ms)} ms "
        "each from start to Closed (mean, the histories' clock)"
    )
    table = Table(Column("the order was", no_wrap=True), "ms per order", "share", title=title)
    for what, ms, pct in (
        ("in an activity call (start-to-close)", share.activity_call_ms, share.activity_call_pct),
        (
            "queued for an activity worker (schedule-to-start)",
            share.activity_queue_ms,
            share.activity_queue_pct,
        ),
        ("in a workflow task (in the worker)", share.workflow_task_ms, share.workflow_task_pct),
        (
            "queued for a workflow task (on its task queue)",
            share.workflow_task_queue_ms,
            share.workflow_task_queue_pct,
        ),
        ("waiting on the outside world or a timer", share.waiting_ms, share.waiting_pct),
    ):
        table.add_row(what, _ms(ms), f"{pct:.0f}%")
    return table


def _activities_table(time: TimeFigures) -> Table:
    table = Table(
        Column("activity", no_wrap=True),
        "per order",
        "queued mean / p95",
        "call mean / p95",
        title="activities, from the histories (schedule-to-start: on the task queue; "
        "start-to-close: the call)",
    )
    for activity in time.activities:
        table.add_row(
            activity.activity,
            f"{activity.per_order:g}",
            _pair(activity.schedule_to_start_mean_ms, activity.schedule_to_start_p95_ms),
            _pair(activity.start_to_close_mean_ms, activity.start_to_close_p95_ms),
        )
    per_order = sum(activity.per_order for activity in time.activities)
    queued = sum(a.per_order * a.schedule_to_start_mean_ms for a in time.activities)
    called = sum(a.per_order * a.start_to_close_mean_ms for a in time.activities)
    table.add_section()
    table.add_row(
        "all, summed per order", f"{per_order:g}", f"{_ms(queued)} ms", f"{_ms(called)} ms"
    )
    return table


def _sandbox_table(sandbox: SandboxFigures) -> Table:
    systems = ", ".join(f"{system} {calls}" for system, calls in sandbox.calls_by_system.items())
    cpu = "-" if sandbox.cpu_ms_per_order is None else f"{_ms(sandbox.cpu_ms_per_order)} ms"
    title = (
        f"the sandbox's side (pid {sandbox.pid}, +{sandbox.latency_ms} ms a request): "
        f"{sandbox.calls} calls, {sandbox.calls_per_order:g} per order ({systems}); "
        f"its CPU per order {cpu}"
    )
    table = Table(
        Column("system", no_wrap=True),
        "operation",
        "calls",
        "server mean / p95",
        "failed",
        title=title,
    )
    previous = None
    for operation in sandbox.operations:
        if previous is not None and operation.system != previous:
            table.add_section()
        previous = operation.system
        table.add_row(
            operation.system,
            operation.operation,
            str(operation.calls),
            _pair(operation.mean_ms, operation.p95_ms),
            str(operation.failed),
        )
    return table


def _pair(mean: float | None, p95: float | None) -> str:
    return f"{_ms(mean)} / {_ms(p95)} ms"


def profile_table(report: BenchReport) -> Table | None:
    """The worker's top functions by own samples (or own time), with `--profile`."""
    profile = report.profile
    if profile is None:
        return None
    unit = "samples" if profile.unit == "samples" else "s"
    title = (
        f"worker profile ({profile.tool}, {profile.scope}): top {len(profile.top)} functions "
        f"by own {profile.unit}, of {profile.total:g} {unit}; all in {profile.file}"
    )
    table = Table("own", "own %", "total", "total %", "function", "where", title=title)
    for function in profile.top:
        table.add_row(
            f"{function.own:g}",
            f"{function.own_pct:.1f}",
            f"{function.total:g}",
            f"{function.total_pct:.1f}",
            function.function,
            function.location,
        )
    return table
