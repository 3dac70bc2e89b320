"""What every logistics adapter promises (`adapters.logistics.protocol.LogisticsAdapter`)
about shipments, dispatches, cancellations and returns; reservations are in
test_logistics_reservations_contract.py.

- `request_shipment` makes one shipment per key (status requested); it needs a
  known (`reservation_not_found`), unreleased (`reservation_released`) reservation.
- `confirm_shipment` records one dispatch per key (a replay answers as the first
  call did); dispatches sum up (partially shipped, then confirmed) and never beyond
  what was requested (`over_shipment`); a cancelled shipment is `shipment_cancelled`,
  a released reservation `reservation_released`, an unknown one `shipment_not_found`.
  Dispatching moves no stock: it left the shelf when reserved.
- `cancel_shipment` withdraws a request once; a replay or another key returns it
  cancelled; once anything left it is `shipment_already_confirmed`. A cancel racing
  confirms leaves exactly one winner.
- `receive_return` restocks once per key and never more than has shipped
  (`over_return`); the shipment must belong to the order (`shipment_not_found`).

Every test runs against each adapter factory (tests/support/adapter_factories.py)
and asserts through the protocol only; stock on hand is read by `expect_on_hand`,
which reserves and releases.
"""

from __future__ import annotations

import asyncio

from adapters.logistics.models import Reservation, Shipment, ShipmentStatus
from o2c_domain.lines import SkuQuantity
from tests.contract.builders import (
    PLENTY,
    RACERS,
    RARE_ON_HAND,
    business_error,
    cancel,
    confirmation,
    expect_on_hand,
    outcome,
    race,
    release,
    requested_shipment,
    reserve,
    returned,
    shipment_of,
    shipment_request,
    stock,
)
from tests.support.adapter_factories import Systems

# --- shipments -----------------------------------------------------------------------------


async def test_requesting_a_shipment_twice_makes_one(systems: Systems) -> None:
    first = await requested_shipment(systems)
    second = await requested_shipment(systems)

    assert first == second
    assert first.shipment_id.startswith("SHP-")
    assert first.status is ShipmentStatus.REQUESTED
    assert await systems.logistics.find_shipment("ship-1") == first


async def test_confirming_again_with_the_same_key_changes_nothing(systems: Systems) -> None:
    shipment = await requested_shipment(systems)
    logistics = systems.logistics

    confirmed = await race(lambda: logistics.confirm_shipment(confirmation(shipment, "confirm-1")))
    again = await logistics.confirm_shipment(confirmation(shipment, "confirm-1", tracking="OTHER"))

    assert {c.model_dump_json() for c in confirmed} == {again.model_dump_json()}
    assert (again.status, again.carrier, again.tracking_number) == (
        ShipmentStatus.CONFIRMED,
        "DHL",
        "JD0146",
    )


async def test_a_dispatch_beyond_what_is_left_is_over_shipment(systems: Systems) -> None:
    shipment = await requested_shipment(systems)
    logistics = systems.logistics
    await logistics.confirm_shipment(confirmation(shipment, "confirm-1", "JD1", ("SKU-WIDGET", 1)))

    error = await business_error(
        logistics.confirm_shipment(confirmation(shipment, "confirm-2", "JD2", ("SKU-WIDGET", 2))),
        "over_shipment",
    )
    await business_error(
        logistics.confirm_shipment(confirmation(shipment, "confirm-2", "JD2", ("SKU-GADGET", 1))),
        "over_shipment",
    )
    rest = await logistics.confirm_shipment(
        confirmation(shipment, "confirm-2", "JD2", ("SKU-WIDGET", 1))
    )  # the refused requests did not use up the key
    await business_error(
        logistics.confirm_shipment(confirmation(shipment, "confirm-3", "JD3", ("SKU-WIDGET", 1))),
        "over_shipment",
    )

    assert "only 1 of 2" in error.message
    assert (rest.status, rest.tracking_number) == (ShipmentStatus.CONFIRMED, "JD2")
    assert rest.shipped == stock(("SKU-WIDGET", 2))  # two dispatches of one each
    assert await logistics.find_shipment("ship-1") == rest


async def test_unknown_shipment_is_shipment_not_found(systems: Systems) -> None:
    ghost = Shipment(shipment_id="SHP-nope", order_id="shop:1", status=ShipmentStatus.REQUESTED)
    await business_error(
        systems.logistics.confirm_shipment(confirmation(ghost, "confirm-1")),
        "shipment_not_found",
    )


async def test_a_released_reservation_cannot_ship(systems: Systems) -> None:
    logistics = systems.logistics
    reservation = await logistics.reserve_stock(reserve("reserve-1", ("SKU-WIDGET", 2)))
    await logistics.release_reservation(release(reservation))

    await business_error(
        logistics.request_shipment(shipment_request(reservation, "ship-1")),
        "reservation_released",
    )

    assert await logistics.find_shipment("ship-1") is None  # the refused key stays free


async def test_a_shipment_needs_a_known_reservation(systems: Systems) -> None:
    ghost = Reservation(
        reservation_id="RES-nope",
        order_id="shop:1",
        lines=[SkuQuantity(sku="SKU-WIDGET", quantity=1)],
    )
    await business_error(
        systems.logistics.request_shipment(shipment_request(ghost)), "reservation_not_found"
    )


# --- cancellations -------------------------------------------------------------------------


async def test_cancelling_again_keeps_the_shipment_cancelled(systems: Systems) -> None:
    shipment = await requested_shipment(systems)
    logistics = systems.logistics

    first = await logistics.cancel_shipment(cancel(shipment, "cancel-1"))
    replay = await logistics.cancel_shipment(cancel(shipment, "cancel-1"))
    other_key = await logistics.cancel_shipment(cancel(shipment, "cancel-2"))

    assert first == replay == other_key
    assert first.status is ShipmentStatus.CANCELLED
    assert await logistics.find_shipment("ship-1") == first


async def test_a_cancelled_shipment_cannot_be_confirmed(systems: Systems) -> None:
    shipment = await requested_shipment(systems)
    logistics = systems.logistics
    await logistics.cancel_shipment(cancel(shipment))

    error = await business_error(
        logistics.confirm_shipment(confirmation(shipment, "confirm-1")), "shipment_cancelled"
    )

    assert "order cancelled" in error.message
    assert (await logistics.find_shipment("ship-1")) == shipment.model_copy(
        update={"status": ShipmentStatus.CANCELLED}
    )


async def test_a_confirmed_shipment_cannot_be_cancelled(systems: Systems) -> None:
    shipment = await requested_shipment(systems)
    logistics = systems.logistics
    confirmed = await logistics.confirm_shipment(confirmation(shipment, "confirm-1"))

    await business_error(logistics.cancel_shipment(cancel(shipment)), "shipment_already_confirmed")

    assert await logistics.find_shipment("ship-1") == confirmed


async def test_cancel_and_confirm_racing_leave_one_winner(systems: Systems) -> None:
    shipment = await requested_shipment(systems)
    logistics = systems.logistics

    outcomes = await asyncio.gather(
        *(
            call
            for n in range(RACERS // 2)
            for call in (
                outcome(logistics.cancel_shipment(cancel(shipment, f"cancel-{n}")), "cancelled"),
                outcome(
                    logistics.confirm_shipment(confirmation(shipment, f"confirm-{n}")), "confirmed"
                ),
            )
        )
    )

    final = await logistics.find_shipment("ship-1")
    assert final is not None
    if final.status is ShipmentStatus.CANCELLED:
        expected = ["cancelled"] * (RACERS // 2) + ["shipment_cancelled"] * (RACERS // 2)
    else:
        assert final.status is ShipmentStatus.CONFIRMED
        # One dispatch takes everything; the others, with other keys, find nothing left.
        expected = (
            ["confirmed"]
            + ["over_shipment"] * (RACERS // 2 - 1)
            + ["shipment_already_confirmed"] * (RACERS // 2)
        )
    assert sorted(outcomes) == sorted(expected)


async def test_cancelling_an_unknown_shipment_is_refused(systems: Systems) -> None:
    ghost = Shipment(shipment_id="SHP-nope", order_id="shop:1", status=ShipmentStatus.REQUESTED)
    await business_error(systems.logistics.cancel_shipment(cancel(ghost)), "shipment_not_found")


# --- dispatches ----------------------------------------------------------------------------


async def test_partial_dispatches_sum_to_confirmed(systems: Systems) -> None:
    logistics = systems.logistics
    _, shipment = await shipment_of(systems, ("SKU-WIDGET", 3), ("SKU-RARE", 2))
    assert (shipment.status, shipment.lines, shipment.shipped) == (
        ShipmentStatus.REQUESTED,
        stock(("SKU-WIDGET", 3), ("SKU-RARE", 2)),
        [],
    )

    first = await logistics.confirm_shipment(
        confirmation(shipment, "dispatch-1", "JD1", ("SKU-RARE", 1))
    )
    second = await logistics.confirm_shipment(
        confirmation(shipment, "dispatch-2", "JD2", ("SKU-WIDGET", 2), ("SKU-RARE", 1))
    )
    last = await logistics.confirm_shipment(
        confirmation(shipment, "dispatch-3", "JD3", ("SKU-WIDGET", 1))
    )

    assert (first.status, first.tracking_number, first.shipped) == (
        ShipmentStatus.PARTIALLY_SHIPPED,
        "JD1",
        stock(("SKU-RARE", 1)),
    )
    assert (second.status, second.shipped) == (
        ShipmentStatus.PARTIALLY_SHIPPED,
        stock(("SKU-WIDGET", 2), ("SKU-RARE", 2)),
    )
    assert (last.status, last.carrier, last.tracking_number) == (
        ShipmentStatus.CONFIRMED,
        "DHL",
        "JD3",
    )
    assert last.shipped == last.lines == shipment.lines
    assert await logistics.find_shipment("ship-1") == last
    # A replay answers as the first call did, not with what later dispatches added.
    replay = confirmation(shipment, "dispatch-1", "OTHER", ("SKU-WIDGET", 3))
    assert await logistics.confirm_shipment(replay) == first
    assert await logistics.find_shipment("ship-1") == last  # and records nothing more
    # Stock left the shelf when it was reserved; dispatching moves none.
    await expect_on_hand(logistics, "SKU-WIDGET", PLENTY - 3)
    await expect_on_hand(logistics, "SKU-RARE", 3)


async def test_racing_dispatches_with_one_key_record_one(systems: Systems) -> None:
    _, shipment = await shipment_of(systems, ("SKU-WIDGET", 4))
    request = confirmation(shipment, "dispatch-1", "JD1", ("SKU-WIDGET", 3))
    async with systems.another_client() as other:
        results = await asyncio.gather(
            *(systems.logistics.confirm_shipment(request) for _ in range(RACERS)),
            *(other.logistics.confirm_shipment(request) for _ in range(RACERS)),
        )

    assert len({result.model_dump_json() for result in results}) == 1
    assert results[0].shipped == stock(("SKU-WIDGET", 3))
    assert results[0].status is ShipmentStatus.PARTIALLY_SHIPPED
    assert await systems.logistics.find_shipment("ship-1") == results[0]


async def test_racing_dispatches_never_ship_more_than_requested(systems: Systems) -> None:
    _, shipment = await shipment_of(systems, ("SKU-WIDGET", 5))
    logistics = systems.logistics

    outcomes = await asyncio.gather(
        *(
            outcome(
                logistics.confirm_shipment(
                    confirmation(shipment, f"dispatch-{n}", f"JD{n}", ("SKU-WIDGET", 1))
                ),
                "shipped",
            )
            for n in range(RACERS)
        )
    )

    assert sorted(outcomes) == ["over_shipment"] * (RACERS - 5) + ["shipped"] * 5
    final = await logistics.find_shipment("ship-1")
    assert final is not None
    assert (final.status, final.shipped) == (ShipmentStatus.CONFIRMED, stock(("SKU-WIDGET", 5)))


async def test_a_partly_shipped_shipment_cannot_be_cancelled(systems: Systems) -> None:
    _, shipment = await shipment_of(systems, ("SKU-WIDGET", 2))
    logistics = systems.logistics
    await logistics.confirm_shipment(confirmation(shipment, "dispatch-1", "JD1", ("SKU-WIDGET", 1)))

    await business_error(logistics.cancel_shipment(cancel(shipment)), "shipment_already_confirmed")

    final = await logistics.find_shipment("ship-1")
    assert final is not None
    assert final.status is ShipmentStatus.PARTIALLY_SHIPPED


async def test_releasing_after_a_part_left_gives_back_only_the_rest(systems: Systems) -> None:
    logistics = systems.logistics
    reservation, shipment = await shipment_of(systems, ("SKU-RARE", 4))
    await logistics.confirm_shipment(confirmation(shipment, "dispatch-1", "JD1", ("SKU-RARE", 1)))

    await logistics.release_reservation(release(reservation))
    await logistics.release_reservation(release(reservation, "release-2"))

    await expect_on_hand(logistics, "SKU-RARE", RARE_ON_HAND - 1)
    await business_error(
        logistics.confirm_shipment(confirmation(shipment, "dispatch-2", "JD2", ("SKU-RARE", 1))),
        "reservation_released",
    )
    final = await logistics.find_shipment("ship-1")
    assert final is not None
    assert final.shipped == stock(("SKU-RARE", 1))  # the refused dispatch recorded nothing


# --- returns -------------------------------------------------------------------------------


async def test_a_return_restocks_once(systems: Systems) -> None:
    logistics = systems.logistics
    _, shipment = await shipment_of(systems, ("SKU-RARE", 3))
    shipped = await logistics.confirm_shipment(confirmation(shipment, "dispatch-1"))
    request = returned(shipment, "return-1", ("SKU-RARE", 2))
    async with systems.another_client() as other:
        results = await asyncio.gather(
            *(logistics.receive_return(request) for _ in range(RACERS)),
            *(other.logistics.receive_return(request) for _ in range(RACERS)),
        )

    assert {result.model_dump_json() for result in results} == {shipped.model_dump_json()}
    await expect_on_hand(logistics, "SKU-RARE", 2 + 2)
    # One return of 2 recorded: 1 more of the 3 shipped may still come back, 2 may not.
    await business_error(
        logistics.receive_return(returned(shipment, "return-2", ("SKU-RARE", 2))), "over_return"
    )
    await logistics.receive_return(returned(shipment, "return-2", ("SKU-RARE", 1)))


async def test_more_cannot_come_back_than_left(systems: Systems) -> None:
    logistics = systems.logistics
    _, shipment = await shipment_of(systems, ("SKU-RARE", 3), ("SKU-GADGET", 1))
    await logistics.confirm_shipment(confirmation(shipment, "dispatch-1", "JD1", ("SKU-RARE", 2)))
    await logistics.receive_return(returned(shipment, "return-1", ("SKU-RARE", 1)))

    error = await business_error(
        logistics.receive_return(returned(shipment, "return-2", ("SKU-RARE", 2))), "over_return"
    )
    await business_error(
        logistics.receive_return(returned(shipment, "return-2", ("SKU-GADGET", 1))), "over_return"
    )
    await logistics.receive_return(returned(shipment, "return-2", ("SKU-RARE", 1)))
    await business_error(
        logistics.receive_return(returned(shipment, "return-3", ("SKU-RARE", 1))), "over_return"
    )
    ghost = shipment.model_copy(update={"order_id": "shop:other"})
    await business_error(
        logistics.receive_return(returned(ghost, "return-3", ("SKU-RARE", 1))),
        "shipment_not_found",
    )

    assert "2 shipped and 1 returned" in error.message
    await expect_on_hand(logistics, "SKU-RARE", 2 + 2)


# --- per-order reads -----------------------------------------------------------------------


async def test_list_shipments_reads_an_orders_shipments_as_they_stand(systems: Systems) -> None:
    logistics = systems.logistics
    reservation, shipment = await shipment_of(systems, ("SKU-WIDGET", 2))
    await logistics.confirm_shipment(confirmation(shipment, "confirm-1", "JD1", ("SKU-WIDGET", 1)))
    cancelled = await logistics.request_shipment(shipment_request(reservation, "ship-2"))
    await logistics.cancel_shipment(cancel(cancelled, "cancel-2"))

    listed = await logistics.list_shipments("shop:1")

    assert [(s.shipment_id, s.status, s.shipped) for s in listed] == [
        (shipment.shipment_id, ShipmentStatus.PARTIALLY_SHIPPED, stock(("SKU-WIDGET", 1))),
        (cancelled.shipment_id, ShipmentStatus.CANCELLED, []),
    ]
    assert await logistics.list_shipments("shop:other") == []
