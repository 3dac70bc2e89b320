"""Reading one order from each system, through its adapter (local or remote alike)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from adapters.billing.models import Invoice
from adapters.billing.protocol import BillingAdapter
from adapters.errors import SystemFailure
from adapters.logistics.protocol import LogisticsAdapter
from adapters.payments.protocol import PaymentsAdapter
from o2c_service.reconciliation.models import InvoiceReading, OrderReadings
from o2c_workflows.state import OrderState


class SystemUnreadable(Exception):
    """A system could not be read (HTTP 503): nothing is reported for a half-read order."""


@dataclass(frozen=True)
class ReadSystems:
    """The three systems that hold an order's goods and money."""

    logistics: LogisticsAdapter
    billing: BillingAdapter
    payments: PaymentsAdapter


async def _invoice(billing: BillingAdapter, invoice: Invoice) -> InvoiceReading:
    applications, credit_notes = await asyncio.gather(
        billing.list_applications(invoice.invoice_id),
        billing.list_credit_notes(invoice.invoice_id),
    )
    return InvoiceReading(invoice=invoice, applications=applications, credit_notes=credit_notes)


async def read_order(state: OrderState, systems: ReadSystems) -> OrderReadings:
    """What logistics, billing and payments hold for the order; reads only.

    Raises SystemUnreadable naming the system that failed.
    """
    order_id = state.order_id
    try:
        reservations, shipments = await asyncio.gather(
            systems.logistics.list_reservations(order_id),
            systems.logistics.list_shipments(order_id),
        )
    except (SystemFailure, SQLAlchemyError, OSError) as error:
        raise SystemUnreadable(f"logistics could not be read: {error}") from error
    try:
        invoices = await systems.billing.list_invoices(order_id)
        invoice_readings = await asyncio.gather(
            *(_invoice(systems.billing, invoice) for invoice in invoices)
        )
    except (SystemFailure, SQLAlchemyError, OSError) as error:
        raise SystemUnreadable(f"billing could not be read: {error}") from error
    try:
        payments, authorisations, refunds = await asyncio.gather(
            systems.payments.list_payments(order_id),
            systems.payments.list_authorisations(order_id),
            systems.payments.list_refunds(order_id),
        )
    except (SystemFailure, SQLAlchemyError, OSError) as error:
        raise SystemUnreadable(f"payments could not be read: {error}") from error
    return OrderReadings(
        state=state,
        reservations=reservations,
        shipments=shipments,
        invoices=list(invoice_readings),
        payments=payments,
        authorisations=authorisations,
        refunds=refunds,
    )
