"""Due dates as durable timers: each instalment not paid in time is reminded, then
escalated, at the levels of the order's dunning policy; dunning stops once paid.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from decimal import Decimal
from typing import TypeVar

from temporalio import workflow

from activities import options
from activities.order_activities import OrderActivities
from adapters.billing.models import DunningNotice
from adapters.crm.models import CustomerHold
from o2c_workflows import keys
from o2c_workflows.dunning import days_past_due, fires_at
from o2c_workflows.order.compensation import Compensation
from o2c_workflows.search_attributes import (
    DUNNING_LEVEL,
)
from o2c_workflows.state import (
    InvoiceState,
)

A = TypeVar("A")
T = TypeVar("T")


class DunningTimers(Compensation):
    def _start_dunning(self, invoice: InvoiceState) -> None:
        if invoice.invoice_id not in self._dunning_tasks and invoice.balance > 0:
            self._dunning_tasks[invoice.invoice_id] = asyncio.create_task(self._dun(invoice))

    async def _dun(self, invoice: InvoiceState) -> None:
        """Remind, then escalate, for each instalment not paid on time; stop once paid."""
        due_so_far = Decimal(0)
        for instalment in invoice.schedule:
            due_so_far += instalment.amount
            for level in self._dunning.levels:
                sent = f"{instalment.due_date}:{level.name}"
                if sent in invoice.dunning_sent:  # before a continue-as-new
                    continue
                deadline = fires_at(instalment.due_date, level)
                if await self._paid_by(invoice, due_so_far, deadline):
                    break
                await self._send_dunning(invoice, level.name, level.escalate, instalment.due_date)
                invoice.dunning_sent.append(sent)

    async def _paid_by(self, invoice: InvoiceState, amount: Decimal, deadline: datetime) -> bool:
        """Wait until `amount` of the invoice is paid (True) or `deadline` passes (False)."""
        remaining = deadline - workflow.now()
        if remaining.total_seconds() <= 0:
            return invoice.paid >= amount
        if self._state.process_version < 2:
            try:
                await workflow.wait_condition(lambda: invoice.paid >= amount, timeout=remaining)
            except TimeoutError:
                return False
            return True
        # The timer outlives a payment: cancelled when the order next waits, or dropped
        # with no event at all if the payment closes the order.
        timer = asyncio.create_task(
            workflow.sleep(remaining, summary=f"dunning: invoice {invoice.invoice_id}")
        )
        try:
            await workflow.wait_condition(lambda: invoice.paid >= amount or timer.done())
        finally:
            if not timer.done():
                self._spare_timers.append(timer)
        return invoice.paid >= amount

    async def _send_dunning(
        self, invoice: InvoiceState, level: str, escalate: bool, due: date
    ) -> None:
        late = days_past_due(due, workflow.now().date())
        notice_key = keys.dunning(invoice.invoice_id, due, level)
        self._in_flight.loop_calls += 1
        try:
            await self._call(
                OrderActivities.send_dunning_notice,
                DunningNotice(
                    idempotency_key=notice_key,
                    invoice_id=invoice.invoice_id,
                    level=level,
                    days_past_due=late,
                ),
                options.BILLING,
            )
            if escalate:
                await self._call(
                    OrderActivities.place_customer_on_hold,
                    CustomerHold(
                        idempotency_key=keys.customer_hold(notice_key),
                        customer_id=self._state.order.customer_id,
                        reason=f"invoice {invoice.invoice_id} {late} days past due",
                    ),
                    options.CRM,
                )
        finally:
            self._in_flight.loop_calls -= 1
        invoice.dunning_level, invoice.days_past_due = level, late
        self._set_attributes([DUNNING_LEVEL.value_set(level)])
        self._note(f"{level} sent for invoice {invoice.invoice_id}, {late} days past due")
