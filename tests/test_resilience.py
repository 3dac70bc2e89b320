"""A batch of orders still closes, each exactly once, through outages of real processes.

Each test starts its own Temporal dev server (a subprocess on a SQLite file in
tmp_path), its own `o2c worker` subprocess(es) on a task queue of its own and a
local-systems database of its own, then drives a batch of orders the way the
3PL and the bank would (`tests.resilience_support.Batch`) while it breaks
something: it kills the worker, restarts the server, or makes every system
flaky. Every order must reach Closed, and the local systems must show each
side effect exactly once.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from o2c_service.orders import OrderService
from o2c_workflows.models import OrderStatus
from tests.resilience_support import (
    Batch,
    Processes,
    assert_each_order_done_once,
    batch_orders,
)

pytestmark = pytest.mark.timeout(300)

BATCH_SIZE = 12
FIRST_WAVE = 6
"""Orders started before the outage; the rest are started while it lasts."""

WORKER_STARTUP = 60.0

SLOW_CALLS = json.dumps({"rules": [{"system": "*", "latency_ms": 300}]})
"""For the worker that gets killed: every call takes a while, so the kill finds
activities in flight rather than an idle worker."""

FLAKY_SYSTEMS = json.dumps(
    {
        "seed": 11,
        "rules": [
            {"system": "*", "error_rate": 0.3},
            {"system": "*", "unknown_outcome_rate": 0.2},
        ],
    }
)


@pytest_asyncio.fixture
async def processes(tmp_path: Path) -> AsyncIterator[Processes]:
    running = Processes.for_test(tmp_path)
    try:
        yield running
    finally:
        running.close()


async def test_a_worker_killed_mid_batch_is_replaced_and_every_order_closes(
    processes: Processes,
) -> None:
    client = await processes.start_server()
    doomed = processes.start_worker(faults=SLOW_CALLS)
    batch = Batch(OrderService(client, processes.settings.task_queue), processes)
    orders = batch_orders(BATCH_SIZE)

    batch.start(orders[:FIRST_WAVE])
    await batch.wait_until(lambda: batch.count_reached(OrderStatus.BOOKED) >= 1, "one Booked")
    await processes.kill_worker(doomed)
    # The rest of the batch arrives while no worker runs.
    batch.start(orders[FIRST_WAVE:])
    assert 1 <= batch.count_reached(OrderStatus.BOOKED) <= FIRST_WAVE

    replacement = processes.start_worker()
    await processes.wait_until_polling(replacement, WORKER_STARTUP)
    await batch.finish()

    await assert_each_order_done_once(client, processes.settings, orders)


async def test_the_server_restarted_mid_batch_and_every_order_closes(
    processes: Processes,
) -> None:
    client = await processes.start_server()
    processes.start_worker()
    batch = Batch(OrderService(client, processes.settings.task_queue), processes)
    orders = batch_orders(BATCH_SIZE)

    batch.start(orders[:FIRST_WAVE])
    await batch.wait_until(lambda: batch.count_reached(OrderStatus.BOOKED) >= 1, "one Booked")
    await processes.stop_server()
    # The rest of the batch arrives while the server is down: creating them fails
    # until it is back, and their drivers keep trying.
    second_wave = orders[FIRST_WAVE:]
    batch.start(second_wave)
    assert 1 <= batch.count_reached(OrderStatus.BOOKED) <= FIRST_WAVE
    await batch.wait_until(
        lambda: all(order.order_id in batch.last_error for order in second_wave),
        "every late order told that Temporal is unavailable",
    )

    # Same SQLite file, same port. The test's client, the worker's and the
    # drivers' reconnect on their own: the new client is not used.
    await processes.start_server()
    await batch.finish()

    await assert_each_order_done_once(client, processes.settings, orders)


async def test_every_system_flaky_and_unsure_and_every_order_closes_once(
    processes: Processes,
) -> None:
    client = await processes.start_server()
    worker = processes.start_worker(faults=FLAKY_SYSTEMS)
    batch = Batch(OrderService(client, processes.settings.task_queue), processes)
    orders = batch_orders(BATCH_SIZE)

    batch.start(orders)
    await batch.finish()

    await assert_each_order_done_once(client, processes.settings, orders)
    log = worker.log.read_text(errors="replace")
    assert "injected fault" in log and "failed (error_rate" in log, "no system error injected"
    assert "its answer was lost" in log, "no unknown outcome injected"
