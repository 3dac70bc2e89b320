"""`o2c credits refund`: paying customer credit back."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import typer

from o2c_service.cli.common import (
    ApiUrlOption,
    Output,
    OutputOption,
    ack_table,
    amount_option,
    app,
    call_api,
    emit,
)

# -- credits ------------------------------------------------------------------

credits_app = typer.Typer(
    help="Customer credit (overpayments) held in billing.", no_args_is_help=True
)
app.add_typer(credits_app, name="credits")


@credits_app.command("refund")
def refund_credit(
    refund_id: Annotated[str, typer.Option(help="Your id for it: the same id twice refunds once.")],
    account: Annotated[str, typer.Option(help="The billing account holding the credit.")],
    payment: Annotated[str, typer.Option(help="The payment to pay the money back to.")],
    amount: Annotated[
        Decimal, typer.Option(help="Amount to refund, e.g. 25.00.", parser=amount_option)
    ],
    currency: Annotated[str, typer.Option(help="The credit's currency, e.g. EUR.")],
    reason: Annotated[str | None, typer.Option(help="Why; kept with the refund.")] = None,
    output: OutputOption = Output.TABLE,
    api_url: ApiUrlOption = None,
) -> None:
    """Pay customer credit back to a payment (the credit is used first, restored on failure)."""
    body = {
        "refund_id": refund_id,
        "account_id": account,
        "payment_id": payment,
        "amount": str(amount),
        "currency": currency,
    }
    if reason is not None:
        body["reason"] = reason
    result = call_api(api_url, "POST", "/credits/refunds", body)
    keys = ("refund_id", "account_id", "payment_id", "amount", "currency", "credit_balance")
    emit(result, output, ack_table(result, keys))
