"""What must hold of the money, as checks the property tests run (docs: o2c-domain.md,
"Money"), numbered as the properties are: 1 invoiced == shipped at the lines'
prices, 2 the cash ledger, 4 instalments, 6 returns credit no unit twice.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal
from itertools import pairwise

from o2c_domain.lines import SkuQuantity
from o2c_domain.money import fits_currency, quantum
from o2c_workflows.cash_application import still_to_invoice
from o2c_workflows.messages import ReturnReceived
from o2c_workflows.models import Instalment, PaymentTerms
from o2c_workflows.state import Application, LineState, OrderState, PaymentState
from tests.unit.money_strategies import at_scale, minor

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


def line_of(state: OrderState, sku: str) -> LineState:
    line = state.line(sku)
    assert line is not None, sku
    return line


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
