"""Remote systems: a batch still closes, each order exactly once, when the systems are
reached over HTTP and the network, the systems and the workers misbehave.

Each test runs its own Temporal dev server, `o2c sandbox` (CRM, billing, logistics and
payments over HTTP, on four ports of its own, over the test's database) and `o2c worker`
processes calling it (`tests.support.resilience_processes.Processes`, remote mode), and
drives a batch of orders the way the 3PL and the bank would. The sandbox injects the
faults at the HTTP level and logs every request it answered: the tests read that log
to prove the faults happened, and to count billing's calls against its rate limit.
The worker killed and the server restarted in remote mode are in test_resilience.py.
"""

from __future__ import annotations

import json

import pytest

from adapters.faults import OPERATIONS
from o2c_service.systems import ApiSystems
from o2c_workflows.models import OrderStatus
from tests.support.rate_limit_check import CALLS_PER_ORDER, billing_at_its_rate_limit
from tests.support.resilience_batch import (
    BATCH_DEADLINE,
    STATE_CHANGES,
    Batch,
    assert_each_order_done_once,
    batch_orders,
    paid_by_card,
    service_for,
)
from tests.support.resilience_processes import Processes, completed_attempts, under_way_on
from tests.support.sandbox_calls import lost_and_found, lost_and_made_again, statuses

pytestmark = pytest.mark.timeout(300)

LOOKUPS = "find_"
"""How every lookup by idempotency key is named (`find_invoice`, `find_reservation`, ...)."""

FAILURES: list[dict[str, str | int]] = [
    {},  # unavailable: 503
    {"error_kind": "rate_limited", "retry_after_ms": 1},  # 429, Retry-After: 1
    {"error_kind": "timeout"},  # held past the read timeout before acting, then 504
]

FLAKY_OVER_HTTP = json.dumps(
    {
        "seed": 11,
        "rules": [
            # About three calls in ten fail (27%: 10% each way, drawn one after the other)
            # before the system acts. Not the lookups a retry makes first: failing those
            # too gives each retry of a write two chances to fail, and with the
            # activities' backoff (1 s doubling to 30 s) a batch then takes minutes.
            *(
                {"system": system, "operation": operation, "error_rate": 0.1, **failure}
                for system, operations in OPERATIONS.items()
                for operation in sorted(operations)
                if not operation.startswith(LOOKUPS)
                for failure in FAILURES
            ),
            # One state change in five takes effect, and then its answer is held past
            # the read timeout: the retry must find the first one's effect by its key.
            *(
                {"system": system, "operation": operation, "unknown_outcome_rate": 0.2}
                for system, operation in STATE_CHANGES
            ),
        ],
    }
)

FLAKY_BATCH = 6

CALL_LATENCY_MS = 500
"""Every sandbox request in the two-worker test takes this long, so calls are in flight."""
TWO_WORKER_BATCH = 8
CAUGHT = 3
"""Activities the doomed worker must have under way when it is killed: at 500 ms a call,
that some of them are still under way a moment later, at the kill, is all but certain."""

RATE = 2.0
"""Billing calls per second in the rate-limit test (O2C_BILLING_RATE_LIMIT)."""
RATE_BATCH = 8


async def test_every_system_flaky_and_unsure_over_http_and_every_order_closes_once(
    processes: Processes,
) -> None:
    client = await processes.start_server()
    await processes.start_sandbox(faults=FLAKY_OVER_HTTP)
    await processes.wait_until_polling(processes.start_worker())
    batch = Batch(service_for(client, processes), processes)
    orders = batch_orders(FLAKY_BATCH)

    batch.start(orders)
    await batch.finish()

    calls = await processes.calls()
    # The outage is over: the systems answer again (reconciling reads every system).
    await processes.stop_sandbox()
    await processes.start_sandbox()
    await assert_each_order_done_once(client, processes.settings, orders)
    seen = statuses(calls)
    assert seen[503] and seen[429] and seen[504], f"not every fault was injected: {seen}"
    # Writes that took effect while their answer was lost, found by the retry's lookup...
    assert lost_and_found(calls), "no write took effect with its answer lost"
    # ... and writes held before the system acted, not found, and made by a retry.
    assert lost_and_made_again(calls), "no write timed out before it was made"


async def test_a_worker_killed_with_calls_in_flight_and_every_card_is_charged_once(
    processes: Processes,
) -> None:
    """Two workers serve every queue; one is killed while it has calls under way. Its
    activities are retried on the other once their attempts time out, and its orders'
    workflow tasks move there too: each order is reserved, shipped, invoiced and its
    card captured exactly once."""
    client = await processes.start_server()
    await processes.start_sandbox(latency_ms=CALL_LATENCY_MS)
    doomed, survivor = processes.start_worker(), processes.start_worker()
    await processes.wait_until_polling(doomed)
    await processes.wait_until_polling(survivor)
    # The cards are stored in payments over HTTP, as the API stores them.
    systems = ApiSystems(processes.settings)
    try:
        batch = Batch(service_for(client, processes, systems.payments), processes)
        orders = [paid_by_card(order) for order in batch_orders(TWO_WORKER_BATCH)]
        caught: list[tuple[str, str]] = []

        async def calls_under_way() -> bool:
            caught[:] = await under_way_on(client, list(batch.seen), doomed)
            return len(caught) >= CAUGHT

        batch.start(orders)
        await batch.wait_until(calls_under_way, f"{CAUGHT} activities under way on one worker")
        await processes.kill_worker(doomed)
        assert batch.count_reached(OrderStatus.CLOSED) < len(orders), batch.report()
        await batch.finish()
    finally:
        await systems.close()

    await assert_each_order_done_once(client, processes.settings, orders)
    retried = [
        (order_id, activity)
        for order_id, activity in caught
        if max(await completed_attempts(client, order_id, activity)) > 1
    ]
    assert retried, f"none of {caught} was lost with the killed worker"


async def test_billing_is_called_within_its_rate_limit_and_every_order_closes(
    processes: Processes,
) -> None:
    """O2C_BILLING_RATE_LIMIT=2 with every order in flight at once, one worker process:
    counted by billing (the sandbox) as its requests arrive, no window of 1, 2, 5 or 10
    seconds holds more than 2 calls a second, though the server starts a burst on the
    queue after an idle spell (the worker's HTTP client paces them: adapters/http/pacing.py)."""
    report = await billing_at_its_rate_limit(processes, RATE_BATCH, RATE, BATCH_DEADLINE)
    print("\n".join(report.lines()))

    assert report.closed == RATE_BATCH
    assert len(report.times) >= CALLS_PER_ORDER * RATE_BATCH
    for seconds in (1, 2, 5, 10):
        most = report.most_in(seconds)
        assert most <= RATE * seconds, f"{most} billing calls in {seconds} s"
