"""Long-running processes: the worker and the API, stoppable by one event.

`o2c worker`, `o2c api` and `o2c dev` all run these, so a worker started alone
and one started by the dev runner are the same worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator

import uvicorn

from activities.order_activities import OrderActivities
from adapters.faults import FaultProfile, apply_fault_profile
from adapters.local import LocalAdapters, open_local_adapters
from o2c_service.api import create_app
from o2c_service.settings import Settings
from o2c_service.temporal import build_worker, connect

log = logging.getLogger("o2c")


def local_activities(
    adapters: LocalAdapters, faults: FaultProfile | None = None
) -> OrderActivities:
    """Activities over the local adapters, with the configured faults injected if any."""
    chosen = apply_fault_profile(adapters, faults or FaultProfile())
    return OrderActivities(
        crm=chosen.crm, billing=chosen.billing, logistics=chosen.logistics, payments=chosen.payments
    )


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    """Poll the order task queue with the local adapters until `stop` is set."""
    faults = FaultProfile.from_setting(settings.faults)
    if faults.rules:
        log.warning("fault injection is on: %d rules from O2C_FAULTS", len(faults.rules))
    adapters = open_local_adapters(settings.database_url)
    try:
        client = await connect(settings)
        activities = local_activities(adapters, faults)
        async with build_worker(client, settings.task_queue, activities, settings):
            log.info("worker polling task queue %s", settings.task_queue)
            await stop.wait()
    finally:
        adapters.database.dispose()


class _EmbeddedServer(uvicorn.Server):
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


async def serve_api(
    settings: Settings, stop: asyncio.Event, listening: asyncio.Event | None = None
) -> None:
    """Serve the HTTP API until `stop` is set, then finish in-flight requests."""
    config = uvicorn.Config(
        create_app(settings), host=settings.api_host, port=settings.api_port, log_level="info"
    )
    server = _EmbeddedServer(config, listening)
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
