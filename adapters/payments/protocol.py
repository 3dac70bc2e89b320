"""What Payments must do for the orchestrator.

Every method that changes something takes an idempotency key and has a `find_*`
twin to look it up after an unknown outcome; failures are `adapters.errors`.
"""

from __future__ import annotations

from typing import Protocol

from adapters.keys import IdempotencyKey
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


class PaymentsAdapter(Protocol):
    async def record_payment(self, request: PaymentRecordRequest) -> Payment:
        """Record a received payment; the same payment id is recorded once."""
        ...

    async def find_payment(self, idempotency_key: IdempotencyKey) -> Payment | None: ...

    async def refund_payment(self, request: RefundPayment) -> Refund:
        """Pay money back; the same key refunds once, never more than was received."""
        ...

    async def store_card(self, request: StoreCard) -> StoredCard:
        """Keep a card token for an order; the same key stores once and answers the same
        `card_ref`. BusinessError `invalid_card` for a token the gateway cannot take."""
        ...

    async def find_stored_card(self, idempotency_key: IdempotencyKey) -> StoredCard | None: ...

    async def authorise_card(self, request: AuthoriseCard) -> Authorisation:
        """Reserve funds on a card; BusinessError `card_declined`, `card_not_found` (no
        card stored under `card_ref` for this order). Once per key."""
        ...

    async def find_authorisation(self, idempotency_key: IdempotencyKey) -> Authorisation | None: ...

    async def capture_card(self, request: CaptureCard) -> Payment:
        """Take funds from an authorisation, recorded as a payment (find it with find_payment)."""
        ...

    async def void_authorisation(self, request: VoidAuthorisation) -> Authorisation:
        """Release what is left of an authorisation (compensation, or after the last capture)."""
        ...

    async def list_payments(self, order_id: str) -> list[Payment]:
        """The payments received for an order (card captures included), oldest first."""
        ...

    async def list_authorisations(self, order_id: str) -> list[Authorisation]:
        """The card authorisations made for an order, oldest first, voided ones included."""
        ...

    async def list_refunds(self, order_id: str) -> list[Refund]:
        """The refunds of the order's payments, oldest first."""
        ...
