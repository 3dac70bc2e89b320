"""Every idempotency key a workflow derives, in one place.

A key names one side effect: the same order execution and step always give the
same key, so a retried or replayed activity finds the first result, and an undo
finds what its forward step did. Changing a format changes which effects count
as done: orders in flight would do them again. Keep each string as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class OrderKeys:
    """The keys of one order execution; `scope` is `OrderState.key_scope` (or, for orders
    begun before keys were scoped per execution, the order id alone)."""

    scope: str

    def _of(self, step: str) -> str:
        return f"{self.scope}:{step}"

    def reserve(self) -> str:
        return self._of("reserve")

    def ship(self) -> str:
        return self._of("ship")

    def authorise(self, number: int) -> str:
        return self._of(f"authorise:{number}")

    def capture(self, invoice_id: str, attempt: int) -> str:
        return self._of(f"capture:{invoice_id}:{attempt}")

    def dispatch(self, event_id: str) -> str:
        return self._of(f"dispatch:{event_id}")

    def invoice(self, dispatch: int) -> str:
        return self._of(f"invoice:{dispatch}")

    def apply(self, payment_id: str, invoice_id: str) -> str:
        return self._of(f"apply:{payment_id}:{invoice_id}")

    def credit(self, payment_id: str) -> str:
        return self._of(f"credit:{payment_id}")

    def amend(self, amendment_id: str) -> str:
        return self._of(f"amend:{amendment_id}")

    def return_(self, return_id: str) -> str:
        return self._of(f"return:{return_id}")


def payment(payment_id: str) -> str:
    """A received payment: the bank's own id, one payment whichever order records it."""
    return f"payment:{payment_id}"


def credit_note(return_key: str, invoice_id: str) -> str:
    return f"{return_key}:{invoice_id}"


def refund(credit_note_key: str, payment_id: str) -> str:
    return f"{credit_note_key}:refund:{payment_id}"


def refund_credit(refund_key: str) -> str:
    """The customer-credit entry that matches a refund paid back to a payment."""
    return f"{refund_key}:credit"


def dunning(invoice_id: str, due: date, level: str) -> str:
    return f"{invoice_id}:dunning:{due}:{level}"


def customer_hold(dunning_key: str) -> str:
    return f"{dunning_key}:hold"


def undo(forward_key: str) -> str:
    return f"{forward_key}:undo"


@dataclass(frozen=True)
class RefundKeys:
    """The keys of one credit refund (their prefix predates `credit-refund/` workflow ids)."""

    refund_id: str

    def _of(self, step: str) -> str:
        return f"credit-refund:{self.refund_id}:{step}"

    def use(self) -> str:
        return self._of("use")

    def refund(self) -> str:
        return self._of("refund")

    def restore(self) -> str:
        return self._of("restore")
