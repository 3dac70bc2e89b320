"""What every billing adapter promises about credit notes and customer credit
(`adapters.billing.protocol.BillingAdapter`).

- `create_credit_note` lowers the invoice's balance first and turns the rest into
  customer credit, once per key, never beyond the invoice (`credit_exceeds_invoice`);
  refused (`invoice_not_found`, `currency_mismatch`, `invoice_void`,
  `invalid_amount`) without effect.
- `post_customer_credit` adds or uses credit once per key, never below zero
  (`insufficient_credit`) nor above what an amount can hold
  (`credit_balance_too_large`); `customer_credit` reads it (`account_not_found`).
- `paid_into` says whether a payment's money reached an account (applied, or kept
  as credit).

Every test runs against each adapter factory (tests/support/adapter_factories.py)
and asserts through the protocols only.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from adapters.billing.models import InvoiceStatus
from tests.contract.builders import (
    RACERS,
    acme_account,
    apply,
    business_error,
    credit_entry,
    credit_note,
    only_invoice,
    open_invoice,
    outcome,
    paid_with,
    race,
    void,
)
from tests.support.adapter_factories import Systems

# --- credit notes and customer credit ------------------------------------------------------


@pytest.mark.parametrize(
    ("paid", "credited", "applied", "to_credit", "balance", "status"),
    [
        ("0.00", "30.00", "30.00", "0.00", "70.00", InvoiceStatus.OPEN),
        ("50.00", "80.00", "50.00", "30.00", "0.00", InvoiceStatus.PAID),
        ("100.00", "40.00", "0.00", "40.00", "0.00", InvoiceStatus.PAID),
    ],
    ids=["unpaid", "half-paid", "paid"],
)
async def test_a_credit_note_lowers_the_invoice_then_credits_the_customer(
    systems: Systems,
    paid: str,
    credited: str,
    applied: str,
    to_credit: str,
    balance: str,
    status: InvoiceStatus,
) -> None:
    billing = systems.billing
    invoice = await open_invoice(systems, "60.00", "40.00")
    if paid != "0.00":
        await paid_with(systems, "PAY-1", paid)
        await billing.apply_payment(apply(invoice, "PAY-1", paid))
    half = str(Decimal(credited) / 2)
    request = credit_note(invoice, "credit-1", half, half)

    notes = await race(lambda: billing.create_credit_note(request))

    note = notes[0]
    assert {n.model_dump_json() for n in notes} == {note.model_dump_json()}
    assert note.credit_note_id.startswith("CN-")
    assert (note.amount, note.applied_to_invoice, note.to_customer_credit) == (
        Decimal(credited),
        Decimal(applied),
        Decimal(to_credit),
    )
    after = await only_invoice(billing)
    assert (after.balance, after.status) == (Decimal(balance), status)
    credit = await billing.customer_credit(invoice.account_id)
    assert (credit.currency, credit.balance) == ("EUR", Decimal(to_credit))
    assert await billing.find_credit_note("credit-1") == note
    assert await billing.find_credit_note("inv-1") is None


async def test_credit_notes_never_credit_more_than_the_invoice(systems: Systems) -> None:
    billing = systems.billing
    invoice = await open_invoice(systems, "10.00")
    await billing.create_credit_note(credit_note(invoice, "credit-1", "6.00"))

    error = await business_error(
        billing.create_credit_note(credit_note(invoice, "credit-2", "4.01")),
        "credit_exceeds_invoice",
    )
    rest = await billing.create_credit_note(credit_note(invoice, "credit-2", "4.00"))

    assert "6.00 EUR credited already" in error.message
    assert (rest.applied_to_invoice, rest.to_customer_credit) == (Decimal("4.00"), Decimal("0.00"))
    after = await only_invoice(billing)
    assert (after.balance, after.status) == (Decimal("0.00"), InvoiceStatus.PAID)
    # Credited in part, the invoice is no longer untouched: a void is refused.
    await business_error(billing.void_invoice(void(invoice)), "invoice_has_payments")


async def test_racing_credit_notes_reconcile_to_the_cent(systems: Systems) -> None:
    billing = systems.billing
    invoice = await open_invoice(systems, "5.00")
    await paid_with(systems, "PAY-1", "2.00")
    await billing.apply_payment(apply(invoice, "PAY-1", "2.00"))
    async with systems.another_client() as other:
        outcomes = await asyncio.gather(
            *(
                outcome(client.billing.create_credit_note(credit_note(invoice, key, "1.00")), "ok")
                for n in range(RACERS)
                for client, key in ((systems, f"a-{n}"), (other, f"b-{n}"))
            )
        )

    assert sorted(outcomes) == ["credit_exceeds_invoice"] * (2 * RACERS - 5) + ["ok"] * 5
    after = await only_invoice(billing)
    assert (after.balance, after.status) == (Decimal("0.00"), InvoiceStatus.PAID)
    # 3.00 was still owed; the 2.00 already paid comes back as credit.
    credit = await billing.customer_credit(invoice.account_id)
    assert credit.balance == Decimal("2.00")


async def test_impossible_credit_notes_are_refused(systems: Systems) -> None:
    billing = systems.billing
    invoice = await open_invoice(systems, "10.00")
    voided = await open_invoice(systems, "10.00", key="inv-2")
    await billing.void_invoice(void(voided))
    ghost = invoice.model_copy(update={"invoice_id": "INV-nope"})
    elsewhere = invoice.model_copy(update={"account_id": "BA-other"})

    for request, code in [
        (credit_note(ghost, "credit-1", "1.00"), "invoice_not_found"),
        (credit_note(elsewhere, "credit-1", "1.00"), "invoice_not_found"),
        (credit_note(invoice, "credit-1", "1.00", currency="USD"), "currency_mismatch"),
        (credit_note(voided, "credit-1", "1.00"), "invoice_void"),
        (credit_note(invoice, "credit-1", "0.00"), "invalid_amount"),
        (credit_note(invoice, "credit-1", "2.00", "-1.00"), "invalid_amount"),
        (credit_note(invoice, "credit-1", "0.001"), "invalid_amount"),
    ]:
        await business_error(billing.create_credit_note(request), code)

    assert await billing.find_credit_note("credit-1") is None
    assert (await billing.customer_credit(invoice.account_id)).balance == Decimal("0.00")
    assert (await billing.find_invoice("inv-1")) == invoice


async def test_customer_credit_is_posted_once_per_key(systems: Systems) -> None:
    billing = systems.billing
    account = await acme_account(systems)
    empty = await billing.customer_credit(account.account_id)

    added = await race(
        lambda: billing.post_customer_credit(credit_entry(account.account_id, "10.00", "c-1"))
    )
    used = await race(
        lambda: billing.post_customer_credit(credit_entry(account.account_id, "-6.00", "c-2"))
    )
    replay = await billing.post_customer_credit(credit_entry(account.account_id, "99.00", "c-1"))

    assert (empty.currency, str(empty.balance)) == ("EUR", "0.00")
    assert {a.balance for a in added} == {replay.balance} == {Decimal("10.00")}
    assert {u.balance for u in used} == {Decimal("4.00")}
    assert (await billing.customer_credit(account.account_id)).balance == Decimal("4.00")


async def test_customer_credit_cannot_go_below_zero(systems: Systems) -> None:
    billing = systems.billing
    account = await acme_account(systems)
    await billing.post_customer_credit(credit_entry(account.account_id, "5.00", "c-1"))

    error = await business_error(
        billing.post_customer_credit(credit_entry(account.account_id, "-5.01", "c-2")),
        "insufficient_credit",
    )
    rest = await billing.post_customer_credit(credit_entry(account.account_id, "-5.00", "c-2"))

    assert "5.00 EUR of credit" in error.message
    assert rest.balance == Decimal("0.00")  # the refused request did not use up its key
    for entry, code in [
        (credit_entry(account.account_id, "-0.01", "c-3"), "insufficient_credit"),
        (credit_entry(account.account_id, "1.00", "c-3", currency="USD"), "currency_mismatch"),
        (credit_entry(account.account_id, "0.00", "c-3"), "invalid_amount"),
        (credit_entry("BA-nope", "1.00", "c-3"), "account_not_found"),
    ]:
        await business_error(billing.post_customer_credit(entry), code)
    await business_error(billing.customer_credit("BA-nope"), "account_not_found")
    assert (await billing.customer_credit(account.account_id)).balance == Decimal("0.00")
    # None of the refused entries used up c-3.
    later = await billing.post_customer_credit(credit_entry(account.account_id, "1.00", "c-3"))
    assert later.balance == Decimal("1.00")


async def test_racing_uses_of_credit_never_go_below_zero(systems: Systems) -> None:
    billing = systems.billing
    account = await acme_account(systems)
    await billing.post_customer_credit(credit_entry(account.account_id, "5.00", "c-0"))
    async with systems.another_client() as other:
        outcomes = await asyncio.gather(
            *(
                outcome(
                    client.billing.post_customer_credit(
                        credit_entry(account.account_id, "-1.00", key)
                    ),
                    "used",
                )
                for n in range(RACERS)
                for client, key in ((systems, f"a-{n}"), (other, f"b-{n}"))
            )
        )

    assert sorted(outcomes) == ["insufficient_credit"] * (2 * RACERS - 5) + ["used"] * 5
    assert (await billing.customer_credit(account.account_id)).balance == Decimal("0.00")


async def test_customer_credit_never_grows_past_an_amount(systems: Systems) -> None:
    billing = systems.billing
    account = await acme_account(systems)
    await billing.post_customer_credit(
        credit_entry(account.account_id, "9999999999999999.99", "c-1")
    )

    await business_error(
        billing.post_customer_credit(credit_entry(account.account_id, "0.01", "c-2")),
        "credit_balance_too_large",
    )

    balance = await billing.customer_credit(account.account_id)
    assert balance.balance == Decimal("9999999999999999.99")


async def test_a_payment_paid_into_an_account_by_application_or_as_credit(
    systems: Systems,
) -> None:
    billing = systems.billing
    invoice = await open_invoice(systems, "100.00")
    await paid_with(systems, "PAY-1", "40.00")
    await billing.apply_payment(apply(invoice, "PAY-1", "40.00"))
    overpaid = credit_entry(invoice.account_id, "5.00", "c-1").model_copy(
        update={"payment_id": "PAY-2"}
    )
    await billing.post_customer_credit(overpaid)

    assert await billing.paid_into(invoice.account_id, "PAY-1")  # applied to its invoice
    assert await billing.paid_into(invoice.account_id, "PAY-2")  # kept on it as credit
    assert not await billing.paid_into(invoice.account_id, "PAY-3")
    assert not await billing.paid_into("BA-someone-else", "PAY-1")


# --- per-invoice reads ---------------------------------------------------------------------


async def test_list_credit_notes_reads_an_invoices_credit_notes(systems: Systems) -> None:
    billing = systems.billing
    invoice = await open_invoice(systems, "60.00", "40.00")
    first = await billing.create_credit_note(credit_note(invoice, "credit-1", "10.00"))
    second = await billing.create_credit_note(credit_note(invoice, "credit-2", "5.00"))

    assert await billing.list_credit_notes(invoice.invoice_id) == [first, second]
    assert await billing.list_credit_notes("INV-NONE") == []
