"""What every payments adapter promises (`adapters.payments.protocol.PaymentsAdapter`).

- `record_payment` records a payment id once (racing too): the same id with the
  same terms, under any key, answers the recorded payment (amounts compared by
  value); with other terms (amount, order) it is `payment_conflict`. `received_at`
  is timezone-aware. `find_payment` finds it by key.
- `refund_payment` refunds once per key (`RFD-…`; a replay answers the first
  refund whatever it now asks), never more than was received in total, also when
  refunds race from two clients (`refund_exceeds_payment`, naming what was already
  refunded); refused (`payment_not_found`, `invalid_amount`) without effect, and a
  refused key stays free.
- `store_card` stores a card token once per key (racing too) and answers the same
  `card_ref`; `find_stored_card` finds it by key; a token that is not one word is
  `invalid_card`, storing nothing.
- `authorise_card` authorises once per key (`AUT-…`, valid for seven days), by a
  stored card's `card_ref` for its own order only (`card_not_found` otherwise) or by
  the token itself; `card_declined` and `invalid_amount` authorise nothing.
  `find_authorisation` finds one by key with what is still available to capture.
- `capture_card` captures once per key (racing from two clients too), recorded as
  a payment found by the capture's key; captures never exceed the authorisation
  (`amount_exceeds_authorisation`); refused with `invalid_amount`,
  `payment_conflict` (payment id taken), `authorisation_expired`,
  `authorisation_not_found`, `authorisation_voided`, recording nothing.
- `void_authorisation` releases what is left, the same for every key; unknown is
  `authorisation_not_found`.

Every test runs against each adapter factory (tests/support/adapter_factories.py)
and asserts through the protocol only.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.payments.models import AuthorisationStatus
from tests.contract.builders import (
    RACERS,
    authorise,
    business_error,
    capture,
    outcome,
    paid_with,
    payment_request,
    race,
    refund,
    store,
    void_auth,
)
from tests.support.adapter_factories import Systems

# --- recording payments --------------------------------------------------------------------


async def test_recording_a_payment_twice_records_it_once(systems: Systems) -> None:
    request = payment_request("PAY-1", "12.34")

    payments = await race(lambda: systems.payments.record_payment(request))

    assert len({payment.model_dump_json() for payment in payments}) == 1
    assert payments[0].amount == Decimal("12.34")
    assert payments[0].received_at.tzinfo is not None
    assert await systems.payments.find_payment("payment:PAY-1") == payments[0]


async def test_the_same_payment_id_with_other_terms_is_a_conflict(systems: Systems) -> None:
    payments = systems.payments
    first = await payments.record_payment(payment_request("PAY-1", "12.34"))

    await business_error(
        payments.record_payment(payment_request("PAY-1", "12.35")), "payment_conflict"
    )
    await business_error(
        payments.record_payment(payment_request("PAY-1", "12.34", order_id="shop:2")),
        "payment_conflict",
    )
    same_id_new_key = payment_request("PAY-1", "12.340").model_copy(
        update={"idempotency_key": "webhook-77"}
    )
    again = await payments.record_payment(same_id_new_key)
    assert again.amount == Decimal("12.34")
    assert again == first  # the one payment recorded, not a second


async def test_find_payment_by_its_key(systems: Systems) -> None:
    payment = await paid_with(systems, "PAY-1", "12.34")

    assert await systems.payments.find_payment("payment:PAY-1") == payment
    assert await systems.payments.find_payment("PAY-1") is None


# --- refunds -------------------------------------------------------------------------------


async def test_refunding_twice_with_one_key_refunds_once(systems: Systems) -> None:
    await paid_with(systems, "PAY-1", "10.00")
    payments = systems.payments

    refunds = await race(lambda: payments.refund_payment(refund("PAY-1", "6.00")))
    replay = await payments.refund_payment(refund("PAY-1", "1.00"))

    assert {r.model_dump_json() for r in refunds} == {replay.model_dump_json()}
    assert replay.refund_id.startswith("RFD-")
    assert (replay.payment_id, replay.amount, replay.currency) == ("PAY-1", Decimal("6.00"), "EUR")
    # Refunded once: 4.00 is left to refund, not 4.01.
    await business_error(
        payments.refund_payment(refund("PAY-1", "4.01", key="refund-2")), "refund_exceeds_payment"
    )
    await payments.refund_payment(refund("PAY-1", "4.00", key="refund-2"))


async def test_refunds_never_exceed_the_payment(systems: Systems) -> None:
    await paid_with(systems, "PAY-1", "10.00")
    payments = systems.payments
    await payments.refund_payment(refund("PAY-1", "6.00", key="refund-1"))

    error = await business_error(
        payments.refund_payment(refund("PAY-1", "4.01", key="refund-2")), "refund_exceeds_payment"
    )
    rest = await payments.refund_payment(refund("PAY-1", "4.00", key="refund-2"))

    assert "6.00 EUR refunded already" in error.message
    assert rest.amount == Decimal("4.00")  # the refused request did not use up its key
    error = await business_error(
        payments.refund_payment(refund("PAY-1", "0.01", key="refund-3")), "refund_exceeds_payment"
    )
    assert "10.00 EUR refunded already" in error.message


async def test_racing_refunds_never_exceed_the_payment(systems: Systems) -> None:
    await paid_with(systems, "PAY-1", "5.00")
    async with systems.another_client() as other:
        outcomes = await asyncio.gather(
            *(
                outcome(client.payments.refund_payment(refund("PAY-1", "1.00", key)), "ok")
                for n in range(RACERS)
                for client, key in ((systems, f"a-{n}"), (other, f"b-{n}"))
            )
        )

    assert sorted(outcomes) == ["ok"] * 5 + ["refund_exceeds_payment"] * (2 * RACERS - 5)
    error = await business_error(
        systems.payments.refund_payment(refund("PAY-1", "0.01", key="late")),
        "refund_exceeds_payment",
    )
    assert "5.00 EUR refunded already" in error.message


@pytest.mark.parametrize(
    ("payment_id", "amount", "code"),
    [
        ("PAY-nope", "1.00", "payment_not_found"),
        ("PAY-1", "0.001", "invalid_amount"),
        ("PAY-1", "0", "invalid_amount"),
        ("PAY-1", "-1.00", "invalid_amount"),
    ],
)
async def test_impossible_refunds_are_refused(
    systems: Systems, payment_id: str, amount: str, code: str
) -> None:
    await paid_with(systems, "PAY-1", "10.00")

    await business_error(systems.payments.refund_payment(refund(payment_id, amount)), code)

    # Nothing was refunded and the key is free: all of it can still go back under it.
    whole = await systems.payments.refund_payment(refund("PAY-1", "10.00"))
    assert whole.amount == Decimal("10.00")


# --- stored cards ----------------------------------------------------------------------------


async def test_storing_a_card_twice_with_one_key_stores_it_once(systems: Systems) -> None:
    payments = systems.payments

    stored = await race(lambda: payments.store_card(store()))

    assert {card.card_ref for card in stored} == {stored[0].card_ref}
    assert stored[0].order_id == "shop:1"
    assert "tok_visa" not in stored[0].card_ref
    assert await payments.find_stored_card("store-1") == stored[0]
    assert await payments.find_stored_card("store-2") is None
    other = await payments.store_card(store("store-2", order_id="shop:2"))
    assert other.card_ref != stored[0].card_ref


async def test_a_card_token_that_is_not_one_word_is_refused(systems: Systems) -> None:
    payments = systems.payments

    for token in ("tok visa", " tok_visa", ""):
        await business_error(payments.store_card(store(token=token)), "invalid_card")

    assert await payments.find_stored_card("store-1") is None


async def test_a_stored_card_is_authorised_by_its_reference_for_its_order_only(
    systems: Systems,
) -> None:
    payments = systems.payments
    card = await payments.store_card(store())
    declined = await payments.store_card(store("store-2", token="tok_declined_stolen"))

    await business_error(
        payments.authorise_card(authorise(card_ref=card.card_ref, order_id="shop:2")),
        "card_not_found",
    )
    await business_error(payments.authorise_card(authorise(card_ref="CARD-nope")), "card_not_found")
    await business_error(
        payments.authorise_card(authorise(card_ref=declined.card_ref)), "card_declined"
    )
    assert await payments.find_authorisation("auth-1") is None

    authorisation = await payments.authorise_card(authorise(card_ref=card.card_ref))
    assert (authorisation.order_id, authorisation.amount) == ("shop:1", Decimal("100.00"))


# --- card authorisations -------------------------------------------------------------------


async def test_authorising_twice_with_one_key_authorises_once(systems: Systems) -> None:
    payments = systems.payments
    before = datetime.now(UTC)

    authorisations = await race(lambda: payments.authorise_card(authorise()))

    first = authorisations[0]
    assert {a.model_dump_json() for a in authorisations} == {first.model_dump_json()}
    assert first.authorisation_id.startswith("AUT-")
    assert (first.amount, first.currency, first.status) == (
        Decimal("100.00"),
        "EUR",
        AuthorisationStatus.AUTHORISED,
    )
    assert before + timedelta(days=7) <= first.expires_at <= datetime.now(UTC) + timedelta(days=7)
    assert await payments.find_authorisation("auth-1") == first
    assert await payments.find_authorisation("auth-2") is None


async def test_a_declined_card_authorises_nothing(systems: Systems) -> None:
    payments = systems.payments

    await business_error(
        payments.authorise_card(authorise(token="tok_declined_insufficient_funds")), "card_declined"
    )
    await business_error(payments.authorise_card(authorise(amount="0")), "invalid_amount")

    assert await payments.find_authorisation("auth-1") is None
    assert (await payments.authorise_card(authorise())).amount == Decimal("100.00")


async def test_capturing_twice_with_one_key_captures_once(systems: Systems) -> None:
    payments = systems.payments
    authorisation = await payments.authorise_card(authorise())
    async with systems.another_client() as other:
        captured = await asyncio.gather(
            *(payments.capture_card(capture(authorisation, "60.00")) for _ in range(RACERS)),
            *(other.payments.capture_card(capture(authorisation, "60.00")) for _ in range(RACERS)),
        )
    replay = await payments.capture_card(capture(authorisation, "1.00"))

    assert {p.model_dump_json() for p in captured} == {replay.model_dump_json()}
    assert (replay.payment_id, replay.order_id, replay.amount, replay.currency) == (
        "PAY-C1",
        "shop:1",
        Decimal("60.00"),
        "EUR",
    )
    assert await payments.find_payment("capture-1") == replay
    left = await payments.find_authorisation("auth-1")
    assert left is not None
    assert left.amount == Decimal("40.00")


async def test_captures_never_exceed_the_authorisation(systems: Systems) -> None:
    payments = systems.payments
    authorisation = await payments.authorise_card(authorise(amount="5.00"))

    outcomes = await asyncio.gather(
        *(
            outcome(
                payments.capture_card(capture(authorisation, "1.00", f"c-{n}", f"PAY-{n}")), "ok"
            )
            for n in range(RACERS)
        )
    )

    assert sorted(outcomes) == ["amount_exceeds_authorisation"] * (RACERS - 5) + ["ok"] * 5
    left = await payments.find_authorisation("auth-1")
    assert left is not None
    assert left.amount == Decimal("0.00")
    found = [await payments.find_payment(f"c-{n}") for n in range(RACERS)]
    assert [p is not None for p in found] == [o == "ok" for o in outcomes]


async def test_impossible_captures_are_refused(systems: Systems) -> None:
    payments = systems.payments
    authorisation = await payments.authorise_card(authorise(amount="10.00"))
    expiring = await payments.authorise_card(authorise("auth-2", token="tok_expiring_visa"))
    recorded = await paid_with(systems, "PAY-1", "1.00")
    ghost = authorisation.model_copy(update={"authorisation_id": "AUT-nope"})

    for request, code in [
        (capture(authorisation, "10.01"), "amount_exceeds_authorisation"),
        (capture(authorisation, "0.00"), "invalid_amount"),
        (capture(authorisation, "1.00", payment_id="PAY-1"), "payment_conflict"),
        (capture(expiring, "1.00"), "authorisation_expired"),
        (capture(ghost, "1.00"), "authorisation_not_found"),
    ]:
        await business_error(payments.capture_card(request), code)

    assert expiring.expires_at <= datetime.now(UTC)
    assert await payments.find_payment("capture-1") is None
    assert await payments.find_payment("payment:PAY-1") == recorded  # untouched by the conflict
    assert await payments.find_authorisation("auth-1") == authorisation  # nothing captured
    # The refused requests did not use up the key.
    assert (await payments.capture_card(capture(authorisation, "10.00"))).amount == Decimal("10.00")


async def test_a_voided_authorisation_takes_no_capture(systems: Systems) -> None:
    payments = systems.payments
    authorisation = await payments.authorise_card(authorise())
    await payments.capture_card(capture(authorisation, "30.00"))

    voided = await payments.void_authorisation(void_auth(authorisation))
    again = await payments.void_authorisation(void_auth(authorisation, "void-2"))
    await business_error(
        payments.capture_card(capture(authorisation, "1.00", "capture-2", "PAY-C2")),
        "authorisation_voided",
    )
    ghost = authorisation.model_copy(update={"authorisation_id": "AUT-nope"})
    await business_error(payments.void_authorisation(void_auth(ghost)), "authorisation_not_found")

    assert voided == again == await payments.find_authorisation("auth-1")
    assert (voided.status, voided.amount) == (AuthorisationStatus.VOIDED, Decimal("0.00"))
    assert await payments.find_payment("capture-2") is None


# --- per-order reads -----------------------------------------------------------------------


async def test_an_orders_payments_authorisations_and_refunds_are_listed(
    systems: Systems,
) -> None:
    payments = systems.payments
    received = await paid_with(systems, "PAY-1", "40.00")
    authorisation = await payments.authorise_card(authorise("auth-1", "100.00"))
    captured = await payments.capture_card(capture(authorisation, "60.00"))
    voided = await payments.void_authorisation(void_auth(authorisation))
    refunded = await payments.refund_payment(refund("PAY-1", "15.00"))
    await payments.record_payment(payment_request("PAY-2", "5.00", order_id="shop:2"))

    assert await payments.list_payments("shop:1") == [received, captured]
    assert await payments.list_authorisations("shop:1") == [voided]
    assert voided.status is AuthorisationStatus.VOIDED
    assert await payments.list_refunds("shop:1") == [refunded]
    assert await payments.list_refunds("shop:2") == []
    assert await payments.list_payments("shop:other") == []
    assert await payments.list_authorisations("shop:other") == []
