"""An order lives through a change of its payloads' encoding, as a deployment makes it.

Orders run for weeks: one started before the codec was deployed, or before a key was
rotated, is finished by workers and clients on the new settings. The first worker and
client park the order Invoiced on the real local adapters and stop; a worker and a
client on the new converter take the same task queue and database and close it. The
order must close with each effect once, its history keeping the payloads of each
period as written then (no re-encryption), all of them readable afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from adapters.local import LocalAdapters, open_local_adapters
from o2c_service import events as order_events
from o2c_service.codec.converter import data_converter
from o2c_service.codec.encryption import KEY_ID_METADATA, EncryptionCodec, is_encrypted
from o2c_service.codec.keys import CodecKey, CodecKeys
from o2c_service.orders import OrderService
from o2c_service.runners import local_activities
from o2c_service.settings import Settings
from o2c_service.temporal import build_worker
from o2c_workflows.messages import PaymentReceived, ShipmentConfirmed
from o2c_workflows.models import OrderLine, OrderRequest, OrderStatus
from o2c_workflows.order.workflow import OrderWorkflow
from tests.support.codec import TEST_CONVERTER, TEST_KEYS
from tests.support.codec import test_key as fixed_key  # not collected as a test
from tests.support.history import wait_for_status
from tests.support.payloads import Found, history_payloads
from tests.support.resilience_batch import assert_each_order_done_once, payment_id, tracking_number

KEY_1 = fixed_key("live-1")
KEY_2 = fixed_key("live-2")
ROTATED = CodecKeys((KEY_2, KEY_1))
"""Key 2 current, key 1 kept to decrypt what was written under it."""


@dataclass(frozen=True)
class Switched:
    """An order closed across the switch: its history's payloads before and after."""

    before: list[Found]
    after: list[Found]


async def client_on(env: WorkflowEnvironment, converter: DataConverter) -> Client:
    return await Client.connect(
        env.client.service_client.config.target_host,
        namespace=env.client.namespace,
        data_converter=converter,
    )


async def close_across_switch(
    env: WorkflowEnvironment, tmp_path: Path, first: DataConverter, then: DataConverter
) -> Switched:
    """Start an order on `first` (worker and client), park it Invoiced, stop; pay it on
    `then` until Closed; check each effect happened once."""
    settings = Settings(
        task_queue=f"orders-{uuid.uuid4()}",
        database_url=f"sqlite:///{tmp_path / 'o2c.db'}",
    )
    order = OrderRequest(
        source_system="switch",
        source_order_id=f"SO-{uuid.uuid4().hex[:10]}",
        customer_id="CUST-ACME",
        currency="EUR",
        lines=[OrderLine(sku="SKU-WIDGET", quantity=2, unit_price=Decimal("12.50"))],
    )
    adapters: LocalAdapters = open_local_adapters(settings.database_url)
    try:
        early = await client_on(env, first)
        async with build_worker(early, settings.task_queue, local_activities(adapters)):
            orders = OrderService(early, settings.task_queue)
            assert (await orders.create(order)).status is OrderStatus.BOOKED
            shipment = ShipmentConfirmed(carrier="DHL", tracking_number=tracking_number(order))
            await orders.send(order_events.SHIPMENT, order.order_id, shipment)
            handle = early.get_workflow_handle_for(OrderWorkflow.run, order.order_id)
            await wait_for_status(handle, OrderStatus.INVOICED)
        # The first worker is gone: whatever the history holds now was written on `first`.
        switch = len((await handle.fetch_history()).events)

        later = await client_on(env, then)
        async with build_worker(later, settings.task_queue, local_activities(adapters)):
            orders = OrderService(later, settings.task_queue)
            paid = PaymentReceived(
                payment_id=payment_id(order), currency="EUR", amount=order.total()
            )
            await orders.send(order_events.PAYMENT, order.order_id, paid)
            summary = await later.get_workflow_handle_for(
                OrderWorkflow.run, order.order_id
            ).result()
            assert summary.status is OrderStatus.CLOSED
            await assert_each_order_done_once(later, settings, [order])
            history = await later.get_workflow_handle(order.order_id).fetch_history()
    finally:
        adapters.database.dispose()
    found = history_payloads(history)
    before = [item for item in found if event_index(item) < switch]
    after = [item for item in found if event_index(item) >= switch]
    assert before and after, (len(before), len(after))
    return Switched(before, after)


def event_index(found: Found) -> int:
    return int(found.path.removeprefix("events[").partition("]")[0])


def plain(payload: Payload) -> bool:
    return not is_encrypted(payload)


def under(key: CodecKey) -> Callable[[Payload], bool]:
    """Encrypted, and under `key`."""
    return lambda payload: (
        is_encrypted(payload) and payload.metadata[KEY_ID_METADATA].decode() == key.key_id
    )


def offenders(found: list[Found], holds: Callable[[Payload], bool]) -> list[str]:
    """The paths of the payloads of which `holds` is not true."""
    return [item.path for item in found if not holds(item.payload)]


async def test_an_order_started_before_the_codec_closes_once_after_it(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    switched = await close_across_switch(dev_env, tmp_path, pydantic_data_converter, TEST_CONVERTER)
    assert not offenders(switched.before, plain)
    assert not offenders(switched.after, under(TEST_KEYS.current))


async def test_an_order_begun_under_one_key_closes_once_after_another_becomes_current(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    switched = await close_across_switch(
        dev_env, tmp_path, data_converter(CodecKeys((KEY_1,))), data_converter(ROTATED)
    )
    assert not offenders(switched.before, under(KEY_1))
    assert not offenders(switched.after, under(KEY_2))
    # The worker on the rotated keys read both periods (it took the order up by replaying
    # its history from the start); so does a codec server holding them.
    decoded = await EncryptionCodec(ROTATED).decode(
        [item.payload for item in switched.before + switched.after]
    )
    assert not any(is_encrypted(payload) for payload in decoded)
