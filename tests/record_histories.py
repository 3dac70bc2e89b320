"""Record the replay corpus: `python -m tests.record_histories` writes tests/histories/*.json.

Each file is the full history of one order scenario run against the stub
activities. `test_replay.py` replays them with the current workflow code, so a
change that would break orders already running fails there first. Re-record
only for a deliberate, versioned change (with `workflow.patched`).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from o2c_workflows.messages import CancelRequest, ShipmentConfirmed, ShippedLine
from o2c_workflows.models import OrderStatus
from o2c_workflows.search_attributes import ALL
from tests.history import wait_for_status
from tests.order_harness import SHIPMENT, TOTAL, make_order, payment, running_harness
from tests.stub_activities import StubActivities, business_error
from tests.temporal_env import binary

HISTORIES = Path(__file__).parent / "histories"


async def record() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    async with env:
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={
                    key.name: IndexedValueType.ValueType(key.indexed_value_type) for key in ALL
                },
            )
        )
        stubs = StubActivities()
        async with running_harness(env, stubs, local_activities=False) as harness:
            happy = await harness.booked()
            await harness.orders.confirm_shipment(happy.id, SHIPMENT)
            await harness.orders.receive_payment(happy.id, payment(str(TOTAL)))
            await happy.result()

            partial = await harness.booked()
            await harness.orders.confirm_shipment(partial.id, ShipmentConfirmed(
                carrier="DHL", tracking_number="T-1",
                lines=[ShippedLine(sku="SKU-WIDGET", quantity=3)]))  # fmt: skip
            await harness.orders.receive_payment(partial.id, payment("100.00", "PAY-1"))
            await harness.orders.confirm_shipment(
                partial.id, ShipmentConfirmed(carrier="DHL", tracking_number="T-2")
            )
            await wait_for_status(partial, OrderStatus.INVOICED)
            await harness.env.sleep(timedelta(days=45))  # late: two reminders on the way
            await harness.orders.receive_payment(partial.id, payment("59.97", "PAY-2"))
            await partial.result()

            stubs.fail("reserve_stock", business_error("out_of_stock"))
            held = await harness.start(make_order())
            await wait_for_status(held, OrderStatus.ON_HOLD)
            stubs.heal("reserve_stock")
            await harness.orders.cancel(held.id, CancelRequest(reason="recorded"))
            await held.result()

            for name, handle in (
                ("happy", happy),
                ("partial-late", partial),
                ("held-cancelled", held),
            ):
                history = await handle.fetch_history()
                (HISTORIES / f"{name}.json").write_text(history.to_json())
    print(f"recorded {len(list(HISTORIES.glob('*.json')))} histories in {HISTORIES}")


if __name__ == "__main__":
    asyncio.run(record())
