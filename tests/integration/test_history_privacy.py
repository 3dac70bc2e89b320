"""What Temporal keeps of an order names no customer: no name, email, ship-to, credit
limit or card token, whoever reads the stored history without the keys (the CLI's
`workflow show`, the UI without the codec server, the database).

Four orders run on the real worker and the local adapters' seeded customer (`Acme
Corporation`): one to Closed, one held on its credit limit, one shipped in part, and one
paid by card (sent to the API with its token). Their histories, as fetched, must show
none of the customer's data; decoded with the keys they must show it (so the check can
fail); and every search attribute, which Temporal stores and indexes in clear, must hold
only ids, codes and dates.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter

from o2c_domain.lines import SkuQuantity
from o2c_service import events as order_events
from o2c_service.codec.encryption import EncryptionCodec
from o2c_service.orders import OrderService
from o2c_workflows.messages import CancelRequest, PaymentReceived, ShipmentConfirmed
from o2c_workflows.models import CardPayment, OrderLine, OrderRequest, OrderStatus
from o2c_workflows.order.workflow import OrderWorkflow
from o2c_workflows.search_attributes import ALL
from tests.support.codec import TEST_KEYS
from tests.support.history import wait_for_state, wait_for_status
from tests.support.payloads import decoded_payloads, decoded_text, stored_text
from tests.support.stack import Stack

CUSTOMER_ID = "CUST-ACME"
CARD_TOKEN = "tok_visa_4242"


@dataclass(frozen=True)
class Personal:
    """The seeded customer's data, as the CRM adapter gives it to the workflow."""

    name: str
    """Also the shipment's `ship_to`: the local logistics ship to the customer's name."""
    email: str
    credit_limit: str
    """As it is serialised: `50000.00`."""

    def strings(self) -> dict[str, str]:
        return {"name": self.name, "email": self.email, "credit limit": self.credit_limit}


@dataclass(frozen=True)
class Orders:
    customer: Personal
    histories: dict[str, WorkflowHistory]
    """By scenario: happy, held, partial, card."""


SCENARIOS = ("happy", "held", "partial", "card")
SHIPPED_BY_ACTIVITY = ("partial",)
"""Where the shipment request (`ship_to`) is an activity's input, which history keeps; a
local activity's marker keeps its result only."""


def an_order(*lines: OrderLine, card: bool = False) -> OrderRequest:
    return OrderRequest(
        source_system="privacy",
        source_order_id=f"SO-{uuid.uuid4().hex[:10]}",
        customer_id=CUSTOMER_ID,
        currency="EUR",
        lines=list(lines),
        payment_method=CardPayment(card_token=CARD_TOKEN) if card else None,
    )


WIDGETS = OrderLine(sku="SKU-WIDGET", quantity=4, unit_price=Decimal("12.50"))
GADGET = OrderLine(sku="SKU-GADGET", quantity=1, unit_price=Decimal("99.99"))
OVER_THE_LIMIT = OrderLine(sku="SKU-WIDGET", quantity=2100, unit_price=Decimal("25.00"))
"""52500.00 EUR: over Acme's credit limit whatever its open balance."""


async def happy(service: OrderService) -> str:
    order = an_order(WIDGETS, GADGET)
    assert (await service.create(order)).status is OrderStatus.BOOKED
    ship = ShipmentConfirmed(carrier="DHL", tracking_number=f"T-{order.source_order_id}")
    await service.send(order_events.SHIPMENT, order.order_id, ship)
    pay = PaymentReceived(
        payment_id=f"P-{order.source_order_id}", currency="EUR", amount=order.total()
    )
    await service.send(order_events.PAYMENT, order.order_id, pay)
    return order.order_id


async def held(service: OrderService) -> str:
    order = an_order(OVER_THE_LIMIT)
    created = await service.create(order)
    assert (created.status, created.hold_reason) == (OrderStatus.ON_HOLD, "credit_limit_exceeded")
    # Cancelled, so it waits in no one's list of held orders.
    await service.send(order_events.CANCEL, order.order_id, CancelRequest(reason="test over"))
    return order.order_id


async def partial(service: OrderService) -> str:
    order = an_order(WIDGETS, GADGET)
    assert (await service.create(order)).status is OrderStatus.BOOKED
    ship = ShipmentConfirmed(
        carrier="DHL",
        tracking_number=f"T-{order.source_order_id}",
        lines=[SkuQuantity(sku="SKU-WIDGET", quantity=4)],
    )
    await service.send(order_events.SHIPMENT, order.order_id, ship)
    handle = service.client.get_workflow_handle_for(OrderWorkflow.run, order.order_id)
    await wait_for_state(handle, lambda state: len(state.invoices) == 1, "invoiced in part")
    return order.order_id


async def card(service: OrderService, stack: Stack) -> str:
    """Sent to the API as an outside system sends it: with the card's token."""
    order = an_order(WIDGETS, card=True)
    created = await stack.http.post("/orders", json=order.model_dump(mode="json"))
    assert created.json()["status"] == OrderStatus.BOOKED.value, created.text
    ship = ShipmentConfirmed(carrier="DHL", tracking_number=f"T-{order.source_order_id}")
    await service.send(order_events.SHIPMENT, order.order_id, ship)
    return order.order_id


@pytest_asyncio.fixture(scope="module")
async def orders(stack: Stack) -> AsyncIterator[Orders]:
    customer = await stack.adapters.crm.get_customer(CUSTOMER_ID)
    assert customer.name == "Acme Corporation", "the seeded customer changed"
    # Local activities (the default, the API's too) for two orders, activities for the
    # other two: the customer's data crosses in markers and in activity events alike.
    local = OrderService(stack.env.client, stack.settings.task_queue, local_activities=True)
    remote = OrderService(stack.env.client, stack.settings.task_queue, local_activities=False)
    ids = await asyncio.gather(happy(local), held(remote), partial(remote), card(local, stack))
    by_scenario = dict(zip(SCENARIOS, ids, strict=True))
    for scenario in ("happy", "card"):
        handle = stack.env.client.get_workflow_handle_for(OrderWorkflow.run, by_scenario[scenario])
        await wait_for_status(handle, OrderStatus.CLOSED)
    histories = {
        scenario: await stack.env.client.get_workflow_handle(order_id).fetch_history()
        for scenario, order_id in by_scenario.items()
    }
    yield Orders(Personal(customer.name, customer.email, str(customer.credit_limit)), histories)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_stored_history_shows_none_of_the_customers_data(orders: Orders, scenario: str) -> None:
    stored = stored_text(orders.histories[scenario])
    for what, value in {**orders.customer.strings(), "card token": CARD_TOKEN}.items():
        assert value not in stored, f"the {what} ({value}) is in clear in the {scenario} order"


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_decoded_with_the_keys_the_history_shows_the_customers_data(
    orders: Orders, scenario: str
) -> None:
    """What the codec server gives the UI: the customer as CRM gave it to the order."""
    decoded = await decoded_text(orders.histories[scenario], EncryptionCodec(TEST_KEYS))
    for what, value in orders.customer.strings().items():
        assert value in decoded, f"the {what} ({value}) is not in the decoded {scenario} order"
    if scenario in SHIPPED_BY_ACTIVITY:
        assert f'"ship_to":"{orders.customer.name}"' in decoded


async def test_the_card_token_never_enters_history_even_encrypted(orders: Orders) -> None:
    """The workflow carries a reference to the card only the payments adapter resolves."""
    decoded = await decoded_payloads(orders.histories["card"], EncryptionCodec(TEST_KEYS))
    holding = [item.path for item in decoded if CARD_TOKEN.encode() in item.payload.data]
    assert not holding, f"the card token is in these payloads (encrypted): {holding}"


# --- search attributes: in clear by design, so ids, codes and dates only ------------------


class Kind(Enum):
    STATUS = "an order status"
    ID = "an id (no spaces, no @)"
    CODE = "a snake_case code"
    DATETIME = "a date and time"


KINDS = {
    "OrderStatus": Kind.STATUS,
    "CustomerId": Kind.ID,
    "HoldReason": Kind.CODE,
    "PaymentDueDate": Kind.DATETIME,
    "DunningLevel": Kind.CODE,
}
"""What each registered search attribute may hold. A new attribute needs its kind here."""
TEMPORALS = {"TemporalChangeVersion": Kind.ID}
"""Set by the SDK itself: the ids of the `workflow.patched` changes an order took."""


def of_kind(value: object, kind: Kind) -> bool:
    if not isinstance(value, str):
        return False
    if kind is Kind.STATUS:
        return value in {status.value for status in OrderStatus}
    if kind is Kind.ID:
        return re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]*", value) is not None
    if kind is Kind.CODE:
        return re.fullmatch(r"[a-z][a-z0-9_]*", value) is not None
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def search_attribute_values(history: WorkflowHistory) -> list[tuple[str, object]]:
    """Every (attribute, value) the history sets, at start and by upserts; a cleared
    attribute's value is None."""
    converter = DataConverter.default.payload_converter
    found: list[tuple[str, object]] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            fields = event.workflow_execution_started_event_attributes.search_attributes
        elif event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
        else:
            continue
        for name, payload in fields.indexed_fields.items():
            value = converter.from_payload(payload)
            values = value if isinstance(value, list) else [value]
            found.extend((name, item) for item in values)
    return found


def test_every_registered_search_attribute_has_its_kind_named() -> None:
    assert {key.name for key in ALL} == set(KINDS), (
        "name the kind of value each search attribute holds in KINDS: it is stored in clear"
    )


def test_search_attributes_hold_only_ids_codes_and_dates(orders: Orders) -> None:
    personal = [*orders.customer.strings().values(), CARD_TOKEN]
    seen: set[str] = set()
    for scenario, history in orders.histories.items():
        for name, value in search_attribute_values(history):
            kind = KINDS.get(name) or TEMPORALS.get(name)
            assert kind, f"{scenario}: {name} is not a registered search attribute"
            seen.add(name)
            if value is None:
                continue  # cleared
            assert of_kind(value, kind), f"{scenario}: {name}={value!r} is not {kind.value}"
            assert not any(text in str(value) for text in personal), f"{name}={value!r}"
    # The four orders set all but DunningLevel (no payment is late here).
    assert seen >= {"OrderStatus", "CustomerId", "HoldReason", "PaymentDueDate"}, seen
