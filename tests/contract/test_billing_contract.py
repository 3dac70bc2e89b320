"""What every billing adapter promises (`adapters.billing.protocol.BillingAdapter`).

Accounts and invoices
- `ensure_account` gives a customer one account (`BA-…`), never two, even when
  first orders race from two clients.
- `create_invoice` raises one invoice (`INV-…`, open, balance = amount) per key,
  however the request races; amounts round-trip exactly at the currency's scale
  (EUR, JPY, KWD, up to 100 000 000.00); an amount finer than the currency is
  `invalid_amount`, an unknown account `account_not_found`. `list_invoices` lists
  an order's invoices oldest first; `find_invoice` finds one by key.

Cash application
- `apply_payment` lowers the balance once per key (racing too), down to zero where
  the invoice becomes paid, never below (`amount_exceeds_balance`), never beyond
  what the payment brought (`amount_exceeds_payment`); refused for an unknown
  invoice (`invoice_not_found`), a payment in another currency
  (`currency_mismatch`), a payment never recorded with Payments
  (`payment_not_found`), a void invoice (`invoice_void`). A refused request applies
  nothing and leaves its key free. `list_applications` / `find_application` read them.

Voids, balances, credit
- `void_invoice` voids an untouched invoice once (replays and other keys answer
  the same void invoice, balance zero); with cash or credit applied it is
  `invoice_has_payments`; unknown is `invoice_not_found`. A void racing payments
  wins alone or not at all.
- `open_balance` sums a customer's open balances in the account's currency; with
  no account it is zero in the customer's CRM currency, or in no currency at all.
- `create_credit_note` lowers the invoice's balance first and turns the rest into
  customer credit, once per key, never beyond the invoice (`credit_exceeds_invoice`);
  refused (`invoice_not_found`, `currency_mismatch`, `invoice_void`,
  `invalid_amount`) without effect.
- `post_customer_credit` adds or uses credit once per key, never below zero
  (`insufficient_credit`) nor above what an amount can hold
  (`credit_balance_too_large`); `customer_credit` reads it (`account_not_found`).
- `paid_into` says whether a payment's money reached an account (applied, or kept
  as credit).

Receivables
- `send_dunning_notice` sends one notice (`DUN-…`) per key; `list_open_invoices`
  lists those with a balance left; `list_invoices_dated` includes both ends.

Every test runs against each adapter factory (tests/support/adapter_factories.py)
and asserts through the protocols only.
"""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal

import pytest

from adapters.billing.models import BillingAccount, Invoice, InvoiceStatus, OpenBalance
from adapters.billing.protocol import BillingAdapter
from adapters.errors import BusinessError
from tests.contract.builders import (
    RACERS,
    acme_account,
    apply,
    business_error,
    credit_entry,
    credit_note,
    dunning,
    ghost_invoice,
    invoice_request,
    open_invoice,
    outcome,
    paid_with,
    payment_request,
    race,
    void,
)
from tests.support.adapter_factories import Systems


async def only_invoice(billing: BillingAdapter, order_id: str = "shop:1") -> Invoice:
    [invoice] = await billing.list_invoices(order_id)
    return invoice


# --- billing accounts ----------------------------------------------------------------------


async def test_ensure_account_twice_keeps_one_account(systems: Systems) -> None:
    first = await acme_account(systems)
    second = await acme_account(systems)

    assert first == second
    assert first.account_id.startswith("BA-")
    assert (first.customer_id, first.name, first.currency) == (
        "CUST-ACME",
        "Acme Corporation",
        "EUR",
    )


async def test_racing_first_orders_make_one_account(systems: Systems) -> None:
    customer = await systems.crm.get_customer("CUST-GLOBEX")
    async with systems.another_client() as other:
        accounts = await asyncio.gather(
            *(systems.billing.ensure_account(customer) for _ in range(RACERS)),
            *(other.billing.ensure_account(customer) for _ in range(RACERS)),
        )

    assert len({account.account_id for account in accounts}) == 1
    assert await systems.billing.ensure_account(customer) == accounts[0]


# --- invoices ------------------------------------------------------------------------------


async def test_invoicing_twice_with_one_key_makes_one_invoice(systems: Systems) -> None:
    account = await acme_account(systems)
    request = invoice_request(account.account_id, "invoice-1", "10.00", "5.50")
    async with systems.another_client() as other:
        invoices = await asyncio.gather(
            *(systems.billing.create_invoice(request) for _ in range(RACERS)),
            *(other.billing.create_invoice(request) for _ in range(RACERS)),
        )

    assert len({invoice.model_dump_json() for invoice in invoices}) == 1
    invoice = invoices[0]
    assert invoice.invoice_id.startswith("INV-")
    assert (invoice.amount, invoice.balance, invoice.status) == (
        Decimal("15.50"),
        Decimal("15.50"),
        InvoiceStatus.OPEN,
    )
    assert await systems.billing.list_invoices("shop:1") == [invoice]
    assert await systems.billing.find_invoice("invoice-1") == invoice


async def test_invoice_on_unknown_account_is_refused(systems: Systems) -> None:
    request = invoice_request("BA-nope", "invoice-1", "10.00")
    await business_error(systems.billing.create_invoice(request), "account_not_found")


async def test_list_invoices_oldest_first(systems: Systems) -> None:
    first = await open_invoice(systems, "1.00", key="invoice-1")
    second = await open_invoice(systems, "2.00", key="invoice-2")

    assert await systems.billing.list_invoices("shop:1") == [first, second]
    assert await systems.billing.list_invoices("shop:other") == []


MONEY = [
    ("EUR", ("0.10", "0.20"), "0.30"),
    ("JPY", ("1500", "1"), "1501"),
    ("KWD", ("12.345", "0.001"), "12.346"),
    ("EUR", ("99999999.99", "0.01"), "100000000.00"),
]


@pytest.mark.parametrize(("currency", "prices", "total"), MONEY)
async def test_money_round_trips_exactly(
    systems: Systems, currency: str, prices: tuple[str, ...], total: str
) -> None:
    invoice = await open_invoice(systems, *prices, currency=currency)

    listed = await only_invoice(systems.billing)
    assert invoice.amount == listed.amount == Decimal(total)
    assert str(listed.amount) == total  # the currency's scale, not just an equal value
    found = await systems.billing.find_invoice("inv-1")
    assert found is not None
    assert str(found.amount) == str(found.balance) == total


async def test_an_amount_finer_than_the_currency_is_refused(systems: Systems) -> None:
    account = await acme_account(systems)
    request = invoice_request(account.account_id, "invoice-1", "0.005")

    await business_error(systems.billing.create_invoice(request), "invalid_amount")
    assert await systems.billing.find_invoice("invoice-1") is None
    assert await systems.billing.list_invoices("shop:1") == []


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


# --- lookups by key, voids and the open balance --------------------------------------------


async def test_find_invoice_and_application_by_their_keys(systems: Systems) -> None:
    billing = systems.billing
    invoice = await open_invoice(systems, "10.00", key="invoice-1")
    await paid_with(systems, "PAY-1", "4.00")
    application = await billing.apply_payment(apply(invoice, "PAY-1", "4.00", key="apply-1"))

    assert await billing.find_invoice("invoice-1") == invoice.model_copy(
        update={"balance": Decimal("6.00")}
    )
    assert await billing.find_application("apply-1") == application
    assert await billing.find_invoice("apply-1") is None
    assert await billing.find_application("invoice-1") is None


async def test_voiding_again_keeps_the_invoice_void(systems: Systems) -> None:
    billing = systems.billing
    invoice = await open_invoice(systems, "10.00", "5.50")

    first = await billing.void_invoice(void(invoice, "void-1"))
    replay = await billing.void_invoice(void(invoice, "void-1"))
    other_key = await billing.void_invoice(void(invoice, "void-2"))

    assert first == replay == other_key
    assert (first.status, first.amount, first.balance) == (
        InvoiceStatus.VOID,
        Decimal("15.50"),
        Decimal("0.00"),
    )
    assert await billing.list_invoices("shop:1") == [first]
    assert await billing.find_invoice("inv-1") == first


async def test_an_invoice_with_payments_cannot_be_voided(systems: Systems) -> None:
    billing = systems.billing
    invoice = await open_invoice(systems, "10.00")
    await paid_with(systems, "PAY-1", "0.01")
    await billing.apply_payment(apply(invoice, "PAY-1", "0.01"))

    error = await business_error(billing.void_invoice(void(invoice)), "invoice_has_payments")

    assert "0.01 EUR" in error.message
    after = await only_invoice(billing)
    assert (after.status, after.balance) == (InvoiceStatus.OPEN, Decimal("9.99"))


async def test_voiding_an_unknown_invoice_is_refused(systems: Systems) -> None:
    await business_error(systems.billing.void_invoice(void(ghost_invoice())), "invoice_not_found")


async def test_a_void_invoice_takes_no_payment_and_owes_nothing(systems: Systems) -> None:
    billing = systems.billing
    invoice = await open_invoice(systems, "10.00")
    await paid_with(systems, "PAY-1", "10.00")
    owed = await billing.open_balance("CUST-ACME")
    voided = await billing.void_invoice(void(invoice))

    await business_error(billing.apply_payment(apply(invoice, "PAY-1", "10.00")), "invoice_void")

    assert owed.amount == Decimal("10.00")
    assert (await billing.open_balance("CUST-ACME")).amount == Decimal("0.00")
    assert await billing.list_invoices("shop:1") == [voided]
    assert await billing.find_application("apply-1") is None  # the refused key stays free
    assert await billing.list_applications(invoice.invoice_id) == []


async def test_a_void_racing_payments_wins_alone_or_not_at_all(systems: Systems) -> None:
    billing = systems.billing
    invoice = await open_invoice(systems, "10.00")
    await paid_with(systems, "PAY-1", "10.00")

    outcomes = await asyncio.gather(
        *(
            call
            for n in range(RACERS // 2)
            for call in (
                outcome(billing.void_invoice(void(invoice, f"void-{n}")), "voided"),
                outcome(billing.apply_payment(apply(invoice, "PAY-1", "1.00", f"a-{n}")), "paid"),
            )
        )
    )

    after = await only_invoice(billing)
    applied = outcomes.count("paid")
    assert len(await billing.list_applications(invoice.invoice_id)) == applied
    if after.status is InvoiceStatus.VOID:
        assert (applied, after.balance) == (0, Decimal("0.00"))
        assert set(outcomes) == {"voided", "invoice_void"}
    else:
        assert applied == RACERS // 2
        assert after.balance == Decimal("10.00") - applied
        assert set(outcomes) == {"paid", "invoice_has_payments"}


async def test_open_balance_sums_the_customers_open_invoices(systems: Systems) -> None:
    billing, crm = systems.billing, systems.crm
    acme = await acme_account(systems)
    globex = await billing.ensure_account(await crm.get_customer("CUST-GLOBEX"))

    async def invoice(account: BillingAccount, key: str, price: str) -> Invoice:
        request = invoice_request(account.account_id, key, price, currency=account.currency)
        return await billing.create_invoice(request)

    partly_paid = await invoice(acme, "acme-1", "100.00")
    await invoice(acme, "acme-2", "25.50")
    paid = await invoice(acme, "acme-3", "7.00")
    voided = await invoice(acme, "acme-4", "1000.00")
    await invoice(globex, "globex-1", "70.00")
    await paid_with(systems, "PAY-1", "47.00")
    await billing.apply_payment(apply(partly_paid, "PAY-1", "40.00", key="apply-1"))
    await billing.apply_payment(apply(paid, "PAY-1", "7.00", key="apply-2"))
    await billing.void_invoice(void(voided))

    assert await billing.open_balance("CUST-ACME") == OpenBalance(
        customer_id="CUST-ACME", currency="EUR", amount=Decimal("85.50")
    )
    assert await billing.open_balance("CUST-GLOBEX") == OpenBalance(
        customer_id="CUST-GLOBEX", currency="USD", amount=Decimal("70.00")
    )


async def test_open_balance_without_an_account_is_zero(systems: Systems) -> None:
    billing = systems.billing

    crm_only = await billing.open_balance("CUST-INITECH")
    unknown = await billing.open_balance("CUST-NOPE")

    assert (crm_only.currency, str(crm_only.amount)) == ("EUR", "0.00")
    assert (unknown.currency, unknown.amount) == ("", Decimal(0))


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


# --- dunning and receivables reads ---------------------------------------------------------


async def test_a_dunning_notice_is_sent_once_per_key(systems: Systems) -> None:
    billing = systems.billing
    invoice = await open_invoice(systems, "10.00")
    ghost = invoice.model_copy(update={"invoice_id": "INV-nope"})

    notices = await race(lambda: billing.send_dunning_notice(dunning(invoice)))
    replay = await billing.send_dunning_notice(dunning(invoice, level="final"))
    escalation = await billing.send_dunning_notice(dunning(invoice, "dun-2", "final"))
    await business_error(billing.send_dunning_notice(dunning(ghost, "dun-3")), "invoice_not_found")

    assert {n.model_dump_json() for n in notices} == {replay.model_dump_json()}
    assert replay.notice_id.startswith("DUN-")
    assert (replay.invoice_id, replay.level, replay.days_past_due) == (
        invoice.invoice_id,
        "reminder",
        7,
    )
    assert replay.sent_at.tzinfo is not None
    assert (escalation.level, escalation.notice_id != replay.notice_id) == ("final", True)
    # The refused key stays free.
    assert (await billing.send_dunning_notice(dunning(invoice, "dun-3"))).notice_id not in {
        replay.notice_id,
        escalation.notice_id,
    }


async def test_open_invoices_are_those_with_a_balance_left(systems: Systems) -> None:
    billing = systems.billing
    untouched = await open_invoice(systems, "10.00", key="inv-1")
    partly_paid = await open_invoice(systems, "20.00", key="inv-2")
    paid = await open_invoice(systems, "30.00", key="inv-3")
    credited = await open_invoice(systems, "40.00", key="inv-4")
    voided = await open_invoice(systems, "50.00", key="inv-5")
    await paid_with(systems, "PAY-1", "35.00")
    await billing.apply_payment(apply(partly_paid, "PAY-1", "5.00", "apply-1"))
    await billing.apply_payment(apply(paid, "PAY-1", "30.00", "apply-2"))
    await billing.create_credit_note(credit_note(credited, "credit-1", "40.00"))
    await billing.void_invoice(void(voided))

    open_ids = [invoice.invoice_id for invoice in await billing.list_open_invoices()]

    assert open_ids == [untouched.invoice_id, partly_paid.invoice_id]


async def test_invoices_dated_in_a_range_include_both_ends(systems: Systems) -> None:
    billing = systems.billing
    account = await acme_account(systems)
    by_day: dict[int, Invoice] = {}
    for day in (1, 2, 15, 31):
        request = invoice_request(account.account_id, f"inv-{day}", "1.00").model_copy(
            update={"invoice_date": date(2025, 3, day)}
        )
        by_day[day] = await billing.create_invoice(request)
    march = await billing.list_invoices_dated(date(2025, 3, 2), date(2025, 3, 31))
    one_day = await billing.list_invoices_dated(date(2025, 3, 15), date(2025, 3, 15))

    assert march == [by_day[2], by_day[15], by_day[31]]
    assert one_day == [by_day[15]]
    assert await billing.list_invoices_dated(date(2025, 4, 1), date(2025, 4, 30)) == []
