"""Long-running processes: the worker and the API, stoppable by one event.

`o2c worker`, `o2c api` and `o2c dev` all run these, so a worker started alone
and one started by the dev runner are the same worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import socket
from collections.abc import Iterator, Sequence
from contextvars import ContextVar

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from activities.order_activities import OrderActivities
from adapters.faults import AdapterSet, FaultProfile, apply_fault_profile
from adapters.local import LocalAdapters
from o2c_service.api import create_app
from o2c_service.observability.logs import uvicorn_log_config
from o2c_service.observability.runtime import temporal_runtime
from o2c_service.observability.tracing import Tracing
from o2c_service.queues import SERVED, Served
from o2c_service.settings import Settings
from o2c_service.systems import open_systems
from o2c_service.temporal import build_workers, connect, running

log = logging.getLogger("o2c")


def local_activities(
    adapters: LocalAdapters | AdapterSet, faults: FaultProfile | None = None
) -> OrderActivities:
    """Activities over the adapters, with the configured faults injected if any."""
    chosen = apply_fault_profile(adapters, faults or FaultProfile())
    return OrderActivities(
        crm=chosen.crm, billing=chosen.billing, logistics=chosen.logistics, payments=chosen.payments
    )


async def run_worker(
    settings: Settings,
    stop: asyncio.Event,
    served: Sequence[Served] = SERVED,
    *,
    tracing: Tracing | None = None,
) -> None:
    """Poll the queues `served` (the order task queue and each system's, by default) with
    the local adapters until `stop` is set; say so once per queue when all of them poll.
    Its metrics are served on O2C_METRICS_PORT, if set; `tracing`: spans for each workflow
    and activity of an order begun by a traced caller."""
    faults = FaultProfile.from_setting(settings.faults)
    if faults.rules:
        log.warning("fault injection is on: %d rules from O2C_FAULTS", len(faults.rules))
    for system in settings.remote_systems():
        log.info("%s is remote: %s", system, settings.system_url(system))
    runtime = temporal_runtime(settings, serve_metrics=True)
    if (address := settings.metrics_address()) is not None:
        log.info("worker metrics on http://%s/metrics", address)
    async with open_systems(settings) as adapters:
        client = await connect(settings, runtime=runtime, tracing=tracing)
        activities = local_activities(adapters, faults)
        workers = build_workers(client, settings.task_queue, activities, settings, served)
        async with running(workers):
            for worker in workers:
                log.info("worker polling task queue %s", worker.task_queue)
            await stop.wait()


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handlers (the runner decides when to stop),
    telling whoever waits when it listens."""

    def __init__(self, config: uvicorn.Config, listening: asyncio.Event | None) -> None:
        super().__init__(config)
        self.listening = listening

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.listening is not None and self.started:
            self.listening.set()


CODEC_KEY_IN_PATH = re.compile(r"(/codec/key/)[^/?#\s\"]+")
REDACTED = "<redacted>"


class RedactCodecKeys(logging.Filter):
    """Takes the API key out of `/codec/key/<key>/...` paths before a line is logged: the
    Temporal UI sends its key in the path (a browser cannot be made to send a header), and
    a log is read by more people than the key is meant for."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                CODEC_KEY_IN_PATH.sub(rf"\1{REDACTED}", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        if isinstance(record.msg, str):
            record.msg = CODEC_KEY_IN_PATH.sub(rf"\1{REDACTED}", record.msg)
        return True


def redact_codec_keys_in_access_log() -> None:
    """Put `RedactCodecKeys` on uvicorn's access logger (once), for every server that
    serves the codec routes; call it after `uvicorn.Config` has configured logging."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(found, RedactCodecKeys) for found in access.filters):
        access.addFilter(RedactCodecKeys())


_UNLOGGED: ContextVar[bool] = ContextVar("o2c_unlogged_request", default=False)
"""Set while an app served without an access log handles a request."""


class SkipUnloggedApps(logging.Filter):
    """Drops access-log lines of apps served without an access log. uvicorn has one access
    logger per process, on for every server once any server turns it on: with the API and
    the sandbox in one process (`o2c dev --remote`), the sandbox's requests would show as
    if the API had answered them, besides the sandbox's own log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _UNLOGGED.get()


def without_access_log(app: ASGIApp) -> ASGIApp:
    """`app`, its requests kept out of uvicorn's access log (`SkipUnloggedApps`)."""

    async def unlogged(scope: Scope, receive: Receive, send: Send) -> None:
        # Each request runs in a task of its own, so this marks this request only; uvicorn
        # logs it from within `send`, in this context.
        _UNLOGGED.set(True)
        await app(scope, receive, send)

    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(found, SkipUnloggedApps) for found in access.filters):
        access.addFilter(SkipUnloggedApps())
    return unlogged


async def serve_api(
    settings: Settings,
    stop: asyncio.Event,
    listening: asyncio.Event | None = None,
    *,
    tracing: Tracing | None = None,
) -> None:
    """Serve the HTTP API until `stop` is set, then finish in-flight requests."""
    app = create_app(settings, tracing=tracing)
    await serve_app(app, settings.api_host, settings.api_port, stop, listening)


async def serve_app(
    app: ASGIApp,
    host: str,
    port: int,
    stop: asyncio.Event,
    listening: asyncio.Event | None = None,
    *,
    access_log: bool = True,
) -> None:
    """Serve `app` (the API, the codec server alone, a sandbox system) until `stop` is set,
    then finish in-flight requests; no key in a codec path reaches the access log, and
    without `access_log` none of this app's requests do."""
    # uvicorn's own `access_log=False` would turn the access log off for every server in
    # the process: leave it on, and skip this app's requests instead.
    served = app if access_log else without_access_log(app)
    config = uvicorn.Config(
        served, host=host, port=port, log_level="info", log_config=uvicorn_log_config()
    )
    redact_codec_keys_in_access_log()
    server = EmbeddedServer(config, listening)
    serving = asyncio.create_task(server.serve())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopping.cancel()
    await serving


def stop_on_signals(stop: asyncio.Event) -> None:
    """Ctrl-C or SIGTERM sets `stop` so every part shuts down in order."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
