"""Cash application: how a payment is split across an order's invoices.

Pure functions of the order's state, so the workflow stays deterministic and
the rules can be tested exhaustively: the invoice the payer named first, then
the oldest due; never more than an invoice's balance; what no invoice can
take waits on account for invoices still to come, and only what exceeds all
the order could still owe becomes customer credit.
"""

from __future__ import annotations

from decimal import Decimal

from o2c_workflows.state import Application, OrderState, PaymentState


def still_to_invoice(state: OrderState) -> Decimal:
    """The value of what is ordered but not yet invoiced (returns do not add to it)."""
    return sum((line.amount(line.ordered - line.invoiced) for line in state.lines), Decimal(0))


def allocate(state: OrderState, payment: PaymentState) -> tuple[list[Application], Decimal]:
    """Applications of the payment's unapplied amount, and what becomes customer credit.

    Whatever is neither applied nor credited stays on account. Invoice
    balances in `state` are not changed: the caller applies each application
    through billing first.
    """
    remaining = payment.unapplied
    invoices = state.open_invoices()
    named = [i for i in invoices if i.invoice_id == payment.invoice_id]
    applications: list[Application] = []
    for invoice in named + [i for i in invoices if i not in named]:
        if remaining == 0:
            break
        amount = min(remaining, invoice.balance)
        applications.append(Application(invoice_id=invoice.invoice_id, amount=amount))
        remaining -= amount
    held_by_others = sum(
        (p.unapplied for p in state.payments if p.payment_id != payment.payment_id), Decimal(0)
    )
    room_on_account = max(Decimal(0), still_to_invoice(state) - held_by_others)
    return applications, max(Decimal(0), remaining - room_on_account)


def outstanding(state: OrderState) -> Decimal:
    """What the order still asks of the customer: open balances plus what is yet to invoice,
    less money already held on account."""
    open_balances = sum((invoice.balance for invoice in state.invoices), Decimal(0))
    on_account = sum((payment.unapplied for payment in state.payments), Decimal(0))
    return open_balances + still_to_invoice(state) - on_account
