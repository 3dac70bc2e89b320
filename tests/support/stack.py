"""The whole service for integration tests: dev server, worker, API on loopback.

It is the same code `o2c dev` runs (`run_worker` is replaced only to use the
test's own database file and the test environment's Temporal address): the order
task queue and every system's queue are served.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from adapters.local import LocalAdapters, open_local_adapters
from o2c_service.runners import local_activities, serve_api
from o2c_service.settings import Settings
from o2c_service.temporal import build_workers, running
from o2c_workflows.models import OrderStatus
from o2c_workflows.state import OrderState
from tests.support.api_keys import bearer, make_key, remember_key
from tests.support.history import DEFAULT_TIMEOUT, POLL_INTERVAL


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def free_ports(count: int) -> int:
    """The first of `count` consecutive free loopback ports (the sandbox takes four)."""
    for _ in range(100):
        first = free_port()
        with ExitStack() as probes:
            try:
                for port in range(first, first + count):
                    probes.enter_context(socket.socket()).bind(("127.0.0.1", port))
            except OSError:
                continue
            return first
    raise RuntimeError(f"found no {count} consecutive free ports")


@dataclass
class Stack:
    settings: Settings
    env: WorkflowEnvironment
    adapters: LocalAdapters
    http: httpx.AsyncClient
    """Calls the API with `api_key`."""
    api_key: str
    """A support key (every route but the webhooks' takes it)."""

    @property
    def api_url(self) -> str:
        return self.settings.api_url

    async def wait_for_status(self, order_id: str, status: OrderStatus) -> OrderState:
        """Poll the API the way an integration would, until the order reaches `status`."""
        deadline = asyncio.get_running_loop().time() + DEFAULT_TIMEOUT
        while True:
            response = await self.http.get(f"/orders/{order_id}")
            response.raise_for_status()
            state = OrderState.model_validate(response.json())
            if state.status is status:
                return state
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"order {order_id} is {state.status}, not {status}")
            await asyncio.sleep(POLL_INTERVAL)


@pytest_asyncio.fixture(scope="session")
async def stack(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    data_dir: Path = tmp_path_factory.mktemp("o2c")
    port = free_port()
    settings = Settings(
        temporal_address=dev_env.client.service_client.config.target_host,
        task_queue=f"orders-{uuid.uuid4()}",
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'o2c.db'}",
        api_database_url=f"sqlite:///{data_dir / 'api.db'}",
        api_port=port,
        api_url=f"http://127.0.0.1:{port}",
    )
    adapters = open_local_adapters(settings.database_url)
    key = make_key(settings, name="stack-support")
    remember_key(settings.api_url, key)
    stop, listening = asyncio.Event(), asyncio.Event()
    workers = build_workers(
        dev_env.client, settings.task_queue, local_activities(adapters), settings
    )
    api = asyncio.create_task(serve_api(settings, stop, listening))
    try:
        async with (
            running(workers),
            httpx.AsyncClient(base_url=settings.api_url, timeout=30, headers=bearer(key)) as http,
        ):
            await asyncio.wait_for(listening.wait(), 30)
            yield Stack(settings=settings, env=dev_env, adapters=adapters, http=http, api_key=key)
            stop.set()
            await api
    finally:
        stop.set()
        adapters.database.dispose()
