"""`serve_sandbox`: the four systems' contracts on their loopback ports until stopped."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from adapters.billing.http_contract import BILLING_CONTRACT
from adapters.crm.http_contract import CRM_CONTRACT
from adapters.faults import FaultProfile, with_faults
from adapters.http.contract import Contract
from adapters.local import LocalAdapters, open_local_adapters
from adapters.logistics.http_contract import LOGISTICS_CONTRACT
from adapters.payments.http_contract import PAYMENTS_CONTRACT
from o2c_sandbox.routes import Behaviour, CallLog, contract_app
from o2c_service.runners import EmbeddedServer, serve_app
from o2c_service.settings import Settings

log = logging.getLogger("o2c.sandbox")

SANDBOX_FAULTS_SETTING = "O2C_SANDBOX_FAULTS"

CONTRACTS: dict[str, Contract] = {
    contract.system: contract
    for contract in (CRM_CONTRACT, BILLING_CONTRACT, LOGISTICS_CONTRACT, PAYMENTS_CONTRACT)
}


def sandbox_apps(
    adapters: LocalAdapters,
    calls: CallLog,
    settings: Settings,
    faults: FaultProfile | None = None,
) -> dict[str, FastAPI]:
    """One app per system over the local adapters, with the profile's faults."""
    profile = faults or FaultProfile()
    apps: dict[str, FastAPI] = {}
    for system, contract in CONTRACTS.items():
        token = getattr(settings, f"{system}_token")
        behaviour = Behaviour(
            latency_ms=settings.sandbox_latency_ms,
            hold_seconds=settings.sandbox_hold_seconds,
            token=token.get_secret_value() if token is not None else None,
        )
        adapter = with_faults(getattr(adapters, system), system, profile)
        apps[system] = contract_app(contract, adapter, calls, behaviour)
    return apps


async def serve_sandbox(
    settings: Settings,
    stop: asyncio.Event,
    listening: asyncio.Event | None = None,
    *,
    calls: CallLog | None = None,
) -> None:
    """Serve CRM, billing, logistics and payments on O2C_SANDBOX_PORT and the next three
    ports over O2C_DATABASE_URL (seeded with the demo data when new), with
    O2C_SANDBOX_LATENCY_MS and O2C_SANDBOX_FAULTS, until `stop` is set."""
    faults = FaultProfile.from_setting(settings.sandbox_faults, SANDBOX_FAULTS_SETTING)
    if faults.rules:
        log.warning(
            "sandbox faults are on: %d rules from %s", len(faults.rules), SANDBOX_FAULTS_SETTING
        )
    adapters = await asyncio.to_thread(open_local_adapters, settings.database_url)
    try:
        apps = sandbox_apps(adapters, calls or CallLog(), settings, faults)
        ports = settings.sandbox_ports()
        each = {system: asyncio.Event() for system in apps}
        servers = [
            asyncio.create_task(
                serve_app(
                    app, settings.sandbox_host, ports[system], stop, each[system], access_log=False
                )
            )
            for system, app in apps.items()
        ]
        ready = asyncio.create_task(_all_listening(list(each.values())))
        await asyncio.wait([*servers, ready], return_when=asyncio.FIRST_COMPLETED)
        if ready.done():
            for system, url in settings.sandbox_urls().items():
                log.info("sandbox %s listening on %s", system, url)
            if listening is not None:
                listening.set()
        else:
            ready.cancel()
        await asyncio.gather(*servers)
    finally:
        adapters.database.dispose()


@asynccontextmanager
async def running_sandbox(
    apps: dict[str, FastAPI], host: str = "127.0.0.1"
) -> AsyncIterator[dict[str, str]]:
    """Serve `apps` on free loopback ports for the length of the block; yields each
    system's base URL. For tests and benchmarks that run the sandbox in-process."""
    servers: list[tuple[EmbeddedServer, asyncio.Task[None]]] = []
    urls: dict[str, str] = {}
    try:
        for system, app in apps.items():
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, 0))
            config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
            server = EmbeddedServer(config, asyncio.Event())
            servers.append((server, asyncio.create_task(server.serve(sockets=[listener]))))
            urls[system] = f"http://{host}:{listener.getsockname()[1]}"
        for server, task in servers:
            assert server.listening is not None
            listening = asyncio.create_task(server.listening.wait())
            await asyncio.wait([listening, task], return_when=asyncio.FIRST_COMPLETED)
            if not listening.done():
                listening.cancel()
                raise RuntimeError("a sandbox server stopped before it listened")
        yield urls
    finally:
        for server, _ in servers:
            server.should_exit = True
        await asyncio.gather(*(task for _, task in servers), return_exceptions=True)


async def _all_listening(events: list[asyncio.Event]) -> None:
    for event in events:
        await event.wait()
