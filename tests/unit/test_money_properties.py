"""Property tests for the money rules (docs: o2c-domain.md, "Money").

Orders in currencies with 0, 2 and 3 decimals go through amendments, partial
shipments, invoices, payments and returns built the way `OrderWorkflow` builds
them; the pure money functions (`money`, `PaymentTerms.schedule`,
`cash_application`, `returns.credit_plan`, `amendments.plan`) must keep every
figure exact, at currency scale and reconciled.

Deterministic on purpose (`derandomize=True`, no example database): CI sees
the same examples on every run.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from temporalio.exceptions import ApplicationError

from o2c_domain.lines import SkuQuantity
from o2c_domain.money import (
    MAX_AMOUNT_DIGITS,
    Amount,
    exponent,
    fits_currency,
    from_minor_units,
    normalise,
    quantum,
    to_minor_units,
)
from o2c_workflows import amendments, returns
from o2c_workflows.cash_application import allocate, outstanding, still_to_invoice
from o2c_workflows.messages import Amendment, LineChange, ReturnReceived
from o2c_workflows.models import (
    Instalment,
    OrderLine,
    OrderRequest,
    OrderStatus,
    PaymentTerms,
    PaymentTermsKind,
)
from o2c_workflows.state import (
    Application,
    CreditNoteState,
    DispatchState,
    InvoiceState,
    LineState,
    OrderState,
    PaymentState,
    ReturnState,
)

PROPERTY = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def examples(n: int) -> settings:
    return settings(PROPERTY, max_examples=n)


CURRENCIES = ("JPY", "EUR", "KWD")  # 0, 2 and 3 decimals
SKUS = tuple(f"SKU-{letter}" for letter in "ABCDEFGH")
NEW_SKUS = ("NEW-1", "NEW-2")
START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
AMOUNT = TypeAdapter(Amount)
SPELLING = st.integers(0, 2)  # an index into `spellings`


# -- strategies ---------------------------------------------------------------


def at_scale(amount: Decimal, currency: str) -> bool:
    """The amount's value fits the currency *and* it is written with exactly its decimals."""
    return fits_currency(amount, currency) and amount.as_tuple().exponent == -exponent(currency)


def spellings(value: Decimal, currency: str) -> list[Decimal]:
    """Ways a caller may write an amount that fits `currency`: `5.00`, `5`, `5.000` for EUR."""
    e = exponent(currency)
    fewest = next(
        value.quantize(Decimal(1).scaleb(-k))
        for k in range(e + 1)
        if value == value.quantize(Decimal(1).scaleb(-k))
    )
    return [normalise(value, currency), fewest, value.quantize(Decimal(1).scaleb(-(e + 1)))]


@st.composite
def prices(draw: st.DrawFn, currency: str, *, any_spelling: bool = True) -> Decimal:
    """A unit price at currency scale: up to 100,000 units of the currency."""
    value = from_minor_units(draw(st.integers(0, 10 ** (exponent(currency) + 5))), currency)
    if not any_spelling:
        return value
    return spellings(value, currency)[draw(SPELLING)]


payment_terms = st.one_of(
    st.just(PaymentTerms.due_on_receipt()),
    st.builds(
        lambda days: PaymentTerms(kind=PaymentTermsKind.NET, net_days=days), st.integers(1, 90)
    ),
    st.builds(
        lambda days, parts: PaymentTerms(
            kind=PaymentTermsKind.INSTALMENTS, net_days=days, instalments=parts
        ),
        st.integers(1, 60),
        st.integers(2, 24),
    ),
)


@st.composite
def orders(draw: st.DrawFn) -> OrderRequest:
    """A valid order: 1-6 lines with distinct SKUs, quantities 1..50, prices at currency scale."""
    currency = draw(st.sampled_from(CURRENCIES))
    skus = draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=6, unique=True))
    lines = [
        OrderLine(sku=sku, quantity=draw(st.integers(1, 50)), unit_price=draw(prices(currency)))
        for sku in skus
    ]
    return OrderRequest(
        source_system="webshop",
        source_order_id="SO-1001",
        customer_id="CUST-ACME",
        currency=currency,
        lines=lines,
        payment_terms=draw(payment_terms),
    )


@st.composite
def amendments_to(draw: st.DrawFn, state: OrderState, *, any_spelling: bool) -> Amendment | None:
    """Quantity changes and removals of existing lines, and new lines with a price."""
    currency = state.order.currency
    existing = [line.sku for line in state.lines]
    changes = [
        LineChange(sku=sku, quantity=draw(st.integers(0, 50)))
        for sku in draw(st.lists(st.sampled_from(existing), unique=True, max_size=len(existing)))
    ]
    changes += [
        LineChange(
            sku=sku,
            quantity=draw(st.integers(1, 50)),
            unit_price=draw(prices(currency, any_spelling=any_spelling)),
        )
        for sku in draw(st.lists(st.sampled_from(NEW_SKUS), unique=True, max_size=2))
    ]
    return Amendment(changes=changes) if changes else None


# -- the order as the workflow keeps it ----------------------------------------


def new_state(order: OrderRequest) -> OrderState:
    """The order as the workflow enters it (`OrderState.entered`), then booked."""
    state = OrderState.entered(order)
    state.status = OrderStatus.BOOKED
    for line in state.lines:
        line.reserved = line.ordered
    return state


def line_of(state: OrderState, sku: str) -> LineState:
    line = state.line(sku)
    assert line is not None, sku
    return line


def amend(state: OrderState, amendment: Amendment) -> bool:
    """Plan the amendment and apply it as the workflow does, or change nothing when the
    plan is refused."""
    try:
        plan = amendments.plan(state, amendment)
    except ApplicationError:
        return False
    state.amend(plan.lines, plan.total_after, f"amendment-{len(state.amendments) + 1}")
    return True


def ship(state: OrderState, lines: list[SkuQuantity], at: datetime) -> DispatchState:
    tracking = f"TRK-{len(state.dispatches) + 1}"
    return state.record_dispatch(tracking, "DHL", tracking, lines, at)


def invoice(state: OrderState, dispatch: DispatchState, at: datetime) -> InvoiceState:
    """`OrderWorkflow._invoice`: bill what the dispatch shipped, at the lines' prices."""
    order, currency, today = state.order, state.order.currency, at.date()
    amount = sum((line_of(state, q.sku).amount(q.quantity) for q in dispatch.lines), Decimal(0))
    # Billing keeps minor units (adapters/billing/local.py) and answers with them.
    amount = from_minor_units(to_minor_units(amount, currency), currency)
    due = order.payment_terms.due_date(today)
    return state.record_invoice(dispatch, f"INV-{dispatch.number}", amount, at, due)


def draw_dispatch(data: st.DataObject, state: OrderState) -> list[SkuQuantity]:
    """What one shipment takes: everything left, or some lines, never more than is left."""
    left = [line for line in state.lines if line.to_ship > 0]
    if data.draw(st.integers(0, 3), label="everything left?") == 0:
        return [SkuQuantity(sku=line.sku, quantity=line.to_ship) for line in left]
    chosen = data.draw(
        st.lists(st.sampled_from(left), min_size=1, unique_by=lambda line: line.sku),
        label="lines shipped",
    )
    return [
        SkuQuantity(sku=line.sku, quantity=data.draw(st.integers(1, line.to_ship)))
        for line in chosen
    ]


def ship_and_invoice(data: st.DataObject, state: OrderState, at: datetime) -> InvoiceState:
    created = invoice(state, ship(state, draw_dispatch(data, state), at), at)
    check_invoicing(state)
    return created


def minor(amount: Decimal, currency: str) -> int:
    return to_minor_units(amount, currency)


def draw_payment(
    data: st.DataObject, state: OrderState, at: datetime, *, at_most: Decimal | None
) -> PaymentState | None:
    """A payment at currency scale (any spelling), perhaps naming an open invoice.

    With `at_most`, never more than that (None when nothing may be paid).
    """
    currency = state.order.currency
    open_ids = [i.invoice_id for i in state.invoices if i.balance > 0]
    exact = [minor(i.balance, currency) for i in state.invoices if i.balance > 0]
    exact.append(minor(max(Decimal(0), outstanding(state)), currency))
    # Unbounded: up to twice the order (overpayments included), and something even when it is free.
    unbounded = 2 * minor(state.total, currency) + 10
    ceiling = unbounded if at_most is None else minor(at_most, currency)
    exact = [m for m in exact if 0 < m <= ceiling]
    if ceiling <= 0:
        return None
    # A part of what is left, anything up to the ceiling, or exactly a balance or the rest.
    kind = data.draw(st.integers(0, 2 if exact else 1), label="amount kind")
    if kind == 2:
        amount_minor = exact[data.draw(st.integers(0, len(exact) - 1), label="exactly")]
    else:
        top = ceiling if kind == 1 else max(1, ceiling // 5)
        amount_minor = data.draw(st.integers(1, top), label="amount (minor units)")
    amount = spellings(from_minor_units(amount_minor, currency), currency)[data.draw(SPELLING)]
    pick = data.draw(st.integers(0, len(open_ids)), label="names invoice (0: none)")
    named = open_ids[pick - 1] if pick else None
    payment = PaymentState(
        payment_id=f"PAY-{len(state.payments) + 1}",
        amount=amount,
        currency=currency,
        received_at=at,
        invoice_id=named,
    )
    state.payments.append(payment)
    return payment


def apply_cash(state: OrderState) -> None:
    """`OrderWorkflow._apply_cash_as_it_comes`: oldest payment with cash to apply first.

    Every allocation is checked against the rules before it is carried out the
    way `_apply` does: billing lowers the balance, the payment records the
    application, what is left over beyond the order goes to customer credit.
    """
    for _ in range(1000):
        chosen = None
        for payment in state.payments:
            applications, credit = allocate(state, payment)
            check_allocation(state, payment, applications, credit)
            if chosen is None and (applications or credit > 0):
                chosen = payment, applications, credit
        if chosen is None:
            return
        payment, applications, credit = chosen
        for application in applications:
            target = state.invoice(application.invoice_id)
            assert target is not None
            balance = target.balance - application.amount  # what billing answers
            assert balance >= 0, f"{target.invoice_id} balance went below zero"
            state.record_application(payment, application, balance)
        payment.to_customer_credit += credit
        check_ledger(state)
    raise AssertionError("cash application never settled")


# -- what must hold -----------------------------------------------------------


def check_schedule(
    schedule: list[Instalment], amount: Decimal, currency: str, terms: PaymentTerms, day: date
) -> None:
    """Property 4: instalments add up exactly, at currency scale, the last part takes the
    rounding, none negative, due dates strictly increasing."""
    parts = [instalment.amount for instalment in schedule]
    n = terms.instalments
    assert len(parts) == n
    assert sum(parts, Decimal(0)) == amount
    for part in parts:
        assert part >= 0
        assert fits_currency(part, currency)
        if at_scale(amount, currency):
            assert at_scale(part, currency), f"{part} is not written at {currency} scale"
    even, last = parts[:-1], parts[-1]
    assert len(set(even)) <= 1, "only the last part may differ"
    if even:
        part, q = even[0], quantum(currency)
        assert part * n <= amount < (part + q) * n, "the even parts are the amount / n rounded down"
        assert 0 <= last - part < n * q, "the last part absorbs the rounding, nothing more"
    dates = [instalment.due_date for instalment in schedule]
    assert dates[0] == terms.due_date(day)
    assert all(a < b for a, b in pairwise(dates))
    assert all((b - a).days == terms.net_days for a, b in pairwise(dates))


def check_invoicing(state: OrderState) -> None:
    """Property 1: what is invoiced is what shipped at the lines' prices, to the minor unit,
    and the order total is the exact sum of its line amounts at currency scale."""
    currency = state.order.currency
    line_amounts = [line.amount(line.ordered) for line in state.lines]
    assert state.total == sum(line_amounts, Decimal(0))
    assert at_scale(state.total, currency), f"total {state.total} not at {currency} scale"
    for each in state.invoices:
        charged = sum((line_of(state, q.sku).amount(q.quantity) for q in each.lines), Decimal(0))
        assert each.amount == charged
        assert at_scale(each.amount, currency)
        check_schedule(
            each.schedule, each.amount, currency, state.order.payment_terms, each.issued_at.date()
        )
    shipped = sum((line.amount(line.shipped) for line in state.lines), Decimal(0))
    assert all(d.invoice_id is not None for d in state.dispatches)
    assert all(line.invoiced == line.shipped <= line.ordered for line in state.lines)
    assert state.invoiced == shipped
    assert minor(state.invoiced, currency) == sum(
        line.shipped * minor(line.unit_price, currency) for line in state.lines
    )
    assert state.invoiced + still_to_invoice(state) == state.total


def check_allocation(
    state: OrderState, payment: PaymentState, applications: list[Application], credit: Decimal
) -> None:
    """Property 2 for one allocation: the named open invoice first, then oldest due first,
    never more than a balance or the money there is; what no invoice can take stays on
    account as far as invoices still to come can take it, the rest becomes credit."""
    currency = state.order.currency
    unapplied = payment.unapplied
    open_invoices = {i.invoice_id: i for i in state.invoices if i.balance > 0}
    applied = sum((a.amount for a in applications), Decimal(0))
    ids = [a.invoice_id for a in applications]
    assert len(ids) == len(set(ids)), "one application per invoice"
    for application in applications:
        assert application.invoice_id in open_invoices, "applied to a paid invoice"
        assert 0 < application.amount <= open_invoices[application.invoice_id].balance
        assert fits_currency(application.amount, currency)
    assert applied <= unapplied
    assert credit >= 0
    assert fits_currency(credit, currency)
    on_account = unapplied - applied - credit
    assert on_account >= 0
    assert applied + credit + on_account == unapplied

    named = open_invoices.get(payment.invoice_id) if payment.invoice_id else None
    oldest_due_first = sorted(
        (i for i in open_invoices.values() if i is not named),
        key=lambda i: (i.due_date, i.dispatch),
    )
    left, expected = unapplied, []
    for target in ([named] if named else []) + oldest_due_first:
        if left == 0:
            break
        take = min(left, target.balance)
        expected.append((target.invoice_id, take))
        left -= take
    assert [(a.invoice_id, a.amount) for a in applications] == expected

    held_by_others = sum(
        (p.unapplied for p in state.payments if p.payment_id != payment.payment_id), Decimal(0)
    )
    room = max(Decimal(0), still_to_invoice(state) - held_by_others)
    assert on_account == min(left, room), "on account: what invoices still to come can take"


def check_ledger(state: OrderState) -> None:
    """Property 2 over a stream: balances stay in [0, amount], applied never exceeds paid,
    and what each invoice received is what its balance went down by."""
    for each in state.invoices:
        assert 0 <= each.balance <= each.amount
        received = sum(
            (
                a.amount
                for p in state.payments
                for a in p.applications
                if a.invoice_id == each.invoice_id
            ),
            Decimal(0),
        )
        assert received == each.paid
    for payment in state.payments:
        assert payment.to_customer_credit >= 0
        assert payment.unapplied >= 0
        assert all(a.amount > 0 for a in payment.applications)
    applied = sum((a.amount for p in state.payments for a in p.applications), Decimal(0))
    assert applied <= state.paid


def customer_credit(state: OrderState) -> Decimal:
    return sum((p.to_customer_credit for p in state.payments), Decimal(0))


def on_account(state: OrderState) -> Decimal:
    return sum((p.unapplied for p in state.payments), Decimal(0))


def check_credit_plan(
    state: OrderState, returned: ReturnReceived, plan: dict[str, list[SkuQuantity]]
) -> None:
    """Property 6: never more units of a SKU on an invoice than it charged less what earlier
    credit notes credited; the plan credits exactly what came back, newest invoice first."""
    wanted: Counter[str] = Counter()
    for item in returned.lines:
        wanted[item.sku] += item.quantity
    planned: Counter[str] = Counter()
    left_on: dict[tuple[str, str], int] = {}
    for each in state.invoices:
        for sku in {q.sku for q in each.lines}:
            charged = sum(q.quantity for q in each.lines if q.sku == sku)
            credited = sum(
                q.quantity
                for note in state.credit_notes
                if note.invoice_id == each.invoice_id
                for q in note.lines
                if q.sku == sku
            )
            left_on[each.invoice_id, sku] = charged - credited
    for invoice_id, lines in plan.items():
        assert state.invoice(invoice_id) is not None
        on_this: Counter[str] = Counter()
        for quantity in lines:
            assert quantity.quantity > 0
            on_this[quantity.sku] += quantity.quantity
        for sku, units in on_this.items():
            creditable = left_on.get((invoice_id, sku), 0)
            assert units <= creditable, (
                f"{invoice_id}: {units} {sku} credited, only {creditable} charged and not credited"
            )
            left_on[invoice_id, sku] = creditable - units
            planned[sku] += units
    assert planned == wanted
    for sku in wanted:
        used = [
            i.dispatch
            for i in state.invoices
            if any(q.sku == sku for q in plan.get(i.invoice_id, []))
        ]
        for each in state.invoices:
            if used and each.dispatch > min(used):
                assert left_on.get((each.invoice_id, sku), 0) == 0, "newest invoice first"


def record_return(
    state: OrderState, returned: ReturnReceived, plan: dict[str, list[SkuQuantity]]
) -> None:
    """`OrderWorkflow._record_return`: one credit note per invoice, lines count the return."""
    currency = state.order.currency
    notes = []
    for invoice_id, lines in plan.items():
        target = state.invoice(invoice_id)
        assert target is not None
        amount = normalise(
            sum((line_of(state, q.sku).amount(q.quantity) for q in lines), Decimal(0)), currency
        )
        applied = min(amount, target.balance)
        target.balance -= applied
        note = CreditNoteState(
            credit_note_id=f"CN-{len(state.credit_notes) + 1}",
            return_id=returned.return_id,
            invoice_id=invoice_id,
            lines=lines,
            amount=amount,
            applied_to_invoice=applied,
            to_customer_credit=amount - applied,
        )
        state.credit_notes.append(note)
        notes.append(note.credit_note_id)
    for item in returned.lines:
        line_of(state, item.sku).returned += item.quantity
    state.returns.append(
        ReturnState(
            return_id=returned.return_id,
            lines=returned.lines,
            resolution=returned.resolution.value,
            received_at=START,
            credit_notes=notes,
        )
    )


# -- 1. invoiced == shipped, total == sum of lines --------------------------------


@examples(100)
@given(orders())
def test_order_total_is_the_exact_sum_of_line_amounts_at_currency_scale(
    order: OrderRequest,
) -> None:
    currency = order.currency
    total = order.total()
    assert total == sum((line.quantity * line.unit_price for line in order.lines), Decimal(0))
    assert at_scale(total, currency)
    assert minor(total, currency) == sum(
        line.quantity * minor(line.unit_price, currency) for line in order.lines
    )
    assert all(at_scale(line.unit_price, currency) for line in order.lines)
    check_invoicing(new_state(order))


# -- 1 + 2. partial shipments, invoices and a stream of payments ---------------


@examples(100)
@given(orders(), st.data())
def test_invoices_and_cash_reconcile_over_partial_shipments_and_any_payments(
    order: OrderRequest, data: st.DataObject
) -> None:
    state, at = new_state(order), START
    amendment = data.draw(amendments_to(state, any_spelling=False), label="amendment")
    if amendment is not None:
        amend(state, amendment)
    check_invoicing(state)
    for _ in range(data.draw(st.integers(1, 10), label="events")):
        at += timedelta(days=data.draw(st.integers(0, 20), label="days later"))
        if not state.fully_shipped and data.draw(st.booleans(), label="ship?"):
            ship_and_invoice(data, state, at)
        else:
            for _ in range(data.draw(st.integers(1, 2), label="payments at once")):
                draw_payment(data, state, at, at_most=None)
        apply_cash(state)
        check_invoicing(state)
        check_ledger(state)
        # Settled: what the customer keeps as credit is exactly what was paid beyond the order.
        assert outstanding(state) >= 0
        assert customer_credit(state) == max(Decimal(0), state.paid - state.total)
        assert outstanding(state) == state.total - state.paid + customer_credit(state)


# -- 3. outstanding -------------------------------------------------------------


@examples(100)
@given(orders(), st.data())
def test_outstanding_never_negative_while_payments_stay_within_the_total(
    order: OrderRequest, data: st.DataObject
) -> None:
    state, at = new_state(order), START
    for _ in range(data.draw(st.integers(1, 10), label="events")):
        at += timedelta(days=data.draw(st.integers(0, 20), label="days later"))
        if not state.fully_shipped and data.draw(st.booleans(), label="ship?"):
            ship_and_invoice(data, state, at)
        else:
            for _ in range(data.draw(st.integers(1, 2), label="payments at once")):
                draw_payment(data, state, at, at_most=state.total - state.paid)
                # Recorded, not yet applied: still never negative.
                assert outstanding(state) >= 0
        apply_cash(state)
        assert state.paid <= state.total
        assert customer_credit(state) == 0, "credit only for what exceeds the order"
        assert outstanding(state) >= 0
        assert outstanding(state) == state.total - state.paid
        everything_paid = all(i.balance == 0 for i in state.invoices)
        # Zero exactly when every invoice is paid and what is held on account covers what
        # is left to invoice; once nothing is left to invoice, nothing may be on account.
        assert (outstanding(state) == 0) == (
            everything_paid and on_account(state) == still_to_invoice(state)
        )
        if still_to_invoice(state) == 0:
            assert (outstanding(state) == 0) == (everything_paid and on_account(state) == 0)


# -- 4. instalments -------------------------------------------------------------


@examples(200)
@given(
    st.sampled_from(CURRENCIES),
    st.integers(0, 10**12),
    payment_terms,
    st.dates(date(2020, 1, 1), date(2035, 12, 31)),
)
def test_instalments_add_up_exactly_at_currency_scale(
    currency: str, amount_minor: int, terms: PaymentTerms, day: date
) -> None:
    amount = from_minor_units(amount_minor, currency)
    check_schedule(terms.schedule(day, amount, currency), amount, currency, terms, day)


# -- 5. rounding is explicit ----------------------------------------------------


@examples(150)
@given(st.sampled_from(CURRENCIES), st.integers(-(10**15), 10**15))
def test_minor_units_round_trip(currency: str, amount_minor: int) -> None:
    amount = from_minor_units(amount_minor, currency)
    assert at_scale(amount, currency)
    assert to_minor_units(amount, currency) == amount_minor
    for spelling in spellings(amount, currency):
        assert spelling == amount
        assert normalise(spelling, currency) == amount
        assert at_scale(normalise(spelling, currency), currency)
        assert from_minor_units(to_minor_units(spelling, currency), currency) == amount


@examples(150)
@given(st.sampled_from(CURRENCIES), st.integers(-(10**12), 10**12), st.integers(1, 3))
def test_too_many_decimals_are_refused_not_rounded(currency: str, digits: int, extra: int) -> None:
    amount = Decimal(digits * 10 + 7).scaleb(-(exponent(currency) + extra))
    assert not fits_currency(amount, currency)
    with pytest.raises(ValueError):
        normalise(amount, currency)
    with pytest.raises(ValueError):
        to_minor_units(amount, currency)
    price = abs(amount) % 10**9  # within what a line accepts; the surplus decimals stay
    with pytest.raises(ValidationError, match="more decimal places than"):
        OrderRequest(
            source_system="webshop",
            source_order_id="SO-1",
            customer_id="CUST-1",
            currency=currency,
            lines=[OrderLine(sku="SKU-A", quantity=1, unit_price=price)],
        )


@examples(150)
@given(st.sampled_from(CURRENCIES), st.integers(1, 1_000_000), st.data())
def test_line_amounts_are_exact_products(currency: str, quantity: int, data: st.DataObject) -> None:
    price_minor = data.draw(st.integers(0, 10 ** (9 + exponent(currency))), label="price")
    price = spellings(from_minor_units(price_minor, currency), currency)[data.draw(SPELLING)]
    order_line = OrderLine(sku="SKU-A", quantity=quantity, unit_price=price)
    line = LineState(sku="SKU-A", unit_price=price, ordered=quantity)
    for amount in (order_line.amount(), line.amount(quantity)):
        assert fits_currency(amount, currency)
        assert to_minor_units(amount, currency) == quantity * price_minor
        assert amount == from_minor_units(quantity * price_minor, currency)


# -- 6. returns -----------------------------------------------------------------


def shipped_and_invoiced(data: st.DataObject, order: OrderRequest) -> OrderState:
    state, at = new_state(order), START
    for _ in range(data.draw(st.integers(1, 5), label="shipments")):
        if state.fully_shipped:
            break
        at += timedelta(days=data.draw(st.integers(0, 10), label="days later"))
        ship_and_invoice(data, state, at)
    if data.draw(st.booleans(), label="payments?"):
        for _ in range(data.draw(st.integers(1, 3), label="payments")):
            draw_payment(data, state, at, at_most=None)
        apply_cash(state)
    return state


def returnable(state: OrderState) -> dict[str, int]:
    return {
        line.sku: line.invoiced - line.returned
        for line in state.lines
        if line.invoiced > line.returned
    }


@examples(80)
@given(orders(), st.data())
def test_returns_never_credit_a_unit_twice(order: OrderRequest, data: st.DataObject) -> None:
    state = shipped_and_invoiced(data, order)
    for number in range(1, data.draw(st.integers(1, 4), label="returns") + 1):
        left = returnable(state)
        if not left:
            break
        skus = data.draw(st.lists(st.sampled_from(sorted(left)), min_size=1, unique=True))
        returned = ReturnReceived(
            return_id=f"RMA-{number}",
            lines=[SkuQuantity(sku=s, quantity=data.draw(st.integers(1, left[s]))) for s in skus],
        )
        plan = returns.credit_plan(state, returned)
        check_credit_plan(state, returned, plan)
        record_return(state, returned, plan)
        assert all(line.returned <= line.invoiced for line in state.lines)


@examples(40)
@given(orders(), st.data())
def test_a_return_naming_a_sku_twice_is_refused_or_credited_once(
    order: OrderRequest, data: st.DataObject
) -> None:
    """A return that names a SKU on two lines is refused (by the message or the plan), or
    credited without crediting a unit twice."""
    state = shipped_and_invoiced(data, order)
    left = returnable(state)
    skus = data.draw(st.lists(st.sampled_from(sorted(left)), min_size=2, max_size=4))
    lines = [SkuQuantity(sku=s, quantity=data.draw(st.integers(1, left[s]))) for s in skus]
    try:
        returned = ReturnReceived(return_id="RMA-1", lines=lines)
        plan = returns.credit_plan(state, returned)
    except (ValidationError, ApplicationError):
        return  # refusing it is fine
    check_credit_plan(state, returned, plan)


# -- amounts the order keeps stay money -------------------------------------------


@examples(100)
@given(orders(), st.data())
def test_an_amended_total_stays_at_currency_scale(order: OrderRequest, data: st.DataObject) -> None:
    """Prices on an amendment are written as callers write them (`5`, `5.000` for EUR)."""
    state = new_state(order)
    amendment = data.draw(amendments_to(state, any_spelling=True), label="amendment")
    if amendment is None or not amend(state, amendment):
        return
    currency = order.currency
    assert state.total == sum((line.amount(line.ordered) for line in state.lines), Decimal(0))
    assert at_scale(state.total, currency), f"total {state.total} {currency}"
    assert all(at_scale(line.unit_price, currency) for line in state.lines)


def near(limit: int, below: int) -> st.SearchStrategy[int]:
    """Anything up to `limit`, often just under it: the limits are where money overflows."""
    return st.one_of(st.integers(1, limit), st.integers(0, below).map(lambda k: limit - k))


def fits_an_amount(total: Decimal, currency: str) -> bool:
    """Written at currency scale, at most `MAX_AMOUNT_DIGITS` digits (and so an `Amount`)."""
    return len(str(abs(to_minor_units(total, currency)))) <= MAX_AMOUNT_DIGITS


@examples(100)
@given(st.sampled_from(CURRENCIES), st.data())
def test_an_order_is_refused_exactly_when_its_total_does_not_fit(
    currency: str, data: st.DataObject
) -> None:
    """Up to the limits `OrderLine` accepts (quantity 1,000,000, price 1,000,000,000), an
    order is refused exactly when its total has more than 18 digits at currency scale;
    otherwise the workflow can start it (its total is an `Amount`)."""
    highest_price = 10 ** (9 + exponent(currency))  # in minor units
    lines = [
        OrderLine(
            sku=sku,
            quantity=data.draw(near(1_000_000, 1000), label="quantity"),
            unit_price=from_minor_units(
                data.draw(near(highest_price, 10**4), label="price"), currency
            ),
        )
        for sku in data.draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=6, unique=True))
    ]
    total = sum((line.amount() for line in lines), Decimal(0))
    try:
        order = OrderRequest(
            source_system="webshop",
            source_order_id="SO-1",
            customer_id="CUST-1",
            currency=currency,
            lines=lines,
        )
    except ValidationError as refused:
        assert not fits_an_amount(total, currency), f"{total} {currency} fits, yet: {refused}"
        return
    assert fits_an_amount(total, currency)
    assert order.total() == total
    AMOUNT.validate_python(order.total())
    assert OrderState.model_validate_json(new_state(order).model_dump_json()).total == total


@examples(100)
@given(orders(), st.data())
def test_an_amendment_never_takes_the_total_past_what_an_order_may_hold(
    order: OrderRequest, data: st.DataObject
) -> None:
    """New lines within the limits an order's lines have: the amended total still fits an
    `Amount` (the state travels on, e.g. into the next run), or the amendment is refused."""
    currency = order.currency
    highest_price = 10 ** (9 + exponent(currency))
    new_lines = data.draw(st.lists(st.sampled_from(NEW_SKUS), min_size=1, unique=True))
    amendment = Amendment(
        changes=[
            LineChange(
                sku=sku,
                quantity=data.draw(near(1_000_000, 1000), label="quantity"),
                unit_price=from_minor_units(
                    data.draw(near(highest_price, 10**4), label="price"), currency
                ),
            )
            for sku in new_lines
        ]
    )
    state = new_state(order)
    if not amend(state, amendment):
        return  # refused: nothing changed
    assert fits_an_amount(state.total, currency), f"amended total {state.total} {currency}"
    OrderState.model_validate_json(state.model_dump_json())
