"""Billing over HTTP: the protocol's methods as calls of its REST contract."""

from __future__ import annotations

from datetime import date

import httpx

from adapters.billing.http_contract import BILLING_CONTRACT
from adapters.billing.models import (
    ApplyPayment,
    BillingAccount,
    CreditBalance,
    CreditNote,
    CreditNoteRequest,
    CustomerCreditEntry,
    DunningNotice,
    DunningRecord,
    Invoice,
    InvoiceRequest,
    OpenBalance,
    PaymentApplication,
    VoidInvoice,
)
from adapters.crm.models import Customer
from adapters.http.client import Remote, SystemClient
from adapters.keys import IdempotencyKey


class HttpBilling:
    """`BillingAdapter` against a remote system (or the sandbox) that serves BILLING_CONTRACT."""

    def __init__(
        self, remote: Remote, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._client = SystemClient(BILLING_CONTRACT, remote, transport=transport)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def ensure_account(self, customer: Customer) -> BillingAccount:
        answer: BillingAccount = await self._client.call("ensure_account", customer)
        return answer

    async def create_invoice(self, request: InvoiceRequest) -> Invoice:
        answer: Invoice = await self._client.call("create_invoice", request)
        return answer

    async def apply_payment(self, request: ApplyPayment) -> PaymentApplication:
        answer: PaymentApplication = await self._client.call("apply_payment", request)
        return answer

    async def find_invoice(self, idempotency_key: IdempotencyKey) -> Invoice | None:
        answer: Invoice | None = await self._client.call("find_invoice", idempotency_key)
        return answer

    async def find_application(self, idempotency_key: IdempotencyKey) -> PaymentApplication | None:
        answer: PaymentApplication | None = await self._client.call(
            "find_application", idempotency_key
        )
        return answer

    async def void_invoice(self, request: VoidInvoice) -> Invoice:
        answer: Invoice = await self._client.call("void_invoice", request)
        return answer

    async def open_balance(self, customer_id: str) -> OpenBalance:
        answer: OpenBalance = await self._client.call("open_balance", customer_id)
        return answer

    async def create_credit_note(self, request: CreditNoteRequest) -> CreditNote:
        answer: CreditNote = await self._client.call("create_credit_note", request)
        return answer

    async def find_credit_note(self, idempotency_key: IdempotencyKey) -> CreditNote | None:
        answer: CreditNote | None = await self._client.call("find_credit_note", idempotency_key)
        return answer

    async def post_customer_credit(self, entry: CustomerCreditEntry) -> CreditBalance:
        answer: CreditBalance = await self._client.call("post_customer_credit", entry)
        return answer

    async def customer_credit(self, account_id: str) -> CreditBalance:
        answer: CreditBalance = await self._client.call("customer_credit", account_id)
        return answer

    async def paid_into(self, account_id: str, payment_id: str) -> bool:
        answer: bool = await self._client.call("paid_into", account_id, payment_id)
        return answer

    async def send_dunning_notice(self, notice: DunningNotice) -> DunningRecord:
        answer: DunningRecord = await self._client.call("send_dunning_notice", notice)
        return answer

    async def list_open_invoices(self) -> list[Invoice]:
        answer: list[Invoice] = await self._client.call("list_open_invoices")
        return answer

    async def list_invoices_dated(self, start: date, end: date) -> list[Invoice]:
        answer: list[Invoice] = await self._client.call("list_invoices_dated", start, end)
        return answer

    async def list_invoices(self, order_id: str) -> list[Invoice]:
        answer: list[Invoice] = await self._client.call("list_invoices", order_id)
        return answer

    async def list_applications(self, invoice_id: str) -> list[PaymentApplication]:
        answer: list[PaymentApplication] = await self._client.call("list_applications", invoice_id)
        return answer

    async def list_credit_notes(self, invoice_id: str) -> list[CreditNote]:
        answer: list[CreditNote] = await self._client.call("list_credit_notes", invoice_id)
        return answer
