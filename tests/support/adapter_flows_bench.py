"""A micro-benchmark of the local adapters alone: concurrent order flows, no Temporal.

Each flow makes the adapter calls an order's happy path makes, through the
protocol methods, in order: get the customer, ensure its billing account, read
its open balance, reserve stock, request and confirm the shipment, invoice,
record the payment and apply it. Flows run `--concurrency` at a time on one
event loop whose default executor has `--threads` threads, as in the worker,
where each adapter call is `asyncio.to_thread`. Prints calls/s, process CPU per
call, context switches per call and the latency of each kind of call, e.g.

    .venv/bin/python -m tests.support.adapter_flows_bench --orders 500 --concurrency 20

Not part of the product, nor a test: the figures are in docs/benchmark.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.pool import Pool

from adapters.billing.models import ApplyPayment, InvoiceLine, InvoiceRequest
from adapters.local import LocalAdapters, LocalDatabase, open_local_adapters
from adapters.logistics.models import ReserveStock, ShipmentConfirmation, ShipmentRequest
from adapters.payments.models import PaymentRecordRequest
from o2c_domain.lines import SkuQuantity

T = TypeVar("T")
CUSTOMERS = ("CUST-ACME", "CUST-GLOBEX")
SKUS = ("SKU-WIDGET", "SKU-GADGET", "SKU-GIZMO")


class Timings:
    """Latency of each call, by the adapter method's name."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = defaultdict(list)

    async def time(self, name: str, call: Awaitable[T]) -> T:
        start = time.perf_counter()
        result = await call
        self.seconds[name].append(time.perf_counter() - start)
        return result

    @property
    def calls(self) -> int:
        return sum(len(values) for values in self.seconds.values())


async def order_flow(adapters: LocalAdapters, order: str, number: int, timings: Timings) -> None:
    """One order's adapter calls, its keys unique to the order."""
    crm, billing, logistics, payments = (
        adapters.crm,
        adapters.billing,
        adapters.logistics,
        adapters.payments,
    )
    t = timings.time
    customer = await t("get_customer", crm.get_customer(CUSTOMERS[number % len(CUSTOMERS)]))
    account = await t("ensure_account", billing.ensure_account(customer))
    await t("open_balance", billing.open_balance(customer.customer_id))
    lines = [SkuQuantity(sku=SKUS[number % len(SKUS)], quantity=2)]
    reservation = await t(
        "reserve_stock",
        logistics.reserve_stock(
            ReserveStock(idempotency_key=f"{order}:reserve", order_id=order, lines=lines)
        ),
    )
    shipment = await t(
        "request_shipment",
        logistics.request_shipment(
            ShipmentRequest(
                idempotency_key=f"{order}:ship",
                order_id=order,
                reservation_id=reservation.reservation_id,
                ship_to="1 Road Runner Way",
                lines=lines,
            )
        ),
    )
    await t(
        "confirm_shipment",
        logistics.confirm_shipment(
            ShipmentConfirmation(
                idempotency_key=f"{order}:dispatch",
                shipment_id=shipment.shipment_id,
                carrier="DHL",
                tracking_number=f"JD{number:06d}",
                lines=lines,
            )
        ),
    )
    price = Decimal("12.50")
    invoiced = InvoiceLine(sku=lines[0].sku, quantity=2, unit_price=price, amount=2 * price)
    invoice = await t(
        "create_invoice",
        billing.create_invoice(
            InvoiceRequest(
                idempotency_key=f"{order}:invoice",
                order_id=order,
                account_id=account.account_id,
                currency=account.currency,
                invoice_date=date(2025, 3, 1),
                due_date=date(2025, 3, 31),
                lines=[invoiced],
            )
        ),
    )
    payment = await t(
        "record_payment",
        payments.record_payment(
            PaymentRecordRequest(
                idempotency_key=f"{order}:payment",
                payment_id=f"PAY-{order}",
                order_id=order,
                amount=invoice.amount,
                currency=invoice.currency,
            )
        ),
    )
    await t(
        "apply_payment",
        billing.apply_payment(
            ApplyPayment(
                idempotency_key=f"{order}:apply",
                invoice_id=invoice.invoice_id,
                payment_id=payment.payment_id,
                amount=payment.amount,
            )
        ),
    )


def _context_switches() -> int:
    """The process's voluntary and involuntary context switches so far (GIL hand-offs,
    lock waits and preemptions: a measure of threads getting in each other's way)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_nvcsw + usage.ru_nivcsw


async def run(adapters: LocalAdapters, orders: int, concurrency: int, threads: int) -> None:
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=threads))
    timings = Timings()
    run_id = uuid.uuid4().hex[:8]  # keys of their own, should the database be reused
    await order_flow(adapters, f"bench:{run_id}:warm-up", 0, Timings())  # accounts, connections
    connections = [0]

    def counted(*_: Any) -> None:
        connections[0] += 1

    event.listen(Pool, "connect", counted)
    numbers = iter(range(orders))

    async def worker() -> None:
        for number in numbers:
            await order_flow(adapters, f"bench:{run_id}:{number}", number, timings)

    switches = _context_switches()
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    switches = _context_switches() - switches
    event.remove(Pool, "connect", counted)
    calls = timings.calls
    print(
        f"{orders} orders, {calls} calls, concurrency {concurrency}, {threads} threads, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    print(f"wall {wall:.2f} s: {calls / wall:.0f} calls/s, {orders / wall:.1f} orders/s")
    print(f"CPU {cpu:.2f} s: {1000 * cpu / calls:.2f} ms/call, {cpu / wall:.2f} cores")
    print(f"context switches: {switches / calls:.1f}/call; connections opened: {connections[0]}")
    print(f"{'call':<18} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, values in timings.seconds.items():
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        print(
            f"{name:<18} {1000 * statistics.median(ordered):8.1f} "
            f"{1000 * p95:8.1f} {1000 * ordered[-1]:8.1f}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20, help="flows in flight at once")
    parser.add_argument(
        "--threads",
        type=int,
        default=min(32, (os.cpu_count() or 1) + 4),
        help="executor threads (default: asyncio's default executor's)",
    )
    parser.add_argument(
        "--url",
        help="database URL (default: a SQLite file in a temp folder); on PostgreSQL the "
        "tables go in a schema of their own, dropped afterwards",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        url = args.url or f"sqlite:///{Path(folder) / 'bench.db'}"
        admin = LocalDatabase.from_url(url)
        schema = f"o2c_bench_{uuid.uuid4().hex}" if admin.is_postgres else None
        adapters = open_local_adapters(url, schema=schema)
        try:
            asyncio.run(run(adapters, args.orders, args.concurrency, args.threads))
        finally:
            adapters.database.dispose()
            if schema is not None:
                with admin.engine.begin() as connection:
                    connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    main()
