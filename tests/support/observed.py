"""The worker and the API as `o2c dev` runs them (`run_worker`, `serve_api`), in this
process, on the test's dev server: for tests of what they tell an operator (metrics,
traces), which need the worker's own runtime and client rather than the shared stack's.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from adapters.local import open_local_adapters
from o2c_service.observability.tracing import Tracing
from o2c_service.runners import run_worker, serve_api
from o2c_service.settings import Settings
from tests.support.api_keys import bearer, make_key
from tests.support.stack import Stack, free_port


@asynccontextmanager
async def observed_stack(
    env: WorkflowEnvironment, data_dir: Path, *, tracing: Tracing | None = None, **settings: Any
) -> AsyncIterator[Stack]:
    """A worker (its metrics on a free port) and the API on their own task queue and
    database; `settings` overrides any other setting."""
    api_port = free_port()
    defaults: dict[str, Any] = {
        "temporal_address": env.client.service_client.config.target_host,
        "task_queue": f"observed-{uuid.uuid4()}",
        "data_dir": data_dir,
        "database_url": f"sqlite:///{data_dir / 'o2c.db'}",
        "api_database_url": f"sqlite:///{data_dir / 'api.db'}",
        "api_port": api_port,
        "api_url": f"http://127.0.0.1:{api_port}",
        "metrics_port": free_port(),
    }
    configured = Settings(**(defaults | settings))
    adapters = open_local_adapters(configured.database_url)
    key = make_key(configured, name="observed-support")
    stop, listening = asyncio.Event(), asyncio.Event()
    worker = asyncio.create_task(run_worker(configured, stop, tracing=tracing))
    api = asyncio.create_task(serve_api(configured, stop, listening, tracing=tracing))
    try:
        async with httpx.AsyncClient(
            base_url=configured.api_url, timeout=30, headers=bearer(key)
        ) as http:
            await asyncio.wait_for(listening.wait(), 30)
            yield Stack(configured, env, adapters, http, key)
    finally:
        stop.set()
        await asyncio.gather(worker, api)
        adapters.database.dispose()


def families(exposition: str) -> dict[str, Metric]:
    """Prometheus's text format, parsed: each metric family by name."""
    return {family.name: family for family in text_string_to_metric_families(exposition)}


def value(found: dict[str, Metric], sample: str, **labels: str) -> float:
    """The sum of the samples named `sample` on the wire whose labels include `labels`; 0 for
    none. (The parser names a counter's samples `<family>_total` even where the wire did
    not, as the Temporal SDK's counters do not: either name matches.)"""
    return sum(
        point.value
        for family in found.values()
        for point in family.samples
        if point.name in (sample, f"{sample}_total") and labels.items() <= point.labels.items()
    )
