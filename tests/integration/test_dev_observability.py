"""`o2c dev` as operations would run it: JSON log lines (O2C_LOG_FORMAT=json), the worker's
metrics on O2C_METRICS_PORT and the API's on its own port (docs/operations.md).

Three orders go through it: one booked, one held for credit (a hold the workflow
decides), one held out of stock (a refusal logistics's activity reports).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client

from tests.integration.test_dev_command import DevProcess, o2c_dev
from tests.integration.test_end_to_end import demo_order
from tests.support.history import until
from tests.support.observed import families, value
from tests.support.stack import free_port

OVER_ACMES_CREDIT = [{"sku": "SKU-WIDGET", "quantity": 10, "unit_price": "6000.00"}]
"""60,000 EUR: more than CUST-ACME's credit limit of 50,000 (the demo data)."""
MORE_THAN_IN_STOCK = [{"sku": "SKU-RARE", "quantity": 6, "unit_price": "10.00"}]
"""SKU-RARE has 5 in stock (the demo data)."""


@dataclass
class Driven:
    dev: DevProcess
    metrics_port: int
    booked: str
    held: str
    out_of_stock: str
    run_ids: dict[str, str]
    """Each order's workflow run id, as Temporal has it."""

    def lines(self) -> list[dict[str, Any]]:
        """Every line `o2c dev` logged so far, parsed; a line that is not a JSON object fails.
        (Blank: the end of the banner, printed for people on stdout.)"""
        parsed = []
        for text in self.dev.printed:
            if not text.strip():
                continue
            line = json.loads(text)
            assert isinstance(line, dict), text
            parsed.append(line)
        return parsed


@pytest_asyncio.fixture(scope="module")
async def driven(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Driven]:
    metrics_port = free_port()
    settings = {"O2C_LOG_FORMAT": "json", "O2C_METRICS_PORT": str(metrics_port)}
    data_dir = tmp_path_factory.mktemp("dev-observability")
    async with o2c_dev(data_dir, settings, keep_stderr=True) as dev, dev.http() as http:
        ids = []
        for body in (
            demo_order(),
            demo_order() | {"lines": OVER_ACMES_CREDIT},
            demo_order() | {"lines": MORE_THAN_IN_STOCK},
        ):
            created = await http.post("/orders", json=body)
            assert created.status_code == 201, created.text
            ids.append(created.json()["order_id"])
        refused = await http.post(
            f"/orders/{ids[1]}/shipments", json={"carrier": "DHL", "tracking_number": "T1"}
        )
        assert refused.status_code == 409, refused.text
        client = await Client.connect(dev.env["O2C_TEMPORAL_ADDRESS"])
        run_ids = {order_id: (await client.get_workflow_handle(order_id).describe()).run_id
                   for order_id in ids}  # fmt: skip
        booked, held, out_of_stock = ids
        yield Driven(dev, metrics_port, booked, held, out_of_stock, run_ids)


async def test_every_line_is_json_and_every_line_about_an_order_names_it_and_its_run(
    driven: Driven,
) -> None:
    booked, held, out_of_stock = driven.booked, driven.held, driven.out_of_stock

    def from_worker(order_id: str, message_start: str) -> list[dict[str, Any]]:
        return [
            line
            for line in driven.lines()
            if line.get("order_id") == order_id and line["message"].startswith(message_start)
        ]

    async def logged() -> bool:
        return all((
            from_worker(booked, f"order {booked} is Booked"),
            from_worker(held, f"order {held} is OnHold"),
            from_worker(out_of_stock, "business outcome out_of_stock"),
        ))  # fmt: skip

    await until(logged, "the worker's lines about the three orders")
    lines = driven.lines()
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line), line
        for order_id in driven.run_ids:
            if order_id in line["message"]:
                assert line.get("order_id") == order_id, line

    # From the workflow and its activities: the order, its run, the call.
    for order_id, message in ((booked, "order"), (held, "order"), (out_of_stock, "business")):
        for line in from_worker(order_id, message):
            assert (line["workflow_id"], line["run_id"]) == (order_id, driven.run_ids[order_id])
    [refusal] = from_worker(out_of_stock, "business outcome")
    assert (refusal["logger"], refusal["activity_type"]) == (
        "temporalio.activity",
        "logistics.reserve_stock",
    )
    # From the API: each request's access line names the order it was about.
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    created = {line.get("order_id") for line in access if line["path"] == "/orders"}
    assert created == {booked, held, out_of_stock}
    [shipment] = [line for line in access if line["path"] == f"/orders/{held}/shipments"]
    assert (shipment["order_id"], shipment["method"], shipment["status"]) == (held, "POST", 409)


async def test_o2c_dev_serves_the_workers_metrics_and_the_apis(driven: Driven) -> None:
    worker_url = f"http://127.0.0.1:{driven.metrics_port}/metrics"
    assert worker_url in driven.dev.banner
    async with httpx.AsyncClient() as http:
        worker = families((await http.get(worker_url)).text)
    assert value(worker, "temporal_worker_task_slots_available", task_queue="o2c-orders") > 0
    # Each of the three orders checked its customer once, as a local activity.
    assert value(worker, "temporal_local_activity_execution_latency_count",
                 activity_type="crm.validate_customer") == 3  # fmt: skip

    async with driven.dev.http() as http:

        async def both_held_counted() -> bool:
            found = families((await http.get("/metrics")).text)
            return value(found, "o2c_orders", status="OnHold") == 2

        await until(both_held_counted, "both held orders counted on the API's /metrics")
        api = families((await http.get("/metrics")).text)
    assert value(api, "o2c_orders_on_hold", reason="credit_limit_exceeded") == 1
    assert value(api, "o2c_orders_on_hold", reason="out_of_stock") == 1
    assert value(api, "o2c_events_rejected_total", event="confirm_shipment") == 1
