"""Who sends webhooks (a module of its own, light enough for the CLI's options)."""

from __future__ import annotations

from enum import StrEnum


class WebhookSource(StrEnum):
    """Who sends webhooks: the 3PL and the payment gateway."""

    LOGISTICS = "logistics"
    PAYMENTS = "payments"
