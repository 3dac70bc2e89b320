"""What every CRM adapter promises (`adapters.crm.protocol.CrmAdapter`).

- `get_customer` returns the customer as CRM holds them (name, currency, credit
  limit, status), or raises BusinessError `customer_not_found` naming the id.
- `place_on_hold` moves an active customer to on hold, once per idempotency key
  even when the same request races with itself; a replay or another key returns
  the customer as they now stand. A blocked customer stays blocked (a hold is the
  milder state); an unknown customer is `customer_not_found`.

Every test runs against each adapter factory (tests/support/adapter_factories.py)
and asserts through the protocol only.
"""

from __future__ import annotations

from decimal import Decimal

from adapters.crm.models import CustomerStatus
from tests.contract.builders import business_error, hold, race
from tests.support.adapter_factories import Systems


async def test_get_customer_returns_the_seeded_customer(systems: Systems) -> None:
    acme = await systems.crm.get_customer("CUST-ACME")
    initech = await systems.crm.get_customer("CUST-INITECH")

    assert (acme.name, acme.currency, acme.credit_limit) == (
        "Acme Corporation",
        "EUR",
        Decimal("50000.00"),
    )
    assert acme.status is CustomerStatus.ACTIVE
    assert initech.status is CustomerStatus.BLOCKED


async def test_unknown_customer_is_customer_not_found(systems: Systems) -> None:
    error = await business_error(systems.crm.get_customer("CUST-NOPE"), "customer_not_found")
    assert "CUST-NOPE" in error.message


async def test_placing_on_hold_once_per_key(systems: Systems) -> None:
    crm = systems.crm
    before = await crm.get_customer("CUST-ACME")

    held = await race(lambda: crm.place_on_hold(hold("CUST-ACME")))
    again = await crm.place_on_hold(hold("CUST-ACME", "hold-2"))

    assert before.status is CustomerStatus.ACTIVE
    assert {c.status for c in held} == {CustomerStatus.ON_HOLD}
    assert again == held[0] == await crm.get_customer("CUST-ACME")
    assert again == before.model_copy(update={"status": CustomerStatus.ON_HOLD})


async def test_a_blocked_customer_stays_blocked(systems: Systems) -> None:
    crm = systems.crm

    initech = await crm.place_on_hold(hold("CUST-INITECH"))
    await business_error(crm.place_on_hold(hold("CUST-NOPE", "hold-2")), "customer_not_found")

    assert initech.status is CustomerStatus.BLOCKED
    assert (await crm.get_customer("CUST-INITECH")).status is CustomerStatus.BLOCKED
    # The refused key stays free: it can hold a known customer afterwards.
    assert (await crm.place_on_hold(hold("CUST-ACME", "hold-2"))).status is CustomerStatus.ON_HOLD
