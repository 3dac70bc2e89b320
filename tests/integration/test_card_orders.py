"""An order paid by card, through the API: the token goes to the payments system's vault
and the order carries only the vault's reference (docs/security.md, "Card data").
"""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from adapters.local.tables import CardAuthorisationRow, StoredCardRow
from o2c_workflows.models import OrderStatus
from tests.integration.test_end_to_end import demo_order
from tests.support.stack import Stack

TOKEN = "tok_visa_4242"


def card_order(token: str = TOKEN, **card: Any) -> dict[str, Any]:
    return demo_order() | {"payment_method": {"card_token": token, **card}}


def stored_cards(stack: Stack, order_id: str) -> list[StoredCardRow]:
    with stack.adapters.database.reading() as session:
        query = select(StoredCardRow).where(col(StoredCardRow.order_id) == order_id)
        return list(session.exec(query).all())


async def test_a_card_order_carries_the_vaults_reference_and_the_card_is_charged(
    stack: Stack,
) -> None:
    order = card_order()

    created = await stack.http.post("/orders", json=order)

    assert created.status_code == 201, created.text
    order_id = created.json()["order_id"]
    state = (await stack.http.get(f"/orders/{order_id}")).json()
    assert state["status"] == OrderStatus.BOOKED.value
    assert TOKEN not in str(state)
    [card] = stored_cards(stack, order_id)
    assert card.card_token == TOKEN
    assert state["order"]["payment_method"] == {"card_token": None, "card_ref": card.card_ref}
    with stack.adapters.database.reading() as session:
        query = select(CardAuthorisationRow).where(col(CardAuthorisationRow.order_id) == order_id)
        [authorisation] = session.exec(query).all()
    assert authorisation.authorised_minor == 14999  # 4 x 12.50 + 99.99, on the stored card

    # Sent again as it was: the same order, and no second card in the vault.
    again = await stack.http.post("/orders", json=order)
    assert (again.status_code, again.json()["created"]) == (200, False)
    # Another card under the same source order id is another request.
    other_card = {"payment_method": {"card_token": "tok_mastercard_4444"}}
    other = await stack.http.post("/orders", json=order | other_card)
    assert other.status_code == 409, other.text
    assert len(stored_cards(stack, order_id)) == 1


async def test_a_token_payments_refuses_names_the_field_and_starts_nothing(
    stack: Stack,
) -> None:
    order = card_order("tok visa 4242")

    refused = await stack.http.post("/orders", json=order)

    assert refused.status_code == 422, refused.text
    [error] = refused.json()["errors"]
    assert error["field"] == "body.payment_method.card_token"
    assert "invalid_card" in error["msg"]
    order_id = f"{order['source_system']}:{order['source_order_id']}"
    assert (await stack.http.get(f"/orders/{order_id}")).status_code == 404


async def test_a_caller_cannot_send_a_card_reference(stack: Stack) -> None:
    order = demo_order() | {"payment_method": {"card_ref": "CARD-0123456789ab"}}

    refused = await stack.http.post("/orders", json=order)

    assert refused.status_code == 422, refused.text
    [error] = refused.json()["errors"]
    assert error["field"] == "body.payment_method.card_ref"
    assert "send card_token" in error["msg"]


async def test_a_card_order_needs_exactly_one_card(stack: Stack) -> None:
    both = card_order(card_ref="CARD-0123456789ab")
    neither = demo_order() | {"payment_method": {}}

    for body in (both, neither):
        refused = await stack.http.post("/orders", json=body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "body.payment_method"
