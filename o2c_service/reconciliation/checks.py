"""The reconciliation rules: pure functions from what was read of one order to
the mismatches found (docs/reports.md, "Reconciliation").

Each check compares what a system holds with what the order knows (its lines,
dispatches, invoices and payments), or a system's figures with each other (an
invoice's balance with its applications and credit notes). They take the order
as it is now: an order still between two steps may differ for a moment, which
the next run no longer reports.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from decimal import Decimal

from adapters.billing.models import InvoiceStatus
from adapters.logistics.models import ReservationStatus
from adapters.payments.models import AuthorisationStatus, Payment
from o2c_domain.lines import SkuQuantity
from o2c_service.reconciliation.models import Mismatch, OrderReadings
from o2c_workflows.models import OrderStatus

LOGISTICS, BILLING, PAYMENTS = "logistics", "billing", "payments"
ZERO = Decimal(0)


def reconcile_order(readings: OrderReadings) -> list[Mismatch]:
    """Every mismatch between the order and the systems, logistics first."""
    return [
        *check_stock(readings),
        *check_invoices(readings),
        *check_payments(readings),
        *check_cards(readings),
    ]


def _mismatch(
    readings: OrderReadings, system: str, kind: str, subject: str, expected: object, found: object
) -> Mismatch:
    return Mismatch(
        order_id=readings.state.order_id,
        system=system,
        kind=kind,
        subject=subject,
        expected=str(expected),
        found=str(found),
    )


def _per_sku(lines: Iterable[SkuQuantity]) -> Counter[str]:
    counted: Counter[str] = Counter()
    for line in lines:
        counted[line.sku] += line.quantity
    return counted


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount} {currency}"


def _cancelled(readings: OrderReadings) -> bool:
    return readings.state.status is OrderStatus.CANCELLED


def _compare_quantities(
    readings: OrderReadings, kind: str, expected: Counter[str], found: Counter[str]
) -> Iterator[Mismatch]:
    for sku in sorted(set(expected) | set(found)):
        if expected[sku] != found[sku]:
            yield _mismatch(readings, LOGISTICS, kind, sku, expected[sku], found[sku])


def check_stock(readings: OrderReadings) -> Iterator[Mismatch]:
    """Reserved and shipped quantities in logistics = the order's lines; a
    cancelled order holds no reservation."""
    state = readings.state
    held = [r for r in readings.reservations if r.status is ReservationStatus.RESERVED]
    if _cancelled(readings):
        for reservation in held:
            yield _mismatch(
                readings, LOGISTICS, "cancelled_reservation", reservation.reservation_id,
                "released", f"reserved ({_quantities(reservation.lines)})",
            )  # fmt: skip
    else:
        expected = Counter({line.sku: line.reserved for line in state.lines if line.reserved})
        found = _per_sku(line for reservation in held for line in reservation.lines)
        yield from _compare_quantities(readings, "reserved", expected, found)
    shipped = Counter({line.sku: line.shipped for line in state.lines if line.shipped})
    found_shipped = _per_sku(line for shipment in readings.shipments for line in shipment.shipped)
    yield from _compare_quantities(readings, "shipped", shipped, found_shipped)


def _quantities(lines: Iterable[SkuQuantity]) -> str:
    return ", ".join(f"{line.sku} x{line.quantity}" for line in lines)


def check_invoices(readings: OrderReadings) -> Iterator[Mismatch]:
    """One invoice per shipment for what it shipped at the order's prices, each
    balance = amount - applications - credit notes; a cancelled order has no open
    invoice."""
    state = readings.state
    currency = state.order.currency
    live = {
        r.invoice.invoice_id: r
        for r in readings.invoices
        if r.invoice.status is not InvoiceStatus.VOID
    }
    expected_ids: set[str] = set()
    for dispatch in state.dispatches:
        subject = f"shipment {dispatch.number}"
        if dispatch.invoice_id is None:
            continue  # not invoiced yet: the order raises it next
        expected_ids.add(dispatch.invoice_id)
        reading = live.get(dispatch.invoice_id)
        if reading is None:
            yield _mismatch(
                readings, BILLING, "invoice_missing", subject, dispatch.invoice_id, "none"
            )
            continue
        prices = {line.sku: line.unit_price for line in state.lines}
        amount = sum((prices.get(q.sku, ZERO) * q.quantity for q in dispatch.lines), ZERO)
        if reading.invoice.amount != amount:
            yield _mismatch(
                readings, BILLING, "invoice_amount", dispatch.invoice_id,
                _money(amount, currency), _money(reading.invoice.amount, reading.invoice.currency),
            )  # fmt: skip
    for invoice_id, reading in sorted(live.items()):
        invoice = reading.invoice
        if invoice_id not in expected_ids:
            kind = "cancelled_invoice" if _cancelled(readings) else "invoice_unexpected"
            yield _mismatch(
                readings, BILLING, kind, invoice_id, "none (or void)",
                f"{invoice.status.value}, {_money(invoice.amount, invoice.currency)}",
            )  # fmt: skip
        lowered = sum((a.amount for a in reading.applications), ZERO) + sum(
            (note.applied_to_invoice for note in reading.credit_notes), ZERO
        )
        if invoice.balance != invoice.amount - lowered:
            yield _mismatch(
                readings, BILLING, "invoice_balance", invoice_id,
                _money(invoice.amount - lowered, invoice.currency),
                _money(invoice.balance, invoice.currency),
            )  # fmt: skip


def _refunded(readings: OrderReadings) -> defaultdict[str, Decimal]:
    """Refunded per payment id."""
    refunded: defaultdict[str, Decimal] = defaultdict(Decimal)
    for refund in readings.refunds:
        refunded[refund.payment_id] += refund.amount
    return refunded


def _applied(readings: OrderReadings) -> defaultdict[str, Decimal]:
    """Applied to the order's invoices per payment id."""
    applied: defaultdict[str, Decimal] = defaultdict(Decimal)
    for reading in readings.invoices:
        for application in reading.applications:
            applied[application.payment_id] += application.amount
    return applied


def check_payments(readings: OrderReadings) -> Iterator[Mismatch]:
    """Every payment in the ledger is known to the order and applied, kept as
    customer credit or refunded, once: per payment, billing's applications = the
    order's, and over the order the money received = applied + credit + held for
    an invoice to come + refunded - refunded from returns' credit, to the cent."""
    state = readings.state
    currency = state.order.currency
    applied, refunded = _applied(readings), _refunded(readings)
    known = {payment.payment_id: payment for payment in state.payments}
    for payment in readings.payments:
        ours = known.get(payment.payment_id)
        if ours is None:
            if _capture_of(readings, payment) is None:
                yield _mismatch(
                    readings, PAYMENTS, "payment_unaccounted", payment.payment_id,
                    "applied, kept as credit or refunded",
                    f"{_money(payment.amount, payment.currency)} unknown to the order",
                )  # fmt: skip
            continue
        if ours.amount != payment.amount:
            yield _mismatch(
                readings, PAYMENTS, "payment_amount", payment.payment_id,
                _money(ours.amount, ours.currency), _money(payment.amount, payment.currency),
            )  # fmt: skip
        applied_by_order = sum((a.amount for a in ours.applications), ZERO)
        if applied[payment.payment_id] != applied_by_order:
            yield _mismatch(
                readings, BILLING, "payment_applied", payment.payment_id,
                _money(applied_by_order, currency),
                _money(applied[payment.payment_id], currency),
            )  # fmt: skip
    in_ledger = {payment.payment_id for payment in readings.payments}
    for payment_id in sorted(set(known) - in_ledger):
        yield _mismatch(
            readings, PAYMENTS, "payment_missing", payment_id,
            _money(known[payment_id].amount, currency), "none",
        )  # fmt: skip
    received = sum((p.amount for p in readings.payments if p.payment_id in known), ZERO)
    held = ZERO if _cancelled(readings) else sum((p.unapplied for p in state.payments), ZERO)
    credit = sum((p.to_customer_credit for p in state.payments), ZERO)
    from_returns = sum((note.refunded for note in state.credit_notes), ZERO)
    accounted = (
        sum((applied[p] for p in known), ZERO)
        + credit
        + held
        + sum((refunded[p] for p in known), ZERO)
        - from_returns
    )
    if received != accounted:
        yield _mismatch(
            readings, PAYMENTS, "payments_total", "received = applied + credit + held + refunded",
            _money(received, currency), _money(accounted, currency),
        )  # fmt: skip


def _capture_of(readings: OrderReadings, payment: Payment) -> str | None:
    """The authorisation a payment was captured from, if it is a card capture."""
    ours = {a.authorisation_id for a in readings.authorisations}
    return payment.reference if payment.reference in ours else None


def check_cards(readings: OrderReadings) -> Iterator[Mismatch]:
    """Card captures = the invoices charged, each once; on cancellation every
    authorisation is voided and every capture refunded in full."""
    state = readings.state
    currency = state.order.currency
    captures = [p for p in readings.payments if _capture_of(readings, p) is not None]
    refunded = _refunded(readings)
    if _cancelled(readings):
        for authorisation in readings.authorisations:
            if authorisation.status is AuthorisationStatus.AUTHORISED:
                yield _mismatch(
                    readings, PAYMENTS, "cancelled_authorisation", authorisation.authorisation_id,
                    "voided", f"authorised, {_money(authorisation.amount, currency)} left",
                )  # fmt: skip
        for capture in captures:
            if refunded[capture.payment_id] != capture.amount:
                yield _mismatch(
                    readings, PAYMENTS, "cancelled_capture", capture.payment_id,
                    f"refunded {_money(capture.amount, capture.currency)}",
                    f"refunded {_money(refunded[capture.payment_id], capture.currency)}",
                )  # fmt: skip
        return
    if state.order.payment_method is None and not captures:
        return
    charged = [
        r.invoice.invoice_id
        for r in readings.invoices
        if r.invoice.status is not InvoiceStatus.VOID
    ]
    if len(captures) != len(charged):
        yield _mismatch(
            readings, PAYMENTS, "captures", "card captures",
            f"{len(charged)} (one per invoice)", len(captures),
        )  # fmt: skip
    capture_ids = {capture.payment_id for capture in captures}
    for reading in readings.invoices:
        times = sum(1 for a in reading.applications if a.payment_id in capture_ids)
        if times > 1:
            yield _mismatch(
                readings, PAYMENTS, "invoice_charged", reading.invoice.invoice_id, "once",
                f"{times} times",
            )  # fmt: skip
