"""What every billing adapter promises (`adapters.billing.protocol.BillingAdapter`):
accounts, invoices, voids, balances and receivables. Cash application is in
test_billing_cash_contract.py, credit notes and customer credit in
test_billing_credit_contract.py.

Accounts and invoices
- `ensure_account` gives a customer one account (`BA-…`), never two, even when
  first orders race from two clients.
- `create_invoice` raises one invoice (`INV-…`, open, balance = amount) per key,
  however the request races; amounts round-trip exactly at the currency's scale
  (EUR, JPY, KWD, up to 100 000 000.00); an amount finer than the currency is
  `invalid_amount`, an unknown account `account_not_found`. `list_invoices` lists
  an order's invoices oldest first; `find_invoice` finds one by key.

Voids and balances
- `void_invoice` voids an untouched invoice once (replays and other keys answer
  the same void invoice, balance zero); with cash or credit applied it is
  `invoice_has_payments`; unknown is `invoice_not_found`. A void racing payments
  wins alone or not at all.
- `open_balance` sums a customer's open balances in the account's currency; with
  no account it is zero in the customer's CRM currency, or in no currency at all.

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
from tests.contract.builders import (
    RACERS,
    acme_account,
    apply,
    business_error,
    credit_note,
    dunning,
    ghost_invoice,
    invoice_request,
    only_invoice,
    open_invoice,
    outcome,
    paid_with,
    race,
    void,
)
from tests.support.adapter_factories import Systems

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
