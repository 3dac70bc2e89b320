"""What only the local adapters' own rows can show, on SQLite and on PostgreSQL.

The behaviour behind the protocols is in the contract suites
(test_{crm,billing,logistics,payments}_*contract.py). Here each such scenario runs
again on the local adapters and the database is read afterwards: exactly one row
per idempotency key, none for a refused request, stock on the shelf, money kept in
the currency's minor units. Then demo seeding, which must leave the rows as they were.
The database itself (URLs, settings, an older schema) is in test_local_database.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from sqlmodel import col, func, select

from adapters.billing.models import InvoiceStatus
from adapters.local import LocalAdapters, LocalDatabase, seed_demo_data
from adapters.local.tables import (
    BillingAccountRow,
    CardAuthorisationRow,
    CardCaptureRow,
    CreditNoteRow,
    CustomerCreditRow,
    CustomerHoldRow,
    CustomerRow,
    DunningNoticeRow,
    InvoiceLineRow,
    InvoiceRow,
    ItemRow,
    LocalTable,
    PaymentApplicationRow,
    PaymentRow,
    RefundRow,
    ReservationAmendmentRow,
    ReservationLineRow,
    ReservationRow,
    ShipmentDispatchRow,
    ShipmentReturnRow,
    ShipmentRow,
    StoredCardRow,
)
from tests.contract import test_billing_cash_contract as billing_cash
from tests.contract import test_billing_credit_contract as billing_credit
from tests.contract import test_billing_invoices_contract as billing_invoices
from tests.contract import test_crm_contract as crm
from tests.contract import test_logistics_reservations_contract as logistics_reservations
from tests.contract import test_logistics_shipments_contract as logistics_shipments
from tests.contract import test_payments_contract as payments
from tests.contract.builders import PLENTY, PROBE_ORDER, reserve, seed_baseline
from tests.support.adapter_factories import Systems, local_systems

Scenario = Callable[[Systems], Awaitable[None]]
RowCheck = Callable[[LocalDatabase], None]

# --- reading rows --------------------------------------------------------------------------


def count(db: LocalDatabase, table: type[LocalTable]) -> int:
    """Rows in `table`; reservations (and their lines) made to probe stock do not count."""
    with db.reading() as session:
        if table is ReservationRow:
            query = select(func.count()).where(col(ReservationRow.order_id) != PROBE_ORDER)
            return session.exec(query.select_from(ReservationRow)).one()
        if table is ReservationLineRow:
            probes = select(ReservationRow.reservation_id).where(
                col(ReservationRow.order_id) == PROBE_ORDER
            )
            query = select(func.count()).where(
                col(ReservationLineRow.reservation_id).not_in(probes)
            )
            return session.exec(query.select_from(ReservationLineRow)).one()
        return session.exec(select(func.count()).select_from(table)).one()


def on_hand(db: LocalDatabase, sku: str) -> int:
    with db.reading() as session:
        item = session.get(ItemRow, sku)
        assert item is not None
        return item.on_hand


def invoice_row(db: LocalDatabase, key: str = "inv-1") -> InvoiceRow:
    """The invoice raised with idempotency key `key`."""
    with db.reading() as session:
        row = session.exec(select(InvoiceRow).where(col(InvoiceRow.idempotency_key) == key)).one()
        return row


def invoice_is(balance_minor: int, status: InvoiceStatus, key: str = "inv-1") -> RowCheck:
    def check(db: LocalDatabase) -> None:
        row = invoice_row(db, key)
        assert (row.balance_minor, row.status) == (balance_minor, status.value)

    return check


def untouched_by_the_refused_void(db: LocalDatabase) -> None:
    row = invoice_row(db)
    assert (row.status, row.balance_minor, row.void_key) == (InvoiceStatus.OPEN, 999, None)


# --- each contract scenario leaves exactly these rows --------------------------------------


def rows(
    scenario: Scenario,
    counts: dict[type[LocalTable], int],
    stock: dict[str, int] | None = None,
    check: RowCheck | None = None,
    *,
    name: str | None = None,
) -> pytest.ParameterSet:
    case = name or getattr(scenario, "__name__", "scenario").removeprefix("test_")
    return pytest.param(scenario, counts, stock or {}, check, id=case)


def credit_note_case(case: str, credit_rows: int) -> pytest.ParameterSet:
    amounts = {
        "unpaid": ("0.00", "30.00", "30.00", "0.00", "70.00", InvoiceStatus.OPEN),
        "half-paid": ("50.00", "80.00", "50.00", "30.00", "0.00", InvoiceStatus.PAID),
        "paid": ("100.00", "40.00", "0.00", "40.00", "0.00", InvoiceStatus.PAID),
    }[case]

    async def scenario(systems: Systems) -> None:
        await billing_credit.test_a_credit_note_lowers_the_invoice_then_credits_the_customer(
            systems, *amounts
        )

    counts: dict[type[LocalTable], int] = {CreditNoteRow: 1, CustomerCreditRow: credit_rows}
    return rows(scenario, counts, name=f"a_credit_note_lowers_the_invoice-{case}")


def refund_case(payment_id: str, amount: str, code: str) -> pytest.ParameterSet:
    async def scenario(systems: Systems) -> None:
        await payments.test_impossible_refunds_are_refused(systems, payment_id, amount, code)

    # Only the full refund the scenario makes at the end, under the key the refusal left free.
    return rows(scenario, {RefundRow: 1}, name=f"impossible_refunds-{payment_id}-{amount}")


ROWS = [
    # CRM
    rows(crm.test_placing_on_hold_once_per_key, {CustomerHoldRow: 2}),
    rows(crm.test_a_blocked_customer_stays_blocked, {CustomerHoldRow: 2}),
    # logistics
    rows(
        logistics_reservations.test_reserving_twice_with_one_key_decrements_once,
        {ReservationRow: 1, ReservationLineRow: 2},
        {"SKU-WIDGET": PLENTY - 3, "SKU-GADGET": PLENTY - 2},
    ),
    rows(
        logistics_reservations.test_racing_reservations_with_one_key_decrement_once,
        {ReservationRow: 1},
        {"SKU-RARE": 3},
    ),
    rows(
        logistics_reservations.test_racing_orders_never_take_more_than_is_on_hand,
        {ReservationRow: 5},
        {"SKU-RARE": 0},
    ),
    rows(
        logistics_reservations.test_unknown_item_reserves_nothing,
        {ReservationRow: 0},
        {"SKU-WIDGET": PLENTY},
    ),
    rows(
        logistics_reservations.test_out_of_stock_reserves_no_line,
        {ReservationRow: 0, ReservationLineRow: 0},
        {"SKU-GADGET": PLENTY, "SKU-RARE": 5},
    ),
    rows(
        logistics_reservations.test_a_key_refused_once_can_succeed_later,
        {ReservationRow: 1},
        {"SKU-RARE": 0},
    ),
    rows(logistics_shipments.test_requesting_a_shipment_twice_makes_one, {ShipmentRow: 1}),
    rows(
        logistics_shipments.test_a_dispatch_beyond_what_is_left_is_over_shipment,
        {ShipmentDispatchRow: 2},
    ),
    rows(logistics_reservations.test_releasing_again_restores_stock_once, {}, {"SKU-RARE": 5}),
    rows(
        logistics_reservations.test_racing_releases_restore_stock_once,
        {},
        {"SKU-RARE": 5, "SKU-GADGET": PLENTY},
    ),
    rows(logistics_shipments.test_a_released_reservation_cannot_ship, {ShipmentRow: 0}),
    rows(
        logistics_shipments.test_partial_dispatches_sum_to_confirmed,
        {ShipmentDispatchRow: 3},
        {"SKU-WIDGET": PLENTY - 3, "SKU-RARE": 3},
    ),
    rows(
        logistics_shipments.test_racing_dispatches_with_one_key_record_one, {ShipmentDispatchRow: 1}
    ),
    rows(
        logistics_shipments.test_releasing_after_a_part_left_gives_back_only_the_rest,
        {ShipmentDispatchRow: 1},
        {"SKU-RARE": 4},
    ),
    rows(
        logistics_reservations.test_amending_moves_stock_by_the_difference_only,
        {ReservationAmendmentRow: 3},
        {"SKU-RARE": 5, "SKU-GADGET": PLENTY, "SKU-WIDGET": PLENTY},
    ),
    rows(
        logistics_reservations.test_amending_twice_with_one_key_moves_stock_once,
        {ReservationAmendmentRow: 1},
        {"SKU-RARE": 2},
    ),
    # The refused amendments left none; the one under the same key at the end is the row.
    rows(
        logistics_reservations.test_an_amendment_beyond_the_stock_changes_nothing,
        {ReservationAmendmentRow: 1},
        {"SKU-RARE": 0, "SKU-GADGET": PLENTY},  # the last amendment left the gadget out
    ),
    rows(
        logistics_reservations.test_amending_what_cannot_be_amended_is_refused,
        {ReservationAmendmentRow: 1},
    ),
    # One return under the raced key, one more of 1 at the end.
    rows(logistics_shipments.test_a_return_restocks_once, {ShipmentReturnRow: 2}, {"SKU-RARE": 5}),
    rows(
        logistics_shipments.test_more_cannot_come_back_than_left,
        {ShipmentReturnRow: 2},
        {"SKU-RARE": 4},
    ),
    # billing
    rows(billing_invoices.test_ensure_account_twice_keeps_one_account, {BillingAccountRow: 1}),
    rows(billing_invoices.test_racing_first_orders_make_one_account, {BillingAccountRow: 1}),
    rows(
        billing_invoices.test_invoicing_twice_with_one_key_makes_one_invoice,
        {InvoiceRow: 1, InvoiceLineRow: 2},
    ),
    rows(billing_invoices.test_an_amount_finer_than_the_currency_is_refused, {InvoiceRow: 0}),
    rows(
        billing_cash.test_applying_twice_with_one_key_reduces_the_balance_once,
        {PaymentApplicationRow: 1},
        check=invoice_is(6_000, InvoiceStatus.OPEN),
    ),
    rows(
        billing_cash.test_a_payment_above_the_balance_is_refused,
        {PaymentApplicationRow: 0},
        check=invoice_is(1_000, InvoiceStatus.OPEN),
    ),
    rows(
        billing_cash.test_racing_payments_never_take_a_balance_below_zero,
        {PaymentApplicationRow: 5},
        check=invoice_is(0, InvoiceStatus.PAID),
    ),
    rows(
        billing_cash.test_applying_a_payment_in_another_currency_is_refused,
        {PaymentApplicationRow: 0},
        check=invoice_is(1_000, InvoiceStatus.OPEN),
    ),
    rows(
        billing_invoices.test_an_invoice_with_payments_cannot_be_voided,
        {PaymentApplicationRow: 1},
        check=untouched_by_the_refused_void,
    ),
    rows(
        billing_invoices.test_a_void_invoice_takes_no_payment_and_owes_nothing,
        {PaymentApplicationRow: 0},
    ),
    rows(billing_invoices.test_open_balance_without_an_account_is_zero, {BillingAccountRow: 0}),
    credit_note_case("unpaid", 0),
    credit_note_case("half-paid", 1),
    credit_note_case("paid", 1),
    rows(
        billing_credit.test_racing_credit_notes_reconcile_to_the_cent,
        {CreditNoteRow: 5, CustomerCreditRow: 2},
    ),
    rows(
        billing_credit.test_impossible_credit_notes_are_refused,
        {CreditNoteRow: 0, CustomerCreditRow: 0},
        check=invoice_is(1_000, InvoiceStatus.OPEN),
    ),
    rows(billing_credit.test_customer_credit_is_posted_once_per_key, {CustomerCreditRow: 2}),
    # c-1 and c-2; the refused c-3 requests none, the one at the end one.
    rows(billing_credit.test_customer_credit_cannot_go_below_zero, {CustomerCreditRow: 3}),
    rows(billing_credit.test_racing_uses_of_credit_never_go_below_zero, {CustomerCreditRow: 1 + 5}),
    rows(billing_credit.test_customer_credit_never_grows_past_an_amount, {CustomerCreditRow: 1}),
    # dun-1 raced, dun-2, and dun-3 once its refusal is followed by a real invoice.
    rows(billing_invoices.test_a_dunning_notice_is_sent_once_per_key, {DunningNoticeRow: 3}),
    # payments
    rows(payments.test_recording_a_payment_twice_records_it_once, {PaymentRow: 1}),
    rows(payments.test_the_same_payment_id_with_other_terms_is_a_conflict, {PaymentRow: 1}),
    rows(payments.test_refunding_twice_with_one_key_refunds_once, {RefundRow: 2}),
    rows(payments.test_refunds_never_exceed_the_payment, {RefundRow: 2}),
    rows(payments.test_racing_refunds_never_exceed_the_payment, {RefundRow: 5}),
    refund_case("PAY-nope", "1.00", "payment_not_found"),
    refund_case("PAY-1", "0.001", "invalid_amount"),
    refund_case("PAY-1", "0", "invalid_amount"),
    refund_case("PAY-1", "-1.00", "invalid_amount"),
    rows(payments.test_storing_a_card_twice_with_one_key_stores_it_once, {StoredCardRow: 2}),
    rows(payments.test_a_card_token_that_is_not_one_word_is_refused, {StoredCardRow: 0}),
    # Two cards stored; the refused authorisations none, the one at the end one.
    rows(
        payments.test_a_stored_card_is_authorised_by_its_reference_for_its_order_only,
        {StoredCardRow: 2, CardAuthorisationRow: 1},
    ),
    rows(payments.test_authorising_twice_with_one_key_authorises_once, {CardAuthorisationRow: 1}),
    # Declined and invalid: none; the authorisation at the end: one.
    rows(payments.test_a_declined_card_authorises_nothing, {CardAuthorisationRow: 1}),
    rows(
        payments.test_capturing_twice_with_one_key_captures_once,
        {PaymentRow: 1, CardCaptureRow: 1},
    ),
    rows(payments.test_captures_never_exceed_the_authorisation, {PaymentRow: 5, CardCaptureRow: 5}),
    # PAY-1 recorded, the refused captures nothing, the capture at the end one of each.
    rows(payments.test_impossible_captures_are_refused, {PaymentRow: 2, CardCaptureRow: 1}),
    rows(payments.test_a_voided_authorisation_takes_no_capture, {PaymentRow: 1}),
]


@pytest.mark.parametrize(("scenario", "counts", "stock", "check"), ROWS)
async def test_a_contract_scenario_leaves_exactly_these_rows(
    local_adapters: LocalAdapters,
    scenario: Scenario,
    counts: dict[type[LocalTable], int],
    stock: dict[str, int],
    check: RowCheck | None,
) -> None:
    systems = local_systems(local_adapters)
    await seed_baseline(systems.seeder)  # the demo data already is the baseline; now surely

    await scenario(systems)

    db = local_adapters.database
    assert {table.__name__: count(db, table) for table in counts} == {
        table.__name__: n for table, n in counts.items()
    }
    assert {sku: on_hand(db, sku) for sku in stock} == stock
    if check is not None:
        check(db)


@pytest.mark.parametrize(
    ("currency", "prices", "total", "minor"),
    [
        (*case, minor)
        for case, minor in zip(
            billing_invoices.MONEY, [30, 1501, 12_346, 10_000_000_000], strict=True
        )
    ],
)
async def test_money_is_kept_in_minor_units(
    local_adapters: LocalAdapters, currency: str, prices: tuple[str, ...], total: str, minor: int
) -> None:
    await billing_invoices.test_money_round_trips_exactly(
        local_systems(local_adapters), currency, prices, total
    )

    row = invoice_row(local_adapters.database)
    assert (row.amount_minor, row.balance_minor) == (minor, minor)


# --- seed ----------------------------------------------------------------------------------


def _snapshot(db: LocalDatabase) -> list[str]:
    with db.reading() as session:
        customers = session.exec(select(CustomerRow).order_by(CustomerRow.customer_id)).all()
        items = session.exec(select(ItemRow).order_by(ItemRow.sku)).all()
        return [row.model_dump_json() for row in [*customers, *items]]


async def test_seeding_again_changes_nothing(local_adapters: LocalAdapters) -> None:
    db = local_adapters.database
    await local_adapters.logistics.reserve_stock(reserve("reserve-1", ("SKU-RARE", 2)))
    before = _snapshot(db)

    seed_demo_data(db)
    seed_demo_data(db)

    assert _snapshot(db) == before
    assert (count(db, CustomerRow), count(db, ItemRow)) == (3, 4)
    assert on_hand(db, "SKU-RARE") == 3
