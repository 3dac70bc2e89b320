"""The reconciliation rules (o2c_service/reconciliation/checks.py) over readings
built by hand: a settled order reads clean, and each kind of disagreement is one
mismatch naming the order, the system, the expected and the found values."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from adapters.billing.models import (
    CreditNote,
    Invoice,
    InvoiceStatus,
    PaymentApplication,
)
from adapters.logistics.models import Reservation, ReservationStatus, Shipment, ShipmentStatus
from adapters.payments.models import Authorisation, AuthorisationStatus, Payment, Refund
from o2c_domain.lines import SkuQuantity
from o2c_service.reconciliation import InvoiceReading, Mismatch, OrderReadings, reconcile_order
from o2c_workflows.models import CardPayment, OrderLine, OrderRequest, OrderStatus
from o2c_workflows.state import Application, BookingState, OrderState, PaymentState

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ORDER_ID = "webshop:SO-1"


def _widgets(quantity: int) -> list[SkuQuantity]:
    return [SkuQuantity(sku="SKU-WIDGET", quantity=quantity)]


def _state(*, card: bool = False) -> OrderState:
    """Two widgets at 10.00 EUR, booked, shipped in one dispatch, invoiced."""
    order = OrderRequest(
        source_system="webshop",
        source_order_id="SO-1",
        customer_id="CUST-ACME",
        currency="EUR",
        lines=[OrderLine(sku="SKU-WIDGET", quantity=2, unit_price=Decimal("10.00"))],
        payment_method=CardPayment(card_ref="CARD-1") if card else None,
    )
    state = OrderState.entered(order)
    state.lines[0].reserved = 2
    state.booking = BookingState(
        customer_name="Acme", billing_account_id="ACC-1", reservation_id="RES-1",
        authorisation_id="AUT-1" if card else None,
    )  # fmt: skip
    dispatch = state.record_dispatch("JD1", "DHL", "JD1", _widgets(2), AT)
    state.record_invoice(dispatch, "INV-1", Decimal("20.00"), AT, date(2026, 4, 1), Decimal(0))
    return state


def _invoice(amount: str = "20.00", balance: str = "0.00") -> Invoice:
    return Invoice(
        invoice_id="INV-1", order_id=ORDER_ID, account_id="ACC-1", currency="EUR",
        amount=Decimal(amount), balance=Decimal(balance), invoice_date=AT.date(),
        due_date=date(2026, 4, 1),
        status=InvoiceStatus.PAID if Decimal(balance) == 0 else InvoiceStatus.OPEN,
    )  # fmt: skip


def _application(payment_id: str = "PAY-1", amount: str = "20.00") -> PaymentApplication:
    return PaymentApplication(
        application_id=f"APP-{payment_id}", invoice_id="INV-1", payment_id=payment_id,
        amount=Decimal(amount), invoice_balance=Decimal(0),
    )  # fmt: skip


def _payment(
    payment_id: str = "PAY-1", amount: str = "20.00", reference: str | None = None
) -> Payment:
    return Payment(
        payment_id=payment_id, order_id=ORDER_ID, amount=Decimal(amount), currency="EUR",
        reference=reference, received_at=AT,
    )  # fmt: skip


def _reservation(status: ReservationStatus = ReservationStatus.RESERVED) -> Reservation:
    return Reservation(reservation_id="RES-1", order_id=ORDER_ID, lines=_widgets(2), status=status)


def _shipment(shipped: int = 2) -> Shipment:
    return Shipment(
        shipment_id="SHP-1", order_id=ORDER_ID, status=ShipmentStatus.CONFIRMED,
        lines=_widgets(2), shipped=_widgets(shipped),
    )  # fmt: skip


def _authorisation(status: AuthorisationStatus = AuthorisationStatus.VOIDED) -> Authorisation:
    return Authorisation(
        authorisation_id="AUT-1", order_id=ORDER_ID, amount=Decimal(0), currency="EUR",
        expires_at=AT, status=status,
    )  # fmt: skip


def settled() -> OrderReadings:
    """A closed order paid on invoice, every system agreeing."""
    state = _state()
    state.status = OrderStatus.CLOSED
    state.payments.append(
        PaymentState(
            payment_id="PAY-1",
            amount=Decimal("20.00"),
            currency="EUR",
            received_at=AT,
            applications=[Application(invoice_id="INV-1", amount=Decimal("20.00"))],
        )
    )
    return OrderReadings(
        state=state,
        reservations=[_reservation()],
        shipments=[_shipment()],
        invoices=[InvoiceReading(invoice=_invoice(), applications=[_application()])],
        payments=[_payment()],
    )


def paid_by_card() -> OrderReadings:
    """A closed order whose one invoice was charged to the card once."""
    readings = settled()
    state = _state(card=True)
    state.status = OrderStatus.CLOSED
    state.payments = readings.state.payments
    state.payments[0].reference = "AUT-1"
    readings.state = state
    readings.payments = [_payment(reference="AUT-1")]
    readings.authorisations = [_authorisation()]
    return readings


def cancelled() -> OrderReadings:
    """Cancelled before shipping: reservation released, authorisation voided."""
    order = _state(card=True).order
    state = OrderState.entered(order)
    state.status = OrderStatus.CANCELLED
    state.lines[0].reserved = 2
    return OrderReadings(
        state=state,
        reservations=[_reservation(ReservationStatus.RELEASED)],
        authorisations=[_authorisation()],
    )


def only(readings: OrderReadings) -> Mismatch:
    [mismatch] = reconcile_order(readings)
    return mismatch


@pytest.mark.parametrize("readings", [settled(), paid_by_card(), cancelled()],
                         ids=["settled", "card", "cancelled"])  # fmt: skip
def test_an_order_every_system_agrees_on_has_no_mismatch(readings: OrderReadings) -> None:
    assert reconcile_order(readings) == []


def test_an_extra_reservation_line_is_reported_per_sku() -> None:
    readings = settled()
    readings.reservations[0].lines.append(SkuQuantity(sku="SKU-GADGET", quantity=1))

    assert only(readings) == Mismatch(
        order_id=ORDER_ID, system="logistics", kind="reserved", subject="SKU-GADGET",
        expected="0", found="1",
    )  # fmt: skip


def test_shipped_quantities_differing_from_the_order_are_reported() -> None:
    readings = settled()
    readings.shipments = [_shipment(shipped=1)]

    assert (only(readings).kind, only(readings).expected, only(readings).found) == (
        "shipped", "2", "1",
    )  # fmt: skip


def test_an_invoice_for_another_amount_is_reported_with_both_amounts() -> None:
    readings = settled()
    readings.invoices[0].invoice = _invoice(amount="25.00", balance="5.00")

    mismatch = only(readings)

    assert (mismatch.system, mismatch.kind, mismatch.subject) == (
        "billing",
        "invoice_amount",
        "INV-1",
    )
    assert (mismatch.expected, mismatch.found) == ("20.00 EUR", "25.00 EUR")


def test_a_balance_not_amount_less_applications_and_credit_notes_is_reported() -> None:
    readings = settled()
    readings.invoices[0].invoice = _invoice(balance="3.00")

    assert (only(readings).kind, only(readings).expected, only(readings).found) == (
        "invoice_balance", "0.00 EUR", "3.00 EUR",
    )  # fmt: skip


def test_credit_notes_lower_the_expected_balance() -> None:
    readings = settled()
    readings.invoices[0].applications = [_application(amount="15.00")]
    readings.invoices[0].credit_notes = [
        CreditNote(
            credit_note_id="CN-1",
            invoice_id="INV-1",
            amount=Decimal("5.00"),
            applied_to_invoice=Decimal("5.00"),
            to_customer_credit=Decimal(0),
        )
    ]
    readings.state.payments[0].amount = Decimal("15.00")
    readings.state.payments[0].applications[0].amount = Decimal("15.00")
    readings.payments = [_payment(amount="15.00")]

    assert reconcile_order(readings) == []


def test_an_invoice_no_shipment_asked_for_is_reported() -> None:
    readings = settled()
    second = _invoice(balance="20.00").model_copy(update={"invoice_id": "INV-2"})
    readings.invoices.append(InvoiceReading(invoice=second))

    assert (only(readings).kind, only(readings).subject) == ("invoice_unexpected", "INV-2")


def test_a_payment_the_order_does_not_know_is_reported_unaccounted() -> None:
    readings = settled()
    readings.payments.append(_payment("PAY-X", "7.50"))

    mismatch = only(readings)

    assert (mismatch.system, mismatch.kind, mismatch.subject) == (
        "payments", "payment_unaccounted", "PAY-X",
    )  # fmt: skip
    assert mismatch.found == "7.50 EUR unknown to the order"


def test_money_refunded_on_top_of_being_applied_breaks_the_totals() -> None:
    readings = settled()
    readings.refunds = [
        Refund(refund_id="RFD-1", payment_id="PAY-1", amount=Decimal("20.00"), currency="EUR")
    ]

    assert (only(readings).kind, only(readings).expected, only(readings).found) == (
        "payments_total", "20.00 EUR", "40.00 EUR",
    )  # fmt: skip


def test_a_second_capture_is_reported_as_one_capture_too_many() -> None:
    readings = paid_by_card()
    readings.payments.append(_payment("PAY-2", reference="AUT-1"))

    assert (only(readings).kind, only(readings).expected, only(readings).found) == (
        "captures", "1 (one per invoice)", "2",
    )  # fmt: skip


def test_an_invoice_charged_twice_is_reported() -> None:
    readings = paid_by_card()
    readings.invoices[0].applications.append(_application("PAY-2", "0.00"))
    readings.payments.append(_payment("PAY-2", "0.00", reference="AUT-1"))

    kinds = {mismatch.kind for mismatch in reconcile_order(readings)}

    assert {"captures", "invoice_charged"} <= kinds


def test_a_cancelled_order_holding_stock_is_reported() -> None:
    readings = cancelled()
    readings.reservations = [_reservation()]

    assert only(readings) == Mismatch(
        order_id=ORDER_ID, system="logistics", kind="cancelled_reservation", subject="RES-1",
        expected="released", found="reserved (SKU-WIDGET x2)",
    )  # fmt: skip


def test_a_cancelled_order_with_an_open_invoice_is_reported() -> None:
    readings = cancelled()
    readings.invoices = [InvoiceReading(invoice=_invoice(balance="20.00"))]

    assert (only(readings).kind, only(readings).found) == (
        "cancelled_invoice", "open, 20.00 EUR",
    )  # fmt: skip


def test_a_cancelled_order_with_an_authorisation_left_is_reported() -> None:
    readings = cancelled()
    readings.authorisations = [_authorisation(AuthorisationStatus.AUTHORISED)]

    assert (only(readings).system, only(readings).kind) == ("payments", "cancelled_authorisation")


def test_a_cancelled_orders_capture_not_refunded_in_full_is_reported() -> None:
    readings = cancelled()
    readings.payments = [_payment("PAY-C", "20.00", reference="AUT-1")]
    readings.refunds = [
        Refund(refund_id="RFD-1", payment_id="PAY-C", amount=Decimal("5.00"), currency="EUR")
    ]

    assert (only(readings).kind, only(readings).expected, only(readings).found) == (
        "cancelled_capture", "refunded 20.00 EUR", "refunded 5.00 EUR",
    )  # fmt: skip


def test_a_payment_the_order_took_missing_from_the_ledger_is_reported() -> None:
    readings = settled()
    readings.payments = []

    kinds = [(m.system, m.kind, m.subject, m.found) for m in reconcile_order(readings)]

    assert ("payments", "payment_missing", "PAY-1", "none") in kinds


def test_a_ledger_amount_differing_from_the_orders_is_reported() -> None:
    readings = settled()
    readings.payments = [_payment(amount="21.00")]

    kinds = {(m.kind, m.expected, m.found) for m in reconcile_order(readings)}

    assert ("payment_amount", "20.00 EUR", "21.00 EUR") in kinds


def test_billing_applying_a_payment_otherwise_than_the_order_is_reported() -> None:
    readings = settled()
    readings.invoices[0].applications = [_application(amount="15.00")]
    readings.invoices[0].invoice = _invoice(balance="5.00")

    kinds = {(m.system, m.kind, m.expected, m.found) for m in reconcile_order(readings)}

    assert ("billing", "payment_applied", "20.00 EUR", "15.00 EUR") in kinds


def test_an_invoice_the_order_raised_but_billing_voided_is_reported_missing() -> None:
    readings = settled()
    readings.invoices[0].invoice = _invoice().model_copy(update={"status": InvoiceStatus.VOID})

    kinds = {(m.system, m.kind, m.subject, m.expected) for m in reconcile_order(readings)}

    assert ("billing", "invoice_missing", "shipment 1", "INV-1") in kinds


def test_a_payment_held_for_an_invoice_to_come_is_accounted_for() -> None:
    readings = settled()
    readings.state.status = OrderStatus.INVOICED
    readings.state.payments.append(
        PaymentState(payment_id="PAY-2", amount=Decimal("5.00"), currency="EUR", received_at=AT)
    )
    readings.payments.append(_payment("PAY-2", "5.00"))

    assert reconcile_order(readings) == []
