"""Billing at its rate limit, counted where it counts: by the billing system (the sandbox).

`python -m tests.support.rate_limit_check [--orders 50] [--rate 2] [--partitions 1]`
starts a dev server as `o2c dev` does (one partition per task queue; `--partitions 4`
is the server's default), the sandbox serving the four systems over HTTP and one
`o2c worker` with O2C_BILLING_RATE_LIMIT=<rate>. It puts every order in flight at
once, drives them all to Closed (`tests.support.resilience_batch.Batch`), then reads
billing's calls from the sandbox's log (`GET /_sandbox/calls`: when each request
arrived) and prints how many there were, over how long, the average rate, the most in
any 1 s and any 5 s window and in one second of the clock, and whether every order
closed.

The resilience suite (`test_resilience_remote.py`) runs the same with a small batch
and asserts the limit holds in every window.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from o2c_service.dev_partitions import partitions
from o2c_workflows.models import OrderStatus
from tests.support.codec import TEST_KEYS, keys_setting
from tests.support.resilience_batch import Batch, batch_orders, service_for
from tests.support.resilience_processes import Processes
from tests.support.sandbox_calls import (
    burst_beyond,
    most_in_a_calendar_second,
    most_in_a_window,
    of_system,
)

SYSTEM = "billing"
CALLS_PER_ORDER = 4
"""Billing calls of an order paid on invoice: the account, the credit check (open balance),
the invoice and the payment's application."""


@dataclass(frozen=True)
class RateReport:
    orders: int
    closed: int
    rate: float
    times: list[float]
    """When each billing call reached the sandbox, seconds since the epoch, in order."""

    @property
    def duration(self) -> float:
        return self.times[-1] - self.times[0] if self.times else 0.0

    @property
    def average(self) -> float:
        """Calls per second from the first to the last."""
        return (len(self.times) - 1) / self.duration if self.duration else 0.0

    def most_in(self, seconds: float) -> int:
        return most_in_a_window(self.times, seconds)

    def lines(self) -> list[str]:
        return [
            f"orders: {self.orders}",
            f"{SYSTEM} calls: {len(self.times)} at a limit of {self.rate:g}/s",
            f"duration: {self.duration:.1f} s (first call to last)",
            f"average rate: {self.average:.2f}/s",
            f"max in any 1 s window: {self.most_in(1.0)}",
            f"max in any 5 s window: {self.most_in(5.0)}",
            f"max in one second of the clock: {most_in_a_calendar_second(self.times)}",
            f"burst beyond the rate: {burst_beyond(self.times, self.rate):.1f} (any stretch of"
            f" T seconds held at most that + {self.rate:g} x T)",
            f"all closed: {'yes' if self.closed == self.orders else 'no'}"
            f" ({self.closed} of {self.orders})",
        ]


async def billing_at_its_rate_limit(
    processes: Processes, count: int, rate: float, deadline: float
) -> RateReport:
    """`count` orders in flight at once against the sandbox, billing's queue limited to
    `rate` activities a second; each driven to Closed within `deadline` seconds."""
    client = await processes.start_server()
    await processes.start_sandbox()
    worker = processes.start_worker(settings={"O2C_BILLING_RATE_LIMIT": str(rate)})
    await processes.wait_until_polling(worker)
    batch = Batch(service_for(client, processes), processes, deadline=deadline)
    orders = batch_orders(count)
    batch.start(orders)
    await batch.finish()
    calls = of_system(await processes.calls(), SYSTEM)
    return RateReport(
        orders=count,
        closed=batch.count_reached(OrderStatus.CLOSED),
        rate=rate,
        times=[call.at for call in calls],
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=50)
    parser.add_argument("--rate", type=float, default=2.0, help="billing calls per second")
    parser.add_argument(
        "--partitions", type=int, default=1, help="task queue partitions of the dev server"
    )
    args = parser.parse_args()
    # As the suite runs (tests/conftest.py): this client and the processes it starts share keys.
    os.environ.setdefault("O2C_CODEC_KEYS", keys_setting(TEST_KEYS))
    seconds = args.orders * CALLS_PER_ORDER / args.rate
    with tempfile.TemporaryDirectory(prefix="o2c-rate-limit-") as folder:
        processes = Processes.for_test(Path(folder))
        processes.server_config = partitions(args.partitions)
        try:
            report = await billing_at_its_rate_limit(
                processes, args.orders, args.rate, deadline=2 * seconds + 60
            )
        finally:
            processes.close()
    print(f"dev server with {args.partitions} partition(s) per task queue")
    print("\n".join(report.lines()))


if __name__ == "__main__":
    asyncio.run(main())
