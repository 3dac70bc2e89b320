"""Payments' REST contract (docs/contracts/payments.openapi.json is generated from it)."""

from __future__ import annotations

from adapters.http.contract import Contract, Operation, lookup
from adapters.payments.models import (
    Authorisation,
    AuthoriseCard,
    CaptureCard,
    Payment,
    PaymentRecordRequest,
    Refund,
    RefundPayment,
    StoreCard,
    StoredCard,
    VoidAuthorisation,
)

PAYMENTS_CONTRACT = Contract(
    system="payments",
    title="Payments",
    description="The payments ledger, refunds, and the card gateway with its vault.",
    operations=(
        Operation(
            "record_payment",
            "POST",
            "/payments",
            Payment,
            "Record money received for an order, once per key",
            body=PaymentRecordRequest,
        ),
        lookup("find_payment", "payments", Payment, "payment"),
        Operation(
            "refund_payment",
            "POST",
            "/refunds",
            Refund,
            "Pay money back against a payment, once per key",
            body=RefundPayment,
        ),
        Operation(
            "store_card",
            "POST",
            "/cards",
            StoredCard,
            "Keep an order's card token in the vault; answers the reference the order carries",
            body=StoreCard,
        ),
        lookup("find_stored_card", "cards", StoredCard, "stored card"),
        Operation(
            "authorise_card",
            "POST",
            "/authorisations",
            Authorisation,
            "Reserve funds on the order's card",
            body=AuthoriseCard,
        ),
        lookup("find_authorisation", "authorisations", Authorisation, "authorisation"),
        Operation(
            "capture_card",
            "POST",
            "/captures",
            Payment,
            "Take authorised funds; the capture is recorded as a payment",
            body=CaptureCard,
        ),
        Operation(
            "void_authorisation",
            "POST",
            "/authorisation-voids",
            Authorisation,
            "Release an authorisation not captured (compensation)",
            body=VoidAuthorisation,
        ),
        Operation(
            "list_payments",
            "GET",
            "/orders/{order_id}/payments",
            list[Payment],
            "The payments received for an order (card captures included), oldest first",
        ),
        Operation(
            "list_authorisations",
            "GET",
            "/orders/{order_id}/authorisations",
            list[Authorisation],
            "The card authorisations made for an order, oldest first, voided ones included",
        ),
        Operation(
            "list_refunds",
            "GET",
            "/orders/{order_id}/refunds",
            list[Refund],
            "The refunds of the order's payments, oldest first",
        ),
    ),
)
