"""`o2c dev`, `o2c worker`, `o2c api` and `o2c bench`: the commands that run processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from o2c_service.cli.common import (
    app,
    err,
    fail,
    out,
)
from o2c_service.queues import SERVED
from o2c_service.settings import Settings

if TYPE_CHECKING:
    from o2c_domain.systems import LocalCalls
    from o2c_service.observability.tracing import Tracing
    from o2c_service.queues import Served

# What each command needs is imported when it runs: `o2c orders ...` and the other API
# clients start without loading the worker, Temporal's SDK or OpenTelemetry.


def _logging(settings: Settings) -> None:
    """Log as O2C_LOG_FORMAT says (text, or JSON lines), at INFO."""
    from o2c_service.observability.logs import configure_logging

    configure_logging(settings.log_format)


@contextlib.contextmanager
def _tracing(service: str, *, http_clients: bool = False) -> Iterator[Tracing | None]:
    """Traces as the OTEL_* variables ask (none unless they do), flushed when the process
    ends; `http_clients`: a span for each call to a remote system, too."""
    from o2c_service.observability.tracing import Tracing, TracingSettingError, exporter_names

    if not exporter_names(os.environ):
        yield None  # OpenTelemetry's SDK is not even imported
        return
    try:
        tracing = Tracing.from_environment(os.environ, service)
    except TracingSettingError as error:
        fail(str(error))
    if tracing is not None and http_clients:
        tracing.instrument_http_clients()
    try:
        yield tracing
    finally:
        if tracing is not None:
            tracing.shutdown()


@app.command()
def dev(
    remote: Annotated[
        bool,
        typer.Option(
            "--remote",
            help="Also serve CRM, billing, logistics and payments over HTTP (the sandbox, "
            "from O2C_SANDBOX_PORT, 8101..8104) and call every system not given an "
            "O2C_<SYSTEM>_URL there.",
        ),
    ] = False,
) -> None:
    """Run everything locally: Temporal dev server + UI, worker and API (Ctrl-C stops all)."""
    from adapters.faults import FaultProfileError
    from o2c_service.codec.keys import CodecKeysError
    from o2c_service.dev import run_dev

    settings = Settings()
    _logging(settings)
    try:
        with _tracing("o2c", http_clients=True) as tracing:
            asyncio.run(run_dev(settings, remote=remote, tracing=tracing))
    except (RuntimeError, FaultProfileError, CodecKeysError) as error:
        fail(str(error))


def _served(text: str) -> tuple[Served, ...]:
    from o2c_service.queues import served_queues

    try:
        return served_queues(name for name in text.split(",") if name.strip())
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="'--systems'") from None


@app.command()
def worker(
    systems: Annotated[
        str,
        typer.Option(
            help="The task queues to serve, comma-separated: orders (the workflows and every "
            "activity on O2C_TASK_QUEUE) and crm, billing, logistics, payments (each "
            "system's activities on O2C_TASK_QUEUE.<system>).",
        ),
    ] = ",".join(SERVED),
) -> None:
    """Run a worker for the order task queue and the systems' queues against the configured
    Temporal."""
    from adapters.faults import FaultProfileError
    from o2c_service.codec.keys import CodecKeysError
    from o2c_service.observability.runtime import MetricsPortUnavailable
    from o2c_service.runners import run_worker, stop_on_signals

    served = _served(systems)
    settings = Settings()
    _logging(settings)

    async def main(tracing: Tracing | None) -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        await run_worker(settings, stop, served, tracing=tracing)

    try:
        with _tracing("o2c-worker", http_clients=True) as tracing:
            asyncio.run(main(tracing))
    except (FaultProfileError, CodecKeysError, MetricsPortUnavailable) as error:
        fail(str(error))


@app.command()
def sandbox(
    latency_ms: Annotated[
        int | None,
        typer.Option(min=0, help="Milliseconds added to every request (O2C_SANDBOX_LATENCY_MS)."),
    ] = None,
    faults: Annotated[
        str | None,
        typer.Option(
            help="A fault profile, inline JSON or a file, in O2C_FAULTS' format, applied at "
            "the HTTP level (O2C_SANDBOX_FAULTS)."
        ),
    ] = None,
) -> None:
    """Serve CRM, billing, logistics and payments over HTTP on loopback ports (from
    O2C_SANDBOX_PORT, 8101..8104), over the local systems' database."""
    from adapters.faults import FaultProfile, FaultProfileError
    from o2c_sandbox.serve import serve_sandbox
    from o2c_service.runners import stop_on_signals

    _logging(Settings())
    update: dict[str, object] = {}
    if latency_ms is not None:
        update["sandbox_latency_ms"] = latency_ms
    if faults is not None:
        try:
            FaultProfile.from_setting(faults, "--faults")  # the message names the option
        except FaultProfileError as error:
            fail(str(error))
        update["sandbox_faults"] = faults
    settings = Settings().model_copy(update=update)

    async def main() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        await serve_sandbox(settings, stop)

    try:
        asyncio.run(main())
    except FaultProfileError as error:
        fail(str(error))


@app.command()
def api() -> None:
    """Serve the HTTP API (OpenAPI at /docs)."""
    from o2c_service.codec.keys import CodecKeysError
    from o2c_service.runners import serve_api, stop_on_signals

    settings = Settings()
    _logging(settings)
    try:
        settings.codec()  # the API encrypts what it sends to orders: no keys, no start
    except CodecKeysError as error:
        fail(str(error))

    async def main(tracing: Tracing | None) -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        await serve_api(settings, stop, tracing=tracing)

    with _tracing("o2c-api", http_clients=True) as tracing:
        asyncio.run(main(tracing))


# -- bench (o2c_bench/run.py) -----------------------------------------------------


@app.command()
def bench(
    orders: Annotated[
        int, typer.Option("--orders", "-n", min=1, help="Orders, Entered to Closed.")
    ] = 100,
    floor: Annotated[
        int | None,
        typer.Option(min=0, help="Floor workflows (default: as many as orders; 0: none)."),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Workflows in flight at once.")] = 20,
    rate: Annotated[
        float | None, typer.Option(min=0.01, help="Start orders at this many per second instead.")
    ] = None,
    local_activities: Annotated[
        bool | None,
        typer.Option(
            "--local-activities/--no-local-activities",
            help="Adapter calls as local activities (default: O2C_LOCAL_ACTIVITIES).",
        ),
    ] = None,
    system_queues: Annotated[
        bool | None,
        typer.Option(
            "--system-queues/--no-system-queues",
            help="Normal activities on each system's task queue (default: O2C_SYSTEM_QUEUES).",
        ),
    ] = None,
    sqlite: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Run the dev server on this SQLite file.")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Use the Temporal server at HOST:PORT instead.")
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", dir_okay=False, help="Write every figure here.")
    ] = None,
    parked: Annotated[
        int | None, typer.Option(min=1, help="Park N orders Invoiced, read memory, pay them all.")
    ] = None,
    profile: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False,
            help="Profile the worker (the first, with --workers) during the orders; "
            "write its stacks here.",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1, help="Worker processes on the order task queue (the floor's runs in the first)."
        ),
    ] = 1,
    remote: Annotated[
        bool,
        typer.Option(
            "--remote",
            help="Call every system over HTTP at a sandbox the bench starts (normal "
            "activities on the systems' task queues), and report where the time goes.",
        ),
    ] = False,
    latency_ms: Annotated[
        int | None,
        typer.Option(
            min=0, help="With --remote: milliseconds the sandbox adds to every request (20)."
        ),
    ] = None,
) -> None:
    """Measure throughput, latency, history size and memory per order against a floor workflow."""
    from o2c_bench.options import DEFAULT_LATENCY_MS
    from o2c_bench.run import BenchError, BenchOptions, run
    from o2c_bench.table import profile_table, report_table, time_tables

    if sqlite is not None and address is not None:
        fail("--sqlite starts a dev server on that file; --address uses another server: not both")
    if latency_ms is not None and not remote:
        fail("--latency-ms is the sandbox's: give it with --remote")
    if remote and local_activities:
        fail("--remote calls every system over HTTP, as normal activities: not --local-activities")
    settings = Settings()
    local: LocalCalls = settings.local_activities if local_activities is None else local_activities
    if remote:
        # Remote systems always run as normal activities (Settings.local_calls), on their queues.
        local = False
        system_queues = True if system_queues is None else system_queues
    options = BenchOptions(
        orders=orders,
        floor=floor,
        concurrency=concurrency,
        rate=rate,
        local_activities=local,
        system_queues=settings.system_queues if system_queues is None else system_queues,
        sqlite=sqlite,
        address=address,
        parked=parked,
        profile=profile,
        workers=workers,
        remote=remote,
        latency_ms=DEFAULT_LATENCY_MS if latency_ms is None else latency_ms,
    )
    try:
        report = run(options, err)
    except BenchError as error:
        fail(str(error))
    # Piped to a file, rich would wrap at 80 columns.
    console = out if out.is_terminal else Console(width=110)
    console.print(report_table(report))
    for table in time_tables(report):
        console.print(table)
    if (profiled := profile_table(report)) is not None:
        console.print(profiled)
    if json_file is not None:
        json_file.write_text(report.model_dump_json(indent=2) + "\n")
        out.print(f"figures written to {json_file}", highlight=False, markup=False)
