"""Fake adapters for the fault injection tests (test_faults.py): each counts the
calls that reach it, so a test can tell a fault raised before the call from one
raised after it; with the requests they are called with, and a sleep that records
its delays instead of waiting.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from adapters.billing.models import InvoiceLine, InvoiceRequest
from adapters.crm.models import Customer
from adapters.logistics.models import ReserveStock
from o2c_domain.lines import SkuQuantity


def invoice_request(key: str, account_id: str = "BA-1") -> InvoiceRequest:
    return InvoiceRequest(
        idempotency_key=key,
        order_id="shop:1",
        account_id=account_id,
        currency="EUR",
        invoice_date=date(2025, 3, 1),
        due_date=date(2025, 3, 31),
        lines=[
            InvoiceLine(
                sku="SKU-WIDGET", quantity=1, unit_price=Decimal("10.00"), amount=Decimal("10.00")
            )
        ],
    )


def customer(customer_id: str) -> Customer:
    return Customer(
        customer_id=customer_id,
        name=customer_id.title(),
        email="ap@example.com",
        currency="EUR",
        credit_limit=Decimal("1000.00"),
    )


def reservation(key: str, *skus: str) -> ReserveStock:
    return ReserveStock(
        idempotency_key=key,
        order_id="shop:1",
        lines=[SkuQuantity(sku=sku, quantity=1) for sku in skus],
    )


class FakeCrm:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def get_customer(self, customer_id: str) -> str:
        self.calls.append(customer_id)
        return customer_id


class FakeBilling:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.label = "fake billing"

    async def create_invoice(self, request: InvoiceRequest) -> str:
        self.calls.append(request.idempotency_key)
        return f"INV-{request.idempotency_key}"

    async def find_invoice(self, idempotency_key: str) -> str | None:
        self.calls.append(f"find:{idempotency_key}")
        return None

    async def ensure_account(self, customer: Customer) -> str:
        self.calls.append(f"account:{customer.customer_id}")
        return f"BA-{customer.customer_id}"

    async def open_balance(self, customer_id: str) -> str:
        self.calls.append(f"balance:{customer_id}")
        return "0"

    async def list_invoices(self, order_id: str) -> list[str]:
        self.calls.append(f"list:{order_id}")
        return []


class FakeLogistics:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def reserve_stock(self, request: ReserveStock) -> str:
        self.calls.append(request.idempotency_key)
        return f"RES-{request.idempotency_key}"


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
