"""What every billing adapter promises about cash application
(`adapters.billing.protocol.BillingAdapter`).

- `apply_payment` lowers the balance once per key (racing too), down to zero where
  the invoice becomes paid, never below (`amount_exceeds_balance`), never beyond
  what the payment brought (`amount_exceeds_payment`); refused for an unknown
  invoice (`invoice_not_found`), a payment in another currency
  (`currency_mismatch`), a payment never recorded with Payments
  (`payment_not_found`), a void invoice (`invoice_void`). A refused request applies
  nothing and leaves its key free. `list_applications` / `find_application` read them.

Every test runs against each adapter factory (tests/support/adapter_factories.py)
and asserts through the protocols only.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from adapters.billing.models import InvoiceStatus
from adapters.errors import BusinessError
from tests.contract.builders import (
    RACERS,
    apply,
    business_error,
    ghost_invoice,
    only_invoice,
    open_invoice,
    paid_with,
    payment_request,
    race,
)
from tests.support.adapter_factories import Systems

# --- cash application ----------------------------------------------------------------------


async def test_applying_twice_with_one_key_reduces_the_balance_once(systems: Systems) -> None:
    invoice = await open_invoice(systems, "100.00")
    await paid_with(systems, "PAY-1", "40.00")
    billing = systems.billing

    applications = await race(lambda: billing.apply_payment(apply(invoice, "PAY-1", "40.00")))

    assert len({a.model_dump_json() for a in applications}) == 1
    assert applications[0].application_id.startswith("APP-")
    assert applications[0].invoice_balance == Decimal("60.00")
    after = await only_invoice(billing)
    assert (after.balance, after.status) == (Decimal("60.00"), InvoiceStatus.OPEN)
    assert await billing.list_applications(invoice.invoice_id) == applications[:1]


async def test_paying_the_balance_to_zero_marks_the_invoice_paid(systems: Systems) -> None:
    invoice = await open_invoice(systems, "0.10", "0.20")
    await paid_with(systems, "PAY-1", "0.10")
    await paid_with(systems, "PAY-2", "0.20")
    billing = systems.billing

    part = await billing.apply_payment(apply(invoice, "PAY-1", "0.10", key="apply-1"))
    rest = await billing.apply_payment(apply(invoice, "PAY-2", "0.20", key="apply-2"))

    assert (part.invoice_balance, rest.invoice_balance) == (Decimal("0.20"), Decimal("0.00"))
    paid = await only_invoice(billing)
    assert (paid.balance, paid.status) == (Decimal("0.00"), InvoiceStatus.PAID)
    assert await billing.list_applications(invoice.invoice_id) == [part, rest]


async def test_a_payment_above_the_balance_is_refused(systems: Systems) -> None:
    invoice = await open_invoice(systems, "10.00")
    await paid_with(systems, "PAY-1", "10.01")

    error = await business_error(
        systems.billing.apply_payment(apply(invoice, "PAY-1", "10.01")),
        "amount_exceeds_balance",
    )

    assert "10.00" in error.message
    assert (await only_invoice(systems.billing)).balance == Decimal("10.00")
    assert await systems.billing.list_applications(invoice.invoice_id) == []
    assert await systems.billing.find_application("apply-1") is None


async def test_racing_payments_never_take_a_balance_below_zero(systems: Systems) -> None:
    invoice = await open_invoice(systems, "5.00")
    await paid_with(systems, "PAY-1", "100.00")

    async def one(n: int) -> str:
        request = apply(invoice, "PAY-1", "1.00", key=f"apply-{n}")
        try:
            await systems.billing.apply_payment(request)
        except BusinessError as error:
            return error.code
        return "applied"

    outcomes = await asyncio.gather(*(one(n) for n in range(RACERS)))

    assert sorted(outcomes) == ["amount_exceeds_balance"] * (RACERS - 5) + ["applied"] * 5
    after = await only_invoice(systems.billing)
    assert (after.balance, after.status) == (Decimal("0.00"), InvoiceStatus.PAID)
    assert len(await systems.billing.list_applications(invoice.invoice_id)) == 5


async def test_a_payment_cannot_be_applied_beyond_its_amount(systems: Systems) -> None:
    first = await open_invoice(systems, "10.00", key="invoice-1")
    second = await open_invoice(systems, "10.00", key="invoice-2")
    await paid_with(systems, "PAY-1", "15.00")
    billing = systems.billing

    await billing.apply_payment(apply(first, "PAY-1", "10.00", key="apply-1"))
    await business_error(
        billing.apply_payment(apply(second, "PAY-1", "10.00", key="apply-2")),
        "amount_exceeds_payment",
    )
    partial = await billing.apply_payment(apply(second, "PAY-1", "5.00", key="apply-3"))

    assert partial.invoice_balance == Decimal("5.00")


async def test_applying_to_an_unknown_invoice_is_refused(systems: Systems) -> None:
    await paid_with(systems, "PAY-1", "10.00")
    await business_error(
        systems.billing.apply_payment(apply(ghost_invoice(), "PAY-1", "10.00")),
        "invoice_not_found",
    )


async def test_applying_a_payment_in_another_currency_is_refused(systems: Systems) -> None:
    invoice = await open_invoice(systems, "10.00")
    await systems.payments.record_payment(payment_request("PAY-1", "10.00", "USD"))

    await business_error(
        systems.billing.apply_payment(apply(invoice, "PAY-1", "10.00")), "currency_mismatch"
    )
    assert (await only_invoice(systems.billing)).balance == Decimal("10.00")


async def test_applying_an_unrecorded_payment_is_refused(systems: Systems) -> None:
    invoice = await open_invoice(systems, "10.00")
    await business_error(
        systems.billing.apply_payment(apply(invoice, "PAY-nope", "10.00")),
        "payment_not_found",
    )
