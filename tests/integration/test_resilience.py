"""A batch of orders still closes, each exactly once, through outages of real processes.

Each test starts its own Temporal dev server (a subprocess on a SQLite file in
tmp_path), its own `o2c worker` subprocess(es) on a task queue of its own, and a
database of its own for the local systems. It drives a batch of orders the way
the 3PL and the bank would (`tests.support.resilience_batch.Batch`) while it breaks
something: it kills the worker, restarts the server, or makes every system
flaky. Every order must reach Closed, and the local systems must show each
reservation, shipment, invoice, payment and payment application exactly once.

The worker killed and the server restarted with normal activities under way run in
two modes: `local`, the worker calling the systems in its own process, and `remote`,
calling them over HTTP in `o2c sandbox` (a process of its own over the same database),
each on its system's task queue. The remote-only tests are in test_resilience_remote.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from temporalio.client import Client

from adapters.local.database import LocalDatabase
from o2c_service.orders import OrderService
from o2c_workflows.models import OrderRequest, OrderStatus
from tests.support.recovery import recovery_after_kill
from tests.support.resilience_batch import (
    STATE_CHANGES,
    Batch,
    assert_each_order_done_once,
    batch_orders,
    reservations_made,
    service_for,
    with_line,
)
from tests.support.resilience_processes import (
    READ_TIMEOUT,
    Processes,
    WorkerProcess,
    activity_running,
    completed_attempts,
    local_calls_recorded,
)
from tests.support.sandbox_calls import SandboxCall

pytestmark = pytest.mark.timeout(300)

BATCH_SIZE = 12
FIRST_WAVE = 6
"""Orders started, one after another, before the outage; the rest start during it."""

SLOW_SKU = "SKU-GIZMO"
"""The last order of the first wave has a line of it, which the first worker reserves slowly."""

RESERVE_STOCK = "logistics.reserve_stock"

MODES = [pytest.param(False, id="local"), pytest.param(True, id="remote")]
"""Whether the worker calls the systems over HTTP in the sandbox (`remote`)."""


def slow_reservations(latency_ms: int) -> str:
    """A fault profile (`O2C_FAULTS`): reserving stock for SLOW_SKU takes `latency_ms`."""
    rule = {
        "system": "logistics",
        "operation": "reserve_stock",
        "sku": SLOW_SKU,
        "latency_ms": latency_ms,
    }
    return json.dumps({"rules": [rule]})


async def worker_reserving_slowly(
    processes: Processes, remote: bool, latency_ms: int
) -> WorkerProcess:
    """A worker whose reservations of SLOW_SKU take `latency_ms`: its own systems are slow
    (O2C_FAULTS), or (remote) the sandbox is, and the worker waits as long for an answer."""
    if not remote:
        return processes.start_worker(faults=slow_reservations(latency_ms))
    await processes.start_sandbox(faults=slow_reservations(latency_ms))
    patient = {"O2C_HTTP_READ_TIMEOUT": str(latency_ms / 1000 + READ_TIMEOUT)}
    return processes.start_worker(settings=patient)


def normal_activities(client: Client, processes: Processes) -> OrderService:
    """Orders whose every call is a normal activity: on the order task queue against the
    worker's own systems, on each system's queue against remote ones (as the API starts
    orders then)."""
    return OrderService(client, processes.settings.task_queue, system_queues=processes.remote)


def reservation_calls(calls: list[SandboxCall], order: OrderRequest) -> list[SandboxCall]:
    """The sandbox's calls that made or looked up the order's reservation, oldest first."""
    return [
        call
        for call in calls
        if call.operation in ("reserve_stock", "find_reservation")
        and (call.idempotency_key or call.looked_up or "").startswith(f"{order.order_id}:")
    ]


FLAKY_SYSTEMS = json.dumps(
    {
        "seed": 11,
        "rules": [
            # Three calls in ten fail before they are made, lookups included. As rate
            # limits with a short retry-after: with the activities' exponential backoff
            # (1 s doubling to 30 s) the same rate takes minutes for a batch, because a
            # retry after a failure makes two calls (look up by key, then do).
            {"system": "*", "error_rate": 0.3, "error_kind": "rate_limited", "retry_after_ms": 200},
            # One state change in five takes effect but its answer is lost; these are
            # retried with the backoff, and the retry must find the first one's effect.
            *(
                {"system": system, "operation": operation, "unknown_outcome_rate": 0.2}
                for system, operation in STATE_CHANGES
            ),
        ],
    }
)


@pytest.mark.parametrize("remote", MODES)
async def test_a_worker_killed_mid_batch_is_replaced_and_every_order_closes(
    processes: Processes, remote: bool
) -> None:
    client = await processes.start_server()
    # Reserving the slow order takes long, so the kill certainly finds that activity
    # under way: locally longer than the activity's start-to-close timeout; in the
    # sandbox, which delays the retry's call too, 5 s, well within it. Normal activities:
    # an activity lost with its worker is retried once its attempt times out.
    doomed = await worker_reserving_slowly(processes, remote, 5_000 if remote else 60_000)
    batch = Batch(normal_activities(client, processes), processes)
    orders = batch_orders(BATCH_SIZE)
    caught = orders[FIRST_WAVE - 1] = with_line(orders[FIRST_WAVE - 1], SLOW_SKU)

    await batch.start_in_turn(orders[:FIRST_WAVE])
    await batch.wait_until(
        lambda: activity_running(client, caught.order_id, RESERVE_STOCK),
        f"{caught.order_id} reserving stock",
    )
    await processes.kill_worker(doomed)
    assert 0 < batch.count_reached(OrderStatus.BOOKED) < FIRST_WAVE, batch.report()
    # The rest of the batch arrives while no worker runs.
    batch.start(orders[FIRST_WAVE:])
    await processes.wait_until_polling(processes.start_worker())
    await batch.finish()

    await assert_each_order_done_once(client, processes.settings, orders)
    # The reservation lost with the killed worker was retried once its attempt timed out.
    assert await completed_attempts(client, caught.order_id, RESERVE_STOCK) == [2]
    if remote:
        # Over the wire: the killed worker's request reached logistics, and the retry
        # first asked, by the same key, whether it had been made.
        calls = reservation_calls(await processes.calls(), caught)
        assert [call.operation for call in calls[:2]] == ["reserve_stock", "find_reservation"]
        assert calls[1].looked_up == calls[0].idempotency_key, calls


async def test_a_worker_killed_with_local_activities_under_way_is_replaced(
    processes: Processes,
) -> None:
    """The default mode: a local activity runs inside its order's workflow task, so a
    worker killed mid-call loses the task; the next worker replays the order and makes
    the call again, under the same idempotency key."""
    client = await processes.start_server()
    doomed = processes.start_worker(faults=slow_reservations(60_000))
    batch = Batch(service_for(client, processes), processes)
    orders = batch_orders(BATCH_SIZE)
    caught = orders[FIRST_WAVE - 1] = with_line(orders[FIRST_WAVE - 1], SLOW_SKU)

    await batch.start_in_turn(orders[:FIRST_WAVE])

    async def reserving() -> bool:
        # The worker heartbeats a long workflow task, recording the local activities done
        # so far: the customer check, the billing account and the open balance.
        recorded = await local_calls_recorded(client, caught.order_id)
        return recorded >= 3 and batch.status(caught) in (None, OrderStatus.ENTERED)

    await batch.wait_until(reserving, f"{caught.order_id} reserving stock")
    await processes.kill_worker(doomed)
    batch.start(orders[FIRST_WAVE:])
    await processes.wait_until_polling(processes.start_worker())
    await batch.finish()

    await assert_each_order_done_once(client, processes.settings, orders)


SDK_REPLAY_FAILURES = (
    "Update machine does not handle this event",
    "Invalid transition while handling update response",
)
"""What the SDK core says when it cannot replay an order whose Update the server recorded
out of order around the restart (docs/operations.md, "An order that cannot be replayed")."""


@contextmanager
def expected_failure_if_the_sdk_cannot_replay() -> Iterator[None]:
    """Seen in 2 of 40 runs of this test alone and in some full runs: after the restart the
    server records an Update's acceptance after an activity scheduled in the same workflow
    task, which the SDK core cannot replay; the order closes, but reading it (a query, so a
    replay) fails. That failure, and only that one, is an expected failure (the history is
    kept and replayed by tests/workflow/test_sdk_replay_issue.py); any other fails."""
    try:
        yield
    except AssertionError as failure:
        cause: BaseException | None = failure
        while cause is not None:
            said = next((sign for sign in SDK_REPLAY_FAILURES if sign in str(cause)), None)
            if said is not None:
                pytest.xfail(f"the SDK core could not replay an order after the restart: {said}")
            cause = cause.__cause__ or cause.__context__
        raise


@pytest.mark.parametrize("remote", MODES)
async def test_the_server_restarted_mid_batch_and_every_order_closes(
    processes: Processes, remote: bool
) -> None:
    client = await processes.start_server()
    # The slow order's reservation is made while the server is down, so its answer
    # cannot be reported then. Normal activities: the reservation is seen under way as a
    # pending activity (a local one is only seen once its workflow task reports it).
    await worker_reserving_slowly(processes, remote, 5_000)
    batch = Batch(normal_activities(client, processes), processes)
    orders = batch_orders(BATCH_SIZE)
    caught = orders[FIRST_WAVE - 1] = with_line(orders[FIRST_WAVE - 1], SLOW_SKU)
    systems = LocalDatabase.from_url(processes.settings.database_url)

    await batch.start_in_turn(orders[:FIRST_WAVE])
    await batch.wait_until(
        lambda: activity_running(client, caught.order_id, RESERVE_STOCK),
        f"{caught.order_id} reserving stock",
    )
    await processes.stop_server()
    down = time.time()
    assert 0 < batch.count_reached(OrderStatus.BOOKED) < len(orders), batch.report()
    # The rest of the batch arrives while the server is down: their drivers cannot
    # even create them, and keep trying.
    late = orders[FIRST_WAVE:]
    batch.start(late)
    await batch.wait_until(
        lambda: (
            all(order.order_id in batch.last_error for order in late)
            and reservations_made(systems, caught.order_id) == 1
        ),
        "the slow reservation made and every late order told that Temporal is unavailable",
    )
    systems.dispose()

    # The same SQLite file and port. The test's client (also the drivers') and the
    # worker's reconnect on their own: the client the restart hands back is not used.
    await processes.start_server()
    with expected_failure_if_the_sdk_cannot_replay():
        await batch.finish()
        await assert_each_order_done_once(client, processes.settings, orders)
    if remote:
        # Logistics answered the reservation after the server had stopped (and made it
        # before the restart, as waited for above).
        [made] = [c for c in reservation_calls(await processes.calls(), caught) if c.writes]
        assert made.answered and made.at + made.duration_ms / 1000 > down, (made, down)


async def test_the_server_restarted_with_local_activities_under_way_and_every_order_closes(
    processes: Processes,
) -> None:
    """The default mode: the slow order's reservation, a local activity, is made while
    the server is down, inside a workflow task the worker then cannot complete. After
    the restart the order is replayed and the call made again under the same key, which
    finds the reservation already made: one reservation, and every order closes."""
    client = await processes.start_server()
    processes.start_worker(faults=slow_reservations(12_000))
    batch = Batch(service_for(client, processes), processes)
    orders = batch_orders(BATCH_SIZE)
    caught = orders[FIRST_WAVE - 1] = with_line(orders[FIRST_WAVE - 1], SLOW_SKU)
    systems = LocalDatabase.from_url(processes.settings.database_url)

    await batch.start_in_turn(orders[:FIRST_WAVE])

    async def reserving() -> bool:
        # A workflow task longer than 80% of its timeout is heartbeated with the local
        # activities done so far: the customer check, the billing account, the balance.
        recorded = await local_calls_recorded(client, caught.order_id)
        return recorded >= 3 and batch.status(caught) in (None, OrderStatus.ENTERED)

    await batch.wait_until(reserving, f"{caught.order_id} reserving stock")
    await processes.stop_server()
    late = orders[FIRST_WAVE:]
    batch.start(late)
    await batch.wait_until(
        lambda: (
            all(order.order_id in batch.last_error for order in late)
            and reservations_made(systems, caught.order_id) == 1
        ),
        "the slow reservation made and every late order told that Temporal is unavailable",
    )
    systems.dispose()

    await processes.start_server()
    await batch.finish()

    await assert_each_order_done_once(client, processes.settings, orders)


async def test_every_system_flaky_and_unsure_and_every_order_closes_once(
    processes: Processes,
) -> None:
    client = await processes.start_server()
    worker = processes.start_worker(faults=FLAKY_SYSTEMS)
    batch = Batch(service_for(client, processes), processes)
    orders = batch_orders(BATCH_SIZE)

    batch.start(orders)
    await batch.finish()

    await assert_each_order_done_once(client, processes.settings, orders)
    log = worker.log.read_text(errors="replace")
    assert "failed (error_rate" in log, "no system error was injected"
    assert "its answer was lost" in log, "no unknown outcome was injected"


RESTART_BATCH = 40
"""Orders waiting when the worker is killed; `python -m tests.support.recovery` measures 100."""


async def test_a_worker_restarted_with_orders_in_flight_replays_them_without_task_timeouts(
    processes: Processes,
) -> None:
    """The new worker rebuilds every order from an empty cache. Sized for the machine, it
    replays a few at a time, each within its task timeout, instead of all at once."""
    recovery = await recovery_after_kill(processes, RESTART_BATCH)

    assert recovery.orders == RESTART_BATCH  # each answered a query and took its shipment
    assert not recovery.timeouts_of_the_new_worker(), "\n".join(recovery.lines())
