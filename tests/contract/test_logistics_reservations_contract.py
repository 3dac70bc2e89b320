"""What every logistics adapter promises (`adapters.logistics.protocol.LogisticsAdapter`)
about stock reservations; shipments are in test_logistics_shipments_contract.py.

- `reserve_stock` takes the items off the shelf at once and all-or-nothing:
  BusinessError `item_unknown` (naming the sku) or `out_of_stock` (naming the sku
  and what is available) reserve no line at all. The same key reserves once, also
  when the request races with itself from two clients; racing orders with their
  own keys never take more than is on hand. A refused key is not used up.
- `find_reservation` / `find_shipment` answer by idempotency key, None otherwise.
- `release_reservation` gives back what is still reserved exactly once, however
  often and under however many keys it is asked (concurrently too); after a part
  has shipped, only the rest. Unknown: `reservation_not_found`.
- `amend_reservation` sets new quantities on the reservation (and its requested
  shipment), moving stock by the difference only, once per key; refused with
  `out_of_stock`, `item_unknown`, `line_already_shipped`, `reservation_not_found`,
  `shipment_not_found`, `shipment_cancelled`, `reservation_released`, changing
  nothing and leaving the key free.

Every test runs against each adapter factory (tests/support/adapter_factories.py)
and asserts through the protocol only; stock on hand is read by `expect_on_hand`,
which reserves and releases.
"""

from __future__ import annotations

import asyncio

from adapters.errors import BusinessError
from adapters.logistics.models import Reservation, ReservationStatus, ShipmentStatus
from tests.contract.builders import (
    PLENTY,
    RACERS,
    RARE_ON_HAND,
    amend,
    business_error,
    cancel,
    confirmation,
    expect_on_hand,
    outcome,
    release,
    reserve,
    shipment_of,
    shipment_request,
    stock,
)
from tests.support.adapter_factories import Systems

# --- stock reservations --------------------------------------------------------------------


async def test_reserving_twice_with_one_key_decrements_once(systems: Systems) -> None:
    logistics = systems.logistics
    request = reserve("reserve-1", ("SKU-WIDGET", 3), ("SKU-GADGET", 2))

    first = await logistics.reserve_stock(request)
    second = await logistics.reserve_stock(request)

    assert first == second
    assert first.reservation_id.startswith("RES-")
    assert first.lines == request.lines
    assert await logistics.find_reservation("reserve-1") == first
    await expect_on_hand(logistics, "SKU-WIDGET", PLENTY - 3)
    await expect_on_hand(logistics, "SKU-GADGET", PLENTY - 2)


async def test_racing_reservations_with_one_key_decrement_once(systems: Systems) -> None:
    request = reserve("reserve-1", ("SKU-RARE", 2))
    async with systems.another_client() as other:
        reservations = await asyncio.gather(
            *(systems.logistics.reserve_stock(request) for _ in range(RACERS)),
            *(other.logistics.reserve_stock(request) for _ in range(RACERS)),
        )

    assert len({r.reservation_id for r in reservations}) == 1
    assert await systems.logistics.find_reservation("reserve-1") == reservations[0]
    await expect_on_hand(systems.logistics, "SKU-RARE", RARE_ON_HAND - 2)


async def test_racing_orders_never_take_more_than_is_on_hand(systems: Systems) -> None:
    logistics = systems.logistics

    async def one(key: str) -> str:
        try:
            await logistics.reserve_stock(reserve(key, ("SKU-RARE", 1)))
        except BusinessError as error:
            return error.code
        return "reserved"

    outcomes = await asyncio.gather(*(one(f"reserve-{n}") for n in range(RACERS)))

    assert sorted(outcomes) == ["out_of_stock"] * (RACERS - 5) + ["reserved"] * 5
    await expect_on_hand(logistics, "SKU-RARE", 0)
    found = [await logistics.find_reservation(f"reserve-{n}") for n in range(RACERS)]
    assert [r is not None for r in found] == [o == "reserved" for o in outcomes]


async def test_unknown_item_reserves_nothing(systems: Systems) -> None:
    request = reserve("reserve-1", ("SKU-WIDGET", 1), ("SKU-NOPE", 1))

    error = await business_error(systems.logistics.reserve_stock(request), "item_unknown")

    assert "SKU-NOPE" in error.message
    await expect_on_hand(systems.logistics, "SKU-WIDGET", PLENTY)
    assert await systems.logistics.find_reservation("reserve-1") is None


async def test_out_of_stock_reserves_no_line(systems: Systems) -> None:
    # SKU-RARE sorts after SKU-GADGET, so the gadget line was taken before the rare one failed.
    request = reserve("reserve-1", ("SKU-GADGET", 4), ("SKU-RARE", 6))

    error = await business_error(systems.logistics.reserve_stock(request), "out_of_stock")

    assert "SKU-RARE" in error.message
    assert "5 available" in error.message
    await expect_on_hand(systems.logistics, "SKU-GADGET", PLENTY)
    await expect_on_hand(systems.logistics, "SKU-RARE", RARE_ON_HAND)
    assert await systems.logistics.find_reservation("reserve-1") is None


async def test_a_key_refused_once_can_succeed_later(systems: Systems) -> None:
    request = reserve("reserve-1", ("SKU-RARE", 6))
    await business_error(systems.logistics.reserve_stock(request), "out_of_stock")

    smaller = reserve("reserve-1", ("SKU-RARE", 5))
    reservation = await systems.logistics.reserve_stock(smaller)

    assert reservation.lines == smaller.lines
    await expect_on_hand(systems.logistics, "SKU-RARE", 0)


# --- lookups by key and releases -----------------------------------------------------------


async def test_find_reservation_and_shipment_by_their_keys(systems: Systems) -> None:
    logistics = systems.logistics
    reservation = await logistics.reserve_stock(reserve("reserve-1", ("SKU-WIDGET", 2)))
    shipment = await logistics.request_shipment(shipment_request(reservation, "ship-1"))

    assert reservation.status is ReservationStatus.RESERVED
    assert await logistics.find_reservation("reserve-1") == reservation
    assert await logistics.find_shipment("ship-1") == shipment
    assert await logistics.find_reservation("ship-1") is None
    assert await logistics.find_shipment("reserve-1") is None


async def test_releasing_again_restores_stock_once(systems: Systems) -> None:
    logistics = systems.logistics
    reservation = await logistics.reserve_stock(reserve("reserve-1", ("SKU-RARE", 2)))

    first = await logistics.release_reservation(release(reservation, "release-1"))
    replay = await logistics.release_reservation(release(reservation, "release-1"))
    other_key = await logistics.release_reservation(release(reservation, "release-2"))

    assert first == replay == other_key
    assert first.status is ReservationStatus.RELEASED
    assert first.lines == reservation.lines
    await expect_on_hand(logistics, "SKU-RARE", RARE_ON_HAND)
    assert await logistics.find_reservation("reserve-1") == first


async def test_racing_releases_restore_stock_once(systems: Systems) -> None:
    logistics = systems.logistics
    reservation = await logistics.reserve_stock(
        reserve("reserve-1", ("SKU-RARE", 2), ("SKU-GADGET", 1), ("SKU-RARE", 1))
    )
    async with systems.another_client() as other:
        released = await asyncio.gather(
            *(logistics.release_reservation(release(reservation, f"a-{n}")) for n in range(RACERS)),
            *(
                other.logistics.release_reservation(release(reservation, f"b-{n}"))
                for n in range(RACERS)
            ),
        )

    assert {r.status for r in released} == {ReservationStatus.RELEASED}
    await expect_on_hand(logistics, "SKU-RARE", RARE_ON_HAND)
    await expect_on_hand(logistics, "SKU-GADGET", PLENTY)


async def test_releasing_an_unknown_reservation_is_refused(systems: Systems) -> None:
    ghost = Reservation(reservation_id="RES-nope", order_id="shop:1", lines=[])
    await business_error(
        systems.logistics.release_reservation(release(ghost)), "reservation_not_found"
    )


# --- amendments ----------------------------------------------------------------------------


async def test_amending_moves_stock_by_the_difference_only(systems: Systems) -> None:
    logistics = systems.logistics
    reservation, shipment = await shipment_of(systems, ("SKU-RARE", 2), ("SKU-GADGET", 3))

    more = await logistics.amend_reservation(
        amend(reservation, "amend-1", ("SKU-RARE", 4), ("SKU-GADGET", 3), shipment=shipment)
    )
    await expect_on_hand(logistics, "SKU-RARE", 1)
    await expect_on_hand(logistics, "SKU-GADGET", PLENTY - 3)

    fewer = await logistics.amend_reservation(
        amend(reservation, "amend-2", ("SKU-RARE", 1), ("SKU-GADGET", 3), shipment=shipment)
    )
    await expect_on_hand(logistics, "SKU-RARE", 4)
    await expect_on_hand(logistics, "SKU-GADGET", PLENTY - 3)

    # A line left out gives all of it back; a new line takes its stock.
    swapped = await logistics.amend_reservation(
        amend(reservation, "amend-3", ("SKU-GADGET", 3), ("SKU-WIDGET", 7), shipment=shipment)
    )
    await expect_on_hand(logistics, "SKU-RARE", 5)
    await expect_on_hand(logistics, "SKU-GADGET", PLENTY - 3)
    await expect_on_hand(logistics, "SKU-WIDGET", PLENTY - 7)

    assert more.lines == stock(("SKU-RARE", 4), ("SKU-GADGET", 3))
    assert fewer.lines == stock(("SKU-RARE", 1), ("SKU-GADGET", 3))
    assert swapped.lines == stock(("SKU-GADGET", 3), ("SKU-WIDGET", 7))
    assert await logistics.find_reservation("reserve-1") == swapped
    requested = await logistics.find_shipment("ship-1")
    assert requested is not None
    assert (requested.status, requested.lines) == (ShipmentStatus.REQUESTED, swapped.lines)
    # Releasing now gives back what the amendments left reserved.
    await logistics.release_reservation(release(reservation))
    await expect_on_hand(logistics, "SKU-GADGET", PLENTY)
    await expect_on_hand(logistics, "SKU-WIDGET", PLENTY)


async def test_amending_twice_with_one_key_moves_stock_once(systems: Systems) -> None:
    logistics = systems.logistics
    reservation = await logistics.reserve_stock(reserve("reserve-1", ("SKU-RARE", 1)))
    request = amend(reservation, "amend-1", ("SKU-RARE", 3))
    async with systems.another_client() as other:
        results = await asyncio.gather(
            *(logistics.amend_reservation(request) for _ in range(RACERS)),
            *(other.logistics.amend_reservation(request) for _ in range(RACERS)),
        )
    # A replay answers with the lines the amendment set, whatever it now names.
    replay = await logistics.amend_reservation(amend(reservation, "amend-1", ("SKU-RARE", 5)))

    assert {result.model_dump_json() for result in results} == {replay.model_dump_json()}
    assert replay.lines == stock(("SKU-RARE", 3))
    await expect_on_hand(logistics, "SKU-RARE", 2)
    assert await logistics.find_reservation("reserve-1") == replay


async def test_an_amendment_beyond_the_stock_changes_nothing(systems: Systems) -> None:
    logistics = systems.logistics
    reservation, shipment = await shipment_of(systems, ("SKU-RARE", 2), ("SKU-GADGET", 1))

    error = await business_error(
        logistics.amend_reservation(
            amend(reservation, "amend-1", ("SKU-GADGET", 5), ("SKU-RARE", 6), shipment=shipment)
        ),
        "out_of_stock",
    )
    await business_error(
        logistics.amend_reservation(amend(reservation, "amend-1", ("SKU-NOPE", 1))),
        "item_unknown",
    )

    assert "3 available" in error.message  # what is on the shelf besides the 2 reserved
    await expect_on_hand(logistics, "SKU-RARE", 3)
    await expect_on_hand(logistics, "SKU-GADGET", PLENTY - 1)
    assert await logistics.find_reservation("reserve-1") == reservation
    assert await logistics.find_shipment("ship-1") == shipment
    # The refused requests did not use up the key.
    amended = await logistics.amend_reservation(amend(reservation, "amend-1", ("SKU-RARE", 5)))
    assert amended.lines == stock(("SKU-RARE", 5))
    await expect_on_hand(logistics, "SKU-RARE", 0)


async def test_a_shipped_line_cannot_be_amended(systems: Systems) -> None:
    logistics = systems.logistics
    reservation, shipment = await shipment_of(systems, ("SKU-WIDGET", 2), ("SKU-RARE", 2))
    await logistics.confirm_shipment(confirmation(shipment, "dispatch-1", "JD1", ("SKU-WIDGET", 2)))

    for lines in ((("SKU-WIDGET", 3), ("SKU-RARE", 2)), (("SKU-RARE", 2),)):
        error = await business_error(
            logistics.amend_reservation(amend(reservation, "amend-1", *lines, shipment=shipment)),
            "line_already_shipped",
        )
        assert "2 SKU-WIDGET" in error.message
    await expect_on_hand(logistics, "SKU-RARE", 3)

    # The line not shipped yet can still change; with it gone, all that is left has left.
    done = await logistics.amend_reservation(
        amend(reservation, "amend-1", ("SKU-WIDGET", 2), shipment=shipment)
    )
    final = await logistics.find_shipment("ship-1")
    assert final is not None
    assert (final.status, final.lines, final.shipped) == (
        ShipmentStatus.CONFIRMED,
        done.lines,
        stock(("SKU-WIDGET", 2)),
    )
    await expect_on_hand(logistics, "SKU-RARE", 5)


async def test_amending_what_cannot_be_amended_is_refused(systems: Systems) -> None:
    logistics = systems.logistics
    reservation, shipment = await shipment_of(systems, ("SKU-WIDGET", 2))
    other = await logistics.reserve_stock(reserve("reserve-2", ("SKU-WIDGET", 1)))
    ghost = Reservation(reservation_id="RES-nope", order_id="shop:1", lines=[])

    await business_error(
        logistics.amend_reservation(amend(ghost, "amend-1", ("SKU-WIDGET", 1))),
        "reservation_not_found",
    )
    await business_error(
        logistics.amend_reservation(amend(other, "amend-1", ("SKU-WIDGET", 1), shipment=shipment)),
        "shipment_not_found",
    )
    await logistics.cancel_shipment(cancel(shipment))
    await business_error(
        logistics.amend_reservation(
            amend(reservation, "amend-1", ("SKU-WIDGET", 1), shipment=shipment)
        ),
        "shipment_cancelled",
    )
    await logistics.release_reservation(release(reservation))
    await business_error(
        logistics.amend_reservation(amend(reservation, "amend-1", ("SKU-WIDGET", 1))),
        "reservation_released",
    )
    # None of them was recorded: the key still amends, and the other reservation is as it was.
    assert await logistics.find_reservation("reserve-2") == other
    amended = await logistics.amend_reservation(amend(other, "amend-1", ("SKU-WIDGET", 3)))
    assert amended.lines == stock(("SKU-WIDGET", 3))
    await expect_on_hand(logistics, "SKU-WIDGET", PLENTY - 3)


async def test_racing_amendments_leave_stock_consistent(systems: Systems) -> None:
    logistics = systems.logistics
    reservation = await logistics.reserve_stock(reserve("reserve-1", ("SKU-RARE", 1)))

    outcomes = await asyncio.gather(
        *(
            outcome(
                logistics.amend_reservation(amend(reservation, f"amend-{n}", ("SKU-RARE", n + 1))),
                "amended",
            )
            for n in range(RACERS)
        )
    )

    final = await logistics.find_reservation("reserve-1")
    assert final is not None
    [line] = final.lines
    await expect_on_hand(logistics, "SKU-RARE", RARE_ON_HAND - line.quantity)
    assert set(outcomes) <= {"amended", "out_of_stock"}


# --- per-order reads -----------------------------------------------------------------------


async def test_list_reservations_reads_an_orders_reservations_released_ones_too(
    systems: Systems,
) -> None:
    logistics = systems.logistics
    first = await logistics.reserve_stock(reserve("reserve-1", ("SKU-WIDGET", 2)))
    released = await logistics.release_reservation(release(first))
    second = await logistics.reserve_stock(reserve("reserve-2", ("SKU-WIDGET", 3)))
    await logistics.reserve_stock(reserve("reserve-3", ("SKU-WIDGET", 1), order_id="shop:2"))

    listed = await logistics.list_reservations("shop:1")

    assert listed == [released, second]
    assert released.status is ReservationStatus.RELEASED
    assert await logistics.list_reservations("shop:other") == []
